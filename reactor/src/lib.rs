//! torsion's reactor: a single-threaded, Twisted-style event loop on mio.
//!
//! The layers, bottom up:
//!
//! - [`Reactor`]: the loop. A slab of [`Selectable`]s keyed by generation-checked mio
//!   tokens, level-triggered dispatch over mio's edges with a fairness budget, timers
//!   ([`DelayedCall`](torsion_transport::DelayedCall) on the monotonic clock), calls from
//!   other threads ([`ThreadHandle`]), system event triggers, signals, graceful shutdown.
//! - [`FileDescriptor`]: the write side every stream transport shares — buffer, producers,
//!   closing, half-closing.
//! - [`StreamTransport`]: a connected TCP or Unix socket driving a
//!   [`Protocol`](torsion_transport::Protocol).
//! - [`port`] and [`connector`]: a listening socket handing each accepted connection to a
//!   factory's protocol ([`Port`]), and an outgoing connection attempt
//!   ([`StreamConnector`]), generic over the kind of stream socket.
//! - [`tcp`]: listening ports and outgoing connections over TCP ([`TcpPort`],
//!   [`TcpConnector`]; `listen_tcp`/`connect_tcp` through `ReactorTcp`).
//! - [`unix`]: the same over Unix stream sockets ([`UnixPort`], [`UnixConnector`];
//!   `listen_unix`/`connect_unix` through `ReactorUnix`).
//!
//! # Example
//!
//! Timers and stopping:
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//!
//! let reactor = Reactor::new()?;
//! let ticks = Rc::new(Cell::new(0));
//! let (r, t) = (reactor.clone(), ticks.clone());
//! reactor.call_when_running(move || {
//!     let r2 = r.clone();
//!     r.call_later(Duration::from_millis(1), move || {
//!         t.set(t.get() + 1);
//!         r2.stop().unwrap();
//!     });
//! });
//! reactor.run()?;
//! assert_eq!(ticks.get(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Re-entrancy
//!
//! No borrow is held across a call into user code, and transports never call their
//! protocol synchronously: `lose_connection` inside `data_received` marks the transport,
//! and `connection_lost` arrives from the loop. Every call into user code (protocol,
//! producer, factory, timer, trigger, signal and thread callbacks) goes through one funnel,
//! [`catch_panic`] / [`callback::guard`]: a panic is caught, logged, and closes only that
//! connection (or skips that timer), and the cleanup that follows the call still runs.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod callback;
pub mod connector;
pub mod error;
pub mod events;
pub mod fdesc;
pub mod port;
mod reactor;
mod run;
pub mod selectable;
mod signals;
pub mod stream;
mod sys;
pub mod tcp;
mod thread;
#[cfg(unix)]
pub mod unix;
mod write_buffer;

/// The syscall funnel of the torsion crates on Unix: `cvt` turns a C return value of `-1`
/// into the thread's `io::Error`, `cvt_r` also retries `EINTR`. For the process and PTY
/// crates' `sys` modules; not part of the public API.
#[cfg(unix)]
#[doc(hidden)]
pub mod syscall {
    pub use crate::sys::unix::{MinusOne, cvt, cvt_r};
}

pub use callback::{Panicked, ProtocolSlot, catch_panic, guard};
pub use connector::{ConnectingStream, StreamConnector};
pub use error::{ReactorError, ReactorGone};
pub use events::{Event, Phase, TriggerId};
pub use fdesc::{FileDescriptor, WriteOutcome, WriteSink, WriteStep};
pub use mio::Token;
pub use port::{Port, StreamListener};
pub use reactor::{READ_BUDGET, Reactor, WeakReactor};
pub use run::ShutdownHold;
pub use selectable::{IoStatus, Selectable};
pub use signals::SignalId;
pub use stream::{StreamSocket, StreamTransport};
pub use tcp::{TcpConnector, TcpOptions, TcpPort, TcpTransport};
pub use thread::ThreadHandle;
#[cfg(unix)]
pub use unix::{UnixConnector, UnixPort, UnixTransport};
