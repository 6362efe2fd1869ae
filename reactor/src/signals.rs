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

/// Who registered a signal callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalRole {
    /// `Reactor::on_signal`.
    User,
    /// `run`'s stop on SIGINT/SIGTERM: runs only while no user callback watches the signal.
    Default,
}

struct Registration {
    id: SignalId,
    signum: i32,
    signal: Signal,
    role: SignalRole,
    callback: SignalCallback,
}

#[derive(Default)]
pub(crate) struct Signals {
    slot: RefCell<Option<Slot>>,
    callbacks: RefCell<Vec<Registration>>,
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
        role: SignalRole,
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
        self.callbacks.borrow_mut().push(Registration {
            id,
            signum,
            signal,
            role,
            callback: Rc::new(RefCell::new(f)),
        });
        Ok(id)
    }

    pub(crate) fn remove(&self, id: SignalId) {
        let mut cbs = self.callbacks.borrow_mut();
        let Some(i) = cbs.iter().position(|c| c.id == id) else {
            return;
        };
        let signum = cbs.remove(i).signum;
        if !cbs.iter().any(|c| c.signum == signum) {
            if let Some(s) = self.slot.borrow().as_ref() {
                s.unwatch(signum);
            }
        }
    }

    /// The callbacks to run for the signals that arrived, in arrival order: for each
    /// signal, its user callbacks, or its default ones if it has no user callback.
    /// Cloned out, so no borrow is held while they run.
    pub(crate) fn arrived(&self) -> Vec<(Signal, SignalCallback)> {
        let nums = match self.slot.borrow().as_ref() {
            Some(s) => s.take_arrived(),
            None => return Vec::new(),
        };
        let cbs = self.callbacks.borrow();
        let mut out = Vec::new();
        for n in nums {
            let overridden = cbs
                .iter()
                .any(|c| c.signum == n && c.role == SignalRole::User);
            let role = if overridden {
                SignalRole::User
            } else {
                SignalRole::Default
            };
            out.extend(
                cbs.iter()
                    .filter(|c| c.signum == n && c.role == role)
                    .map(|c| (c.signal, c.callback.clone())),
            );
        }
        out
    }

    pub(crate) fn release(&self, registry: &Registry) {
        if let Some(s) = self.slot.borrow_mut().take() {
            s.deregister(registry);
        }
        self.callbacks.borrow_mut().clear();
    }
}
