//! POSIX signal names, portable across the systems torsion runs on.

use std::fmt;
use std::str::FromStr;

use crate::error::UnknownSignal;
use crate::sys;

/// A signal that can be sent to a process or watched by the reactor.
///
/// The named variants exist on every POSIX system; their numbers differ between systems,
/// which [`Signal::as_raw`] and [`Signal::from_raw`] take care of. [`Signal::Raw`] carries
/// any other number (real-time signals, for example).
///
/// # Examples
///
/// ```
/// use torsion_transport::Signal;
///
/// let s: Signal = "TERM".parse().unwrap();
/// assert_eq!(s, Signal::Term);
/// assert_eq!("SIGKILL".parse::<Signal>().unwrap(), Signal::Kill);
/// assert!("BOGUS".parse::<Signal>().is_err());
/// assert_eq!(Signal::Hup.to_string(), "SIGHUP");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGHUP`: hang-up; daemons reload their configuration on it.
    Hup,
    /// `SIGINT`: interrupt from the keyboard.
    Int,
    /// `SIGQUIT`: quit from the keyboard.
    Quit,
    /// `SIGILL`: illegal instruction.
    Ill,
    /// `SIGTRAP`: trace trap.
    Trap,
    /// `SIGABRT`: `abort()`.
    Abrt,
    /// `SIGBUS`: bus error.
    Bus,
    /// `SIGFPE`: arithmetic exception.
    Fpe,
    /// `SIGKILL`: cannot be caught or ignored.
    Kill,
    /// `SIGUSR1`: user-defined.
    Usr1,
    /// `SIGSEGV`: invalid memory reference.
    Segv,
    /// `SIGUSR2`: user-defined.
    Usr2,
    /// `SIGPIPE`: write to a pipe with no reader.
    Pipe,
    /// `SIGALRM`: timer.
    Alrm,
    /// `SIGTERM`: polite termination request.
    Term,
    /// `SIGCHLD`: a child stopped or exited.
    Chld,
    /// `SIGCONT`: continue if stopped.
    Cont,
    /// `SIGSTOP`: stop; cannot be caught or ignored.
    Stop,
    /// `SIGTSTP`: stop from the keyboard.
    Tstp,
    /// `SIGTTIN`: background read from the terminal.
    Ttin,
    /// `SIGTTOU`: background write to the terminal.
    Ttou,
    /// `SIGWINCH`: the terminal's window size changed.
    Winch,
    /// Any signal by number.
    Raw(i32),
}

const NAMES: &[(Signal, &str)] = &[
    (Signal::Hup, "HUP"),
    (Signal::Int, "INT"),
    (Signal::Quit, "QUIT"),
    (Signal::Ill, "ILL"),
    (Signal::Trap, "TRAP"),
    (Signal::Abrt, "ABRT"),
    (Signal::Bus, "BUS"),
    (Signal::Fpe, "FPE"),
    (Signal::Kill, "KILL"),
    (Signal::Usr1, "USR1"),
    (Signal::Segv, "SEGV"),
    (Signal::Usr2, "USR2"),
    (Signal::Pipe, "PIPE"),
    (Signal::Alrm, "ALRM"),
    (Signal::Term, "TERM"),
    (Signal::Chld, "CHLD"),
    (Signal::Cont, "CONT"),
    (Signal::Stop, "STOP"),
    (Signal::Tstp, "TSTP"),
    (Signal::Ttin, "TTIN"),
    (Signal::Ttou, "TTOU"),
    (Signal::Winch, "WINCH"),
];

impl Signal {
    /// The signal's number on this system, `None` for a named signal this system lacks
    /// or a [`Signal::Raw`] number that is not positive.
    pub fn as_raw(self) -> Option<i32> {
        match self {
            Signal::Raw(n) if n > 0 => Some(n),
            Signal::Raw(_) => None,
            named => sys::signal_number(named),
        }
    }

    /// The signal with number `n` on this system: a named variant where there is one,
    /// else [`Signal::Raw`].
    pub fn from_raw(n: i32) -> Signal {
        NAMES
            .iter()
            .map(|(s, _)| *s)
            .find(|s| sys::signal_number(*s) == Some(n))
            .unwrap_or(Signal::Raw(n))
    }

    /// The name without the `SIG` prefix (`"TERM"`), `None` for [`Signal::Raw`].
    pub fn name(self) -> Option<&'static str> {
        NAMES.iter().find(|(s, _)| *s == self).map(|(_, n)| *n)
    }
}

/// `SIGTERM` for a named signal, `signal 40` for a [`Signal::Raw`] number: a noun that a
/// message uses as it is, with no `signal ` in front of it.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "SIG{n}"),
            None => match self {
                Signal::Raw(n) => write!(f, "signal {n}"),
                _ => f.write_str("signal ?"),
            },
        }
    }
}

impl FromStr for Signal {
    type Err = UnknownSignal;

    /// Parses `"TERM"`, `"SIGTERM"`, `"term"` or a number such as `"15"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some((sig, _)) = NAMES.iter().find(|(_, n)| *n == bare) {
            return Ok(*sig);
        }
        match bare.parse::<i32>() {
            Ok(n) if n > 0 => Ok(Signal::from_raw(n)),
            _ => Err(UnknownSignal(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn j1_names_round_trip() {
        for (sig, name) in NAMES {
            assert_eq!(name.parse::<Signal>().unwrap(), *sig);
            let n = sig.as_raw().expect("every named signal has a number");
            assert_eq!(Signal::from_raw(n), *sig, "{name}");
        }
        assert_eq!(Signal::Kill.as_raw(), Some(9));
        assert_eq!(Signal::Term.as_raw(), Some(15));
        assert_eq!(Signal::from_raw(63), Signal::Raw(63));
        assert_eq!(Signal::Raw(0).as_raw(), None);
    }

    #[test]
    fn j1_unknown_signal_is_an_error() {
        let e = "NOPE".parse::<Signal>().unwrap_err();
        assert!(e.to_string().contains("NOPE"));
        assert!("-3".parse::<Signal>().is_err());
        assert_eq!("sigint".parse::<Signal>().unwrap(), Signal::Int);
    }

    #[test]
    fn display_is_a_noun_naming_the_signal_once() {
        assert_eq!(Signal::Term.to_string(), "SIGTERM");
        assert_eq!(Signal::Raw(0).to_string(), "signal 0");
        assert_eq!(Signal::Raw(63).to_string(), "signal 63");
    }
}
