//! torsion's interfaces: what protocol code is written against.
//!
//! This crate is Twisted's `interfaces.py` in Rust. It holds traits, reasons, addresses,
//! signals and the timer queue, and does no I/O: the reactor (`torsion-reactor`), the
//! process transports (`torsion-process`, `torsion-pty`) and the test kit
//! (`torsion-testing`) implement these traits, so a protocol runs unchanged on a socket, a
//! pipe, a PTY or a fake.
//!
//! The layers, bottom up:
//!
//! - [`Transport`], [`Consumer`], [`PushProducer`], [`PullProducer`]: writing with flow
//!   control, closing, half-closing (CONTRACT D, E).
//! - [`Protocol`] and [`HalfCloseableProtocol`]: receiving; [`Factory`] and
//!   [`ClientFactory`]: a protocol per connection.
//! - [`ProcessTransport`] and [`ProcessProtocol`]: children (CONTRACT F, I, J), described
//!   by a [`ProcessBuilder`].
//! - [`DatagramProtocol`] and [`DatagramTransport`]: UDP and Unix datagram sockets
//!   (CONTRACT Q); `unix_socket` (Unix only): descriptor passing and peer credentials.
//! - [`Reason`] and [`ExitReason`]: why things ended, as values.
//! - [`ReactorTime`], [`ReactorTcp`], [`ReactorUnix`], [`ReactorUdp`] (and `torsion-process`'s `ReactorProcess`): the capabilities
//!   application code asks of a reactor; [`TimerQueue`] and [`DelayedCall`]: timers.
//!
//! # Example
//!
//! A line-echo protocol, driven here by a tiny hand-written transport (the test kit has
//! ready-made ones):
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use torsion_transport::*;
//!
//! #[derive(Default)]
//! struct LineEcho {
//!     transport: Option<Rc<dyn Transport>>,
//!     buf: Vec<u8>,
//! }
//!
//! impl Protocol for LineEcho {
//!     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
//!         self.transport = Some(transport);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.buf.extend_from_slice(data);
//!         while let Some(n) = self.buf.iter().position(|&b| b == b'\n') {
//!             let line: Vec<u8> = self.buf.drain(..=n).collect();
//!             if let Some(t) = &self.transport {
//!                 t.write(&line);
//!             }
//!         }
//!     }
//! }
//!
//! // A transport that records what is written.
//! #[derive(Default)]
//! struct Recorder(RefCell<Vec<u8>>);
//! impl Consumer for Recorder {
//!     fn write(&self, data: &[u8]) { self.0.borrow_mut().extend_from_slice(data) }
//!     fn register_producer(&self, _: Producer) -> Result<(), ProducerError> { Ok(()) }
//!     fn unregister_producer(&self) {}
//! }
//! impl PushProducer for Recorder {
//!     fn pause_producing(&self) {}
//!     fn resume_producing(&self) {}
//!     fn stop_producing(&self) {}
//! }
//! impl Transport for Recorder {
//!     fn lose_connection(&self) {}
//!     fn abort_connection(&self) {}
//!     fn lose_write_connection(&self) {}
//!     fn host(&self) -> Address { Address::Memory("host".into()) }
//!     fn peer(&self) -> Address { Address::Memory("peer".into()) }
//!     fn unsent_bytes(&self) -> usize { 0 } // everything is "sent" at once
//! }
//!
//! let rec = Rc::new(Recorder::default());
//! let mut p = LineEcho::default();
//! p.connection_made(rec.clone());
//! p.data_received(b"hel");
//! p.data_received(b"lo\nwor");
//! assert_eq!(&*rec.0.borrow(), b"hello\n");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod address;
pub mod bytes;
pub mod callback;
pub mod datagram;
pub mod defer;
pub mod error;
pub mod process;
pub mod protocol;
pub mod reactor;
pub mod reason;
pub mod signal;
mod sys;
pub mod time;
pub mod transport;
#[cfg(unix)]
pub mod unix_socket;

pub use address::Address;
pub use bytes::SharedBytes;
pub use datagram::{
    DatagramError, DatagramProtocol, DatagramTransport, MAX_DATAGRAM_SIZE, MulticastInterface,
    ReactorUdp,
};
pub use error::{
    ProcessError, ProducerError, ReactorStateError, SpawnError, SpawnStep, TimerError,
    UnknownSignal,
};
pub use process::{
    ChildFd, ProcessBuilder, ProcessProtocol, ProcessTransport, PtyOptions, ShutdownPolicy,
};
pub use protocol::{
    ClientFactory, Factory, FnFactory, HalfCloseableProtocol, Protocol, factory_fn,
};
pub use reactor::{
    Connector, ListenOptions, ListeningPort, ReactorCore, ReactorTcp, ReactorTime, ReactorUnix,
    UnixListenOptions,
};
pub use reason::{ExitReason, Reason};
pub use signal::Signal;
pub use time::{DelayedCall, TimerQueue};
pub use transport::{Consumer, Producer, PullProducer, PushProducer, Transport};
#[cfg(unix)]
pub use unix_socket::{
    Credentials, FileDescriptorReceiver, MAX_FDS_PER_MESSAGE, UnixSocketTransport,
};
