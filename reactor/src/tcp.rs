//! TCP: listening ports and outgoing connections (Twisted's `tcp.Port`, `tcp.Client` and
//! `tcp.Connector`) on the stream-generic [`Port`] and [`StreamConnector`], and TCP socket
//! options.
//!
//! # Examples
//!
//! An echo server and a client, on one reactor:
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//! use torsion_transport::*;
//!
//! struct Echo(Option<Rc<dyn Transport>>);
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, t: Rc<dyn Transport>) { self.0 = Some(t) }
//!     fn data_received(&mut self, data: &[u8]) {
//!         if let Some(t) = &self.0 { t.write(data) }
//!     }
//! }
//!
//! struct Hello(Rc<RefCell<Vec<u8>>>);
//! impl Protocol for Hello {
//!     fn connection_made(&mut self, t: Rc<dyn Transport>) { t.write(b"hello") }
//!     fn data_received(&mut self, data: &[u8]) { self.0.borrow_mut().extend_from_slice(data) }
//! }
//! struct Client(Rc<RefCell<Vec<u8>>>);
//! impl Factory for Client {
//!     fn build_protocol(&self, _: &Address) -> Option<Box<dyn Protocol>> {
//!         Some(Box::new(Hello(self.0.clone())))
//!     }
//! }
//! impl ClientFactory for Client {
//!     fn client_connection_failed(&self, reason: Reason) { panic!("{reason}") }
//! }
//!
//! let reactor = Reactor::new()?;
//! let port = reactor.listen_tcp("127.0.0.1:0".parse()?, factory_fn(|_| Box::new(Echo(None))))?;
//! let got = Rc::new(RefCell::new(Vec::new()));
//! let addr = port.host().socket_addr().unwrap();
//! reactor.connect_tcp(addr, Rc::new(Client(got.clone())), Some(Duration::from_secs(5)));
//! reactor.run_until(|| got.borrow().len() == 5, Duration::from_secs(5))?;
//! assert_eq!(&*got.borrow(), b"hello");
//! port.stop_listening();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use torsion_transport::{
    Address, ClientFactory, Connector, Factory, ListenOptions, ListeningPort, ReactorTcp, Reason,
};

pub use crate::port::{ACCEPT_BUDGET, BACKOFF_MAX, BACKOFF_MIN, DEFAULT_BACKLOG};

use crate::connector::{ConnectingStream, StreamConnector};
use crate::port::{Configure, Port, StreamListener, not_connected};
use crate::reactor::Reactor;
use crate::stream::StreamTransport;
use crate::sys::net as sysnet;

/// A TCP listening port.
pub type TcpPort = Port<mio::net::TcpListener>;
/// An outgoing TCP connection attempt.
pub type TcpConnector = StreamConnector<mio::net::TcpStream>;
/// A connected TCP socket driving a protocol.
pub type TcpTransport = StreamTransport<mio::net::TcpStream>;

impl StreamListener for mio::net::TcpListener {
    type Stream = mio::net::TcpStream;

    fn accept_stream(&self) -> io::Result<(Self::Stream, Address)> {
        self.accept().map(|(s, a)| (s, Address::from(a)))
    }

    fn local_address(&self) -> Address {
        self.local_addr()
            .map(Address::from)
            .unwrap_or(Address::Memory("unknown".into()))
    }
}

fn connected_from(res: io::Result<()>) -> io::Result<bool> {
    match res {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

impl ConnectingStream for mio::net::TcpStream {
    fn take_socket_error(&self) -> io::Result<Option<io::Error>> {
        self.take_error()
    }
    fn is_connected(&self) -> io::Result<bool> {
        connected_from(self.peer_addr().map(drop))
    }
}

/// Options of TCP sockets: for [`listen_tcp`] (applied to every accepted socket) and
/// [`connect_tcp`].
///
/// **Defaults** follow Twisted and tokio: Nagle's algorithm on (`nodelay: false`), no
/// keepalive. Turn `nodelay` on for request/response protocols that send small messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpOptions {
    /// `TCP_NODELAY`: send small segments at once instead of coalescing them.
    pub nodelay: bool,
    /// `SO_KEEPALIVE` with this idle time before the first probe; `None` = off.
    pub keepalive: Option<Duration>,
    /// The listen backlog (listening only; default [`DEFAULT_BACKLOG`]).
    pub backlog: i32,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            nodelay: false,
            keepalive: None,
            backlog: DEFAULT_BACKLOG,
        }
    }
}

impl TcpOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`nodelay`](Self::nodelay).
    #[must_use]
    pub fn with_nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// Set [`keepalive`](Self::keepalive).
    #[must_use]
    pub fn with_keepalive(mut self, idle: Option<Duration>) -> Self {
        self.keepalive = idle;
        self
    }

    /// Set [`backlog`](Self::backlog).
    #[must_use]
    pub fn with_backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    fn apply(&self, sock: &mio::net::TcpStream) {
        if self.nodelay {
            if let Err(e) = sock.set_nodelay(true) {
                log::warn!("cannot set TCP_NODELAY: {e}");
            }
        }
        if self.keepalive.is_some() {
            if let Err(e) = sysnet::set_keepalive(sock, self.keepalive) {
                log::warn!("cannot set SO_KEEPALIVE: {e}");
            }
        }
    }
}

impl TcpTransport {
    /// Turn Nagle's algorithm off (`true`) or on (Twisted's `setTcpNoDelay`).
    ///
    /// # Errors
    ///
    /// The OS error; `NotConnected` once the connection is closed.
    #[doc(alias = "setTcpNoDelay")]
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.with_socket(|s| s.set_nodelay(on))
            .unwrap_or_else(|| Err(not_connected()))
    }

    /// Whether `TCP_NODELAY` is set (Twisted's `getTcpNoDelay`).
    ///
    /// # Errors
    ///
    /// As [`set_nodelay`](Self::set_nodelay).
    #[doc(alias = "getTcpNoDelay")]
    pub fn nodelay(&self) -> io::Result<bool> {
        self.with_socket(|s| s.nodelay())
            .unwrap_or_else(|| Err(not_connected()))
    }

    /// Turn keepalive on with `idle` before the first probe, or off with `None`
    /// (Twisted's `setTcpKeepAlive`).
    ///
    /// # Errors
    ///
    /// As [`set_nodelay`](Self::set_nodelay).
    #[doc(alias = "setTcpKeepAlive")]
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        self.with_socket(|s| sysnet::set_keepalive(s, idle))
            .unwrap_or_else(|| Err(not_connected()))
    }

    /// The keepalive idle time, `None` when off (Twisted's `getTcpKeepAlive`).
    ///
    /// # Errors
    ///
    /// As [`set_nodelay`](Self::set_nodelay).
    #[doc(alias = "getTcpKeepAlive")]
    pub fn keepalive(&self) -> io::Result<Option<Duration>> {
        self.with_socket(sysnet::keepalive)
            .unwrap_or_else(|| Err(not_connected()))
    }
}

// ----- TCP entry points -------------------------------------------------------------------

fn classify_tcp(e: io::Error) -> Reason {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Reason::ConnectionRefused,
        io::ErrorKind::TimedOut => Reason::TimedOut,
        _ => Reason::ConnectError(Arc::new(e)),
    }
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<mio::net::TcpListener> {
    // std binds with SO_REUSEADDR and close-on-exec; the backlog is set again after.
    let listener = std::net::TcpListener::bind(addr)?;
    sysnet::set_backlog(&listener, backlog)?;
    listener.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(listener))
}

/// Listen on `addr` with `options` (Twisted's `listenTCP`); port 0 picks a free port,
/// which [`ListeningPort::host`] reports. See [`Port`] for the accept policy.
///
/// # Errors
///
/// The OS error of `socket`/`bind`/`listen` (`AddrInUse`, `PermissionDenied`,
/// `AddrNotAvailable` for an IPv6 address on a host without IPv6, ...).
#[doc(alias = "listenTCP")]
pub fn listen_tcp(
    reactor: &Reactor,
    addr: SocketAddr,
    factory: Rc<dyn Factory>,
    options: &TcpOptions,
) -> io::Result<Rc<TcpPort>> {
    let listener = bind_tcp(addr, options.backlog)?;
    let configure: Option<Configure<mio::net::TcpStream>> =
        if options.nodelay || options.keepalive.is_some() {
            let options = options.clone();
            Some(Box::new(move |s: &mio::net::TcpStream| options.apply(s)))
        } else {
            None
        };
    Port::start(reactor, listener, factory, configure, None)
}

/// Connect to `addr` (Twisted's `connectTCP`). Never fails synchronously: the factory gets
/// `started_connecting` now, then from the loop either a protocol (`build_protocol`,
/// `connection_made`) or `client_connection_failed` with [`Reason::ConnectionRefused`],
/// [`Reason::TimedOut`] (when `timeout` passes first; the socket is closed),
/// [`Reason::Cancelled`] (after [`Connector::stop_connecting`]) or
/// [`Reason::ConnectError`] (unreachable, ...).
#[doc(alias = "connectTCP")]
pub fn connect_tcp(
    reactor: &Reactor,
    addr: SocketAddr,
    factory: Rc<dyn ClientFactory>,
    timeout: Option<Duration>,
    options: &TcpOptions,
) -> Rc<TcpConnector> {
    let options = options.clone();
    let configure: Configure<mio::net::TcpStream> = Box::new(move |s| options.apply(s));
    StreamConnector::start(
        reactor,
        mio::net::TcpStream::connect(addr),
        Address::from(addr),
        factory,
        timeout,
        Some(configure),
        classify_tcp,
    )
}

impl Reactor {
    /// Listen on `addr` with socket options set before `bind` (Twisted's `listenTCP`
    /// plus `SO_REUSEPORT` and `IPV6_V6ONLY`): several reactors, one per thread, can each
    /// listen on the same port with `reuse_port`, and the kernel spreads connections over
    /// them. [`listen_tcp`](ReactorTcp::listen_tcp) is this with the defaults.
    ///
    /// # Errors
    ///
    /// As `listen_tcp`; `AddrInUse` when the port is taken by a socket without
    /// `reuse_port` (or of another user); `Unsupported` for `reuse_port` on a system without
    /// it.
    pub fn listen_tcp_with(
        &self,
        addr: SocketAddr,
        options: ListenOptions,
        factory: Rc<dyn Factory>,
    ) -> io::Result<Rc<TcpPort>> {
        let listener = crate::sys::socket::bind_tcp(addr, &options)?;
        Port::start(self, listener, factory, None, None)
    }
}

impl ReactorTcp for Reactor {
    fn listen_tcp(
        &self,
        addr: SocketAddr,
        factory: Rc<dyn Factory>,
    ) -> io::Result<Rc<dyn ListeningPort>> {
        Ok(listen_tcp(self, addr, factory, &TcpOptions::default())?)
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
    ) -> Rc<dyn Connector> {
        connect_tcp(self, addr, factory, timeout, &TcpOptions::default())
    }
}
