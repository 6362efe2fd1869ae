//! The one funnel every call into user code goes through (re-exported by `torsion-reactor`).
//!
//! Protocol callbacks, producers, factories, timers, system event triggers, signal
//! callbacks and calls from other threads are all user code. Each call site first computes
//! what to call and drops every borrow of its own (calloop's habit: clone the dispatcher out
//! of the source list), then calls through [`guard`] (or [`catch_panic`]), which catches a
//! panic and logs it with `log::error!` naming the callback. The caller then runs its
//! cleanup as if the callback had returned: a panic never skips closing a socket,
//! deregistering a selectable or the callbacks that must follow (ARCHITECTURE, errors).

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::Reason;

/// A callback panicked: which one, and the panic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    /// The callback, as named by the caller (`"data_received"`, `"resume_producing"`).
    pub what: String,
    /// The panic message, or a note that the payload was not a string.
    pub message: String,
}

impl Panicked {
    /// The reason a connection is closed with after this panic: a
    /// [`Reason::ConnectionLost`] whose text names the callback and the message.
    pub fn reason(&self) -> Reason {
        Reason::lost_because(&self.to_string())
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} panicked: {}", self.what, self.message)
    }
}

impl std::error::Error for Panicked {}

fn message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Run the user callback `f`, catching a panic: it is logged with `log::error!` naming
/// `what` and returned as [`Panicked`].
///
/// The caller must hold no borrow (`RefCell`, lock) that `f` could need: compute what to
/// call, release, then call.
///
/// # Errors
///
/// [`Panicked`] if `f` panicked.
pub fn guard<R>(what: &str, f: impl FnOnce() -> R) -> Result<R, Panicked> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(panic) => {
            let p = Panicked {
                what: what.to_owned(),
                message: message(&*panic),
            };
            log::error!("{p}");
            Err(p)
        }
    }
}

/// [`guard`], for callers that only need to know whether `f` returned: `None` after a
/// panic (already logged).
pub fn catch_panic<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    guard(what, f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_returns_the_value_or_names_the_panic() {
        assert_eq!(guard("ok", || 7), Ok(7));
        let p = guard("data_received", || -> u8 { panic!("boom {}", 1) }).unwrap_err();
        assert_eq!(p.to_string(), "data_received panicked: boom 1");
        assert!(
            p.reason()
                .to_string()
                .contains("data_received panicked: boom 1")
        );
        assert_eq!(catch_panic("static", || panic!("static str")), None::<()>);
    }
}
