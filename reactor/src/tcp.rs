//! TCP: listening ports and outgoing connections (Twisted's `tcp.Port`, `tcp.Client` and
//! `tcp.Connector`), and the stream-generic [`Port`] and [`StreamConnector`] that
//! [`crate::unix`] shares.
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

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use torsion_transport::{
    Address, ClientFactory, Connector, DelayedCall, Factory, ListeningPort, ReactorTcp, Reason,
};

use crate::events::{Event, Phase, TriggerId};
use crate::reactor::{Reactor, WeakReactor, catch_panic};
use crate::selectable::{IoStatus, Selectable};
use crate::stream::{LostHook, StreamSocket, StreamTransport};
use crate::sys::net::{self as sysnet, AcceptError};

/// Connections accepted per dispatch before the port yields to others (CONTRACT C4).
pub const ACCEPT_BUDGET: usize = 64;
/// Default listen backlog (Twisted uses 50; torsion takes mio's 1024, which the kernel caps
/// at `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 1024;
/// First pause after running out of fds while accepting; doubled up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest pause after running out of fds while accepting.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A TCP listening port.
pub type TcpPort = Port<mio::net::TcpListener>;
/// An outgoing TCP connection attempt.
pub type TcpConnector = StreamConnector<mio::net::TcpStream>;
/// A connected TCP socket driving a protocol.
pub type TcpTransport = StreamTransport<mio::net::TcpStream>;

/// A listening socket a [`Port`] can drive.
pub trait StreamListener: Source + 'static {
    /// The connected sockets it accepts.
    type Stream: StreamSocket + 'static;

    /// `accept(2)` one connection (non-blocking, close-on-exec).
    ///
    /// # Errors
    ///
    /// The OS error; `WouldBlock` when none is pending.
    fn accept_stream(&self) -> io::Result<(Self::Stream, Address)>;

    /// The bound address.
    fn local_address(&self) -> Address;
}

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

/// A socket whose non-blocking `connect` a [`StreamConnector`] watches.
pub trait ConnectingStream: StreamSocket + 'static {
    /// `getsockopt(SO_ERROR)`: the error of a failed connect, if any.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt` itself.
    fn take_socket_error(&self) -> io::Result<Option<io::Error>>;

    /// `Ok(true)` once connected, `Ok(false)` while the attempt is in progress.
    ///
    /// # Errors
    ///
    /// The error that ended the attempt.
    fn is_connected(&self) -> io::Result<bool>;
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

fn not_connected() -> io::Error {
    io::Error::from(io::ErrorKind::NotConnected)
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

// ----- Port -------------------------------------------------------------------------------

/// Configures each accepted or connected socket before its transport starts.
pub(crate) type Configure<S> = Box<dyn Fn(&S)>;

/// A listening socket that accepts connections and gives each a protocol from its factory
/// (Twisted's `tcp.Port`; [`ListeningPort`]).
///
/// Accepts up to [`ACCEPT_BUDGET`] connections per dispatch, then yields (CONTRACT C4).
/// When accepting fails for lack of fds or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
/// `ENOMEM`) it logs a warning, stops reading the listener and tries again after a
/// back-off ([`BACKOFF_MIN`] doubling to [`BACKOFF_MAX`]) rather than spinning the loop.
/// A factory that returns `None` refuses the connection: it is closed at once.
pub struct Port<L: StreamListener> {
    reactor: WeakReactor,
    listener: RefCell<Option<L>>,
    factory: Rc<dyn Factory>,
    host: Address,
    token: Cell<Option<Token>>,
    backoff: Cell<Duration>,
    resume: RefCell<Option<DelayedCall>>,
    accept_calls: Cell<u64>,
    accepted: Cell<u64>,
    configure: Option<Configure<L::Stream>>,
    on_close: RefCell<Option<Box<dyn FnOnce()>>>,
    me: Weak<Self>,
}

impl<L: StreamListener> fmt::Debug for Port<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Port")
            .field("host", &self.host)
            .field("token", &self.token.get())
            .field("accepted", &self.accepted.get())
            .finish()
    }
}

impl<L: StreamListener> Port<L> {
    /// Register `listener` with `reactor` and start accepting. `on_close` runs once when
    /// the socket is closed (to unlink a Unix socket file).
    pub(crate) fn start(
        reactor: &Reactor,
        listener: L,
        factory: Rc<dyn Factory>,
        configure: Option<Configure<L::Stream>>,
        on_close: Option<Box<dyn FnOnce()>>,
    ) -> io::Result<Rc<Self>> {
        let host = listener.local_address();
        let port = Rc::new_cyclic(|me| Port {
            reactor: reactor.downgrade(),
            listener: RefCell::new(Some(listener)),
            factory,
            host,
            token: Cell::new(None),
            backoff: Cell::new(BACKOFF_MIN),
            resume: RefCell::new(None),
            accept_calls: Cell::new(0),
            accepted: Cell::new(0),
            configure,
            on_close: RefCell::new(on_close),
            me: me.clone(),
        });
        match reactor.register(port.clone()) {
            Ok(token) => {
                port.token.set(Some(token));
                reactor.add_reader(token);
                log::debug!("listening on {}", port.host);
                Ok(port)
            }
            Err(e) => {
                port.close();
                Err(e)
            }
        }
    }

    /// The reactor token while listening.
    pub fn token(&self) -> Option<Token> {
        self.token.get()
    }

    /// True until `stop_listening` (or reactor shutdown) closed the socket.
    pub fn is_listening(&self) -> bool {
        self.listener.borrow().is_some()
    }

    /// True while accepting is paused after running out of fds or memory.
    pub fn is_backing_off(&self) -> bool {
        self.resume
            .borrow()
            .as_ref()
            .is_some_and(DelayedCall::active)
    }

    /// Number of `accept(2)` calls made, successful or not (for monitoring, and for tests
    /// that check the loop does not spin).
    pub fn accept_calls(&self) -> u64 {
        self.accept_calls.get()
    }

    /// Number of connections accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Deregister, then close the socket; idempotent.
    fn close(&self) {
        if let (Some(token), Some(r)) = (self.token.take(), self.reactor.upgrade()) {
            r.remove(token);
        }
        let resume = self.resume.borrow_mut().take();
        if let Some(call) = resume {
            let _ = call.cancel();
        }
        let listener = self.listener.borrow_mut().take();
        if listener.is_some() {
            log::debug!("stopped listening on {}", self.host);
        }
        drop(listener);
        let on_close = self.on_close.borrow_mut().take();
        if let Some(f) = on_close {
            f();
        }
    }

    fn back_off(&self, e: &io::Error) {
        let (Some(reactor), Some(token)) = (self.reactor.upgrade(), self.token.get()) else {
            return;
        };
        let delay = self.backoff.get();
        self.backoff.set((delay * 2).min(BACKOFF_MAX));
        log::warn!(
            "{}: cannot accept a connection ({e}); pausing accepts for {delay:?}",
            self.host
        );
        reactor.remove_reader(token);
        let weak = self.me.clone();
        let call = reactor.call_later(delay, move || {
            if let Some(port) = weak.upgrade() {
                if let (Some(r), Some(t)) = (port.reactor.upgrade(), port.token.get()) {
                    r.add_reader(t);
                }
            }
        });
        let old = self.resume.borrow_mut().replace(call);
        if let Some(old) = old {
            let _ = old.cancel();
        }
    }

    fn accepted_one(&self, stream: L::Stream, peer: Address) {
        self.accepted.set(self.accepted.get() + 1);
        if let Some(configure) = &self.configure {
            configure(&stream);
        }
        let Some(reactor) = self.reactor.upgrade() else {
            return;
        };
        match catch_panic("build_protocol", || self.factory.build_protocol(&peer)) {
            Some(Some(protocol)) => {
                if let Err(e) = StreamTransport::start(&reactor, stream, protocol, None) {
                    log::warn!(
                        "{}: cannot register a connection from {peer}: {e}",
                        self.host
                    );
                }
            }
            Some(None) => log::debug!("{}: factory refused {peer}", self.host),
            None => log::warn!("{}: connection from {peer} closed", self.host),
        }
    }
}

impl<L: StreamListener> Selectable for Port<L> {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.listener.borrow_mut().as_mut() {
            Some(l) => registry.register(l, token, Interest::READABLE),
            None => Err(not_connected()),
        }
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        match self.listener.borrow_mut().as_mut() {
            Some(l) => registry.deregister(l),
            None => Ok(()),
        }
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        for _ in 0..ACCEPT_BUDGET {
            let res = match self.listener.borrow().as_ref() {
                Some(l) => l.accept_stream(),
                None => return Ok(IoStatus::Blocked),
            };
            self.accept_calls.set(self.accept_calls.get() + 1);
            match res {
                Ok((stream, peer)) => {
                    self.backoff.set(BACKOFF_MIN);
                    self.accepted_one(stream, peer);
                    if !self.is_listening() {
                        return Ok(IoStatus::Blocked);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) => match sysnet::accept_error(&e) {
                    AcceptError::Transient => {
                        log::debug!("{}: accept: {e}; trying the next one", self.host);
                    }
                    AcceptError::Resources | AcceptError::Other => {
                        self.back_off(&e);
                        return Ok(IoStatus::Blocked);
                    }
                },
            }
        }
        Ok(IoStatus::More)
    }

    fn connection_lost(&self, reason: Reason) {
        log::debug!("{}: listening port closed: {reason}", self.host);
        self.token.set(None);
        self.close();
    }

    fn describe(&self) -> String {
        format!("port {}", self.host)
    }
}

impl<L: StreamListener> ListeningPort for Port<L> {
    fn host(&self) -> Address {
        self.host.clone()
    }

    fn stop_listening(&self) {
        self.close();
    }
}

// ----- Connector --------------------------------------------------------------------------

/// Maps the error of a failed connect to the reason the factory gets.
pub(crate) type Classify = fn(io::Error) -> Reason;

/// An outgoing connection attempt (Twisted's `tcp.Client` + `Connector`; [`Connector`]).
///
/// The factory hears exactly one of: `build_protocol` (then the protocol's
/// `connection_made`, and `client_connection_lost` after its `connection_lost`), or
/// `client_connection_failed(reason)` — always from the loop, never inside the call that
/// started the attempt.
pub struct StreamConnector<S: ConnectingStream> {
    reactor: WeakReactor,
    factory: Rc<dyn ClientFactory>,
    destination: Address,
    sock: RefCell<Option<S>>,
    token: Cell<Option<Token>>,
    timeout: RefCell<Option<DelayedCall>>,
    finished: Cell<bool>,
    configure: Option<Configure<S>>,
    classify: Classify,
    transport: RefCell<Weak<StreamTransport<S>>>,
    on_shutdown: Cell<Option<TriggerId>>,
}

impl<S: ConnectingStream> fmt::Debug for StreamConnector<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamConnector")
            .field("destination", &self.destination)
            .field("finished", &self.finished.get())
            .finish()
    }
}

impl<S: ConnectingStream> StreamConnector<S> {
    /// Watch `sock` (a socket whose non-blocking connect is under way, or the error that
    /// creating it gave) until it connects, fails or times out.
    pub(crate) fn start(
        reactor: &Reactor,
        sock: io::Result<S>,
        destination: Address,
        factory: Rc<dyn ClientFactory>,
        timeout: Option<Duration>,
        configure: Option<Configure<S>>,
        classify: Classify,
    ) -> Rc<Self> {
        let c = Rc::new(StreamConnector {
            reactor: reactor.downgrade(),
            factory,
            destination,
            sock: RefCell::new(None),
            token: Cell::new(None),
            timeout: RefCell::new(None),
            finished: Cell::new(false),
            configure,
            classify,
            transport: RefCell::new(Weak::new()),
            on_shutdown: Cell::new(None),
        });
        log::debug!("connecting to {}", c.destination);
        c.factory.started_connecting();
        let sock = match sock {
            Ok(s) => s,
            Err(e) => {
                c.fail_later(classify(e));
                return c;
            }
        };
        *c.sock.borrow_mut() = Some(sock);
        match reactor.register(c.clone()) {
            Ok(token) => {
                c.token.set(Some(token));
                reactor.add_writer(token);
            }
            Err(e) => {
                c.fail_later(Reason::ConnectError(Arc::new(e)));
                return c;
            }
        }
        // An attempt still pending at shutdown fails then, rather than holding the
        // shutdown flush (it is a writer) for the whole grace period.
        let weak = Rc::downgrade(&c);
        let id = reactor.add_system_event_trigger(Phase::Before, Event::Shutdown, move || {
            if let Some(c) = weak.upgrade() {
                c.fail(Reason::ConnectError(Arc::new(io::Error::other(
                    "the reactor shut down",
                ))));
            }
        });
        c.on_shutdown.set(Some(id));
        if let Some(d) = timeout {
            let weak = Rc::downgrade(&c);
            let call = reactor.call_later(d, move || {
                if let Some(c) = weak.upgrade() {
                    c.fail(Reason::TimedOut);
                }
            });
            *c.timeout.borrow_mut() = Some(call);
        }
        c
    }

    /// The transport of the established connection, while it lives.
    pub fn transport(&self) -> Option<Rc<StreamTransport<S>>> {
        self.transport.borrow().upgrade()
    }

    /// True once the attempt succeeded, failed or was cancelled.
    pub fn finished(&self) -> bool {
        self.finished.get()
    }

    /// Cancel the timer, deregister, and hand back the socket.
    fn teardown(&self) -> Option<S> {
        let timeout = self.timeout.borrow_mut().take();
        if let Some(call) = timeout {
            let _ = call.cancel();
        }
        if let Some(r) = self.reactor.upgrade() {
            if let Some(token) = self.token.take() {
                r.remove(token);
            }
            if let Some(id) = self.on_shutdown.take() {
                let _ = r.remove_system_event_trigger(id);
            }
        }
        self.sock.borrow_mut().take()
    }

    /// Fail now: only from the loop.
    fn fail(&self, reason: Reason) {
        if self.finished.replace(true) {
            return;
        }
        drop(self.teardown());
        log::debug!("connection to {} failed: {reason}", self.destination);
        self.factory.client_connection_failed(reason);
    }

    /// Fail from the loop, on a later iteration.
    fn fail_later(&self, reason: Reason) {
        if self.finished.replace(true) {
            return;
        }
        drop(self.teardown());
        log::debug!("connection to {} failed: {reason}", self.destination);
        let factory = self.factory.clone();
        if let Some(r) = self.reactor.upgrade() {
            r.call_later(Duration::ZERO, move || {
                factory.client_connection_failed(reason);
            });
        }
    }

    fn connected(&self) {
        self.finished.set(true);
        let (Some(sock), Some(reactor)) = (self.teardown(), self.reactor.upgrade()) else {
            return;
        };
        if let Some(configure) = &self.configure {
            configure(&sock);
        }
        let peer = sock.peer_address();
        let Some(protocol) = self.factory.build_protocol(&peer) else {
            // Twisted: the connection is closed at once and reported as lost.
            drop(sock);
            self.factory.client_connection_lost(Reason::ConnectionDone);
            return;
        };
        let factory = self.factory.clone();
        let hook: LostHook = Box::new(move |reason| factory.client_connection_lost(reason));
        match StreamTransport::start(&reactor, sock, protocol, Some(hook)) {
            Ok(t) => *self.transport.borrow_mut() = Rc::downgrade(&t),
            Err(e) => self
                .factory
                .client_connection_failed(Reason::ConnectError(Arc::new(e))),
        }
    }
}

impl<S: ConnectingStream> Selectable for StreamConnector<S> {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.sock.borrow_mut().as_mut() {
            Some(s) => registry.register(s, token, Interest::WRITABLE),
            None => Err(not_connected()),
        }
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        match self.sock.borrow_mut().as_mut() {
            Some(s) => registry.deregister(s),
            None => Ok(()),
        }
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        Ok(IoStatus::Blocked)
    }

    fn do_write(&self) -> Result<IoStatus, Reason> {
        let status = match self.sock.borrow().as_ref() {
            None => return Ok(IoStatus::Blocked),
            Some(s) => match s.take_socket_error() {
                Ok(Some(e)) | Err(e) => Err(e),
                Ok(None) => s.is_connected(),
            },
        };
        match status {
            Ok(false) => {}
            Ok(true) => self.connected(),
            Err(e) => self.fail((self.classify)(e)),
        }
        Ok(IoStatus::Blocked)
    }

    fn connection_lost(&self, reason: Reason) {
        self.token.set(None);
        self.fail(reason);
    }

    fn describe(&self) -> String {
        format!("connector to {}", self.destination)
    }
}

impl<S: ConnectingStream> Connector for StreamConnector<S> {
    fn stop_connecting(&self) {
        self.fail_later(Reason::Cancelled);
    }

    fn destination(&self) -> Address {
        self.destination.clone()
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
