//! `sd_notify`: readiness and status messages to systemd's notification socket, and the
//! watchdog that pings it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use torsion_transport::{DelayedCall, ReactorTime};

use super::{ActivationError, env_number};

/// Why a notification was not sent.
#[derive(Debug)]
#[non_exhaustive]
pub enum NotifyError {
    /// `NOTIFY_SOCKET` is not a path or an `@abstract` name (a `vsock:` address, say).
    BadSocket(String),
    /// Sending failed.
    Send {
        /// The socket.
        socket: String,
        /// The OS error.
        error: io::Error,
    },
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::BadSocket(s) => write!(
                f,
                "NOTIFY_SOCKET=\"{s}\" is neither a socket path nor an @abstract name"
            ),
            NotifyError::Send { socket, error } => {
                write!(f, "cannot notify systemd at {socket}: {error}")
            }
        }
    }
}

impl std::error::Error for NotifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotifyError::Send { error, .. } => Some(error),
            NotifyError::BadSocket(_) => None,
        }
    }
}

/// Where `sd_notify` messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Abstract(Vec<u8>),
}

/// Sends `sd_notify` messages to systemd's notification socket.
#[derive(Debug, Clone)]
pub struct Notifier {
    target: Target,
    name: String,
}

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`; `Ok(None)` when it is unset or empty (not
    /// started by systemd, or `Type=` is not `notify`).
    ///
    /// # Errors
    ///
    /// [`NotifyError::BadSocket`] for an address that is neither a path nor `@name`.
    pub fn from_env() -> Result<Option<Notifier>, NotifyError> {
        match std::env::var_os("NOTIFY_SOCKET") {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => Notifier::new(&s.to_string_lossy()).map(Some),
        }
    }

    /// The notifier for the socket `address` (`/run/...` or `@name`).
    ///
    /// # Errors
    ///
    /// [`NotifyError::BadSocket`] as [`from_env`](Self::from_env).
    pub fn new(address: &str) -> Result<Notifier, NotifyError> {
        let target = if address.starts_with('/') {
            Target::Path(PathBuf::from(address))
        } else if let Some(name) = address.strip_prefix('@') {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                Target::Abstract(name.as_bytes().to_vec())
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            {
                let _ = name;
                return Err(NotifyError::BadSocket(address.to_owned()));
            }
        } else {
            return Err(NotifyError::BadSocket(address.to_owned()));
        };
        Ok(Notifier {
            target,
            name: address.to_owned(),
        })
    }

    /// Send `state`: newline-separated `KEY=VALUE` assignments (`sd_notify`).
    ///
    /// # Errors
    ///
    /// [`NotifyError::Send`] with the OS error.
    #[doc(alias = "sd_notify")]
    pub fn notify(&self, state: &str) -> Result<(), NotifyError> {
        let send = || -> io::Result<usize> {
            let sock = UnixDatagram::unbound()?;
            match &self.target {
                Target::Path(p) => sock.send_to(state.as_bytes(), p),
                #[cfg(any(target_os = "linux", target_os = "android"))]
                Target::Abstract(name) => {
                    #[cfg(target_os = "android")]
                    use std::os::android::net::SocketAddrExt;
                    #[cfg(target_os = "linux")]
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    sock.send_to_addr(state.as_bytes(), &addr)
                }
            }
        };
        match send() {
            Ok(n) if n == state.len() => {
                log::debug!("sd_notify {}: {}", self.name, state.replace('\n', " "));
                Ok(())
            }
            Ok(_) => Err(NotifyError::Send {
                socket: self.name.clone(),
                error: io::Error::new(io::ErrorKind::WriteZero, "the message was cut short"),
            }),
            Err(error) => Err(NotifyError::Send {
                socket: self.name.clone(),
                error,
            }),
        }
    }

    /// `READY=1`: startup is finished.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    pub fn ready(&self) -> Result<(), NotifyError> {
        self.notify("READY=1")
    }

    /// `STOPPING=1`: shutdown has begun.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    pub fn stopping(&self) -> Result<(), NotifyError> {
        self.notify("STOPPING=1")
    }

    /// `STATUS=text`: a line for `systemctl status` (newlines become spaces).
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    pub fn status(&self, text: &str) -> Result<(), NotifyError> {
        self.notify(&format!("STATUS={}", text.replace('\n', " ")))
    }

    /// `WATCHDOG=1`: the watchdog ping.
    ///
    /// # Errors
    ///
    /// As [`notify`](Self::notify).
    pub fn watchdog(&self) -> Result<(), NotifyError> {
        self.notify("WATCHDOG=1")
    }
}

/// Send `state` to `$NOTIFY_SOCKET`: `Ok(true)` when sent, `Ok(false)` when the variable
/// is unset (not under systemd: nothing to do).
///
/// # Errors
///
/// As [`Notifier::from_env`] and [`Notifier::notify`].
#[doc(alias = "sd_notify")]
pub fn notify(state: &str) -> Result<bool, NotifyError> {
    match Notifier::from_env()? {
        Some(n) => n.notify(state).map(|()| true),
        None => Ok(false),
    }
}

/// The watchdog interval systemd asked for: `WATCHDOG_USEC` microseconds, when set, not 0,
/// and `WATCHDOG_PID` is unset or `our_pid` (as `sd_watchdog_enabled`).
///
/// # Errors
///
/// [`ActivationError::BadVariable`] for a value that is not a number.
pub fn parse_watchdog_vars(
    usec: Option<&str>,
    pid: Option<&str>,
    our_pid: u32,
) -> Result<Option<Duration>, ActivationError> {
    let Some(usec) = usec else { return Ok(None) };
    let usec = env_number("WATCHDOG_USEC", usec)?;
    if let Some(pid) = pid {
        if env_number("WATCHDOG_PID", pid)? != u64::from(our_pid) {
            return Ok(None);
        }
    }
    Ok((usec > 0).then(|| Duration::from_micros(usec)))
}

/// Why [`ready`] or [`Watchdog::from_env`] could not do its part.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadyError {
    /// `NOTIFY_SOCKET` is malformed or the message could not be sent.
    Notify(NotifyError),
    /// `WATCHDOG_USEC` or `WATCHDOG_PID` is not a number.
    Watchdog(ActivationError),
}

impl fmt::Display for ReadyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadyError::Notify(e) => e.fmt(f),
            ReadyError::Watchdog(e) => write!(f, "systemd watchdog: {e}"),
        }
    }
}

impl std::error::Error for ReadyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadyError::Notify(e) => Some(e),
            ReadyError::Watchdog(e) => Some(e),
        }
    }
}

impl From<NotifyError> for ReadyError {
    fn from(e: NotifyError) -> Self {
        ReadyError::Notify(e)
    }
}

impl From<ActivationError> for ReadyError {
    fn from(e: ActivationError) -> Self {
        ReadyError::Watchdog(e)
    }
}

/// Sends `WATCHDOG=1` every half of the interval on a reactor's timers, until dropped or
/// [`stop`](Self::stop)ped. A failed ping is logged and the pings go on.
pub struct Watchdog {
    timer: Rc<RefCell<Option<DelayedCall>>>,
    pings: Rc<Cell<u64>>,
    interval: Duration,
}

impl fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watchdog")
            .field("interval", &self.interval)
            .field("pings", &self.pings.get())
            .finish()
    }
}

impl Watchdog {
    /// Ping `notifier` at once and then every `interval / 2` on `clock` (any reactor, or
    /// the test kit's `Clock`).
    pub fn start<R: ReactorTime + Clone + 'static>(
        clock: &R,
        notifier: Notifier,
        interval: Duration,
    ) -> Watchdog {
        let timer = Rc::new(RefCell::new(None));
        let pings = Rc::new(Cell::new(0));
        fn tick<R: ReactorTime + Clone + 'static>(
            clock: R,
            notifier: Notifier,
            period: Duration,
            timer: Rc<RefCell<Option<DelayedCall>>>,
            pings: Rc<Cell<u64>>,
        ) {
            match notifier.watchdog() {
                Ok(()) => pings.set(pings.get() + 1),
                Err(e) => log::warn!("watchdog ping: {e}"),
            }
            let (c, t, p) = (clock.clone(), timer.clone(), pings.clone());
            let next = clock.call_later(period, move || tick(c, notifier, period, t, p));
            *timer.borrow_mut() = Some(next);
        }
        let period = (interval / 2).max(Duration::from_millis(1));
        tick(
            clock.clone(),
            notifier,
            period,
            timer.clone(),
            pings.clone(),
        );
        Watchdog {
            timer,
            pings,
            interval,
        }
    }

    /// Start the watchdog systemd asked for: `Ok(None)` when `WATCHDOG_USEC` or
    /// `NOTIFY_SOCKET` is unset, or `WATCHDOG_PID` is another process.
    ///
    /// # Errors
    ///
    /// [`ReadyError`]: a bad `WATCHDOG_USEC`/`WATCHDOG_PID` or `NOTIFY_SOCKET`.
    pub fn from_env<R: ReactorTime + Clone + 'static>(
        clock: &R,
    ) -> Result<Option<Watchdog>, ReadyError> {
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let Some(interval) =
            parse_watchdog_vars(usec.as_deref(), pid.as_deref(), std::process::id())?
        else {
            return Ok(None);
        };
        let Some(notifier) = Notifier::from_env()? else {
            return Ok(None);
        };
        log::debug!("systemd watchdog: pinging every {:?}", interval / 2);
        Ok(Some(Watchdog::start(clock, notifier, interval)))
    }

    /// The interval systemd asked for (pings go at half of it).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Pings sent so far.
    pub fn pings(&self) -> u64 {
        self.pings.get()
    }

    /// Stop pinging.
    pub fn stop(&self) {
        let call = self.timer.borrow_mut().take();
        if let Some(call) = call {
            let _ = call.cancel();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Tell systemd the service is ready (`READY=1`) and start the watchdog it asked for.
/// Call it once listening, from the running reactor (`call_when_running`), so that the
/// signal handling `run` installs is in place: a SIGTERM right after `READY=1` is then a
/// graceful stop. Without `NOTIFY_SOCKET` it does nothing and returns `Ok(None)`; keep the
/// returned [`Watchdog`] alive as long as the pings should go.
///
/// # Errors
///
/// [`ReadyError`]: the notification could not be sent, or the watchdog variables are
/// malformed.
pub fn ready<R: ReactorTime + Clone + 'static>(clock: &R) -> Result<Option<Watchdog>, ReadyError> {
    if !notify("READY=1")? {
        return Ok(None);
    }
    Watchdog::from_env(clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_vars() {
        assert_eq!(parse_watchdog_vars(None, None, 1).unwrap(), None);
        assert_eq!(
            parse_watchdog_vars(Some("2000000"), None, 1).unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_watchdog_vars(Some("2000000"), Some("1"), 1).unwrap(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_watchdog_vars(Some("2000000"), Some("2"), 1).unwrap(),
            None
        );
        assert_eq!(parse_watchdog_vars(Some("0"), None, 1).unwrap(), None);
        assert!(parse_watchdog_vars(Some("soon"), None, 1).is_err());
    }

    #[test]
    fn notify_socket_forms() {
        assert!(Notifier::new("/run/systemd/notify").is_ok());
        let e = Notifier::new("vsock:2:1234").unwrap_err();
        assert_eq!(
            e.to_string(),
            "NOTIFY_SOCKET=\"vsock:2:1234\" is neither a socket path nor an @abstract name"
        );
        assert!(Notifier::new("relative/path").is_err());
    }
}
