//! Capability traits: what application code needs from a reactor, implemented by the real
//! `torsion_reactor::Reactor` and by the test kit's `Clock` and `MemoryReactor`, so code
//! generic over them is tested without sockets, processes or sleeping.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::error::ReactorStateError;
use crate::{Address, ClientFactory, DelayedCall, Factory};

/// Running and stopping (the part of Twisted's `IReactorCore` application code uses), so
/// code that stops its reactor or waits for it to run is tested on `MemoryReactor`.
///
/// ```
/// use torsion_transport::ReactorCore;
///
/// /// Stop the reactor once it runs: works on the real reactor and on the test kit's.
/// fn stop_when_started<R: ReactorCore + Clone + 'static>(reactor: &R) {
///     let r = reactor.clone();
///     reactor.call_when_running(move || {
///         let _ = r.stop();
///     });
/// }
/// ```
pub trait ReactorCore {
    /// True between `run` starting and shutdown beginning.
    fn running(&self) -> bool;

    /// Ask the loop to stop (CONTRACT B4): a flag; shutdown happens from the loop.
    ///
    /// # Errors
    ///
    /// [`ReactorStateError::NotRunning`] if not running or already stopping.
    fn stop(&self) -> Result<(), ReactorStateError>;

    /// Run `f` when the reactor is running: at once if it is, else after startup, in
    /// registration order (CONTRACT B3). The boxed form, usable through `dyn ReactorCore`.
    fn call_when_running_boxed(&self, f: Box<dyn FnOnce()>);

    /// As [`call_when_running_boxed`](Self::call_when_running_boxed).
    #[doc(alias = "callWhenRunning")]
    fn call_when_running<F>(&self, f: F)
    where
        F: FnOnce() + 'static,
        Self: Sized,
    {
        self.call_when_running_boxed(Box::new(f))
    }
}

impl<T: ReactorCore + ?Sized> ReactorCore for Rc<T> {
    fn running(&self) -> bool {
        (**self).running()
    }
    fn stop(&self) -> Result<(), ReactorStateError> {
        (**self).stop()
    }
    fn call_when_running_boxed(&self, f: Box<dyn FnOnce()>) {
        (**self).call_when_running_boxed(f)
    }
}

/// Scheduling (Twisted's `IReactorTime`).
pub trait ReactorTime {
    /// Seconds since this clock's origin (**\[deliberate\]**: a monotonic clock, CONTRACT A2).
    fn seconds(&self) -> f64;

    /// Run `f` once, `delay` from now (CONTRACT A1). The boxed form, usable through
    /// `dyn ReactorTime`; see [`call_later`](Self::call_later).
    fn call_later_boxed(&self, delay: Duration, f: Box<dyn FnOnce()>) -> DelayedCall;

    /// Run `f` once, `delay` from now (CONTRACT A1). A negative delay cannot be expressed;
    /// use [`delay_from_secs`](crate::time::delay_from_secs) to check Twisted-style
    /// floating-point seconds.
    #[doc(alias = "callLater")]
    fn call_later<F>(&self, delay: Duration, f: F) -> DelayedCall
    where
        F: FnOnce() + 'static,
        Self: Sized,
    {
        self.call_later_boxed(delay, Box::new(f))
    }

    /// The calls not yet run or cancelled, earliest first (CONTRACT A11).
    #[doc(alias = "getDelayedCalls")]
    fn delayed_calls(&self) -> Vec<DelayedCall>;
}

/// A listening socket (Twisted's `IListeningPort`).
pub trait ListeningPort: fmt::Debug {
    /// The address actually bound (with the real port when port 0 was asked for).
    #[doc(alias = "getHost")]
    fn host(&self) -> Address;

    /// Stop accepting and close the socket; the address is free when this returns.
    /// Existing connections are not affected. Calling it twice is a no-op.
    #[doc(alias = "stopListening")]
    fn stop_listening(&self);
}

/// An outgoing connection attempt (Twisted's `IConnector`).
pub trait Connector: fmt::Debug {
    /// Cancel the attempt if it has not completed; the factory gets
    /// `client_connection_failed(Reason::Cancelled)` from the loop. No-op otherwise.
    #[doc(alias = "stopConnecting")]
    fn stop_connecting(&self);

    /// Where the attempt goes.
    #[doc(alias = "getDestination")]
    fn destination(&self) -> Address;
}

/// TCP (Twisted's `IReactorTCP`).
pub trait ReactorTcp {
    /// Listen on `addr` (port 0 picks a free port), building a protocol per connection.
    ///
    /// # Errors
    ///
    /// The OS error of `socket`/`bind`/`listen` (`AddrInUse`, `PermissionDenied`, ...).
    #[doc(alias = "listenTCP")]
    fn listen_tcp(
        &self,
        addr: SocketAddr,
        factory: Rc<dyn Factory>,
    ) -> io::Result<Rc<dyn ListeningPort>>;

    /// Connect to `addr`. Never fails synchronously: success is `build_protocol` then
    /// `connection_made`; failure is `client_connection_failed` from the loop, with a
    /// reason that says why (refused, timed out, unreachable).
    #[doc(alias = "connectTCP")]
    fn connect_tcp(
        &self,
        addr: SocketAddr,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
    ) -> Rc<dyn Connector>;
}

/// Options of a Unix listening socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixListenOptions {
    /// Remove a socket file left at the path by a dead server before binding (only a
    /// socket, and only when no server answers on it). Off by default: an existing file is
    /// an `AddrInUse` error.
    pub remove_stale: bool,
    /// Remove the socket file when listening stops.
    pub unlink_on_stop: bool,
}

/// Unix stream sockets (Twisted's `IReactorUNIX`).
pub trait ReactorUnix {
    /// Listen on the socket file `path`.
    ///
    /// # Errors
    ///
    /// The OS error of `bind`/`listen`; `AddrInUse` if the path exists and
    /// `remove_stale` was not asked for or a live server answers there.
    #[doc(alias = "listenUNIX")]
    fn listen_unix(
        &self,
        path: &Path,
        factory: Rc<dyn Factory>,
        options: UnixListenOptions,
    ) -> io::Result<Rc<dyn ListeningPort>>;

    /// Connect to the socket file `path`; as [`ReactorTcp::connect_tcp`].
    #[doc(alias = "connectUNIX")]
    fn connect_unix(
        &self,
        path: PathBuf,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
    ) -> Rc<dyn Connector>;
}

/// Socket options of a listening socket, set before `bind` (for `listen_tcp_with` and
/// `listen_udp_with` on the reactor).
///
/// ```
/// use torsion_transport::ListenOptions;
///
/// // One listener per reactor thread, all on the same port (Linux, the BSDs).
/// let options = ListenOptions::new().with_reuse_port(true).with_backlog(512);
/// assert!(options.reuse_port);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenOptions {
    /// The listen backlog of a stream socket (default 1024, which the kernel caps at
    /// `net.core.somaxconn`); ignored for datagram sockets.
    pub backlog: i32,
    /// `SO_REUSEPORT`: let several sockets (one per reactor thread or process) bind the same
    /// address and port, the kernel spreading connections or datagrams over them. Off by
    /// default. Linux and the BSDs; elsewhere an `Unsupported` error.
    pub reuse_port: bool,
    /// `IPV6_V6ONLY` for an IPv6 address: `Some(true)` takes IPv6 only, `Some(false)` also
    /// IPv4-mapped addresses, `None` (the default) leaves the system's default.
    pub ipv6_only: Option<bool>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 1024,
            reuse_port: false,
            ipv6_only: None,
        }
    }
}

impl ListenOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`backlog`](Self::backlog).
    #[must_use]
    pub fn with_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Set [`reuse_port`](Self::reuse_port).
    #[must_use]
    pub fn with_reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// Set [`ipv6_only`](Self::ipv6_only).
    #[must_use]
    pub fn with_ipv6_only(mut self, only: Option<bool>) -> Self {
        self.ipv6_only = only;
        self
    }
}
