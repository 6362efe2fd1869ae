//! [`ProtocolCell`]: how a process transport calls its [`ProcessProtocol`] without ever
//! re-entering it (DESIGN, ownership rule 4). Shared by the pipe transport and the PTY
//! transport.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;

use torsion_transport::ProcessProtocol;

type Queued = Box<dyn FnOnce(&mut dyn ProcessProtocol)>;

/// A transport's protocol, and the calls waiting for it.
///
/// A call made while the protocol is already on the stack (a callback that, through some
/// other object, leads back to the same transport) is queued and runs, in order, as soon as
/// the outer call returns — never a `RefCell` panic and never a nested call.
pub struct ProtocolCell {
    protocol: RefCell<Option<Box<dyn ProcessProtocol>>>,
    queued: RefCell<VecDeque<Queued>>,
}

impl fmt::Debug for ProtocolCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolCell")
            .field(
                "present",
                &self.protocol.try_borrow().map(|p| p.is_some()).ok(),
            )
            .field("queued", &self.queued.borrow().len())
            .finish()
    }
}

impl ProtocolCell {
    /// A cell holding `protocol`.
    pub fn new(protocol: Box<dyn ProcessProtocol>) -> Self {
        ProtocolCell {
            protocol: RefCell::new(Some(protocol)),
            queued: RefCell::new(VecDeque::new()),
        }
    }

    /// Call `f` on the protocol now, or queue it if the protocol is on the stack or calls
    /// are already waiting (order is kept). Does nothing once the protocol was dropped.
    pub fn deliver(&self, f: impl FnOnce(&mut dyn ProcessProtocol) + 'static) {
        // The common case: nothing queued and the protocol not on the stack. Calling it
        // directly saves boxing `f` and keeps the queue unallocated (B8).
        if self.queued.borrow().is_empty() {
            if let Ok(mut guard) = self.protocol.try_borrow_mut() {
                if let Some(p) = guard.as_mut() {
                    f(p.as_mut());
                }
                drop(guard);
                self.drain();
                return;
            }
        }
        self.queued.borrow_mut().push_back(Box::new(f));
        self.drain();
    }

    /// `child_data_received(fd, data)`, without copying `data` unless the call must wait.
    pub fn child_data_received(&self, fd: i32, data: &[u8]) {
        if self.queued.borrow().is_empty() {
            if let Ok(mut guard) = self.protocol.try_borrow_mut() {
                if let Some(p) = guard.as_mut() {
                    p.child_data_received(fd, data);
                }
                drop(guard);
                self.drain();
                return;
            }
        }
        let data = data.to_vec();
        self.deliver(move |p| p.child_data_received(fd, &data));
    }

    /// Run the calls queued while the protocol was on the stack, in order.
    fn drain(&self) {
        loop {
            let Ok(mut guard) = self.protocol.try_borrow_mut() else {
                return; // the outer call drains the queue when it returns
            };
            let next = {
                let mut queued = self.queued.borrow_mut();
                let next = queued.pop_front();
                if next.is_none() && queued.capacity() > 0 {
                    // Drained: an idle child keeps no queue allocation (B8).
                    *queued = VecDeque::new();
                }
                next
            };
            let Some(next) = next else {
                return;
            };
            if let Some(p) = guard.as_mut() {
                next(p.as_mut());
            }
        }
    }

    /// Drop the protocol after its last callback, breaking the transport ↔ protocol cycle
    /// (the protocol usually holds the transport). Calls still queued are dropped with it.
    pub fn release(&self) {
        let protocol = match self.protocol.try_borrow_mut() {
            Ok(mut g) => g.take(),
            Err(_) => return,
        };
        self.queued.borrow_mut().clear();
        drop(protocol);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    struct Rec(Rc<RefCell<Vec<String>>>, Option<Rc<ProtocolCell>>);

    impl ProcessProtocol for Rec {
        fn child_data_received(&mut self, fd: i32, data: &[u8]) {
            self.0
                .borrow_mut()
                .push(format!("{fd}:{}", String::from_utf8_lossy(data)));
            // Re-enter through the cell, as a callback reaching its own transport would.
            if let Some(cell) = self.1.take() {
                cell.child_data_received(2, b"nested");
                self.0.borrow_mut().push("outer returns".into());
            }
        }
    }

    #[test]
    fn a_call_from_inside_the_protocol_is_queued_and_runs_after_in_order() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let cell = Rc::new(ProtocolCell::new(Box::new(Rec(log.clone(), None))));
        // A protocol holding its own cell, as a protocol holding its transport does.
        *cell.protocol.borrow_mut() = Some(Box::new(Rec(log.clone(), Some(cell.clone()))));
        cell.child_data_received(1, b"first");
        cell.child_data_received(1, b"second");
        assert_eq!(
            *log.borrow(),
            ["1:first", "outer returns", "2:nested", "1:second"],
            "no nesting, no panic, order kept"
        );
    }

    #[test]
    fn release_drops_the_protocol_and_later_calls_do_nothing() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let cell = ProtocolCell::new(Box::new(Rec(log.clone(), None)));
        cell.release();
        cell.child_data_received(1, b"late");
        assert!(log.borrow().is_empty());
    }
}
