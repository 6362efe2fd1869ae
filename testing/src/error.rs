//! Error values of the test kit.

use std::fmt;

/// A state change the test kit refuses, because a real transport or reactor could not make
/// it either (CONTRACT O1, O5).
///
/// Returned by the strict `try_*` methods; the trait methods turn it into a panic with the
/// same text unless the fake was built lenient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateError {
    /// `pause_producing`/`resume_producing` after `lose_connection` or `abort_connection`.
    Disconnecting,
    /// `pause_producing`/`resume_producing` after `stop_producing`.
    Stopped,
    /// `MemoryReactor::stop` while the reactor is not running.
    NotRunning,
    /// `MemoryReactor::run` while it is already running.
    AlreadyRunning,
    /// `MemoryReactor::run` after it was stopped (CONTRACT B6).
    NotRestartable,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateError::Disconnecting => {
                "cannot pause or resume producing after lose_connection or abort_connection"
            }
            StateError::Stopped => "cannot pause or resume a producer after stop_producing",
            StateError::NotRunning => "the reactor is not running",
            StateError::AlreadyRunning => "the reactor is already running",
            StateError::NotRestartable => "the reactor was stopped and cannot run again",
        })
    }
}

impl std::error::Error for StateError {}

/// The loopback pump kept moving data for too many rounds (CONTRACT O6): the two
/// protocols are probably echoing each other forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PumpError {
    /// How many rounds were pumped before giving up.
    pub rounds: usize,
}

impl fmt::Display for PumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pump did not settle: data was still moving after {} rounds",
            self.rounds
        )
    }
}

impl std::error::Error for PumpError {}
