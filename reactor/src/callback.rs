//! The one funnel every call into user code goes through: [`guard`] and [`catch_panic`]
//! (defined in `torsion-transport`, so code below the reactor — `Deferred` — uses the same
//! funnel), and [`ProtocolSlot`], a transport's protocol called only through it.
//!
//! Protocol callbacks, producers, factories, timers, system event triggers, signal
//! callbacks and calls from other threads are all user code. Each call site first computes
//! what to call and drops every borrow of its own (calloop's habit: clone the dispatcher out
//! of the source list), then calls through [`guard`] (or [`catch_panic`]), which catches a
//! panic and logs it with `log::error!` naming the callback. The caller then runs its
//! cleanup as if the callback had returned: a panic never skips closing a socket,
//! deregistering a selectable or the callbacks that must follow (ARCHITECTURE, errors).

use std::cell::RefCell;
use std::fmt;

pub use torsion_transport::callback::{Panicked, catch_panic, guard};
use torsion_transport::{Protocol, Reason};

/// A transport's [`Protocol`], called only through the funnel: the caller holds no borrow
/// of its own, a panic is caught and returned, and a call that would re-enter a protocol
/// already on the stack is not delivered (with a `warn!`), never nested.
pub struct ProtocolSlot {
    protocol: RefCell<Option<Box<dyn Protocol>>>,
}

impl fmt::Debug for ProtocolSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolSlot")
            .field(
                "present",
                &self.protocol.try_borrow().map(|p| p.is_some()).ok(),
            )
            .finish()
    }
}

impl ProtocolSlot {
    /// A slot holding `protocol`.
    pub fn new(protocol: Box<dyn Protocol>) -> Self {
        ProtocolSlot {
            protocol: RefCell::new(Some(protocol)),
        }
    }

    /// Call `f` on the protocol (the callback named `what`). `Ok(None)` if the protocol is
    /// gone or already on the stack.
    ///
    /// # Errors
    ///
    /// [`Panicked`] if `f` panicked (already logged).
    pub fn call<R>(
        &self,
        what: &str,
        f: impl FnOnce(&mut dyn Protocol) -> R,
    ) -> Result<Option<R>, Panicked> {
        let Ok(mut p) = self.protocol.try_borrow_mut() else {
            log::warn!("{what} while the protocol is busy: not delivered");
            return Ok(None);
        };
        match p.as_mut() {
            Some(p) => guard(what, || f(p.as_mut())).map(Some),
            None => Ok(None),
        }
    }

    /// The last callback: `connection_lost(reason)`, then drop the protocol (its `Drop` is
    /// user code too), each through the funnel. Breaks the transport ↔ protocol cycle; later
    /// calls find no protocol.
    pub fn lose(&self, reason: Reason) {
        let protocol = match self.protocol.try_borrow_mut() {
            Ok(mut p) => p.take(),
            Err(_) => {
                log::warn!("connection_lost while the protocol is busy: not delivered");
                None
            }
        };
        if let Some(mut p) = protocol {
            catch_panic("connection_lost", || p.connection_lost(reason));
            catch_panic("dropping the protocol", move || drop(p));
        }
    }
}
