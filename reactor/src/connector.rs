//! An outgoing stream connection attempt (Twisted's `tcp.Client` + `Connector`), generic
//! over the kind of socket: [`crate::tcp`] and [`crate::unix`] instantiate it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Registry, Token};
use torsion_transport::{Address, ClientFactory, Connector, DelayedCall, Reason};

use crate::callback::{catch_panic, guard};
use crate::events::{Event, Phase, TriggerId};
use crate::port::{Configure, not_connected};
use crate::reactor::{Reactor, WeakReactor};
use crate::selectable::{IoStatus, Selectable};
use crate::stream::{LostHook, StreamSocket, StreamTransport};

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
        catch_panic("started_connecting", || c.factory.started_connecting());
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
        catch_panic("client_connection_failed", || {
            self.factory.client_connection_failed(reason);
        });
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
                catch_panic("client_connection_failed", || {
                    factory.client_connection_failed(reason);
                });
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
        let protocol = match guard("build_protocol", || self.factory.build_protocol(&peer)) {
            Ok(Some(protocol)) => protocol,
            refused => {
                // Twisted: the connection is closed at once and reported as lost (with the
                // panic as the reason if the factory panicked).
                drop(sock);
                let reason = match refused {
                    Err(panicked) => panicked.reason(),
                    Ok(_) => Reason::ConnectionDone,
                };
                catch_panic("client_connection_lost", || {
                    self.factory.client_connection_lost(reason);
                });
                return;
            }
        };
        let factory = self.factory.clone();
        let hook: LostHook = Box::new(move |reason| factory.client_connection_lost(reason));
        match StreamTransport::start(&reactor, sock, protocol, Some(hook)) {
            Ok(t) => *self.transport.borrow_mut() = Rc::downgrade(&t),
            Err(e) => {
                catch_panic("client_connection_failed", || {
                    self.factory
                        .client_connection_failed(Reason::ConnectError(Arc::new(e)));
                });
            }
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
