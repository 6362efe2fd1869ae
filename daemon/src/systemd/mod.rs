//! systemd integration without a systemd library: socket activation (`LISTEN_FDS`) and
//! readiness notification (`sd_notify`), with automatic watchdog pings.
//!
//! # Socket activation
//!
//! systemd (or `systemd-socket-activate`) opens the sockets of the service's socket unit
//! and starts the service with them at fds 3, 4, ... and three variables: `LISTEN_PID`
//! (the pid they are for), `LISTEN_FDS` (how many) and `LISTEN_FDNAMES` (their names,
//! `:`-separated, from `FileDescriptorName=`). [`ListenFds::from_env`] reads and checks
//! them once per process (the pid must be ours, the counts must agree, the fds must be
//! open), **removes the variables** so that children do not take the sockets for theirs,
//! and marks the fds close-on-exec. The `systemd:domain=INET:index=0` and
//! `systemd:domain=UNIX:name=web` endpoints ([`crate::endpoints`]) adopt them.
//!
//! # Readiness
//!
//! [`Notifier`] sends `sd_notify` messages (`READY=1`, `STOPPING=1`, `STATUS=...`,
//! `WATCHDOG=1`) as datagrams to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract
//! socket). [`ready`] sends `READY=1` and, when systemd asked for a watchdog
//! (`WATCHDOG_USEC`, and `WATCHDOG_PID` is ours or unset), starts a [`Watchdog`] that pings
//! every half of the interval on the reactor's timers.
//!
//! ```no_run
//! use std::rc::Rc;
//! use torsion_daemon::{endpoints, systemd};
//! use torsion_reactor::Reactor;
//! use torsion_transport::{Protocol, factory_fn};
//!
//! struct Discard;
//! impl Protocol for Discard { fn data_received(&mut self, _: &[u8]) {} }
//!
//! // Early in main, before starting threads: take the sockets systemd passed.
//! let _ = systemd::ListenFds::from_env();
//! let reactor = Reactor::new()?;
//! let port = endpoints::listen(&reactor, "systemd:domain=INET:index=0", factory_fn(|_| Box::new(Discard)))?;
//! let r = reactor.clone();
//! reactor.call_when_running(move || {
//!     // Listening, and `run` has installed its SIGTERM handling: tell systemd.
//!     let _watchdog = systemd::ready(&r);
//! });
//! reactor.run()?;
//! let _ = systemd::notify("STOPPING=1");
//! port.stop_listening();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

use crate::endpoints::{Domain, Inherited};
use crate::sys;
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{
    AddressFamily, SockType, SockaddrLike, SockaddrStorage, getsockname, getsockopt, sockopt,
};

mod notify;

pub use notify::{Notifier, NotifyError, ReadyError, Watchdog, notify, parse_watchdog_vars, ready};

/// The first fd systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// What is wrong with the sockets systemd was to pass.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ActivationError {
    /// `LISTEN_FDS` is not set: the process was not socket-activated.
    NotActivated,
    /// `LISTEN_PID` is missing or names another process: the sockets are not ours (a
    /// parent's variables leaked to us).
    NotOurs {
        /// `LISTEN_PID` as found (`None`: unset).
        listen_pid: Option<String>,
        /// Our pid.
        our_pid: u32,
    },
    /// A variable that is not a number.
    BadVariable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `LISTEN_FDNAMES` names a different number of sockets than `LISTEN_FDS` passes.
    NamesMismatch {
        /// `LISTEN_FDS`.
        fds: usize,
        /// The names in `LISTEN_FDNAMES`.
        names: usize,
    },
    /// A passed fd is not open (or cannot be marked close-on-exec).
    BadFd {
        /// The fd.
        fd: RawFd,
        /// The OS error.
        error: Arc<io::Error>,
    },
    /// No socket at this index.
    NoSuchIndex {
        /// The index asked for.
        index: usize,
        /// How many were passed.
        count: usize,
    },
    /// No socket of this name.
    NoSuchName {
        /// The name asked for.
        name: String,
        /// The names passed.
        names: Vec<String>,
    },
    /// The socket is not of the family the endpoint says.
    WrongDomain {
        /// The fd.
        fd: RawFd,
        /// The endpoint's domain.
        expected: Domain,
        /// What the socket is.
        found: String,
    },
    /// The socket is not of the kind the call needs (a datagram socket for a stream
    /// listener, a connected socket for a listener, ...).
    WrongKind {
        /// The fd.
        fd: RawFd,
        /// What was needed.
        expected: &'static str,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::NotActivated => f.write_str(
                "no sockets from systemd (LISTEN_FDS is not set: start the service through \
                 its socket unit, or with systemd-socket-activate)",
            ),
            ActivationError::NotOurs {
                listen_pid: None, ..
            } => f.write_str("LISTEN_FDS is set but LISTEN_PID is not: the sockets are not ours"),
            ActivationError::NotOurs {
                listen_pid: Some(p),
                our_pid,
            } => write!(
                f,
                "the sockets systemd passed are for pid {p}, not for this process ({our_pid})"
            ),
            ActivationError::BadVariable { name, value } => {
                write!(f, "{name}: \"{value}\" is not a number")
            }
            ActivationError::NamesMismatch { fds, names } => write!(
                f,
                "LISTEN_FDS passes {fds} socket(s) but LISTEN_FDNAMES names {names}"
            ),
            ActivationError::BadFd { fd, error } => {
                write!(f, "fd {fd} from systemd is unusable: {error}")
            }
            ActivationError::NoSuchIndex { index, count } => write!(
                f,
                "index {index}: systemd passed {count} socket(s) (indexes from 0)"
            ),
            ActivationError::NoSuchName { name, names } => write!(
                f,
                "name \"{name}\": systemd passed no socket of that name (names: {})",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ),
            ActivationError::WrongDomain {
                fd,
                expected,
                found,
            } => write!(f, "fd {fd} is an {found} socket, not {expected}"),
            ActivationError::WrongKind { fd, expected } => {
                write!(f, "fd {fd} is not {expected}")
            }
        }
    }
}

impl std::error::Error for ActivationError {}

/// The sockets systemd passed: fds from [`LISTEN_FDS_START`], each with its name
/// (`"unknown"` when `LISTEN_FDNAMES` is unset, as in `sd_listen_fds_with_names`).
#[derive(Debug)]
pub struct ListenFds {
    fds: Vec<(OwnedFd, String)>,
}

static FROM_ENV: OnceLock<Result<ListenFds, ActivationError>> = OnceLock::new();

/// The value of the environment variable `name` as a number: digits only (no sign, no
/// space), in `u64`'s range.
fn env_number(name: &'static str, v: &str) -> Result<u64, ActivationError> {
    let bad = || ActivationError::BadVariable {
        name,
        value: v.to_owned(),
    };
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    v.parse().map_err(|_| bad())
}

/// Check the activation variables (values as read; `our_pid` this process's pid):
/// the fd numbers and names.
///
/// # Errors
///
/// As [`ListenFds::from_env`], except for the fds' state, which this does not look at.
pub fn parse_listen_vars(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    names: Option<&str>,
    our_pid: u32,
) -> Result<Vec<(RawFd, String)>, ActivationError> {
    let Some(count) = listen_fds else {
        return Err(ActivationError::NotActivated);
    };
    match listen_pid {
        None => {
            return Err(ActivationError::NotOurs {
                listen_pid: None,
                our_pid,
            });
        }
        Some(p) => {
            if env_number("LISTEN_PID", p)? != u64::from(our_pid) {
                return Err(ActivationError::NotOurs {
                    listen_pid: Some(p.to_owned()),
                    our_pid,
                });
            }
        }
    }
    let count = env_number("LISTEN_FDS", count)?;
    let max = u64::try_from(RawFd::MAX - LISTEN_FDS_START).unwrap_or(0);
    if count > max {
        return Err(ActivationError::BadVariable {
            name: "LISTEN_FDS",
            value: count.to_string(),
        });
    }
    let count = count as usize;
    let names: Vec<String> = match names {
        None => vec!["unknown".to_owned(); count],
        Some("") if count == 0 => Vec::new(),
        Some(n) => n.split(':').map(str::to_owned).collect(),
    };
    if names.len() != count {
        return Err(ActivationError::NamesMismatch {
            fds: count,
            names: names.len(),
        });
    }
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (LISTEN_FDS_START + i as RawFd, n))
        .collect())
}

impl ListenFds {
    /// The sockets systemd passed to this process, read from the environment on the first
    /// call (later calls return the same result).
    ///
    /// The first call removes `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES` from the
    /// environment (whatever their values), checks them, and takes each passed fd
    /// (marking it close-on-exec). **Call it early in `main`, before starting threads**:
    /// removing a variable races with C code reading the environment on another thread.
    ///
    /// # Errors
    ///
    /// [`ActivationError::NotActivated`] without `LISTEN_FDS`; `NotOurs` when `LISTEN_PID`
    /// is missing or not our pid; `BadVariable`, `NamesMismatch`; `BadFd` when a passed fd
    /// is not open.
    #[doc(alias = "sd_listen_fds_with_names")]
    pub fn from_env() -> Result<&'static ListenFds, ActivationError> {
        FROM_ENV
            .get_or_init(Self::take_env)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn take_env() -> Result<ListenFds, ActivationError> {
        let read = |k: &str| std::env::var(k).ok();
        let (pid, count, names) = (
            read("LISTEN_PID"),
            read("LISTEN_FDS"),
            read("LISTEN_FDNAMES"),
        );
        for k in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            sys::remove_env(k);
        }
        let wanted = parse_listen_vars(
            pid.as_deref(),
            count.as_deref(),
            names.as_deref(),
            std::process::id(),
        )?;
        // Check every fd before owning any, so that a bad one leaves none half-taken.
        for (fd, _) in &wanted {
            fcntl(*fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| {
                ActivationError::BadFd {
                    fd: *fd,
                    error: Arc::new(io::Error::from(e)),
                }
            })?;
        }
        let fds = wanted
            .into_iter()
            // Open (checked above) and named by variables that are now gone.
            .map(|(fd, name)| (sys::own_inherited_fd(fd), name))
            .collect();
        Ok(ListenFds { fds })
    }

    /// How many sockets were passed.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// True when none were.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// The names, in fd order.
    pub fn names(&self) -> Vec<String> {
        self.fds.iter().map(|(_, n)| n.clone()).collect()
    }

    /// The socket at `index` (fd `3 + index`).
    ///
    /// # Errors
    ///
    /// [`ActivationError::NoSuchIndex`].
    pub fn get(&self, index: usize) -> Result<BorrowedFd<'_>, ActivationError> {
        self.fds
            .get(index)
            .map(|(fd, _)| fd.as_fd())
            .ok_or(ActivationError::NoSuchIndex {
                index,
                count: self.fds.len(),
            })
    }

    /// The first socket named `name`.
    ///
    /// # Errors
    ///
    /// [`ActivationError::NoSuchName`].
    pub fn by_name(&self, name: &str) -> Result<BorrowedFd<'_>, ActivationError> {
        self.fds
            .iter()
            .find(|(_, n)| n == name)
            .map(|(fd, _)| fd.as_fd())
            .ok_or_else(|| ActivationError::NoSuchName {
                name: name.to_owned(),
                names: self.names(),
            })
    }

    /// A duplicate (close-on-exec) of the socket `which` names, checked to be of `domain`
    /// and to be a listening stream socket (`stream: true`) or a datagram socket. As
    /// Twisted's `adoptStreamPort`, the original stays here, so an endpoint can listen
    /// again after it stopped.
    ///
    /// # Errors
    ///
    /// `NoSuchIndex`, `NoSuchName`, `WrongDomain`, `WrongKind`, or `BadFd` when the
    /// duplicate cannot be made.
    pub fn take_socket(
        &self,
        which: &Inherited,
        domain: Domain,
        stream: bool,
    ) -> Result<OwnedFd, ActivationError> {
        let fd = match which {
            Inherited::Index(i) => self.get(*i)?,
            Inherited::Name(n) => self.by_name(n)?,
        };
        check_socket(fd, domain, stream)?;
        fd.try_clone_to_owned().map_err(|e| ActivationError::BadFd {
            fd: fd.as_raw_fd(),
            error: Arc::new(e),
        })
    }
}

/// Check that `fd` is a socket of `domain`, and a listening stream socket (`stream`) or a
/// datagram socket.
pub(crate) fn check_socket(
    fd: BorrowedFd<'_>,
    domain: Domain,
    stream: bool,
) -> Result<(), ActivationError> {
    let raw = fd.as_raw_fd();
    let bad = |e: nix::Error| ActivationError::BadFd {
        fd: raw,
        error: Arc::new(io::Error::from(e)),
    };
    let addr: SockaddrStorage = getsockname(raw).map_err(bad)?;
    let family = addr.family();
    let matches = matches!(
        (domain, family),
        (Domain::Inet, Some(AddressFamily::Inet))
            | (Domain::Inet6, Some(AddressFamily::Inet6))
            | (Domain::Unix, Some(AddressFamily::Unix))
    );
    if !matches {
        let found = match family {
            Some(AddressFamily::Inet) => "INET".to_owned(),
            Some(AddressFamily::Inet6) => "INET6".to_owned(),
            Some(AddressFamily::Unix) => "UNIX".to_owned(),
            other => format!("{other:?}"),
        };
        return Err(ActivationError::WrongDomain {
            fd: raw,
            expected: domain,
            found,
        });
    }
    let kind = getsockopt(&fd, sockopt::SockType).map_err(bad)?;
    if stream {
        let listening = getsockopt(&fd, sockopt::AcceptConn).map_err(bad)?;
        if kind != SockType::Stream || !listening {
            return Err(ActivationError::WrongKind {
                fd: raw,
                expected: "a listening stream socket",
            });
        }
    } else if kind != SockType::Datagram {
        return Err(ActivationError::WrongKind {
            fd: raw,
            expected: "a datagram socket",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_vars() {
        assert!(matches!(
            parse_listen_vars(None, None, None, 7),
            Err(ActivationError::NotActivated)
        ));
        assert_eq!(
            parse_listen_vars(Some("7"), Some("2"), None, 7).unwrap(),
            vec![(3, "unknown".to_owned()), (4, "unknown".to_owned())]
        );
        assert_eq!(
            parse_listen_vars(Some("7"), Some("2"), Some("web:admin"), 7).unwrap(),
            vec![(3, "web".to_owned()), (4, "admin".to_owned())]
        );
        assert!(
            parse_listen_vars(Some("7"), Some("0"), Some(""), 7)
                .unwrap()
                .is_empty()
        );
        let e = parse_listen_vars(Some("8"), Some("1"), None, 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the sockets systemd passed are for pid 8, not for this process (7)"
        );
        assert!(matches!(
            parse_listen_vars(None, Some("1"), None, 7),
            Err(ActivationError::NotOurs {
                listen_pid: None,
                ..
            })
        ));
        let e = parse_listen_vars(Some("7"), Some("two"), None, 7).unwrap_err();
        assert_eq!(e.to_string(), "LISTEN_FDS: \"two\" is not a number");
        let e = parse_listen_vars(Some("7"), Some("2"), Some("web"), 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            "LISTEN_FDS passes 2 socket(s) but LISTEN_FDNAMES names 1"
        );
        assert!(parse_listen_vars(Some("x"), Some("1"), None, 7).is_err());
        assert!(parse_listen_vars(Some("7"), Some("99999999999"), None, 7).is_err());
    }
}
