//! The pseudo-terminal device layer of torsion (ARCHITECTURE: transport ← reactor ← pty ←
//! process): open a pair, terminal attributes, the window size, raw mode for our own
//! terminal, and a PTY master as a reactor transport. Children on a PTY are spawned by
//! `torsion-process` (`ProcessBuilder::new(..).pty(PtyOptions::default()).spawn(..)`),
//! which builds its PTY process from this crate's [`PtyMaster`].
//!
//! # Example
//!
//! A terminal whose slave we hold ourselves: what is written to the slave arrives at the
//! protocol; the line discipline turns `\n` into `\r\n`:
//!
//! ```
//! # #[cfg(unix)] { // a POSIX pseudo-terminal
//! use std::cell::RefCell;
//! use std::io::Write;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_pty::{PtyTransport, open_pty};
//! use torsion_reactor::Reactor;
//! use torsion_transport::{Protocol, Reason, Transport};
//!
//! #[derive(Default)]
//! struct Collect(Rc<RefCell<Vec<u8>>>);
//!
//! impl Protocol for Collect {
//!     fn connection_made(&mut self, _t: Rc<dyn Transport>) {}
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.0.borrow_mut().extend_from_slice(data);
//!     }
//!     fn connection_lost(&mut self, _reason: Reason) {}
//! }
//!
//! let reactor = Reactor::new()?;
//! let (master, slave) = open_pty()?;
//! let out = Rc::new(RefCell::new(Vec::new()));
//! let _t = PtyTransport::start(&reactor, master, Box::new(Collect(out.clone())))?;
//! std::fs::File::from(slave).write_all(b"hi\n")?;
//! let o = out.clone();
//! reactor.run_until(|| o.borrow().ends_with(b"\r\n"), Duration::from_secs(10))?;
//! assert_eq!(&out.borrow()[..], b"hi\r\n");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The layers
//!
//! - [`open_pty`], [`set_window_size`], [`window_size`]: the device.
//! - [`termios`]: attributes of any terminal, raw mode for the parent's own terminal
//!   ([`termios::RawModeGuard`]).
//! - [`PtyMaster`]: the master as one selectable — reads until the terminal is closed
//!   (`EIO` or end-of-file is a clean end, CONTRACT L4), writes through a
//!   [`FileDescriptor`](torsion_reactor::FileDescriptor) — reporting to a [`MasterOwner`].
//! - [`PtyTransport`]: a plain `Transport` over a master whose slave is not a child of
//!   ours.
//!
//! # Portability
//!
//! Unix only. The end of output is `EIO` on Linux and end-of-file on the BSDs and macOS;
//! both are a clean end.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

#[cfg(unix)]
mod device;
#[cfg(unix)]
pub mod master;
mod sys;
#[cfg(unix)]
pub mod termios;
#[cfg(unix)]
mod transport;

#[cfg(unix)]
pub use device::{open_pty, set_window_size, set_window_size_raw, window_size};
#[cfg(unix)]
pub use master::{MasterOwner, PtyMaster};
#[cfg(unix)]
pub use transport::PtyTransport;
