//! [`AccumulatingProcessProtocol`]: a process protocol that records every callback.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use torsion_transport::{ExitReason, ProcessProtocol, ProcessTransport};

/// One callback an [`AccumulatingProcessProtocol`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessEvent {
    /// `connection_made`, with the pid the transport reported then (CONTRACT F1).
    ConnectionMade {
        /// `transport.pid()` inside `connection_made`.
        pid: Option<u32>,
    },
    /// `child_data_received(fd, data)`.
    ChildDataReceived {
        /// The child fd.
        fd: i32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// `child_connection_lost(fd)`.
    ChildConnectionLost(i32),
    /// `process_exited(reason)`.
    ProcessExited(ExitReason),
    /// `process_ended(reason)`.
    ProcessEnded(ExitReason),
}

/// A [`ProcessProtocol`] that records every callback in order, for tests of process
/// transports (real or fake). Read the record with the [`ProcessRecord`] handle; check
/// the CONTRACT F ordering rules with [`ProcessRecord::check_order`].
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::{AccumulatingProcessProtocol, FakeProcessTransport};
/// use torsion_transport::ExitReason;
///
/// let (protocol, record) = AccumulatingProcessProtocol::new();
/// let child = Rc::new(FakeProcessTransport::new());
/// child.make_connection(Box::new(protocol));
/// child.child_output(1, b"out");
/// child.close_all_child_fds();
/// child.exit(0);
/// assert_eq!(record.output(1), b"out");
/// assert_eq!(record.ended(), Some(ExitReason::ProcessDone));
/// record.check_order().unwrap();
/// ```
pub struct AccumulatingProcessProtocol {
    record: ProcessRecord,
}

impl fmt::Debug for AccumulatingProcessProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccumulatingProcessProtocol")
            .field("record", &self.record)
            .finish()
    }
}

/// The test's view of what an [`AccumulatingProcessProtocol`] received. Cloning gives
/// another view of the same record.
#[derive(Clone, Default)]
pub struct ProcessRecord {
    events: Rc<RefCell<Vec<ProcessEvent>>>,
    transport: Rc<RefCell<Option<Rc<dyn ProcessTransport>>>>,
}

impl fmt::Debug for ProcessRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessRecord")
            .field("events", &*self.events.borrow())
            .finish()
    }
}

impl AccumulatingProcessProtocol {
    /// A protocol and the handle to read what it records.
    pub fn new() -> (Self, ProcessRecord) {
        let record = ProcessRecord::default();
        (
            AccumulatingProcessProtocol {
                record: record.clone(),
            },
            record,
        )
    }
}

impl ProcessProtocol for AccumulatingProcessProtocol {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        let pid = transport.pid();
        *self.record.transport.borrow_mut() = Some(transport);
        self.record.push(ProcessEvent::ConnectionMade { pid });
    }

    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        self.record.push(ProcessEvent::ChildDataReceived {
            fd,
            data: data.to_vec(),
        });
    }

    fn child_connection_lost(&mut self, fd: i32) {
        self.record.push(ProcessEvent::ChildConnectionLost(fd));
    }

    fn process_exited(&mut self, reason: ExitReason) {
        self.record.push(ProcessEvent::ProcessExited(reason));
    }

    fn process_ended(&mut self, reason: ExitReason) {
        self.record.push(ProcessEvent::ProcessEnded(reason));
    }
}

impl ProcessRecord {
    fn push(&self, event: ProcessEvent) {
        self.events.borrow_mut().push(event);
    }

    /// Every callback so far, in order.
    pub fn events(&self) -> Vec<ProcessEvent> {
        self.events.borrow().clone()
    }

    /// The transport given to `connection_made`.
    pub fn transport(&self) -> Option<Rc<dyn ProcessTransport>> {
        self.transport.borrow().clone()
    }

    /// All data received on child fd `fd`, concatenated.
    pub fn output(&self, fd: i32) -> Vec<u8> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                ProcessEvent::ChildDataReceived { fd: f, data } if *f == fd => Some(data.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// The fds whose `child_connection_lost` arrived, in order.
    pub fn lost_fds(&self) -> Vec<i32> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                ProcessEvent::ChildConnectionLost(fd) => Some(*fd),
                _ => None,
            })
            .collect()
    }

    /// The `process_exited` reason, if it arrived.
    pub fn exited(&self) -> Option<ExitReason> {
        self.events.borrow().iter().find_map(|e| match e {
            ProcessEvent::ProcessExited(r) => Some(*r),
            _ => None,
        })
    }

    /// The `process_ended` reason, if it arrived.
    pub fn ended(&self) -> Option<ExitReason> {
        self.events.borrow().iter().find_map(|e| match e {
            ProcessEvent::ProcessEnded(r) => Some(*r),
            _ => None,
        })
    }

    /// Check the CONTRACT F ordering rules on what was recorded so far:
    /// `connection_made` first and once (F1); per fd, no data after its loss and at most
    /// one loss (F2); `process_exited` at most once (F3); `process_ended` at most once,
    /// after `process_exited` and last (F4).
    ///
    /// # Errors
    ///
    /// A description of the first rule broken, with the event index.
    pub fn check_order(&self) -> Result<(), String> {
        check_f_order(&self.events.borrow())
    }
}

/// The CONTRACT F ordering rules over any list of process callbacks — the one checker the
/// kit, the fakes and the real transports' tests share: `connection_made` first and once
/// (F1); per fd, no data after its loss and at most one loss (F2); `process_exited` at most
/// once (F3); `process_ended` at most once, after `process_exited` and last (F4).
///
/// # Errors
///
/// A description of the first rule broken, with the event index.
pub fn check_f_order(events: &[ProcessEvent]) -> Result<(), String> {
    let mut lost: BTreeSet<i32> = BTreeSet::new();
    let mut exited = false;
    for (i, e) in events.iter().enumerate() {
        if matches!(e, ProcessEvent::ConnectionMade { .. }) != (i == 0) {
            return Err(format!(
                "event {i} {e:?}: connection_made must come first, once (F1)"
            ));
        }
        if i > 0 && matches!(events[i - 1], ProcessEvent::ProcessEnded(_)) {
            return Err(format!(
                "event {i} {e:?} after process_ended, which must be last (F4)"
            ));
        }
        match e {
            ProcessEvent::ChildDataReceived { fd, .. } if lost.contains(fd) => {
                return Err(format!(
                    "event {i}: data on fd {fd} after its connection was lost (F2)"
                ));
            }
            ProcessEvent::ChildConnectionLost(fd) if !lost.insert(*fd) => {
                return Err(format!("event {i}: fd {fd} lost twice (F2)"));
            }
            ProcessEvent::ProcessExited(_) => {
                if exited {
                    return Err(format!("event {i}: process_exited twice (F3)"));
                }
                exited = true;
            }
            ProcessEvent::ProcessEnded(_) if !exited => {
                return Err(format!(
                    "event {i}: process_ended before process_exited (F4)"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}
