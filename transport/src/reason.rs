//! Why a connection or a process ended. Reasons are values handed to callbacks, never
//! panics.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::Signal;

/// Why a connection ended, or why a connection attempt failed.
///
/// Delivered to [`Protocol::connection_lost`](crate::Protocol::connection_lost) and
/// [`ClientFactory::client_connection_failed`](crate::ClientFactory::client_connection_failed).
/// Cheap to clone: OS errors are shared behind an [`Arc`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Reason {
    /// The connection was closed cleanly (`lose_connection`, or EOF from the peer).
    ConnectionDone,
    /// The connection was lost in a non-clean fashion; the error says how.
    ConnectionLost(Arc<io::Error>),
    /// The connection was closed with `abort_connection`, dropping unsent data.
    ConnectionAborted,
    /// The peer refused the connection (`ECONNREFUSED`, or no listener on a Unix path).
    ConnectionRefused,
    /// The connection attempt did not complete before its timeout.
    TimedOut,
    /// The connection attempt failed for another reason (unreachable network, ...).
    ConnectError(Arc<io::Error>),
    /// The connection attempt was cancelled with `stop_connecting`.
    Cancelled,
}

impl Reason {
    /// A [`Reason::ConnectionLost`] carrying `error`.
    pub fn lost(error: io::Error) -> Self {
        Reason::ConnectionLost(Arc::new(error))
    }

    /// A [`Reason::ConnectionLost`] with a message and no OS error.
    pub fn lost_because(why: &str) -> Self {
        Reason::ConnectionLost(Arc::new(io::Error::other(why.to_owned())))
    }

    /// True for [`Reason::ConnectionDone`], the one clean ending.
    pub fn is_clean(&self) -> bool {
        matches!(self, Reason::ConnectionDone)
    }

    /// The OS error behind this reason, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Reason::ConnectionLost(e) | Reason::ConnectError(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConnectionDone => f.write_str("connection was closed cleanly"),
            Reason::ConnectionLost(e) => write!(f, "connection was lost: {e}"),
            Reason::ConnectionAborted => f.write_str("connection was aborted locally"),
            Reason::ConnectionRefused => f.write_str("connection was refused by the other side"),
            Reason::TimedOut => f.write_str("connection attempt timed out"),
            Reason::ConnectError(e) => write!(f, "connection attempt failed: {e}"),
            Reason::Cancelled => f.write_str("connection attempt was cancelled"),
        }
    }
}

impl std::error::Error for Reason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Reason::ConnectionLost(e) | Reason::ConnectError(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Why a child process ended (CONTRACT F5), delivered to
/// [`ProcessProtocol::process_exited`](crate::ProcessProtocol::process_exited) and
/// [`ProcessProtocol::process_ended`](crate::ProcessProtocol::process_ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitReason {
    /// The process exited with status 0.
    ProcessDone,
    /// The process exited with a non-zero code, or was killed by a signal.
    ProcessTerminated {
        /// The exit code, if the process exited normally.
        exit_code: Option<i32>,
        /// The signal that killed it, if it was killed.
        signal: Option<Signal>,
        /// Whether the kernel wrote a core dump.
        core_dumped: bool,
        /// The raw wait status (`waitpid`'s `status`, or the Windows exit code).
        status: i32,
    },
    /// The process is gone but its exit status could not be learned, because another
    /// part of the program reaped it first (`waitpid` gave `ECHILD`).
    Unknown,
}

impl ExitReason {
    /// The reason for a normal exit with `code`.
    pub fn exited(code: i32) -> Self {
        if code == 0 {
            ExitReason::ProcessDone
        } else {
            ExitReason::ProcessTerminated {
                exit_code: Some(code),
                signal: None,
                core_dumped: false,
                status: code << 8,
            }
        }
    }

    /// The reason for a death by `signal`.
    pub fn killed(signal: Signal, core_dumped: bool) -> Self {
        let raw = signal.as_raw().unwrap_or(0);
        ExitReason::ProcessTerminated {
            exit_code: None,
            signal: Some(signal),
            core_dumped,
            status: raw | if core_dumped { 0x80 } else { 0 },
        }
    }

    /// The exit code, if the process exited normally (0 for [`ExitReason::ProcessDone`]).
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ExitReason::ProcessDone => Some(0),
            ExitReason::ProcessTerminated { exit_code, .. } => *exit_code,
            ExitReason::Unknown => None,
        }
    }

    /// The signal that killed the process, if one did.
    pub fn signal(&self) -> Option<Signal> {
        match self {
            ExitReason::ProcessTerminated { signal, .. } => *signal,
            _ => None,
        }
    }

    /// True for [`ExitReason::ProcessDone`].
    pub fn is_success(&self) -> bool {
        matches!(self, ExitReason::ProcessDone)
    }

    /// The shell convention: the exit code, or 128 + the signal number, or 255 if unknown.
    pub fn shell_code(&self) -> i32 {
        match self {
            ExitReason::ProcessDone => 0,
            ExitReason::ProcessTerminated {
                exit_code: Some(c), ..
            } => *c,
            ExitReason::ProcessTerminated {
                signal: Some(s), ..
            } => 128 + s.as_raw().unwrap_or(127),
            _ => 255,
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::ProcessDone => f.write_str("process finished with exit code 0"),
            ExitReason::ProcessTerminated {
                exit_code: Some(c), ..
            } => write!(f, "process ended with exit code {c}"),
            ExitReason::ProcessTerminated {
                signal: Some(s),
                core_dumped,
                ..
            } => {
                // `Signal` displays a named signal as `SIGTERM` and another as `signal 40`.
                let by = if s.name().is_some() {
                    "by signal "
                } else {
                    "by "
                };
                write!(
                    f,
                    "process ended {by}{s}{}",
                    if *core_dumped { " (core dumped)" } else { "" }
                )
            }
            ExitReason::ProcessTerminated { status, .. } => {
                write!(f, "process ended with wait status {status:#x}")
            }
            ExitReason::Unknown => {
                f.write_str("process ended, exit status unknown (it was reaped by someone else)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_signal_is_named_once() {
        let killed = |signal| ExitReason::ProcessTerminated {
            exit_code: None,
            signal: Some(signal),
            core_dumped: false,
            status: 0,
        };
        assert_eq!(
            killed(Signal::Raw(40)).to_string(),
            "process ended by signal 40"
        );
        assert_eq!(
            killed(Signal::Term).to_string(),
            "process ended by signal SIGTERM"
        );
    }

    #[test]
    fn f5_reasons_from_codes() {
        assert_eq!(ExitReason::exited(0), ExitReason::ProcessDone);
        let r = ExitReason::exited(23);
        assert_eq!(r.exit_code(), Some(23));
        assert_eq!(r.signal(), None);
        assert_eq!(r.to_string(), "process ended with exit code 23");
        let k = ExitReason::killed(Signal::Kill, false);
        assert_eq!(k.exit_code(), None);
        assert_eq!(k.signal(), Some(Signal::Kill));
        assert_eq!(k.shell_code(), 137);
        assert_eq!(k.to_string(), "process ended by signal SIGKILL");
        assert!(ExitReason::Unknown.to_string().contains("unknown"));
    }

    #[test]
    fn reason_display_and_source() {
        use std::error::Error;
        let r = Reason::lost(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(r.to_string().starts_with("connection was lost"));
        assert!(r.source().is_some());
        assert!(Reason::ConnectionDone.is_clean());
        assert!(!Reason::ConnectionRefused.is_clean());
    }
}
