//! Per-reactor signal callbacks over the process-wide registry in `sys`.
//!
//! Platform-neutral: `sys::signal` says which signals exist (POSIX signals on Unix; on
//! Windows, console control events mapped to SIGINT and SIGTERM), owns the process-wide
//! handler, and registers the slot's wake-up source with the poller under `token`.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::rc::Rc;

use mio::{Registry, Token};
use torsion_transport::Signal;

use crate::sys::signal::{Slot, signal_number};

/// Identifies a signal callback, for [`Reactor::remove_signal_handler`](crate::Reactor::remove_signal_handler).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalId(u64);

pub(crate) type SignalCallback = Rc<RefCell<Box<dyn FnMut()>>>;

#[derive(Default)]
pub(crate) struct Signals {
    slot: RefCell<Option<Slot>>,
    callbacks: RefCell<Vec<(SignalId, i32, Signal, SignalCallback)>>,
    next: std::cell::Cell<u64>,
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("callbacks", &self.callbacks.borrow().len())
            .finish()
    }
}

impl Signals {
    pub(crate) fn add(
        &self,
        registry: &Registry,
        token: Token,
        signal: Signal,
        f: Box<dyn FnMut()>,
    ) -> io::Result<SignalId> {
        let signum = signal_number(signal)?;
        let mut slot = self.slot.borrow_mut();
        if slot.is_none() {
            let s = Slot::acquire()?;
            s.register(registry, token)?;
            *slot = Some(s);
        }
        if let Some(s) = slot.as_ref() {
            s.watch(signum)?;
        }
        self.next.set(self.next.get() + 1);
        let id = SignalId(self.next.get());
        self.callbacks
            .borrow_mut()
            .push((id, signum, signal, Rc::new(RefCell::new(f))));
        Ok(id)
    }

    pub(crate) fn remove(&self, id: SignalId) {
        let mut cbs = self.callbacks.borrow_mut();
        let Some(i) = cbs.iter().position(|c| c.0 == id) else {
            return;
        };
        let (_, signum, _, _) = cbs.remove(i);
        if !cbs.iter().any(|c| c.1 == signum) {
            if let Some(s) = self.slot.borrow().as_ref() {
                s.unwatch(signum);
            }
        }
    }

    /// The callbacks to run for the signals that arrived, in arrival order.
    pub(crate) fn arrived(&self) -> Vec<(Signal, SignalCallback)> {
        let nums = match self.slot.borrow().as_ref() {
            Some(s) => s.take_arrived(),
            None => return Vec::new(),
        };
        let cbs = self.callbacks.borrow();
        nums.into_iter()
            .flat_map(|n| {
                cbs.iter()
                    .filter(move |c| c.1 == n)
                    .map(|c| (c.2, c.3.clone()))
            })
            .collect()
    }

    pub(crate) fn release(&self, registry: &Registry) {
        if let Some(s) = self.slot.borrow_mut().take() {
            s.deregister(registry);
        }
        self.callbacks.borrow_mut().clear();
    }
}
