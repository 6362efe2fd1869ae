//! Children on a pseudo-terminal for torsion, on the same
//! [`ProcessProtocol`](torsion_transport::ProcessProtocol) as pipe children: code written
//! for pipes runs on a PTY (DESIGN.md, "Processes"; CONTRACT L).
//!
//! # Example
//!
//! `echo hi` on a PTY; the terminal's line discipline turns `\n` into `\r\n`:
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//! use torsion_transport::{ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport, PtyOptions};
//!
//! #[derive(Default)]
//! struct Collect {
//!     out: Rc<RefCell<Vec<u8>>>,
//!     ended: Rc<RefCell<Option<ExitReason>>>,
//! }
//!
//! impl ProcessProtocol for Collect {
//!     fn child_data_received(&mut self, fd: i32, data: &[u8]) {
//!         assert_eq!(fd, 1, "a PTY has one channel");
//!         self.out.borrow_mut().extend_from_slice(data);
//!     }
//!     fn process_ended(&mut self, reason: ExitReason) {
//!         *self.ended.borrow_mut() = Some(reason);
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! let protocol = Collect::default();
//! let (out, ended) = (protocol.out.clone(), protocol.ended.clone());
//! let builder = ProcessBuilder::new("echo").arg("hi").pty(PtyOptions::size(24, 80));
//! let child = torsion_pty::spawn(&reactor, &builder, Box::new(protocol))?;
//! reactor.run_until(|| ended.borrow().is_some(), Duration::from_secs(10))?;
//! assert_eq!(*ended.borrow(), Some(ExitReason::ProcessDone));
//! assert_eq!(&out.borrow()[..], b"hi\r\n");
//! assert_eq!(child.pid(), None); // reaped
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The layers
//!
//! - [`spawn`]: a [`ProcessBuilder`](torsion_transport::ProcessBuilder) with
//!   [`pty`](torsion_transport::ProcessBuilder::pty) becomes a running child on a fresh PTY
//!   (or the caller's pair) and a [`PtyProcess`]. [`install`] makes the reactor's
//!   `ReactorProcess::spawn_process` (and Twisted-style
//!   `torsion_process::spawn_process(.., use_pty = true, ..)`) do the same, handing pipe
//!   requests to `torsion_process`.
//! - [`PtyProcess`]: the `ProcessTransport` — one channel, read until the terminal is
//!   closed, writes buffered with flow control, `resize`, `close_stdin` as the EOF key,
//!   `lose_connection` as a hang-up. Its docs pin the behaviour.
//! - [`PtyTransport`]: the same master handling as a plain `Transport` for a PTY whose
//!   slave is not a child of ours.
//! - [`termios`]: raw mode for the parent's own terminal ([`termios::RawModeGuard`]),
//!   window size, and attributes of any terminal, the PTY included.
//!
//! # Portability
//!
//! Unix only. The end of output is `EIO` on Linux and end-of-file on the BSDs and macOS;
//! both are a clean end.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

#[cfg(unix)]
mod master;
#[cfg(unix)]
mod process;
#[cfg(unix)]
mod spawn;
mod sys;
#[cfg(unix)]
pub mod termios;
#[cfg(unix)]
mod transport;

#[cfg(unix)]
pub use process::PtyProcess;
#[cfg(unix)]
pub use spawn::{PtySpawner, install, spawn};
#[cfg(unix)]
pub use transport::PtyTransport;
