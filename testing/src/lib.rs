//! torsion's test kit: test protocols without sockets, processes or sleeping.
//!
//! Protocol code is written against the traits of `torsion-transport`, so a test hands it
//! a fake instead of a socket, and plays the other side by hand. The pieces, in the order
//! you meet them (CONTRACT O):
//!
//! - [`StringTransport`] records what a protocol writes and asks (O1);
//!   [`StringTransportWithDisconnection`] also tells the protocol when it closes (O2).
//! - [`FakeProcessTransport`] stands in for a child process the test scripts (O3).
//! - [`Clock`] is time as an input: `advance` runs timers, nothing sleeps (O4).
//! - [`MemoryReactor`] records `listen_*`, `connect_*` and `spawn_process` calls (O5).
//! - [`FakeDatagramTransport`] stands in for a UDP or Unix datagram socket (O7).
//! - [`Pump`] connects two protocols in memory and moves bytes between them (O6).
//! - [`AccumulatingProtocol`], [`AccumulatingProcessProtocol`] and [`ChunkProducer`] are
//!   ready-made protocols and producers to observe with.
//! - [`contract`] holds the transport and timer conformance suites that every
//!   implementation — these fakes, TCP, Unix sockets, pipes, PTYs, the reactor — runs.
//!
//! # Testing a protocol
//!
//! A line protocol, tested with a [`StringTransport`]: feed it bytes, read what it wrote.
//!
//! ```
//! use std::rc::Rc;
//! use torsion_testing::StringTransport;
//! use torsion_transport::{Protocol, Transport};
//!
//! /// Answers each line with its length; "quit" closes.
//! #[derive(Default)]
//! struct LineLength {
//!     transport: Option<Rc<dyn Transport>>,
//!     buf: Vec<u8>,
//! }
//!
//! impl Protocol for LineLength {
//!     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
//!         self.transport = Some(transport);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.buf.extend_from_slice(data);
//!         while let Some(n) = self.buf.iter().position(|&b| b == b'\n') {
//!             let line: Vec<u8> = self.buf.drain(..=n).collect();
//!             let Some(t) = &self.transport else { return };
//!             if line == b"quit\n" {
//!                 t.lose_connection();
//!             } else {
//!                 t.write(format!("{}\n", line.len() - 1).as_bytes());
//!             }
//!         }
//!     }
//! }
//!
//! let transport = Rc::new(StringTransport::new());
//! let mut protocol = LineLength::default();
//! protocol.connection_made(transport.clone());
//! protocol.data_received(b"hel");
//! protocol.data_received(b"lo\nab\nqu");
//! assert_eq!(transport.value(), b"5\n2\n");
//! assert!(!transport.disconnecting());
//! protocol.data_received(b"it\n");
//! assert!(transport.disconnecting());
//! ```
//!
//! # Testing a timeout
//!
//! A protocol that closes an idle connection, tested with a [`Clock`]: the test moves
//! time, nothing sleeps.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_testing::{Clock, StringTransport};
//! use torsion_transport::{DelayedCall, Protocol, ReactorTime, Transport};
//!
//! const IDLE: Duration = Duration::from_secs(30);
//!
//! struct Idle<R: ReactorTime> {
//!     reactor: R,
//!     timeout: Rc<RefCell<Option<DelayedCall>>>,
//! }
//!
//! impl<R: ReactorTime> Protocol for Idle<R> {
//!     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
//!         let call = self.reactor.call_later(IDLE, move || transport.lose_connection());
//!         *self.timeout.borrow_mut() = Some(call);
//!     }
//!     fn data_received(&mut self, _data: &[u8]) {
//!         if let Some(call) = &*self.timeout.borrow() {
//!             let _ = call.reset(IDLE);
//!         }
//!     }
//! }
//!
//! let clock = Clock::new();
//! let transport = Rc::new(StringTransport::new());
//! let mut protocol = Idle { reactor: clock.clone(), timeout: Rc::default() };
//! protocol.connection_made(transport.clone());
//! clock.advance(Duration::from_secs(20));
//! protocol.data_received(b"still here");
//! clock.advance(Duration::from_secs(20));
//! assert!(!transport.disconnecting(), "the data reset the timeout");
//! clock.advance(Duration::from_secs(10));
//! assert!(transport.disconnecting(), "idle for 30 s");
//! ```
//!
//! # Testing a process-driving protocol
//!
//! A protocol that sends a command to a child and collects its answer, tested with a
//! [`FakeProcessTransport`]: the test plays the child.
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use torsion_testing::FakeProcessTransport;
//! use torsion_transport::{ExitReason, ProcessProtocol, ProcessTransport, Signal};
//!
//! #[derive(Default)]
//! struct Ask {
//!     answer: Rc<RefCell<Vec<u8>>>,
//!     result: Rc<RefCell<Option<ExitReason>>>,
//!     transport: Option<Rc<dyn ProcessTransport>>,
//! }
//!
//! impl ProcessProtocol for Ask {
//!     fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
//!         transport.write(b"2+2\n");
//!         let _ = transport.close_stdin();
//!         self.transport = Some(transport);
//!     }
//!     fn out_received(&mut self, data: &[u8]) {
//!         self.answer.borrow_mut().extend_from_slice(data);
//!     }
//!     fn err_received(&mut self, _data: &[u8]) {
//!         if let Some(t) = &self.transport {
//!             let _ = t.signal_process(Signal::Term);
//!         }
//!     }
//!     fn process_ended(&mut self, reason: ExitReason) {
//!         *self.result.borrow_mut() = Some(reason);
//!     }
//! }
//!
//! let protocol = Ask::default();
//! let (answer, result) = (protocol.answer.clone(), protocol.result.clone());
//! let child = Rc::new(FakeProcessTransport::new());
//! child.make_connection(Box::new(protocol));
//! assert_eq!(child.stdin(), b"2+2\n");
//! assert_eq!(child.closed_fds(), vec![0]);
//!
//! child.close_child(0);
//! child.child_output(1, b"4\n");
//! child.child_output(2, b"warning\n");
//! assert_eq!(child.signals(), vec![Signal::Term]);
//! child.kill(Signal::Term);
//! assert!(result.borrow().is_none(), "stdout and stderr are still open");
//! child.close_child(1);
//! child.close_child(2);
//! assert_eq!(*answer.borrow(), b"4\n");
//! assert_eq!(result.borrow().and_then(|r| r.signal()), Some(Signal::Term));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod accumulating_process_protocol;
mod accumulating_protocol;
mod chunk_producer;
mod clock;
pub mod contract;
mod datagram;
mod error;
mod fake_process_transport;
mod loopback;
mod memory_reactor;
mod pump;
mod string_transport;
mod string_transport_with_disconnection;

pub use accumulating_process_protocol::{
    AccumulatingProcessProtocol, ProcessEvent, ProcessRecord, check_f_order,
};
pub use accumulating_protocol::{AccumulatingHandle, AccumulatingProtocol};
pub use chunk_producer::{ChunkProducer, DEFAULT_CHUNKS};
pub use clock::Clock;
pub use datagram::{FakeDatagramTransport, MAX_UDP_PAYLOAD, SentDatagram};
pub use error::{PumpError, StateError};
pub use fake_process_transport::{DEFAULT_FAKE_PID, FakeProcessTransport, SharedProcessProtocol};
pub use loopback::{DEFAULT_BUFFER_SIZE, LoopbackTransport};
pub use memory_reactor::{
    ConnectorState, FIRST_FAKE_PORT, FakeConnector, FakeListeningPort, MemoryReactor, ProcessSpawn,
    TcpConnect, TcpListen, UdpListen, UnixConnect, UnixListen,
};
pub use pump::{MAX_FLUSH_ROUNDS, Pump, connect, connect_chunked, connected_server_and_client};
pub use string_transport::{ProducerState, StringTransport};
pub use string_transport_with_disconnection::{SharedProtocol, StringTransportWithDisconnection};
/// Runs async code under [`Clock`] or [`MemoryReactor`] with no real waiting: spawn tasks,
/// `run_until_stalled()`, advance the clock, run again (the async issue).
pub use torsion_reactor::executor::LocalExecutor;
