//! Unix stream sockets: listening ports and outgoing connections (Twisted's `unix.Port`
//! and `unix.Connector`), on the same [`Port`] and [`StreamConnector`] as TCP.
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//! use torsion_reactor::Reactor;
//! use torsion_transport::*;
//!
//! struct Discard;
//! impl Protocol for Discard {
//!     fn data_received(&mut self, _: &[u8]) {}
//! }
//!
//! let dir = std::env::temp_dir().join(format!("torsion-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("sock");
//! let mut options = UnixListenOptions::default();
//! options.remove_stale = true;
//! options.unlink_on_stop = true;
//! let reactor = Reactor::new()?;
//! let port = reactor.listen_unix(&path, factory_fn(|_| Box::new(Discard)), options)?;
//! assert!(path.exists());
//! port.stop_listening();
//! assert!(!path.exists());
//! # std::fs::remove_dir(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use torsion_transport::{
    Address, ClientFactory, Connector, Factory, ListeningPort, ReactorUnix, Reason,
    UnixListenOptions,
};

use crate::connector::{ConnectingStream, StreamConnector};
use crate::port::{DEFAULT_BACKLOG, Port, StreamListener};
use crate::reactor::Reactor;
use crate::stream::StreamTransport;
use crate::sys::net as sysnet;

/// A Unix-socket listening port.
pub type UnixPort = Port<mio::net::UnixListener>;
/// An outgoing Unix-socket connection attempt.
pub type UnixConnector = StreamConnector<mio::net::UnixStream>;
/// A connected Unix socket driving a protocol.
pub type UnixTransport = StreamTransport<mio::net::UnixStream>;

fn unix_address(addr: io::Result<std::os::unix::net::SocketAddr>) -> Address {
    Address::Unix(
        addr.ok()
            .and_then(|a| a.as_pathname().map(Path::to_path_buf)),
    )
}

impl StreamListener for mio::net::UnixListener {
    type Stream = mio::net::UnixStream;

    fn accept_stream(&self) -> io::Result<(Self::Stream, Address)> {
        self.accept().map(|(s, a)| (s, unix_address(Ok(a))))
    }

    fn local_address(&self) -> Address {
        unix_address(self.local_addr())
    }
}

impl ConnectingStream for mio::net::UnixStream {
    fn take_socket_error(&self) -> io::Result<Option<io::Error>> {
        self.take_error()
    }
    fn is_connected(&self) -> io::Result<bool> {
        match self.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }
}

fn in_use(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{}: {why}", path.display()),
    )
}

/// If `path` exists: with `remove_stale`, remove it only if it is a socket that refuses
/// connections (its server is gone); otherwise `AddrInUse`.
fn clear_path(path: &Path, remove_stale: bool) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !remove_stale {
        return Err(in_use(
            path,
            "the path exists (set remove_stale to replace a dead server's socket)",
        ));
    }
    if !meta.file_type().is_socket() {
        return Err(in_use(path, "the path exists and is not a socket"));
    }
    match mio::net::UnixStream::connect(path) {
        Ok(_) => Err(in_use(path, "a server is listening on this socket")),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            Err(in_use(path, "a server is listening on this socket (busy)"))
        }
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            log::debug!("removing stale socket {}", path.display());
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A closure that removes the socket file at `path` if it is still the one there now (same
/// device and inode), for when its socket closes.
pub(crate) fn unlink_when_closed(path: &Path) -> Option<Box<dyn FnOnce()>> {
    let id = std::fs::symlink_metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .ok()?;
    let path = path.to_path_buf();
    Some(Box::new(move || {
        let same = std::fs::symlink_metadata(&path).map(|m| (m.dev(), m.ino()));
        if same.ok() == Some(id) {
            if let Err(e) = std::fs::remove_file(&path) {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }))
}

/// Listen on the socket file `path` (Twisted's `listenUNIX`).
///
/// An existing file at `path` is an `AddrInUse` error, unless `options.remove_stale` is set
/// and the file is a socket nobody listens on (connecting is refused): then it is removed
/// first. A live server's socket, or a file that is not a socket, is never removed. With
/// `options.unlink_on_stop` the socket file is removed when listening stops (if it is still
/// the one this port bound).
///
/// # Errors
///
/// `AddrInUse` as above; the OS error of `bind`/`listen` (`PermissionDenied`,
/// `InvalidInput` for a path too long for `sockaddr_un`, ...).
#[doc(alias = "listenUNIX")]
pub fn listen_unix(
    reactor: &Reactor,
    path: &Path,
    factory: Rc<dyn Factory>,
    options: &UnixListenOptions,
) -> io::Result<Rc<UnixPort>> {
    clear_path(path, options.remove_stale)?;
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    let on_close = if options.unlink_on_stop {
        unlink_when_closed(path)
    } else {
        None
    };
    let prepared = sysnet::set_backlog(&listener, DEFAULT_BACKLOG)
        .and_then(|()| listener.set_nonblocking(true));
    if let Err(e) = prepared {
        drop(listener);
        if let Some(f) = on_close {
            f();
        }
        return Err(e);
    }
    let listener = mio::net::UnixListener::from_std(listener);
    Port::start(reactor, listener, factory, None, on_close)
}

fn classify_unix(e: io::Error) -> Reason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Reason::ConnectionRefused,
        io::ErrorKind::TimedOut => Reason::TimedOut,
        _ => Reason::ConnectError(Arc::new(e)),
    }
}

/// Connect to the socket file `path` (Twisted's `connectUNIX`); as
/// [`connect_tcp`](crate::tcp::connect_tcp). A missing file or a socket nobody listens on
/// is [`Reason::ConnectionRefused`]; a server whose backlog is full is a
/// [`Reason::ConnectError`] (`WouldBlock`), reported at once rather than retried.
#[doc(alias = "connectUNIX")]
pub fn connect_unix(
    reactor: &Reactor,
    path: PathBuf,
    factory: Rc<dyn ClientFactory>,
    timeout: Option<Duration>,
) -> Rc<UnixConnector> {
    let sock = mio::net::UnixStream::connect(&path);
    StreamConnector::start(
        reactor,
        sock,
        Address::Unix(Some(path)),
        factory,
        timeout,
        None,
        classify_unix,
    )
}

impl ReactorUnix for Reactor {
    fn listen_unix(
        &self,
        path: &Path,
        factory: Rc<dyn Factory>,
        options: UnixListenOptions,
    ) -> io::Result<Rc<dyn ListeningPort>> {
        Ok(listen_unix(self, path, factory, &options)?)
    }

    fn connect_unix(
        &self,
        path: PathBuf,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
    ) -> Rc<dyn Connector> {
        connect_unix(self, path, factory, timeout)
    }
}
