//! A listening stream socket handing each accepted connection to a factory's protocol
//! (Twisted's `tcp.Port`/`unix.Port`), generic over the kind of socket: [`crate::tcp`] and
//! [`crate::unix`] instantiate it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::{Rc, Weak};
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use torsion_transport::{Address, DelayedCall, Factory, ListeningPort, Reason};

use crate::callback::catch_panic;
use crate::reactor::{Reactor, WeakReactor};
use crate::selectable::{IoStatus, Selectable};
use crate::stream::{StreamSocket, StreamTransport};
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

pub(crate) fn not_connected() -> io::Error {
    io::Error::from(io::ErrorKind::NotConnected)
}

/// Configures each accepted or connected socket before its transport starts (socket
/// options such as `TCP_NODELAY`).
pub type Configure<S> = Box<dyn Fn(&S)>;

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
    /// Register `listener` (non-blocking, bound and listening) with `reactor` and start
    /// accepting: the generic form of `listen_tcp`/`listen_unix`, for a listener made
    /// elsewhere. `configure` runs on each accepted socket before its protocol starts;
    /// `on_close` runs once when the socket is closed (to unlink a Unix socket file).
    ///
    /// # Errors
    ///
    /// The OS error from registration; the listener is closed and `on_close` has run.
    pub fn start(
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
