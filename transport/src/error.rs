//! Error values of the interfaces. Every one says what was wrong in words a user can act on.

use std::ffi::OsString;
use std::fmt;
use std::io;

use crate::Signal;

/// Errors of [`DelayedCall`](crate::DelayedCall) operations (CONTRACT A7–A9) and of
/// `call_later` with a bad delay (A1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerError {
    /// The call has already run (or is running now). Twisted's `AlreadyCalled`.
    AlreadyCalled,
    /// The call was cancelled. Twisted's `AlreadyCancelled`.
    AlreadyCancelled,
    /// A delay given in seconds was negative, NaN or infinite.
    InvalidDelay,
}

impl fmt::Display for TimerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimerError::AlreadyCalled => "the delayed call has already been called",
            TimerError::AlreadyCancelled => "the delayed call has already been cancelled",
            TimerError::InvalidDelay => "a delay must be a finite, non-negative number of seconds",
        })
    }
}

impl std::error::Error for TimerError {}

/// Errors of reactor control operations (CONTRACT B1, B4, B6): [`ReactorCore`](crate::ReactorCore)
/// and the real reactor's own `run`/`iterate`/`run_until`/`remove_system_event_trigger`
/// (which `torsion_reactor` re-exports as `ReactorError`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReactorStateError {
    /// `stop` while not running or already stopping (Twisted's `ReactorNotRunning`).
    NotRunning,
    /// `run` (or `iterate`) from inside the running loop.
    AlreadyRunning,
    /// `run` after a stop; a stopped reactor cannot run again (Twisted's
    /// `ReactorNotRestartable`). A crashed one can.
    NotRestartable,
    /// `remove_system_event_trigger` with an id that is unknown or already ran.
    UnknownTrigger,
    /// `run_until` reached its deadline before the condition held.
    TimedOut,
    /// `block_on`: the reactor was stopped (and shut down) before the future completed.
    Stopped,
    /// `block_on`: the reactor was crashed before the future completed.
    Crashed,
}

impl fmt::Display for ReactorStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReactorStateError::NotRunning => "the reactor is not running (or is already stopping)",
            ReactorStateError::AlreadyRunning => {
                "the reactor is already running (run and iterate cannot be nested inside a callback)"
            }
            ReactorStateError::NotRestartable => {
                "the reactor was stopped and cannot be restarted; create a new one"
            }
            ReactorStateError::UnknownTrigger => {
                "no such system event trigger (it was removed or has already run)"
            }
            ReactorStateError::TimedOut => "the condition did not hold before the deadline",
            ReactorStateError::Stopped => {
                "the reactor was stopped before the future completed; the future was dropped"
            }
            ReactorStateError::Crashed => {
                "the reactor was crashed before the future completed; the future was dropped"
            }
        })
    }
}

impl std::error::Error for ReactorStateError {}

/// Errors of [`Consumer::register_producer`](crate::Consumer::register_producer) and
/// friends (CONTRACT E1, O1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProducerError {
    /// A producer is already registered; unregister it first.
    AlreadyRegistered,
    /// `unregister_producer` was called with no producer registered (test kit, strict mode).
    NotRegistered,
}

impl fmt::Display for ProducerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProducerError::AlreadyRegistered => {
                "a producer is already registered with this consumer; unregister it first"
            }
            ProducerError::NotRegistered => "no producer is registered with this consumer",
        })
    }
}

impl std::error::Error for ProducerError {}

/// A signal name or number that is not known (CONTRACT J1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSignal(pub String);

impl fmt::Display for UnknownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signal {:?}: expected a name such as TERM or SIGTERM, or a positive number",
            self.0
        )
    }
}

impl std::error::Error for UnknownSignal {}

/// Errors of [`ProcessTransport`](crate::ProcessTransport) operations.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessError {
    /// The process has been reaped; it can no longer be signalled. Twisted's
    /// `ProcessExitedAlready`.
    ExitedAlready,
    /// `write_to_child` to a child fd that is not a pipe the parent writes.
    NotWritable {
        /// The child fd that was named.
        fd: i32,
    },
    /// The signal cannot be sent on this system (for example SIGHUP on Windows).
    UnsupportedSignal(Signal),
    /// The operation does not exist on this kind of process transport; the text says why
    /// (a PTY has one channel, Windows has three pipes).
    Unsupported(&'static str),
    /// The operating system refused.
    Os(io::Error),
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::ExitedAlready => f.write_str("the process has already exited"),
            ProcessError::NotWritable { fd } => write!(
                f,
                "child fd {fd} is not a pipe the parent writes to (map it with ChildFd::Write)"
            ),
            // `Signal`'s text is already a noun ("SIGHUP", "signal 0"): no "signal " prefix.
            ProcessError::UnsupportedSignal(s) => write!(f, "{s} cannot be sent on this system"),
            ProcessError::Unsupported(why) => f.write_str(why),
            ProcessError::Os(e) => write!(f, "the operating system refused: {e}"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Os(e) => Some(e),
            _ => None,
        }
    }
}

/// The step of spawning that failed (CONTRACT G8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpawnStep {
    /// The request itself is invalid (NUL byte, conflicting options, bad fd map); nothing
    /// was created.
    InvalidInput,
    /// Looking the program up on `PATH`.
    Lookup,
    /// Creating pipes, `/dev/null` or the PTY in the parent.
    Setup,
    /// Creating the child (`posix_spawn`, `vfork`, `fork`, `CreateProcess`).
    Fork,
    /// Starting a new session (`setsid`) or process group (`setpgid`).
    Setsid,
    /// Making the PTY the controlling terminal (`TIOCSCTTY`).
    ControllingTty,
    /// Placing fds in the child (`dup2`).
    Dup2,
    /// Changing directory in the child.
    Chdir,
    /// `setgid`.
    Setgid,
    /// `setgroups`/`initgroups`.
    Setgroups,
    /// `setuid`.
    Setuid,
    /// Resetting signal dispositions or the signal mask in the child.
    Signals,
    /// `execve`.
    Exec,
    /// Registering the child's pipes or pidfd with the reactor.
    Register,
    /// This system or reactor cannot spawn processes this way.
    Unsupported,
}

impl fmt::Display for SpawnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpawnStep::InvalidInput => "invalid request",
            SpawnStep::Lookup => "program lookup",
            SpawnStep::Setup => "setting up pipes",
            SpawnStep::Fork => "creating the child",
            SpawnStep::Setsid => "setsid/setpgid",
            SpawnStep::ControllingTty => "acquiring the controlling terminal",
            SpawnStep::Dup2 => "dup2",
            SpawnStep::Chdir => "chdir",
            SpawnStep::Setgid => "setgid",
            SpawnStep::Setgroups => "setgroups",
            SpawnStep::Setuid => "setuid",
            SpawnStep::Signals => "resetting signals",
            SpawnStep::Exec => "exec",
            SpawnStep::Register => "registering with the reactor",
            SpawnStep::Unsupported => "unsupported",
        })
    }
}

/// A process could not be spawned (CONTRACT G1, G8). Returned synchronously by every
/// spawn entry point; the fds the spawn created are closed, the caller's are not.
#[derive(Debug)]
pub struct SpawnError {
    /// Which step failed.
    pub step: SpawnStep,
    /// The program that was to be run.
    pub program: OsString,
    /// The OS error, for steps that failed in a system call.
    pub source: Option<io::Error>,
    /// A human explanation, for [`SpawnStep::InvalidInput`] and [`SpawnStep::Unsupported`].
    pub detail: Option<String>,
}

impl SpawnError {
    /// A failure of `step` with an OS error.
    pub fn os(step: SpawnStep, program: impl Into<OsString>, source: io::Error) -> Self {
        SpawnError {
            step,
            program: program.into(),
            source: Some(source),
            detail: None,
        }
    }

    /// An invalid request, explained by `detail`.
    pub fn invalid(program: impl Into<OsString>, detail: impl Into<String>) -> Self {
        SpawnError {
            step: SpawnStep::InvalidInput,
            program: program.into(),
            source: None,
            detail: Some(detail.into()),
        }
    }

    /// A request this system or reactor cannot carry out, explained by `detail`.
    pub fn unsupported(program: impl Into<OsString>, detail: impl Into<String>) -> Self {
        SpawnError {
            step: SpawnStep::Unsupported,
            program: program.into(),
            source: None,
            detail: Some(detail.into()),
        }
    }

    /// The OS error number, if the failure was a system call.
    pub fn errno(&self) -> Option<i32> {
        self.source.as_ref().and_then(|e| e.raw_os_error())
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot spawn {:?}: ", self.program)?;
        match (&self.detail, &self.source) {
            (Some(d), Some(e)) => write!(f, "{}: {d}: {e}", self.step),
            (Some(d), None) => write!(f, "{}: {d}", self.step),
            (None, Some(e)) => write!(f, "{} failed: {e}", self.step),
            (None, None) => write!(f, "{} failed", self.step),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g8_spawn_error_names_step_errno_program() {
        let e = SpawnError::os(SpawnStep::Exec, "nope", io::Error::from_raw_os_error(2));
        assert_eq!(e.errno(), Some(2));
        let text = e.to_string();
        assert!(text.contains("\"nope\""), "{text}");
        assert!(text.contains("exec failed"), "{text}");
        let i = SpawnError::invalid("x", "argument 1 contains a NUL byte");
        assert_eq!(i.step, SpawnStep::InvalidInput);
        assert!(i.to_string().contains("NUL"));
    }

    #[test]
    fn unsupported_signal_text_names_the_signal_once() {
        assert_eq!(
            ProcessError::UnsupportedSignal(Signal::Raw(0)).to_string(),
            "signal 0 cannot be sent on this system"
        );
        assert_eq!(
            ProcessError::UnsupportedSignal(Signal::Hup).to_string(),
            "SIGHUP cannot be sent on this system"
        );
    }
}
