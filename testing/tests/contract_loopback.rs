//! The transport/producer contract suite (CONTRACT D1–D8, E1–E4) against the loopback
//! pump's transport, and the timer contract suite (A1, A3, A5–A11) against `Clock`.

use std::time::Duration;

use torsion_testing::contract::{Claims, ContractHarness, TimerHarness};
use torsion_testing::{AccumulatingHandle, AccumulatingProtocol, Clock, Pump};
use torsion_transport::{Consumer, Protocol, PushProducer, Transport};

/// The protocol under test is the server; the peer is a half-closeable
/// `AccumulatingProtocol` on the client side, driven through the client's transport.
#[derive(Default)]
struct LoopbackHarness {
    pump: Option<Pump>,
    peer: Option<AccumulatingHandle>,
    /// Run the pump in chunking mode with this seed.
    chunking: Option<u64>,
}

impl LoopbackHarness {
    fn pump(&self) -> &Pump {
        self.pump.as_ref().expect("connect was not called")
    }

    fn peer(&self) -> &AccumulatingHandle {
        self.peer.as_ref().expect("connect was not called")
    }
}

impl ContractHarness for LoopbackHarness {
    fn claims(&self) -> Claims {
        Claims::all()
    }

    fn connect(&mut self, protocol: Box<dyn Protocol>) {
        let (peer, handle) = AccumulatingProtocol::half_closeable();
        let pump = Pump::new(protocol, Box::new(peer));
        pump.set_chunking(self.chunking);
        self.pump = Some(pump);
        self.peer = Some(handle);
    }

    fn step(&mut self) {
        self.pump().pump();
    }

    fn peer_received(&mut self) -> Vec<u8> {
        self.peer().take_data()
    }

    fn peer_write(&mut self, data: &[u8]) {
        self.pump().client().write(data);
    }

    fn peer_close(&mut self) {
        self.pump().client().lose_connection();
    }

    fn peer_closed(&mut self) -> bool {
        self.peer().read_closed() || self.peer().closed()
    }

    fn set_peer_reading(&mut self, reading: bool) {
        if reading {
            self.pump().client().resume_producing();
        } else {
            self.pump().client().pause_producing();
        }
    }
}

torsion_testing::contract_suite!(LoopbackHarness::default());

/// The same contract with the pump cutting every delivery at random points: chunking
/// changes chunk boundaries, never what a transport promises.
mod chunked {
    use super::LoopbackHarness;
    torsion_testing::contract_suite!(LoopbackHarness {
        chunking: Some(0x5eed),
        ..LoopbackHarness::default()
    });
}

#[derive(Default)]
struct ClockHarness {
    clock: Clock,
}

impl TimerHarness for ClockHarness {
    type Time = Clock;

    fn time(&self) -> &Clock {
        &self.clock
    }

    fn advance(&mut self, amount: Duration) {
        self.clock.advance(amount);
    }

    fn iterate(&mut self) {
        self.clock.advance(Duration::ZERO);
    }

    fn separate_passes(&self) -> bool {
        false
    }
}

mod clock {
    use super::ClockHarness;
    torsion_testing::timer_contract_suite!(ClockHarness::default());
}
