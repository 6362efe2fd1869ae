//! [`AccumulatingProtocol`]: a protocol that records what happens to it.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use torsion_transport::{HalfCloseableProtocol, Protocol, Reason, Transport};

#[derive(Default)]
struct Record {
    made: usize,
    transport: Option<Rc<dyn Transport>>,
    data: Vec<u8>,
    data_calls: usize,
    read_closed: bool,
    write_closed: bool,
    closed: usize,
    reason: Option<Reason>,
}

/// A [`Protocol`] that records `connection_made`, every byte received and the
/// `connection_lost` reason (Twisted's `AccumulatingProtocol`).
///
/// The transport owns the protocol, so the test reads the record through the
/// [`AccumulatingHandle`] returned with it.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::{AccumulatingProtocol, StringTransport};
/// use torsion_transport::Protocol;
///
/// let (mut p, seen) = AccumulatingProtocol::new();
/// p.connection_made(Rc::new(StringTransport::new()));
/// p.data_received(b"abc");
/// assert!(seen.made());
/// assert_eq!(seen.data(), b"abc");
/// assert!(!seen.closed());
/// ```
pub struct AccumulatingProtocol {
    record: Rc<RefCell<Record>>,
    half_closeable: bool,
}

impl fmt::Debug for AccumulatingProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccumulatingProtocol")
            .field("half_closeable", &self.half_closeable)
            .finish_non_exhaustive()
    }
}

/// The test's view of an [`AccumulatingProtocol`]'s record. Cloning gives another view.
#[derive(Clone)]
pub struct AccumulatingHandle {
    record: Rc<RefCell<Record>>,
}

impl fmt::Debug for AccumulatingHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.record.borrow();
        f.debug_struct("AccumulatingHandle")
            .field("made", &r.made)
            .field("data", &r.data.len())
            .field("closed", &r.closed)
            .field("reason", &r.reason)
            .finish()
    }
}

impl AccumulatingProtocol {
    /// A protocol and the handle to read what it records.
    pub fn new() -> (Self, AccumulatingHandle) {
        Self::build(false)
    }

    /// As [`new`](Self::new), but half-closeable: EOF from the peer is
    /// `read_connection_lost`, recorded by [`AccumulatingHandle::read_closed`], and the
    /// connection stays open for writing.
    pub fn half_closeable() -> (Self, AccumulatingHandle) {
        Self::build(true)
    }

    fn build(half_closeable: bool) -> (Self, AccumulatingHandle) {
        let record = Rc::new(RefCell::new(Record::default()));
        (
            AccumulatingProtocol {
                record: record.clone(),
                half_closeable,
            },
            AccumulatingHandle { record },
        )
    }
}

impl Protocol for AccumulatingProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let mut r = self.record.borrow_mut();
        r.made += 1;
        r.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        let mut r = self.record.borrow_mut();
        r.data.extend_from_slice(data);
        r.data_calls += 1;
    }

    fn connection_lost(&mut self, reason: Reason) {
        let mut r = self.record.borrow_mut();
        r.closed += 1;
        r.reason = Some(reason);
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        if self.half_closeable {
            Some(self)
        } else {
            None
        }
    }
}

impl HalfCloseableProtocol for AccumulatingProtocol {
    fn read_connection_lost(&mut self) {
        self.record.borrow_mut().read_closed = true;
    }

    fn write_connection_lost(&mut self) {
        self.record.borrow_mut().write_closed = true;
    }
}

impl AccumulatingHandle {
    /// True once `connection_made` was called (Twisted's `made`).
    pub fn made(&self) -> bool {
        self.record.borrow().made > 0
    }

    /// How many times `connection_made` was called.
    pub fn made_count(&self) -> usize {
        self.record.borrow().made
    }

    /// The transport given to `connection_made`.
    pub fn transport(&self) -> Option<Rc<dyn Transport>> {
        self.record.borrow().transport.clone()
    }

    /// Every byte received so far.
    pub fn data(&self) -> Vec<u8> {
        self.record.borrow().data.clone()
    }

    /// The bytes received since the last call of this method.
    pub fn take_data(&self) -> Vec<u8> {
        std::mem::take(&mut self.record.borrow_mut().data)
    }

    /// How many `data_received` calls there were.
    pub fn data_calls(&self) -> usize {
        self.record.borrow().data_calls
    }

    /// True once `connection_lost` was called (Twisted's `closed`).
    pub fn closed(&self) -> bool {
        self.record.borrow().closed > 0
    }

    /// How many times `connection_lost` was called (CONTRACT D7 says once).
    pub fn closed_count(&self) -> usize {
        self.record.borrow().closed
    }

    /// The `connection_lost` reason (Twisted's `closedReason`).
    pub fn reason(&self) -> Option<Reason> {
        self.record.borrow().reason.clone()
    }

    /// True once `read_connection_lost` was called (half-closeable protocols only).
    pub fn read_closed(&self) -> bool {
        self.record.borrow().read_closed
    }

    /// True once `write_connection_lost` was called (half-closeable protocols only).
    pub fn write_closed(&self) -> bool {
        self.record.borrow().write_closed
    }
}
