//! [`StringTransport`]: a transport that records what a protocol does (CONTRACT O1).

use std::cell::{Cell, RefCell};
use std::fmt;

use torsion_transport::{Address, Consumer, Producer, ProducerError, PushProducer, Transport};

use crate::StateError;

/// The state of a [`StringTransport`] seen as a producer of the data it reads
/// (Twisted's `producerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProducerState {
    /// Reading (the initial state, and after `resume_producing`).
    Producing,
    /// `pause_producing` was called.
    Paused,
    /// `stop_producing` was called; the state never changes again.
    Stopped,
}

/// A [`Transport`] that records everything a protocol does to it and does nothing else
/// (Twisted's `proto_helpers.StringTransport`, CONTRACT O1).
///
/// It starts connected. Written bytes accumulate in [`value`](Self::value);
/// `lose_connection` only sets [`disconnecting`](Self::disconnecting); `abort_connection`
/// sets [`disconnected`](Self::disconnected). Nothing is ever delivered to a protocol: no
/// method calls into a protocol or a producer, so the test decides when anything happens.
/// Use [`StringTransportWithDisconnection`](crate::StringTransportWithDisconnection) when
/// the protocol must see `connection_lost`.
///
/// Misuse a real transport would not survive panics with a clear message, so the test
/// fails loudly (Twisted raises): pausing or resuming after `lose_connection`, after
/// `abort_connection` or after `stop_producing`, and unregistering a producer when none is
/// registered. Build the transport with [`lenient`](Self::lenient) to accept these
/// quietly, or use the `try_*` methods to get the error as a value.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::StringTransport;
/// use torsion_transport::{Consumer, Transport};
///
/// let t = Rc::new(StringTransport::new());
/// t.write(b"hello ");
/// t.lose_connection();
/// t.write(b"world");
/// assert_eq!(t.value(), b"hello world");
/// assert!(t.disconnecting() && !t.disconnected());
/// ```
pub struct StringTransport {
    written: RefCell<Vec<u8>>,
    connected: Cell<bool>,
    disconnecting: Cell<bool>,
    disconnected: Cell<bool>,
    write_disconnected: Cell<bool>,
    producer: RefCell<Option<Producer>>,
    producer_state: Cell<ProducerState>,
    lenient: bool,
    host: Address,
    peer: Address,
}

impl fmt::Debug for StringTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StringTransport")
            .field("written", &self.written.borrow().len())
            .field("connected", &self.connected.get())
            .field("disconnecting", &self.disconnecting.get())
            .field("disconnected", &self.disconnected.get())
            .field("producer", &*self.producer.borrow())
            .field("producer_state", &self.producer_state.get())
            .field("lenient", &self.lenient)
            .finish()
    }
}

impl Default for StringTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl StringTransport {
    /// A strict transport with host `Address::Memory("host")` and peer
    /// `Address::Memory("peer")`.
    pub fn new() -> Self {
        Self::build(
            Address::Memory("host".into()),
            Address::Memory("peer".into()),
            false,
        )
    }

    /// A transport that accepts pause/resume after disconnecting or stopping and
    /// unregistering with no producer, instead of panicking.
    pub fn lenient() -> Self {
        Self::build(
            Address::Memory("host".into()),
            Address::Memory("peer".into()),
            true,
        )
    }

    /// A strict transport with the given addresses.
    pub fn with_addresses(host: Address, peer: Address) -> Self {
        Self::build(host, peer, false)
    }

    fn build(host: Address, peer: Address, lenient: bool) -> Self {
        StringTransport {
            written: RefCell::new(Vec::new()),
            connected: Cell::new(true),
            disconnecting: Cell::new(false),
            disconnected: Cell::new(false),
            write_disconnected: Cell::new(false),
            producer: RefCell::new(None),
            producer_state: Cell::new(ProducerState::Producing),
            lenient,
            host,
            peer,
        }
    }

    /// True if this transport was built with [`lenient`](Self::lenient).
    pub fn is_lenient(&self) -> bool {
        self.lenient
    }

    /// Everything written so far (since the last [`clear`](Self::clear)).
    pub fn value(&self) -> Vec<u8> {
        self.written.borrow().clone()
    }

    /// Forget what was written.
    pub fn clear(&self) {
        self.written.borrow_mut().clear();
    }

    /// [`value`](Self::value) then [`clear`](Self::clear).
    pub fn take_value(&self) -> Vec<u8> {
        std::mem::take(&mut *self.written.borrow_mut())
    }

    /// True until `abort_connection` (or, for the subclass-like
    /// [`StringTransportWithDisconnection`](crate::StringTransportWithDisconnection),
    /// `lose_connection`).
    pub fn connected(&self) -> bool {
        self.connected.get()
    }

    /// True once `lose_connection`, `abort_connection` or `stop_producing` was called.
    pub fn disconnecting(&self) -> bool {
        self.disconnecting.get()
    }

    /// True once `abort_connection` was called.
    pub fn disconnected(&self) -> bool {
        self.disconnected.get()
    }

    /// True once `lose_write_connection` was called.
    pub fn write_disconnected(&self) -> bool {
        self.write_disconnected.get()
    }

    /// Sets the `connected` flag (used by
    /// [`StringTransportWithDisconnection`](crate::StringTransportWithDisconnection)).
    pub fn set_connected(&self, connected: bool) {
        self.connected.set(connected);
    }

    /// The registered producer, if any.
    pub fn producer(&self) -> Option<Producer> {
        self.producer.borrow().clone()
    }

    /// Whether the registered producer is streaming (push); `None` when none is registered.
    pub fn streaming(&self) -> Option<bool> {
        self.producer.borrow().as_ref().map(Producer::is_streaming)
    }

    /// Unregister the producer, strictly (Twisted raises here).
    ///
    /// # Errors
    ///
    /// [`ProducerError::NotRegistered`] when no producer is registered.
    pub fn try_unregister_producer(&self) -> Result<(), ProducerError> {
        match self.producer.borrow_mut().take() {
            Some(_) => Ok(()),
            None => Err(ProducerError::NotRegistered),
        }
    }

    /// The state of this transport as a producer of what it reads.
    pub fn producer_state(&self) -> ProducerState {
        self.producer_state.get()
    }

    fn check_state(&self) -> Result<(), StateError> {
        if self.disconnecting.get() || self.disconnected.get() {
            if self.producer_state.get() == ProducerState::Stopped {
                return Err(StateError::Stopped);
            }
            return Err(StateError::Disconnecting);
        }
        if self.producer_state.get() == ProducerState::Stopped {
            return Err(StateError::Stopped);
        }
        Ok(())
    }

    /// `pause_producing`, returning the refusal instead of panicking.
    ///
    /// # Errors
    ///
    /// [`StateError::Disconnecting`] after `lose_connection`/`abort_connection`;
    /// [`StateError::Stopped`] after `stop_producing`. The state is unchanged then.
    pub fn try_pause_producing(&self) -> Result<(), StateError> {
        self.check_state()?;
        self.producer_state.set(ProducerState::Paused);
        Ok(())
    }

    /// `resume_producing`, returning the refusal instead of panicking.
    ///
    /// # Errors
    ///
    /// As [`try_pause_producing`](Self::try_pause_producing).
    pub fn try_resume_producing(&self) -> Result<(), StateError> {
        self.check_state()?;
        self.producer_state.set(ProducerState::Producing);
        Ok(())
    }

    #[track_caller]
    fn refuse(&self, what: &str, err: impl fmt::Display) {
        if self.lenient {
            log::debug!("StringTransport (lenient): {what}: {err}");
        } else {
            panic!(
                "StringTransport: {what}: {err} (build it with StringTransport::lenient() to allow this)"
            );
        }
    }
}

impl Consumer for StringTransport {
    /// Appends `data` to [`value`](StringTransport::value), whatever the state: after
    /// `lose_connection` too (CONTRACT D1, O1), and after `abort_connection` or
    /// `lose_write_connection` as well, so a test can see a protocol that writes when it
    /// should not.
    fn write(&self, data: &[u8]) {
        self.written.borrow_mut().extend_from_slice(data);
    }

    /// Records `producer` (CONTRACT E1, O1). Unlike a real transport it does not call
    /// `resume_producing` on a pull producer nor `stop_producing` on a disconnected
    /// transport: the test calls the producer when it wants to.
    ///
    /// # Errors
    ///
    /// [`ProducerError::AlreadyRegistered`] if a producer is registered.
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        let mut slot = self.producer.borrow_mut();
        if slot.is_some() {
            return Err(ProducerError::AlreadyRegistered);
        }
        *slot = Some(producer);
        Ok(())
    }

    /// Forgets the producer (CONTRACT E4).
    ///
    /// # Panics
    ///
    /// When no producer is registered, unless the transport is lenient (CONTRACT O1).
    #[track_caller]
    fn unregister_producer(&self) {
        if let Err(e) = self.try_unregister_producer() {
            self.refuse("unregister_producer", e);
        }
    }
}

impl PushProducer for StringTransport {
    /// Sets [`producer_state`](StringTransport::producer_state) to `Paused` (CONTRACT D8).
    ///
    /// # Panics
    ///
    /// After `lose_connection`, `abort_connection` or `stop_producing`, unless lenient
    /// (CONTRACT O1).
    #[track_caller]
    fn pause_producing(&self) {
        if let Err(e) = self.try_pause_producing() {
            self.refuse("pause_producing", e);
        }
    }

    /// Sets [`producer_state`](StringTransport::producer_state) to `Producing`
    /// (CONTRACT D8).
    ///
    /// # Panics
    ///
    /// As [`pause_producing`](Self::pause_producing).
    #[track_caller]
    fn resume_producing(&self) {
        if let Err(e) = self.try_resume_producing() {
            self.refuse("resume_producing", e);
        }
    }

    /// Sets the state to `Stopped` and, as on a real transport, `lose_connection`
    /// (CONTRACT D8).
    fn stop_producing(&self) {
        self.producer_state.set(ProducerState::Stopped);
        self.disconnecting.set(true);
    }
}

impl Transport for StringTransport {
    /// Sets [`disconnecting`](StringTransport::disconnecting); nothing else happens
    /// (CONTRACT D5, O1). Later writes are still recorded.
    fn lose_connection(&self) {
        self.disconnecting.set(true);
    }

    /// Sets [`disconnected`](StringTransport::disconnected) and
    /// [`disconnecting`](StringTransport::disconnecting), clears
    /// [`connected`](StringTransport::connected) (CONTRACT D5, O1). The written data is
    /// kept for the test to inspect.
    fn abort_connection(&self) {
        self.disconnecting.set(true);
        self.disconnected.set(true);
        self.connected.set(false);
    }

    /// Sets [`write_disconnected`](StringTransport::write_disconnected) (CONTRACT D6).
    fn lose_write_connection(&self) {
        self.write_disconnected.set(true);
    }

    /// The host address given at construction (default `Address::Memory("host")`).
    fn host(&self) -> Address {
        self.host.clone()
    }

    /// The peer address given at construction (default `Address::Memory("peer")`).
    fn peer(&self) -> Address {
        self.peer.clone()
    }

    /// The test is the peer: bytes in [`value`](StringTransport::value) count as unsent
    /// until the test takes them ([`clear`](StringTransport::clear) or
    /// [`take_value`](StringTransport::take_value)), so a test plays a slow reader by not
    /// taking them. Zero after `abort_connection`, as on a real transport.
    fn unsent_bytes(&self) -> usize {
        if self.disconnected.get() {
            0
        } else {
            self.written.borrow().len()
        }
    }
}
