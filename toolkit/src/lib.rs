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
//! Results come back as [`Deferred`](torsion_transport::defer::Deferred)s; the guide
//! `docs/guides/getting-results-out.md` walks through them.
//!
//! # Example
//!
//! A heartbeat every second, and a result 4.5 seconds later, on the test kit's `Clock`
//! (the real reactor works the same way):
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_testing::Clock;
//! use torsion_toolkit::task::{LoopingCall, defer_later};
//!
//! let clock = Clock::new();
//! let beats = Rc::new(Cell::new(0));
//! let b = beats.clone();
//! let heartbeat = LoopingCall::new(&clock, move || b.set(b.get() + 1));
//! heartbeat.start(Duration::from_secs(1), true)?;
//! let hb = heartbeat.clone();
//! let report = defer_later(&clock, Duration::from_millis(4500), move || {
//!     hb.stop().ok();
//!     format!("{} beats", hb.calls())
//! });
//! let seen = Rc::new(std::cell::RefCell::new(String::new()));
//! let s = seen.clone();
//! report.add_callback(move |text| *s.borrow_mut() = text);
//! clock.pump(&[Duration::from_secs(1); 5]);
//! assert_eq!(*seen.borrow(), "5 beats"); // at 0, 1, 2, 3 and 4 s
//! assert!(!heartbeat.running());
//! # Ok::<(), torsion_toolkit::task::LoopingCallError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod client;
pub mod framing;
pub mod task;
pub mod utils;

/// The "getting results out" guide's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guides/getting-results-out.md")]
mod getting_results_out {}
