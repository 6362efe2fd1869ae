//! [`FnClientFactory`]: a [`ClientFactory`] from closures.

use std::fmt;
use std::rc::Rc;

use torsion_transport::{Address, ClientFactory, Factory, Protocol, Reason};

type Build = Box<dyn Fn(&Address) -> Option<Box<dyn Protocol>>>;
type OnReason = Box<dyn Fn(Reason)>;

/// A [`ClientFactory`] made of closures: one that builds the protocol, and optional ones
/// for the attempt starting, failing and the connection ending. Built by
/// [`client_factory_fn`]; the reactor calls each through the funnel (CONTRACT C5).
///
/// Without [`on_connection_failed`](Self::on_connection_failed), a failed attempt is
/// logged with `log::warn!` (never dropped silently).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use torsion_testing::{AccumulatingProtocol, MemoryReactor};
/// use torsion_toolkit::client::client_factory_fn;
/// use torsion_transport::{ReactorTcp, Reason};
///
/// let failures = Rc::new(RefCell::new(Vec::new()));
/// let f = failures.clone();
/// let factory = client_factory_fn(|_peer| Box::new(AccumulatingProtocol::new().0))
///     .on_connection_failed(move |reason| f.borrow_mut().push(reason.to_string()))
///     .into_rc();
/// let reactor = MemoryReactor::new();
/// reactor.connect_tcp("127.0.0.1:1".parse().unwrap(), factory, None);
/// reactor.tcp_connects()[0].connector.fail(Reason::ConnectionRefused);
/// assert_eq!(*failures.borrow(), ["connection was refused by the other side"]);
/// ```
pub struct FnClientFactory {
    build: Build,
    started: Option<Box<dyn Fn()>>,
    failed: Option<OnReason>,
    lost: Option<OnReason>,
}

impl fmt::Debug for FnClientFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnClientFactory")
            .field("on_started_connecting", &self.started.is_some())
            .field("on_connection_failed", &self.failed.is_some())
            .field("on_connection_lost", &self.lost.is_some())
            .finish_non_exhaustive()
    }
}

/// A client factory that builds each protocol with `build` (the client side of
/// [`factory_fn`](torsion_transport::factory_fn)); add the other callbacks with
/// [`FnClientFactory`]'s methods.
pub fn client_factory_fn<F>(build: F) -> FnClientFactory
where
    F: Fn(&Address) -> Box<dyn Protocol> + 'static,
{
    FnClientFactory {
        build: Box::new(move |peer| Some(build(peer))),
        started: None,
        failed: None,
        lost: None,
    }
}

impl FnClientFactory {
    /// A factory whose `build` may refuse a connection by returning `None` (it is then
    /// closed at once).
    pub fn new<F>(build: F) -> Self
    where
        F: Fn(&Address) -> Option<Box<dyn Protocol>> + 'static,
    {
        FnClientFactory {
            build: Box::new(build),
            started: None,
            failed: None,
            lost: None,
        }
    }

    /// Call `f` when an attempt begins (Twisted's `startedConnecting`).
    #[doc(alias = "startedConnecting")]
    pub fn on_started_connecting(mut self, f: impl Fn() + 'static) -> Self {
        self.started = Some(Box::new(f));
        self
    }

    /// Call `f` with the reason when an attempt fails (Twisted's `clientConnectionFailed`).
    #[doc(alias = "clientConnectionFailed")]
    pub fn on_connection_failed(mut self, f: impl Fn(Reason) + 'static) -> Self {
        self.failed = Some(Box::new(f));
        self
    }

    /// Call `f` with the reason when an established connection ends (Twisted's
    /// `clientConnectionLost`).
    #[doc(alias = "clientConnectionLost")]
    pub fn on_connection_lost(mut self, f: impl Fn(Reason) + 'static) -> Self {
        self.lost = Some(Box::new(f));
        self
    }

    /// As the `Rc<dyn ClientFactory>` that `connect_tcp`/`connect_unix` take.
    pub fn into_rc(self) -> Rc<dyn ClientFactory> {
        Rc::new(self)
    }
}

impl Factory for FnClientFactory {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        (self.build)(peer)
    }
}

impl ClientFactory for FnClientFactory {
    fn started_connecting(&self) {
        if let Some(f) = &self.started {
            f();
        }
    }

    fn client_connection_failed(&self, reason: Reason) {
        match &self.failed {
            Some(f) => f(reason),
            None => log::warn!("connection attempt failed: {reason}"),
        }
    }

    fn client_connection_lost(&self, reason: Reason) {
        if let Some(f) = &self.lost {
            f(reason);
        }
    }
}
