//! [`StringTransportWithDisconnection`]: a [`StringTransport`] whose `lose_connection`
//! reaches the protocol (CONTRACT O2).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

use torsion_transport::{
    Address, Consumer, Producer, ProducerError, Protocol, PushProducer, Reason, Transport,
};

use crate::StringTransport;

/// A protocol shared between a fake transport and the test.
pub type SharedProtocol = Rc<RefCell<Box<dyn Protocol>>>;

enum Pending {
    Data(Vec<u8>),
    Lost(Reason),
}

/// A [`StringTransport`] that holds its protocol and tells it when the connection is lost
/// (Twisted's `StringTransportWithDisconnection`, CONTRACT O2).
///
/// `lose_connection` on a connected transport clears `connected` and calls the protocol's
/// `connection_lost(Reason::ConnectionDone)`; on a transport that is not connected it does
/// nothing. Everything else is [`StringTransport`]'s (it derefs to one).
///
/// # Re-entrancy
///
/// This is the one fake whose transport method calls into the protocol synchronously, as
/// Twisted's does — but never into a protocol that is already on the stack (ARCHITECTURE,
/// ownership rule 4). When `lose_connection` is called from inside one of the protocol's
/// own callbacks (its `RefCell` is borrowed), the `connection_lost` is queued and
/// delivered as soon as the outer callback returns, provided that callback was started by
/// [`make_connection`](Self::make_connection) or [`data_received`](Self::data_received).
/// If the test calls the protocol itself, it calls [`deliver_pending`](Self::deliver_pending)
/// afterwards.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::{AccumulatingProtocol, StringTransportWithDisconnection};
/// use torsion_transport::Transport;
///
/// let (protocol, seen) = AccumulatingProtocol::new();
/// let t = Rc::new(StringTransportWithDisconnection::new());
/// t.make_connection(Box::new(protocol));
/// t.lose_connection();
/// assert!(seen.closed() && !t.connected());
/// ```
pub struct StringTransportWithDisconnection {
    inner: StringTransport,
    protocol: RefCell<Option<SharedProtocol>>,
    pending: RefCell<VecDeque<Pending>>,
    lost: Cell<bool>,
}

impl fmt::Debug for StringTransportWithDisconnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringTransportWithDisconnection")
            .field("inner", &self.inner)
            .field("has_protocol", &self.protocol.borrow().is_some())
            .field("pending", &self.pending.borrow().len())
            .field("lost", &self.lost.get())
            .finish()
    }
}

impl Default for StringTransportWithDisconnection {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for StringTransportWithDisconnection {
    type Target = StringTransport;

    fn deref(&self) -> &StringTransport {
        &self.inner
    }
}

impl StringTransportWithDisconnection {
    /// A strict transport with the default addresses and no protocol yet.
    pub fn new() -> Self {
        Self::wrap(StringTransport::new())
    }

    /// A transport built on `inner` (for example [`StringTransport::lenient`] or
    /// [`StringTransport::with_addresses`]).
    pub fn wrap(inner: StringTransport) -> Self {
        StringTransportWithDisconnection {
            inner,
            protocol: RefCell::new(None),
            pending: RefCell::new(VecDeque::new()),
            lost: Cell::new(false),
        }
    }

    /// The underlying [`StringTransport`].
    pub fn string_transport(&self) -> &StringTransport {
        &self.inner
    }

    /// Set (or replace) the protocol that `connection_lost` goes to.
    pub fn set_protocol(&self, protocol: SharedProtocol) {
        *self.protocol.borrow_mut() = Some(protocol);
    }

    /// The protocol, if one was set.
    pub fn protocol(&self) -> Option<SharedProtocol> {
        self.protocol.borrow().clone()
    }

    /// True once the protocol's `connection_lost` has been called.
    pub fn connection_lost_delivered(&self) -> bool {
        self.lost.get()
    }

    /// Take `protocol`, call its `connection_made` with this transport, and return the
    /// shared protocol. A `lose_connection` from inside `connection_made` is delivered
    /// right after it returns.
    pub fn make_connection(self: &Rc<Self>, protocol: Box<dyn Protocol>) -> SharedProtocol {
        let shared: SharedProtocol = Rc::new(RefCell::new(protocol));
        self.set_protocol(shared.clone());
        let transport: Rc<dyn Transport> = self.clone();
        match shared.try_borrow_mut() {
            Ok(mut p) => p.connection_made(transport),
            Err(_) => {
                log::warn!("StringTransportWithDisconnection: protocol busy in make_connection")
            }
        }
        self.deliver_pending();
        shared
    }

    /// Deliver `data` to the protocol's `data_received`, as a peer would. Called from
    /// inside one of the protocol's callbacks, it is queued and delivered after that
    /// callback returns. Data after `connection_lost` is dropped with a `warn!`.
    pub fn data_received(&self, data: &[u8]) {
        self.pending
            .borrow_mut()
            .push_back(Pending::Data(data.to_vec()));
        self.deliver_pending();
    }

    /// Deliver what was queued while the protocol was busy. A no-op when the protocol is
    /// still on the stack or nothing is queued.
    pub fn deliver_pending(&self) {
        let Some(protocol) = self.protocol() else {
            return;
        };
        let Ok(mut p) = protocol.try_borrow_mut() else {
            // The protocol is on the stack; the caller that borrowed it delivers later.
            return;
        };
        loop {
            let next = self.pending.borrow_mut().pop_front();
            match next {
                None => break,
                Some(Pending::Data(data)) => {
                    if self.lost.get() {
                        log::warn!(
                            "StringTransportWithDisconnection: dropping {} bytes after connection_lost",
                            data.len()
                        );
                    } else {
                        p.data_received(&data);
                    }
                }
                Some(Pending::Lost(reason)) => {
                    if !self.lost.replace(true) {
                        p.connection_lost(reason);
                    }
                }
            }
        }
    }
}

impl Consumer for StringTransportWithDisconnection {
    /// As [`StringTransport`]'s `write` (CONTRACT D1, O1).
    fn write(&self, data: &[u8]) {
        self.inner.write(data);
    }

    /// As [`StringTransport`]'s `register_producer` (CONTRACT E1).
    ///
    /// # Errors
    ///
    /// [`ProducerError::AlreadyRegistered`] if a producer is registered.
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        self.inner.register_producer(producer)
    }

    /// As [`StringTransport`]'s `unregister_producer` (CONTRACT E4).
    #[track_caller]
    fn unregister_producer(&self) {
        self.inner.unregister_producer();
    }
}

impl PushProducer for StringTransportWithDisconnection {
    /// As [`StringTransport`]'s (CONTRACT D8).
    #[track_caller]
    fn pause_producing(&self) {
        self.inner.pause_producing();
    }

    /// As [`StringTransport`]'s (CONTRACT D8).
    #[track_caller]
    fn resume_producing(&self) {
        self.inner.resume_producing();
    }

    /// Stops, then `lose_connection` (CONTRACT D8).
    fn stop_producing(&self) {
        self.inner.stop_producing();
        self.lose_connection();
    }
}

impl Transport for StringTransportWithDisconnection {
    /// When connected: clears `connected`, sets `disconnecting`, and calls the protocol's
    /// `connection_lost(ConnectionDone)` — at once, or right after the protocol's current
    /// callback returns if it is on the stack (CONTRACT O2, D5). A no-op otherwise.
    fn lose_connection(&self) {
        if !self.inner.connected() {
            return;
        }
        self.inner.set_connected(false);
        self.inner.lose_connection();
        self.pending
            .borrow_mut()
            .push_back(Pending::Lost(Reason::ConnectionDone));
        self.deliver_pending();
    }

    /// As [`StringTransport`]'s: recorded, nothing delivered (CONTRACT D5, O1).
    fn abort_connection(&self) {
        self.inner.abort_connection();
    }

    /// As [`StringTransport`]'s: recorded (CONTRACT D6).
    fn lose_write_connection(&self) {
        self.inner.lose_write_connection();
    }

    /// The host address of the underlying transport.
    fn host(&self) -> Address {
        self.inner.host()
    }

    /// The peer address of the underlying transport.
    fn peer(&self) -> Address {
        self.inner.peer()
    }

    /// As [`StringTransport`]'s: what the test has not taken yet.
    fn unsent_bytes(&self) -> usize {
        self.inner.unsent_bytes()
    }
}
