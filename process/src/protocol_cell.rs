//! [`ProtocolCell`]: the one funnel through which a process transport calls its
//! [`ProcessProtocol`] — never re-entering it (ARCHITECTURE, ownership rule 4), never holding a
//! borrow of the transport's state, always catching panics (CONTRACT C5).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;

use torsion_reactor::catch_panic;
use torsion_transport::ProcessProtocol;

type Queued = (&'static str, Box<dyn FnOnce(&mut dyn ProcessProtocol)>);

/// A transport's protocol, and the calls waiting for it.
///
/// A call made while the protocol is already on the stack (a callback that, through some
/// other object, leads back to the same transport) is queued and runs, in order, as soon as
/// the outer call returns — never a `RefCell` panic and never a nested call.
///
/// Every call is made through [`catch_panic`]: a panic in the protocol is logged and the
/// caller learns of it from the return value, so it can clean up (close the pipe the data
/// came from, still deliver `process_ended`).
pub struct ProtocolCell {
    protocol: RefCell<Option<Box<dyn ProcessProtocol>>>,
    queued: RefCell<VecDeque<Queued>>,
    /// `release` was asked for while the protocol was on the stack: done once the queue
    /// is drained.
    release_pending: Cell<bool>,
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
            release_pending: Cell::new(false),
        }
    }

    /// Call `f` (the callback named `what`, for the log) on the protocol now, or queue it if
    /// the protocol is on the stack or calls are already waiting (order is kept). Does
    /// nothing once the protocol was released.
    ///
    /// Returns `false` if the call ran now and panicked (the panic is logged); a queued call
    /// that panics later is only logged.
    pub fn deliver(
        &self,
        what: &'static str,
        f: impl FnOnce(&mut dyn ProcessProtocol) + 'static,
    ) -> bool {
        // The common case: nothing queued and the protocol not on the stack. Calling it
        // directly saves boxing `f` and keeps the queue unallocated (B8).
        if self.queued.borrow().is_empty() {
            if let Ok(mut guard) = self.protocol.try_borrow_mut() {
                let ok = match guard.as_mut() {
                    Some(p) => catch_panic(what, || f(p.as_mut())).is_some(),
                    None => true,
                };
                drop(guard);
                self.drain();
                return ok;
            }
        }
        self.queued.borrow_mut().push_back((what, Box::new(f)));
        self.drain();
        true
    }

    /// `child_data_received(fd, data)`, without copying `data` unless the call must wait.
    /// Returns `false` if it ran now and panicked.
    pub fn child_data_received(&self, fd: i32, data: &[u8]) -> bool {
        const WHAT: &str = "child_data_received";
        if self.queued.borrow().is_empty() {
            if let Ok(mut guard) = self.protocol.try_borrow_mut() {
                let ok = match guard.as_mut() {
                    Some(p) => catch_panic(WHAT, || p.child_data_received(fd, data)).is_some(),
                    None => true,
                };
                drop(guard);
                self.drain();
                return ok;
            }
        }
        let data = data.to_vec();
        self.deliver(WHAT, move |p| p.child_data_received(fd, &data))
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
            let Some((what, next)) = next else {
                drop(guard);
                if self.release_pending.get() {
                    self.release();
                }
                return;
            };
            if let Some(p) = guard.as_mut() {
                catch_panic(what, || next(p.as_mut()));
            }
        }
    }

    /// Drop the protocol after its last callback, breaking the transport ↔ protocol cycle
    /// (the protocol usually holds the transport). If the protocol is on the stack, it is
    /// released once that call and the calls queued behind it have run.
    pub fn release(&self) {
        let protocol = match self.protocol.try_borrow_mut() {
            Ok(mut g) => g.take(),
            Err(_) => {
                self.release_pending.set(true);
                return;
            }
        };
        self.release_pending.set(false);
        self.queued.borrow_mut().clear();
        // Dropped outside every borrow: the protocol's own Drop is user code too.
        catch_panic("protocol drop", || drop(protocol));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    struct Rec(Rc<RefCell<Vec<String>>>, Option<Rc<ProtocolCell>>);

    impl ProcessProtocol for Rec {
        fn child_data_received(&mut self, fd: i32, data: &[u8]) {
            if data == b"boom" {
                panic!("boom");
            }
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
        cell.release();
    }

    #[test]
    fn c5_a_panic_is_caught_reported_and_the_cell_stays_usable() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let cell = ProtocolCell::new(Box::new(Rec(log.clone(), None)));
        assert!(
            !cell.child_data_received(1, b"boom"),
            "the panic is reported"
        );
        assert!(cell.child_data_received(1, b"after"));
        assert!(!cell.deliver("test", |_| panic!("again")));
        assert!(cell.deliver("test", |p| p.child_data_received(1, b"last")));
        assert_eq!(*log.borrow(), ["1:after", "1:last"]);
    }

    #[test]
    fn release_drops_the_protocol_and_later_calls_do_nothing() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let cell = ProtocolCell::new(Box::new(Rec(log.clone(), None)));
        cell.release();
        assert!(cell.child_data_received(1, b"late"));
        assert!(log.borrow().is_empty());
    }
}
