//! One conformance suite, many implementations: the transport/producer contract
//! (CONTRACT D1–D8, E1–E4) and the timer contract (A1, A3, A5–A11), written once and run
//! against every implementation through a small harness trait.
//!
//! # Transports
//!
//! Implement [`ContractHarness`] for your transport — it connects a protocol under test to
//! a *peer* the test controls (a socket, a pipe end, or the loopback pump's other end) —
//! then expand [`contract_suite!`](crate::contract_suite) in a test file:
//!
//! ```
//! use torsion_testing::contract::{Claims, ContractHarness};
//! use torsion_testing::{AccumulatingHandle, AccumulatingProtocol, Pump};
//! use torsion_transport::{Consumer, Protocol, PushProducer, Transport};
//!
//! #[derive(Default)]
//! struct Loopback {
//!     pump: Option<Pump>,
//!     peer: Option<AccumulatingHandle>,
//! }
//!
//! impl ContractHarness for Loopback {
//!     fn claims(&self) -> Claims {
//!         Claims::all()
//!     }
//!     fn connect(&mut self, protocol: Box<dyn Protocol>) {
//!         let (peer, handle) = AccumulatingProtocol::half_closeable();
//!         self.pump = Some(Pump::new(protocol, Box::new(peer)));
//!         self.peer = Some(handle);
//!     }
//!     fn step(&mut self) {
//!         self.pump.as_ref().map(Pump::pump);
//!     }
//!     fn peer_received(&mut self) -> Vec<u8> {
//!         self.peer.as_ref().map(|p| p.take_data()).unwrap_or_default()
//!     }
//!     fn peer_write(&mut self, data: &[u8]) {
//!         self.pump.as_ref().map(|p| p.client().write(data));
//!     }
//!     fn peer_close(&mut self) {
//!         self.pump.as_ref().map(|p| p.client().lose_connection());
//!     }
//!     fn peer_closed(&mut self) -> bool {
//!         self.peer.as_ref().is_some_and(|p| p.read_closed() || p.closed())
//!     }
//!     fn set_peer_reading(&mut self, reading: bool) {
//!         if let Some(p) = &self.pump {
//!             if reading { p.client().resume_producing() } else { p.client().pause_producing() }
//!         }
//!     }
//! }
//!
//! torsion_testing::contract::d2_write_sequence_sends_chunks_in_order(&mut Loopback::default());
//! // In a test file: torsion_testing::contract_suite!(Loopback::default());
//! ```
//!
//! Items an implementation does not claim (see [`Claims`]) return without checking
//! anything, after a `log::info!`.
//!
//! # Timers
//!
//! Implement [`TimerHarness`] (a [`ReactorTime`](torsion_transport::ReactorTime) plus a way
//! to let time pass) and expand [`timer_contract_suite!`](crate::timer_contract_suite).
//!
//! # Never hanging
//!
//! Every wait is [`run_until`] with a step budget: it fails with a message naming what was
//! awaited instead of hanging. A harness's `step` must return in bounded time (a real
//! reactor iterates with a short timeout).

pub mod datagram;
pub mod peer;
mod probe;
mod reentry;
mod timer;
mod transport;

pub use datagram::{DatagramHarness, check_datagram_transport};
pub use probe::{DataHook, LostHook, MadeHook, Probe, ProbeProducer, ProducerCall, ResumeHook};
pub use reentry::*;
pub use timer::*;
pub use transport::*;

use torsion_transport::Protocol;

/// The step budget of one wait in the suite.
pub const DEFAULT_MAX_STEPS: usize = 5000;

/// Which optional behaviours an implementation claims. Unclaimed items are skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    /// Streaming producers are paused when the unsent data goes over the buffer size and
    /// resumed when it drains (D4, E3, E4's paused flag). A PTY or a harness whose peer
    /// cannot stop reading may not claim it.
    pub flow_control: bool,
    /// `lose_write_connection` half-closes and reading goes on (D6); the harness's peer
    /// keeps its own write side open after EOF.
    pub half_close: bool,
}

impl Claims {
    /// Every behaviour.
    pub fn all() -> Self {
        Claims {
            flow_control: true,
            half_close: true,
        }
    }

    /// Only the behaviours every transport has.
    pub fn none() -> Self {
        Claims::default()
    }
}

/// A transport implementation under test, seen from the peer's side (see the
/// [module docs](self)).
///
/// Each contract function calls [`connect`](Self::connect) once on a fresh harness.
pub trait ContractHarness {
    /// Which optional items this implementation claims.
    fn claims(&self) -> Claims;

    /// Connect `protocol` to a fresh peer. `connection_made` may run inside this call or
    /// during later [`step`](Self::step)s.
    fn connect(&mut self, protocol: Box<dyn Protocol>);

    /// Make bounded progress: one reactor iteration with a short timeout, or one pump
    /// round. Also lets the peer read, if it is reading.
    fn step(&mut self);

    /// The bytes the peer received since the last call.
    fn peer_received(&mut self) -> Vec<u8>;

    /// The peer sends `data` to the protocol under test.
    fn peer_write(&mut self, data: &[u8]);

    /// The peer closes its side cleanly (EOF to the protocol under test).
    fn peer_close(&mut self);

    /// True once the peer has seen the protocol's side close (EOF or reset).
    fn peer_closed(&mut self) -> bool;

    /// Stop (false) or restart (true) the peer's reading, so the transport's buffer fills.
    fn set_peer_reading(&mut self, reading: bool);
}

/// Step `h` until `cond` holds (checked before each step).
///
/// # Panics
///
/// After `max_steps` steps, with "contract: gave up waiting for {what} after N steps".
#[track_caller]
pub fn run_until<H, F>(h: &mut H, what: &str, max_steps: usize, mut cond: F)
where
    H: ContractHarness + ?Sized,
    F: FnMut(&mut H) -> bool,
{
    for _ in 0..max_steps {
        if cond(h) {
            return;
        }
        h.step();
    }
    if !cond(h) {
        panic!("contract: gave up waiting for {what} after {max_steps} steps");
    }
}
