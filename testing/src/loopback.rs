//! [`LoopbackTransport`]: one end of an in-memory connection driven by a
//! [`Pump`](crate::Pump) (CONTRACT O6).

use std::cell::RefCell;
use std::fmt;

use torsion_transport::{
    Address, Consumer, Producer, ProducerError, Protocol, PushProducer, Reason, Transport,
};

/// The default buffer size, as on real transports (CONTRACT D4).
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Bytes written and not yet moved to the peer.
    pub(crate) outgoing: Vec<u8>,
    /// `lose_connection` was called (reading stopped, close after flush).
    pub(crate) disconnecting: bool,
    /// `lose_write_connection` was called.
    pub(crate) write_shutdown_requested: bool,
    /// The write side is shut down (after the flush).
    pub(crate) write_closed: bool,
    /// The peer's write side is shut down and we were told.
    pub(crate) read_closed: bool,
    /// `abort_connection` was called.
    pub(crate) aborted: bool,
    /// `connection_lost` was (or is being) delivered.
    pub(crate) closed: bool,
    /// Paused as a producer of what it reads (CONTRACT D8).
    pub(crate) reading_paused: bool,
    pub(crate) producer: Option<Producer>,
    pub(crate) producer_paused: bool,
    pub(crate) buffer_size: usize,
    /// A `connection_lost` not yet delivered because the protocol was on the stack.
    pub(crate) lost_pending: Option<Reason>,
}

/// One end of a loopback connection: a [`Transport`] with a real write buffer and real
/// flow control, whose bytes a [`Pump`](crate::Pump) moves to the other end (Twisted's
/// `iosim.FakeTransport`, CONTRACT O6).
///
/// It follows CONTRACT D and E as a socket transport does, with the pump in the role of
/// the loop:
///
/// - `write` buffers (ignored after the close, after `lose_write_connection`, or when
///   empty); a streaming producer is paused inside the `write` that takes the unsent bytes
///   over [`buffer_size`](Self::buffer_size) (64 KiB by default), and resumed by the pump
///   once they are all moved;
/// - a pull producer is resumed at registration and by each pump round that finds the
///   buffer empty, and holds a `lose_connection` open until it unregisters;
/// - `lose_connection` stops reading at once (bytes the peer sends afterwards are
///   discarded), and the pump delivers `connection_lost(ConnectionDone)` to this end and
///   EOF to the other once the buffer is empty;
/// - `abort_connection` drops the buffer; the pump delivers
///   `connection_lost(ConnectionAborted)` here and a reset (`ConnectionLost`) to the peer;
/// - `lose_write_connection` flushes, then the peer gets EOF (`read_connection_lost` if it
///   is half-closeable, else it closes) and this end gets `write_connection_lost`;
/// - `pause_producing` stops reading: bytes wait in the peer's buffer, so the peer's
///   producer gets paused in turn.
///
/// No method calls into a protocol; only the pump does.
pub struct LoopbackTransport {
    pub(crate) protocol: RefCell<Option<Box<dyn Protocol>>>,
    pub(crate) state: RefCell<State>,
    host: Address,
    peer: Address,
}

impl fmt::Debug for LoopbackTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackTransport")
            .field("host", &self.host)
            .field("peer", &self.peer)
            .field("state", &*self.state.borrow())
            .finish()
    }
}

impl LoopbackTransport {
    pub(crate) fn new(protocol: Box<dyn Protocol>, host: Address, peer: Address) -> Self {
        LoopbackTransport {
            protocol: RefCell::new(Some(protocol)),
            state: RefCell::new(State {
                buffer_size: DEFAULT_BUFFER_SIZE,
                ..State::default()
            }),
            host,
            peer,
        }
    }

    /// The buffer size above which a streaming producer is paused.
    pub fn buffer_size(&self) -> usize {
        self.state.borrow().buffer_size
    }

    /// Set the buffer size (CONTRACT D4).
    pub fn set_buffer_size(&self, size: usize) {
        self.state.borrow_mut().buffer_size = size;
    }

    /// Bytes written and not yet moved to the peer.
    pub fn pending_bytes(&self) -> usize {
        self.state.borrow().outgoing.len()
    }

    /// True until `connection_lost` is delivered to this end.
    pub fn connected(&self) -> bool {
        !self.state.borrow().closed
    }

    /// True once `lose_connection` or `abort_connection` was called.
    pub fn disconnecting(&self) -> bool {
        self.state.borrow().disconnecting
    }

    /// True when this end accepts data from the peer (not paused, not disconnecting).
    pub fn reading(&self) -> bool {
        let s = self.state.borrow();
        !s.reading_paused && !s.disconnecting && !s.closed && !s.read_closed
    }

    /// The registered producer, if any.
    pub fn producer(&self) -> Option<Producer> {
        self.state.borrow().producer.clone()
    }

    /// True while the registered streaming producer is paused by this transport.
    pub fn producer_paused(&self) -> bool {
        self.state.borrow().producer_paused
    }
}

impl Consumer for LoopbackTransport {
    /// Buffer `data` (CONTRACT D1); pause a streaming producer when the unsent bytes go
    /// over the buffer size, inside this call (D4).
    fn write(&self, data: &[u8]) {
        let to_pause = {
            let mut s = self.state.borrow_mut();
            if data.is_empty() || s.closed || s.aborted || s.write_shutdown_requested {
                return;
            }
            s.outgoing.extend_from_slice(data);
            match &s.producer {
                Some(Producer::Push(p))
                    if !s.producer_paused && s.outgoing.len() > s.buffer_size =>
                {
                    let p = p.clone();
                    s.producer_paused = true;
                    Some(p)
                }
                _ => None,
            }
        };
        if let Some(p) = to_pause {
            p.pause_producing();
        }
    }

    /// Register `producer` (CONTRACT E1): a pull producer is resumed at once; on a closed
    /// connection the producer is stopped and not registered.
    ///
    /// # Errors
    ///
    /// [`ProducerError::AlreadyRegistered`] if a producer is registered.
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        {
            let mut s = self.state.borrow_mut();
            if s.producer.is_some() {
                return Err(ProducerError::AlreadyRegistered);
            }
            if !s.closed {
                s.producer = Some(producer.clone());
                s.producer_paused = false;
            }
        }
        if !self.connected() {
            producer.stop_producing();
        } else if let Producer::Pull(p) = &producer {
            p.resume_producing();
        }
        Ok(())
    }

    /// Forget the producer and its paused flag (CONTRACT E4); a pending
    /// `lose_connection` completes on the next pump round.
    fn unregister_producer(&self) {
        let mut s = self.state.borrow_mut();
        s.producer = None;
        s.producer_paused = false;
    }
}

impl PushProducer for LoopbackTransport {
    /// Stop reading: the peer's bytes wait in its buffer (CONTRACT D8).
    fn pause_producing(&self) {
        self.state.borrow_mut().reading_paused = true;
    }

    /// Start reading again, if connected and not disconnecting (CONTRACT D8).
    fn resume_producing(&self) {
        let mut s = self.state.borrow_mut();
        if !s.closed && !s.disconnecting {
            s.reading_paused = false;
        }
    }

    /// `lose_connection` (CONTRACT D8).
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

impl Transport for LoopbackTransport {
    /// Stop reading now; close once the buffer is moved and no pull producer is
    /// registered (CONTRACT D5, E2). A no-op when already closing.
    fn lose_connection(&self) {
        let mut s = self.state.borrow_mut();
        if !s.closed {
            s.disconnecting = true;
        }
    }

    /// Drop the buffer and close on the next pump round, with
    /// `Reason::ConnectionAborted` (CONTRACT D5).
    fn abort_connection(&self) {
        let mut s = self.state.borrow_mut();
        if !s.closed {
            s.aborted = true;
            s.disconnecting = true;
            s.outgoing.clear();
        }
    }

    /// Flush, then shut down the write side (CONTRACT D6).
    fn lose_write_connection(&self) {
        let mut s = self.state.borrow_mut();
        if !s.closed && !s.disconnecting {
            s.write_shutdown_requested = true;
        }
    }

    /// This end's address (`Address::Memory("server")` or `("client")`).
    fn host(&self) -> Address {
        self.host.clone()
    }

    /// The other end's address.
    fn peer(&self) -> Address {
        self.peer.clone()
    }

    /// Bytes written and not yet moved to the peer by the pump
    /// ([`pending_bytes`](Self::pending_bytes)).
    fn unsent_bytes(&self) -> usize {
        self.state.borrow().outgoing.len()
    }
}
