//! The echo protocols of `echo-server`: a stream echo that finishes echoing after the peer
//! half-closes, and a datagram echo.

use std::rc::Rc;

use torsion::prelude::*;
use torsion::transport::{DatagramProtocol, DatagramTransport};

/// Writes back what it reads. The transport is registered as the producer of its own
/// writes, so reading pauses while the peer is slow to take the echo (CONTRACT D4, D8).
/// When the peer half-closes (shuts down its writing side) the echo of what was read is
/// finished and then the connection is closed.
#[derive(Default)]
#[allow(missing_debug_implementations)] // holds a `dyn Transport`
pub struct Echo {
    transport: Option<Rc<dyn Transport>>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let me: Rc<dyn PushProducer> = transport.clone();
        if let Err(e) = transport.register_producer(Producer::Push(me)) {
            log::warn!("cannot register for flow control: {e}");
        }
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}

impl HalfCloseableProtocol for Echo {
    fn read_connection_lost(&mut self) {
        // Everything read is written (or buffered): flush it, then close.
        if let Some(t) = &self.transport {
            t.unregister_producer();
            t.lose_connection();
        }
    }
}

/// Sends each datagram back to where it came from.
#[derive(Default)]
#[allow(missing_debug_implementations)] // holds a `dyn DatagramTransport`
pub struct UdpEcho {
    transport: Option<Rc<dyn DatagramTransport>>,
}

impl DatagramProtocol for UdpEcho {
    fn start_protocol(&mut self, transport: Rc<dyn DatagramTransport>) {
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], from: Address) {
        if let Some(t) = &self.transport {
            if let Err(e) = t.write(data, &from) {
                log::warn!("cannot echo {} bytes to {from}: {e}", data.len());
            }
        }
    }
}
