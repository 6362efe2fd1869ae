//! Binding a server endpoint's socket without listening on a reactor yet: what `listen`
//! adopts at once, what a prefork parent passes to its workers, and what each reactor
//! thread binds with `SO_REUSEPORT`.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, setsockopt, socket,
    sockopt,
};
use torsion_reactor::{Event, Phase, Reactor};
use torsion_transport::{Address, ListeningPort};

use super::error::{EndpointError, ParseProblem};
use super::server::{ServerEndpoint, SystemdServer, UnixServer};
use crate::systemd::ListenFds;

/// How [`ServerEndpoint::bind`] binds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindOptions {
    /// `SO_REUSEPORT` on `tcp:`/`udp:` sockets, so that several (one per reactor thread)
    /// bind the same port and the kernel spreads the connections over them (Linux, the
    /// BSDs). Ignored for `unix:` and `systemd:`.
    pub reuse_port: bool,
}

impl BindOptions {
    /// The defaults: no `SO_REUSEPORT`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`reuse_port`](Self::reuse_port).
    #[must_use]
    pub fn with_reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }
}

/// A socket file this process bound, with the lock that guards it.
#[derive(Debug)]
pub(crate) struct UnixFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
    _lock: Option<Flock<File>>,
}

impl Drop for UnixFile {
    /// Remove the socket file if it is still the one bound here; the lock goes after.
    fn drop(&mut self) {
        let now = std::fs::symlink_metadata(&self.path).map(|m| (m.dev(), m.ino()));
        let now = now.ok();
        if now.is_some() && now == self.identity {
            if let Err(e) = std::fs::remove_file(&self.path) {
                log::warn!("cannot remove {}: {e}", self.path.display());
            }
        }
    }
}

/// A bound (and, for stream endpoints, listening) socket of a server endpoint, not yet on
/// a reactor: [`ServerEndpoint::bind`] makes it. Hand its fd to workers
/// ([`crate::prefork`]) or to a reactor ([`BoundSocket::listen`]). A `unix:` socket file is
/// removed when the `BoundSocket` (or the port it became) is done with it.
#[derive(Debug)]
pub struct BoundSocket {
    endpoint: String,
    fd: OwnedFd,
    unix: Option<UnixFile>,
}

impl BoundSocket {
    /// The socket.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The description it was bound from.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The address bound (with the real port when port 0 was asked for).
    pub fn local_address(&self) -> Address {
        local_address(self.fd.as_fd())
    }

    /// Listen on `reactor` (`adopt_stream_port`). A `unix:` socket file is then removed
    /// when the port stops listening or the reactor shuts down.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Listen`] with the OS error.
    pub fn listen(
        self,
        reactor: &Reactor,
        factory: Rc<dyn torsion_transport::Factory>,
    ) -> Result<Rc<dyn ListeningPort>, EndpointError> {
        let endpoint = self.endpoint.clone();
        let fail = |source| EndpointError::Listen {
            endpoint: endpoint.clone(),
            source,
        };
        let port = reactor.adopt_stream_port(self.fd, factory).map_err(fail)?;
        Ok(EndpointPort::wrap(reactor, port, self.unix))
    }

    /// The socket and, for `unix:`, a guard that removes the socket file when dropped.
    pub(crate) fn into_parts(self) -> (OwnedFd, Option<UnixFile>) {
        (self.fd, self.unix)
    }
}

fn local_address(fd: BorrowedFd<'_>) -> Address {
    match nix::sys::socket::getsockname::<SockaddrStorage>(fd.as_raw_fd()) {
        Ok(a) => {
            if let Some(v4) = a.as_sockaddr_in() {
                Address::Ipv4((*v4).into())
            } else if let Some(v6) = a.as_sockaddr_in6() {
                Address::Ipv6((*v6).into())
            } else if let Some(u) = a.as_unix_addr() {
                Address::Unix(u.path().map(Path::to_path_buf))
            } else {
                Address::Memory("unknown".into())
            }
        }
        Err(_) => Address::Memory("unknown".into()),
    }
}

/// The listening port of a `unix:` endpoint: removes its socket file when it stops or the
/// reactor shuts down, and holds the lock file while it listens.
#[derive(Debug)]
pub(crate) struct EndpointPort {
    port: Rc<dyn ListeningPort>,
    // Shared with the shutdown trigger, so that dropping the handle does not remove the
    // file of a port that still listens.
    unix: Rc<RefCell<Option<UnixFile>>>,
}

impl EndpointPort {
    pub(crate) fn wrap(
        reactor: &Reactor,
        port: Rc<dyn ListeningPort>,
        unix: Option<UnixFile>,
    ) -> Rc<dyn ListeningPort> {
        let Some(unix) = unix else { return port };
        let unix = Rc::new(RefCell::new(Some(unix)));
        let (p, u) = (Rc::downgrade(&port), unix.clone());
        reactor.add_system_event_trigger(Phase::During, Event::Shutdown, move || {
            if let Some(p) = p.upgrade() {
                p.stop_listening();
            }
            drop(u.borrow_mut().take());
        });
        Rc::new(EndpointPort { port, unix })
    }
}

impl ListeningPort for EndpointPort {
    fn host(&self) -> Address {
        self.port.host()
    }

    fn stop_listening(&self) {
        self.port.stop_listening();
        let unix = self.unix.borrow_mut().take();
        drop(unix);
    }
}

fn io_err(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// A close-on-exec socket (atomically where the system has `SOCK_CLOEXEC`; on macOS and
/// iOS with `fcntl` right after, which is what std does there too).
pub(crate) fn new_socket(family: AddressFamily, ty: SockType) -> io::Result<OwnedFd> {
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    {
        socket(family, ty, SockFlag::SOCK_CLOEXEC, None).map_err(io_err)
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        let fd = socket(family, ty, SockFlag::empty(), None).map_err(io_err)?;
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(io_err)?;
        Ok(fd)
    }
}

fn bind_inet(
    addr: SocketAddr,
    ty: SockType,
    backlog: Option<u32>,
    reuse_port: bool,
) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = new_socket(family, ty)?;
    if ty == SockType::Stream {
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(io_err)?;
    }
    if reuse_port {
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly",
            target_os = "macos",
            target_os = "ios"
        ))]
        setsockopt(&fd, sockopt::ReusePort, &true).map_err(io_err)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr)).map_err(io_err)?;
    if ty == SockType::Stream {
        listen_fd(&fd, backlog)?;
    }
    Ok(fd)
}

fn listen_fd(fd: &OwnedFd, backlog: Option<u32>) -> io::Result<()> {
    let n = backlog.map_or(torsion_reactor::tcp::DEFAULT_BACKLOG, |b| {
        i32::try_from(b).unwrap_or(i32::MAX)
    });
    let backlog = Backlog::new(n.clamp(0, Backlog::MAXCONN.into())).map_err(io_err)?;
    listen(fd, backlog).map_err(io_err)
}

fn in_use(path: &Path, why: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{}: {why}", path.display()),
    )
}

/// Is a server answering on the socket file `path`?
fn answered(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

fn bind_unix(u: &UnixServer) -> io::Result<(OwnedFd, UnixFile)> {
    let lock = if u.lockfile {
        let mut lock_path = u.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Some(l),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(in_use(
                    &u.path,
                    format!("another server holds the lock file {}", lock_path.display()),
                ));
            }
            Err((_, e)) => return Err(io_err(e)),
        }
    } else {
        None
    };
    // With the lock held, a socket file left at the path is a dead server's (Twisted
    // removes it too); without a lock file, as Twisted, an existing file is an error.
    if lock.is_some() {
        if let Ok(meta) = std::fs::symlink_metadata(&u.path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(in_use(
                    &u.path,
                    "the path exists and is not a socket".into(),
                ));
            }
            if answered(&u.path) {
                return Err(in_use(
                    &u.path,
                    "a server is listening on this socket".into(),
                ));
            }
            log::debug!("removing stale socket {}", u.path.display());
            std::fs::remove_file(&u.path)?;
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(&u.path)?;
    let identity = std::fs::symlink_metadata(&u.path)
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let file = UnixFile {
        path: u.path.clone(),
        identity,
        _lock: lock,
    };
    let fd = OwnedFd::from(listener);
    std::fs::set_permissions(&u.path, std::fs::Permissions::from_mode(u.mode))?;
    listen_fd(&fd, u.backlog)?;
    Ok((fd, file))
}

fn systemd_socket(
    s: &SystemdServer,
    stream: bool,
) -> Result<OwnedFd, crate::systemd::ActivationError> {
    ListenFds::from_env()?.take_socket(&s.which, s.domain, stream)
}

impl ServerEndpoint {
    /// Bind the endpoint's socket (and listen, for stream endpoints) without putting it
    /// on a reactor: for a prefork parent, which binds once and passes the fd to its
    /// workers, and for one reactor per thread with [`BindOptions::reuse_port`]. A
    /// `systemd:` endpoint gives a duplicate of the socket systemd passed.
    ///
    /// # Errors
    ///
    /// [`EndpointError::Listen`] with the OS error, [`EndpointError::Activation`] for a
    /// `systemd:` endpoint whose socket is missing or of the wrong kind,
    /// [`EndpointError::Parse`] (`WrongKind`) for a plugin endpoint (which listens only
    /// through [`listen`](super::listen)).
    pub fn bind(&self, options: &BindOptions) -> Result<BoundSocket, EndpointError> {
        let endpoint = self.to_string();
        let listen_err = |source| EndpointError::Listen {
            endpoint: endpoint.clone(),
            source,
        };
        let (fd, unix) = match self {
            ServerEndpoint::Tcp(t) => (
                bind_inet(
                    SocketAddr::new(t.interface, t.port),
                    SockType::Stream,
                    t.backlog,
                    options.reuse_port,
                )
                .map_err(listen_err)?,
                None,
            ),
            ServerEndpoint::Udp(u) => (
                bind_inet(
                    SocketAddr::new(u.interface, u.port),
                    SockType::Datagram,
                    None,
                    options.reuse_port,
                )
                .map_err(listen_err)?,
                None,
            ),
            ServerEndpoint::Unix(u) => {
                let (fd, file) = bind_unix(u).map_err(listen_err)?;
                (fd, Some(file))
            }
            ServerEndpoint::Systemd(s) => (
                systemd_socket(s, !self.is_datagram()).map_err(|source| {
                    EndpointError::Activation {
                        endpoint: endpoint.clone(),
                        source,
                    }
                })?,
                None,
            ),
            ServerEndpoint::Plugin(_) => {
                return Err(EndpointError::parse(
                    &endpoint,
                    ParseProblem::WrongKind {
                        expected: "an endpoint that can be bound ahead (tcp, unix, systemd, udp)",
                    },
                ));
            }
        };
        Ok(BoundSocket { endpoint, fd, unix })
    }

    /// The datagram socket of a `systemd:` endpoint (for `listen_datagram`).
    pub(crate) fn systemd_datagram(
        s: &SystemdServer,
    ) -> Result<OwnedFd, crate::systemd::ActivationError> {
        systemd_socket(s, false)
    }
}

/// Whether a server holds the lock file `PATH.lock` (for `unix:...:lockfile=1` clients,
/// Twisted's `checkPID`).
pub(crate) fn lock_is_held(path: &Path) -> bool {
    let mut lock_path = path.to_path_buf().into_os_string();
    lock_path.push(".lock");
    let Ok(file) = File::open(PathBuf::from(lock_path)) else {
        return false;
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_) => false,
        Err((_, e)) => e == nix::errno::Errno::EWOULDBLOCK,
    }
}
