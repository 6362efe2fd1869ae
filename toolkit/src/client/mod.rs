//! Client helpers: connecting one protocol and getting it back as a [`Deferred`]
//! ([`connect_protocol`], Twisted's `connectProtocol`/`ClientCreator`), a whole request
//! under one timeout ([`request_with_timeout`]), client factories from closures
//! ([`client_factory_fn`]) and a factory that reconnects with exponential backoff
//! ([`ReconnectingClientFactory`]).
//!
//! Everything here is generic over the reactor traits ([`ReactorTcp`], [`ReactorUnix`],
//! [`ReactorTime`]), so it runs on the real reactor and, in tests, on the test kit's
//! `MemoryReactor` (which records each `connect_tcp` and lets the test complete or fail
//! it).
//!
//! # What [`connect_protocol`] gives back
//!
//! The transport owns the protocol it drives (`Box<dyn Protocol>`), so the protocol you
//! pass is moved into an `Rc<RefCell<P>>` shared between the transport and you: the
//! Deferred gives a [`Connection<P>`] with both that protocol and the transport. Borrow
//! the protocol from a Deferred callback or a timer — never keep the borrow across a
//! return to the loop (the transport borrows it to deliver each event).
//!
//! # Examples
//!
//! ```
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_testing::MemoryReactor;
//! use torsion_toolkit::client::connect_protocol;
//! use torsion_transport::Protocol;
//!
//! #[derive(Default)]
//! struct Greeter {
//!     received: Vec<u8>,
//! }
//! impl Protocol for Greeter {
//!     fn connection_made(&mut self, t: Rc<dyn torsion_transport::Transport>) {
//!         t.write(b"hello\r\n");
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.received.extend_from_slice(data);
//!     }
//! }
//!
//! let reactor = MemoryReactor::new();
//! let d = connect_protocol(&reactor, "127.0.0.1:25".parse().unwrap(), Greeter::default());
//! let seen = Rc::new(std::cell::RefCell::new(None));
//! let s = seen.clone();
//! d.add_callback(move |connection| *s.borrow_mut() = Some(connection));
//! // The test plays the network: the attempt succeeds.
//! let wire = reactor.tcp_connects()[0].connector.complete().unwrap();
//! reactor.clock().advance(Duration::ZERO); // run the Deferred's continuations
//! let connection = seen.borrow_mut().take().unwrap();
//! assert_eq!(wire.value(), b"hello\r\n");
//! wire.data_received(b"250 hi");
//! assert_eq!(connection.protocol.borrow().received, b"250 hi");
//! ```

use std::cell::RefCell;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use torsion_transport::defer::Deferred;
use torsion_transport::{
    Address, ClientFactory, Connector, Factory, HalfCloseableProtocol, Protocol, ReactorTcp,
    ReactorTime, ReactorUnix, Reason, Transport,
};

mod factory;
mod reconnect;

pub use factory::{FnClientFactory, client_factory_fn};
pub use reconnect::{Backoff, ReconnectingClientFactory};

/// A connected protocol: what [`connect_protocol`] gives. Both handles stay valid after
/// the connection closes (the protocol then has had its `connection_lost`).
pub struct Connection<P> {
    /// Your protocol, shared with the transport that drives it.
    pub protocol: Rc<RefCell<P>>,
    /// The connection: write to it, close it.
    pub transport: Rc<dyn Transport>,
}

impl<P> Clone for Connection<P> {
    fn clone(&self) -> Self {
        Connection {
            protocol: self.protocol.clone(),
            transport: self.transport.clone(),
        }
    }
}

impl<P> fmt::Debug for Connection<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.transport.host())
            .field("peer", &self.transport.peer())
            .finish_non_exhaustive()
    }
}

/// The `Protocol` the transport owns: forwards each event to the shared `P`, and completes
/// the connect Deferred once `P::connection_made` returned.
struct SharedProtocol<P: 'static> {
    protocol: Rc<RefCell<P>>,
    transport: Option<Rc<dyn Transport>>,
    pending: Option<Deferred<Connection<P>>>,
}

impl<P: Protocol> SharedProtocol<P> {
    /// Run `f` on the protocol. The borrow fails only if user code keeps one across a
    /// return to the loop: the event cannot be delivered, so the connection is aborted
    /// (logged) rather than losing the event silently.
    fn with(&mut self, what: &str, f: impl FnOnce(&mut P)) {
        match self.protocol.try_borrow_mut() {
            Ok(mut p) => f(&mut p),
            Err(_) => {
                log::error!(
                    "connect_protocol: the protocol is borrowed elsewhere during {what}; \
                     aborting the connection (do not hold a borrow of Connection::protocol \
                     across a return to the loop)"
                );
                if let Some(t) = &self.transport {
                    t.abort_connection();
                }
            }
        }
    }
}

impl<P: Protocol> Protocol for SharedProtocol<P> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport.clone());
        let t = transport.clone();
        self.with("connection_made", |p| p.connection_made(t));
        if let Some(d) = self.pending.take() {
            let _ = d.callback(Connection {
                protocol: self.protocol.clone(),
                transport,
            });
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.with("data_received", |p| p.data_received(data));
    }

    fn connection_lost(&mut self, reason: Reason) {
        if let Some(d) = self.pending.take() {
            // `connection_made` did not finish (it panicked): the attempt failed.
            let _ = d.errback(reason.clone());
        }
        self.with("connection_lost", |p| p.connection_lost(reason));
        self.transport = None;
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        let supported = self
            .protocol
            .try_borrow_mut()
            .map(|mut p| p.as_half_closeable().is_some())
            .unwrap_or(false);
        if supported { Some(self) } else { None }
    }
}

impl<P: Protocol> HalfCloseableProtocol for SharedProtocol<P> {
    fn read_connection_lost(&mut self) {
        self.with("read_connection_lost", |p| {
            if let Some(h) = p.as_half_closeable() {
                h.read_connection_lost();
            }
        });
    }

    fn write_connection_lost(&mut self) {
        self.with("write_connection_lost", |p| {
            if let Some(h) = p.as_half_closeable() {
                h.write_connection_lost();
            }
        });
    }
}

/// The one-shot factory behind [`connect_protocol`].
struct OneShot<P: 'static> {
    protocol: RefCell<Option<P>>,
    result: Deferred<Connection<P>>,
}

impl<P: Protocol + 'static> Factory for OneShot<P> {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        let p = self.protocol.borrow_mut().take()?;
        Some(Box::new(SharedProtocol {
            protocol: Rc::new(RefCell::new(p)),
            transport: None,
            pending: Some(self.result.clone()),
        }))
    }
}

impl<P: Protocol + 'static> ClientFactory for OneShot<P> {
    fn client_connection_failed(&self, reason: Reason) {
        let _ = self.result.errback(reason);
    }

    fn client_connection_lost(&self, reason: Reason) {
        // Only reaches the Deferred if `connection_made` never completed it.
        let _ = self.result.errback(reason);
    }
}

fn connect_with<P, F>(protocol: P, connect: F) -> Deferred<Connection<P>>
where
    P: Protocol + 'static,
    F: FnOnce(Rc<dyn ClientFactory>) -> Rc<dyn Connector>,
{
    let connector: Rc<RefCell<Option<Rc<dyn Connector>>>> = Rc::default();
    let c = connector.clone();
    let result = Deferred::with_canceller(move |_| {
        let connecting = c.borrow_mut().take();
        if let Some(connector) = connecting {
            connector.stop_connecting();
        }
    });
    let factory = Rc::new(OneShot {
        protocol: RefCell::new(Some(protocol)),
        result: result.clone(),
    });
    let handle = connect(factory);
    if !result.is_called() {
        *connector.borrow_mut() = Some(handle);
    }
    result
}

/// Connect `protocol` to `addr` over TCP (Twisted's `connectProtocol` and
/// `ClientCreator`): the Deferred gives a [`Connection`] (your protocol, shared, and its
/// transport) once the protocol's `connection_made` has run, or fails with the
/// [`Reason`] the attempt failed for (refused, timed out, unreachable; inside the
/// [`Failure`](torsion_transport::defer::Failure), `failure.downcast_ref::<Reason>()`). Cancelling it while connecting stops
/// the attempt (`stop_connecting`); the result is then [`Failure::Cancelled`](torsion_transport::defer::Failure::Cancelled).
///
/// There is no connect timeout beyond the OS's; put one on the Deferred with
/// [`add_timeout`](Deferred::add_timeout), or bound the whole exchange with
/// [`request_with_timeout`].
#[doc(alias = "connectProtocol")]
#[doc(alias = "ClientCreator")]
pub fn connect_protocol<R, P>(reactor: &R, addr: SocketAddr, protocol: P) -> Deferred<Connection<P>>
where
    R: ReactorTcp + ?Sized,
    P: Protocol + 'static,
{
    connect_with(protocol, |factory| reactor.connect_tcp(addr, factory, None))
}

/// [`connect_protocol`] over the Unix socket at `path`.
pub fn connect_protocol_unix<R, P>(
    reactor: &R,
    path: impl Into<PathBuf>,
    protocol: P,
) -> Deferred<Connection<P>>
where
    R: ReactorUnix + ?Sized,
    P: Protocol + 'static,
{
    let path = path.into();
    connect_with(protocol, |factory| {
        reactor.connect_unix(path, factory, None)
    })
}

/// A protocol that produces one result: what [`request_with_timeout`] runs.
pub trait RequestProtocol: Protocol + 'static {
    /// The result's type.
    type Output: 'static;

    /// The Deferred this protocol completes with its result (and fails — in
    /// `connection_lost`, say — if it cannot produce one). Called once, before connecting.
    fn result(&mut self) -> Deferred<Self::Output>;
}

/// Connect `protocol` to `addr` and wait for its [result](RequestProtocol::result), all of
/// it — connecting, sending, waiting for the answer — within `timeout` (the issue's "a
/// timeout over a whole request, not just the connect"; CONTRACT P9).
///
/// - In time: the protocol's result; the connection is then closed cleanly
///   (`lose_connection`, a no-op if the protocol closed it).
/// - Too late: [`Failure::TimedOut`](torsion_transport::defer::Failure::TimedOut). While connecting, the attempt is stopped; once
///   connected, the protocol's result Deferred is cancelled and the connection aborted
///   (the protocol gets its `connection_lost`).
/// - The connection failing: the [`Reason`] (in the [`Failure`](torsion_transport::defer::Failure)); the protocol failing its
///   result: that failure (the connection is aborted).
///
/// Built on [`connect_protocol`], [`Deferred::chain`] and [`Deferred::add_timeout`]:
/// cancelling a chained Deferred cancels what it waits for, so one timer covers every
/// stage.
pub fn request_with_timeout<R, P>(
    reactor: &R,
    addr: SocketAddr,
    mut protocol: P,
    timeout: Duration,
) -> Deferred<P::Output>
where
    R: ReactorTcp + ReactorTime + ?Sized,
    P: RequestProtocol,
{
    let result = protocol.result();
    let transport: Rc<RefCell<Option<Rc<dyn Transport>>>> = Rc::default();
    let (keep, close) = (transport.clone(), transport);
    connect_protocol(reactor, addr, protocol)
        .chain(move |connection| {
            *keep.borrow_mut() = Some(connection.transport);
            result
        })
        .add_timeout(reactor, timeout)
        .add_both(move |r| {
            let t = close.borrow_mut().take();
            if let Some(t) = t {
                match &r {
                    Ok(_) => t.lose_connection(),
                    Err(_) => t.abort_connection(),
                }
            }
            r
        })
}
