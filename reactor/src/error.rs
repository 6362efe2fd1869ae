//! The reactor's errors.

use std::fmt;

/// Errors of reactor control operations (CONTRACT B1, B4, B6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReactorError {
    /// `stop` while the reactor is not running, or already stopping (Twisted's
    /// `ReactorNotRunning`).
    NotRunning,
    /// `run` after the reactor was stopped; a stopped reactor cannot run again (Twisted's
    /// `ReactorNotRestartable`). A crashed one can.
    NotRestartable,
    /// `run` (or `iterate`) from inside the running loop.
    AlreadyRunning,
    /// `remove_system_event_trigger` with an id that is unknown or already ran.
    UnknownTrigger,
    /// `run_until` reached its deadline before the condition held.
    TimedOut,
}

impl fmt::Display for ReactorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReactorError::NotRunning => "the reactor is not running (or is already stopping)",
            ReactorError::NotRestartable => {
                "the reactor was stopped and cannot be restarted; create a new one"
            }
            ReactorError::AlreadyRunning => "the reactor is already running",
            ReactorError::UnknownTrigger => {
                "no such system event trigger (it was removed or has already run)"
            }
            ReactorError::TimedOut => "the condition did not hold before the deadline",
        })
    }
}

impl std::error::Error for ReactorError {}

/// `call_from_thread` on a reactor that no longer exists: the call was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorGone;

impl fmt::Display for ReactorGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor this handle belongs to has been dropped; the call was not queued")
    }
}

impl std::error::Error for ReactorGone {}
