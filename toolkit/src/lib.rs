//! torsion's protocol toolkit: the pieces every protocol author otherwise writes by hand.
//!
//! - [`framing`]: Twisted's `twisted.protocols.basic` (line, length-prefixed and netstring
//!   framing), pure logic usable over every transport and the test kit's fakes.
//! - [`task`]: Twisted's `twisted.internet.task` (`LoopingCall`, `defer_later`), generic over
//!   [`ReactorTime`](torsion_transport::ReactorTime).
//! - [`utils`]: Twisted's `twisted.internet.utils` (`get_process_output`, `get_process_value`).
//! - [`client`]: Twisted's `connectProtocol`, closure client factories and
//!   `ReconnectingClientFactory`.
//!
//! Results come back as [`Deferred`](torsion_transport::defer::Deferred)s.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod framing;
pub mod task;
pub mod utils;
