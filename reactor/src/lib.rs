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
//! - [`datagram`]: UDP and Unix datagram sockets driving a `DatagramProtocol`
//!   ([`DatagramPort`], also named [`UdpPort`]; [`Reactor::listen_udp`], multicast,
//!   broadcast, connected sockets, truncation reported; CONTRACT Q1–Q4). On Unix, descriptor
//!   passing and peer credentials on Unix stream connections (`Transport::as_unix_socket`,
//!   Q8, Q9).
//! - Adoption (Unix): [`Reactor::adopt_stream_port`], [`Reactor::adopt_stream_connection`],
//!   [`Reactor::adopt_datagram_port`] take sockets opened elsewhere (systemd, a prefork
//!   parent; Q5); [`Reactor::listen_tcp_with`] binds with `SO_REUSEPORT` and friends.
//! - [`threadpool`]: blocking work off the loop, [`Reactor::call_in_thread`] returning a
//!   `Deferred`, and [`Reactor::resolve`] (Q6, Q7).
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

#[cfg(unix)]
mod adopt;
pub mod callback;
pub mod connector;
pub mod datagram;
pub mod error;
pub mod events;
pub mod executor;
pub mod fdesc;
#[cfg(unix)]
mod passfd;
pub mod port;
mod reactor;
mod run;
pub mod selectable;
mod signals;
pub mod stream;
mod sys;
pub mod tcp;
mod thread;
pub mod threadpool;
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
pub use datagram::{DATAGRAM_BUDGET, DatagramPort, UdpPort, UnixDatagramPort};
pub use error::{AdoptError, ReactorError, ReactorGone};
pub use events::{Event, Phase, TriggerId};
pub use executor::{JoinError, JoinHandle};
pub use fdesc::{FileDescriptor, WriteOutcome, WriteSink, WriteStep};
pub use mio::Token;
pub use port::{Configure, Port, StreamListener};
pub use reactor::{READ_BUDGET, Reactor, WeakReactor};
pub use run::ShutdownHold;
pub use selectable::{IoStatus, Selectable};
pub use signals::SignalId;
pub use stream::{StreamSocket, StreamTransport};
pub use tcp::{TcpConnector, TcpOptions, TcpPort, TcpTransport};
pub use thread::ThreadHandle;
pub use threadpool::DEFAULT_THREAD_POOL_SIZE;
#[cfg(unix)]
pub use unix::{UnixConnector, UnixPort, UnixTransport};
