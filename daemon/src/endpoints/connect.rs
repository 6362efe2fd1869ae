//! Connecting client endpoints: a [`Deferred`] of the connected transport, and Happy
//! Eyeballs (RFC 8305) over every address of a host name (Twisted's `HostnameEndpoint`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::Reactor;
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{
    Address, ClientFactory, Connector, DelayedCall, Factory, HalfCloseableProtocol, Protocol,
    ReactorTcp, ReactorTime, ReactorUnix, Reason, Transport,
};

use super::client::{ClientEndpoint, DEFAULT_TIMEOUT, TcpClient, UnixClient};
use super::error::ConnectError;

/// RFC 8305's recommended "Connection Attempt Delay": how long an attempt runs alone
/// before the next address is tried too.
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connect to the client endpoint `description` with a protocol from `factory` (Twisted's
/// `clientFromString(...).connect(factory)`).
///
/// The Deferred fires with the connected transport once the protocol's `connection_made`
/// has run, or fails with a [`Failure`] carrying a [`ConnectError`]
/// (`failure.downcast_ref::<ConnectError>()`): a description that does not parse, a name
/// that does not resolve, every address refused or timed out (each listed), or the factory
/// refusing. Cancelling it cancels every attempt under way.
#[doc(alias = "clientFromString")]
pub fn connect(
    reactor: &Reactor,
    description: &str,
    factory: Rc<dyn Factory>,
) -> Deferred<Rc<dyn Transport>> {
    match ClientEndpoint::parse(description) {
        Ok(e) => e.connect(reactor, factory),
        Err(e) => Deferred::fail(Failure::new(ConnectError::Parse {
            endpoint: description.to_owned(),
            problem: e.problem().cloned().unwrap_or(super::ParseProblem::Empty),
        })),
    }
}

impl ClientEndpoint {
    /// Connect, as [`connect`].
    pub fn connect(
        &self,
        reactor: &Reactor,
        factory: Rc<dyn Factory>,
    ) -> Deferred<Rc<dyn Transport>> {
        match self {
            ClientEndpoint::Tcp(t) => HostnameEndpoint::from_client(t).connect(reactor, factory),
            ClientEndpoint::Unix(u) => connect_unix(reactor, u, factory),
            ClientEndpoint::Plugin(p) => {
                // User code: through the funnel; a panic fails the Deferred.
                torsion_reactor::guard("connect", || p.plugin.connect(reactor, &p.fields, factory))
                    .unwrap_or_else(|panicked| {
                        Deferred::fail(Failure::Panicked(panicked.to_string()))
                    })
            }
        }
    }
}

fn connect_unix(
    reactor: &Reactor,
    u: &UnixClient,
    factory: Rc<dyn Factory>,
) -> Deferred<Rc<dyn Transport>> {
    let destination = u.path.display().to_string();
    if u.lockfile && !super::bind::lock_is_held(&u.path) {
        return Deferred::fail(Failure::new(ConnectError::Failed {
            destination: destination.clone(),
            attempts: vec![(destination, Reason::ConnectionRefused)],
        }));
    }
    let result: Deferred<Rc<dyn Transport>> = Deferred::new();
    let state = Rc::new(Single {
        result: result.clone(),
        factory,
        destination: destination.clone(),
    });
    let connector = reactor.connect_unix(u.path.clone(), state, u.timeout);
    let out = Deferred::with_canceller(move |_| connector.stop_connecting());
    let o = out.clone();
    result.add_both(move |r| {
        let _ = o.complete(r);
        Ok(())
    });
    out
}

/// One attempt to one address (the Unix client).
struct Single {
    result: Deferred<Rc<dyn Transport>>,
    factory: Rc<dyn Factory>,
    destination: String,
}

impl Factory for Single {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        build(&self.factory, peer, &self.result, &self.destination)
    }
}

impl ClientFactory for Single {
    fn client_connection_failed(&self, reason: Reason) {
        let attempts = vec![(self.destination.clone(), reason)];
        let _ = self.result.errback(Failure::new(ConnectError::Failed {
            destination: self.destination.clone(),
            attempts,
        }));
    }
}

/// The user's protocol for a connection that won, wrapped to fire `result` with its
/// transport in `connection_made`; or the failure if the factory refuses.
pub(crate) fn build(
    factory: &Rc<dyn Factory>,
    peer: &Address,
    result: &Deferred<Rc<dyn Transport>>,
    destination: &str,
) -> Option<Box<dyn Protocol>> {
    match torsion_reactor::guard("build_protocol", || factory.build_protocol(peer)) {
        Ok(Some(inner)) => Some(Box::new(Announce {
            inner,
            result: Some(result.clone()),
        })),
        Ok(None) => {
            let _ = result.errback(Failure::new(ConnectError::Refused {
                destination: destination.to_owned(),
            }));
            None
        }
        Err(panicked) => {
            let _ = result.errback(Failure::Panicked(panicked.to_string()));
            None
        }
    }
}

/// Passes everything to the user's protocol; fires the Deferred once connected.
struct Announce {
    inner: Box<dyn Protocol>,
    result: Option<Deferred<Rc<dyn Transport>>>,
}

impl Protocol for Announce {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.inner.connection_made(transport.clone());
        if let Some(d) = self.result.take() {
            let _ = d.callback(transport);
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.inner.connection_lost(reason);
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        self.inner.as_half_closeable()
    }
}

/// A client endpoint for a host name or address and a port, trying every address the name
/// resolves to with Happy Eyeballs (RFC 8305; Twisted's `HostnameEndpoint`): the addresses
/// are interleaved by family (starting with the family of the first), an attempt starts
/// every [`attempt_delay`](Self::with_attempt_delay) (250 ms) or as soon as the previous one
/// fails, the first to connect wins, and the others are cancelled (one that connects anyway
/// is closed at once, its protocol never built).
#[derive(Debug, Clone)]
pub struct HostnameEndpoint {
    host: String,
    port: u16,
    timeout: Option<Duration>,
    attempt_delay: Duration,
    bind_address: Option<IpAddr>,
}

impl HostnameEndpoint {
    /// Connect to `host` (a name or an address literal) on `port`, each attempt timing out
    /// after 30 s.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        HostnameEndpoint {
            host: host.into(),
            port,
            timeout: Some(DEFAULT_TIMEOUT),
            attempt_delay: CONNECTION_ATTEMPT_DELAY,
            bind_address: None,
        }
    }

    fn from_client(t: &TcpClient) -> Self {
        HostnameEndpoint {
            host: t.host.clone(),
            port: t.port,
            timeout: t.timeout,
            attempt_delay: CONNECTION_ATTEMPT_DELAY,
            bind_address: t.bind_address,
        }
    }

    /// Each attempt's timeout (`None`: the OS's).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// The delay between starting attempts (default [`CONNECTION_ATTEMPT_DELAY`]).
    #[must_use]
    pub fn with_attempt_delay(mut self, delay: Duration) -> Self {
        self.attempt_delay = delay;
        self
    }

    pub(crate) fn parts(&self) -> (String, u16, Option<Duration>) {
        (self.host.clone(), self.port, self.timeout)
    }

    fn destination(&self) -> String {
        format!("{} port {}", self.host, self.port)
    }

    /// Resolve the host on the reactor's thread pool (unless it is an address literal) and
    /// connect, as [`connect`].
    pub fn connect(
        &self,
        reactor: &Reactor,
        factory: Rc<dyn Factory>,
    ) -> Deferred<Rc<dyn Transport>> {
        if let Some(bind) = self.bind_address {
            return super::bound::connect_from(reactor, self, bind, factory);
        }
        let literal = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        let me = self.clone();
        let r = reactor.clone();
        let resolved = match literal {
            Ok(ip) => Deferred::succeed(vec![SocketAddr::new(ip, self.port)]),
            Err(_) => {
                let host = self.host.clone();
                reactor
                    .resolve_addrs(&self.host, self.port)
                    .add_errback(move |f| {
                        Err(Failure::new(ConnectError::Resolve {
                            host,
                            error: f.to_string(),
                        }))
                    })
            }
        };
        resolved.chain(move |addrs| me.connect_addresses(Rc::new(r), addrs, factory))
    }

    /// Try `addresses` with Happy Eyeballs, on any reactor (the test kit's `MemoryReactor`
    /// too): the step after resolution.
    pub fn connect_addresses<R>(
        &self,
        reactor: Rc<R>,
        addresses: Vec<SocketAddr>,
        factory: Rc<dyn Factory>,
    ) -> Deferred<Rc<dyn Transport>>
    where
        R: ReactorTcp + ReactorTime + 'static,
    {
        if addresses.is_empty() {
            return Deferred::fail(Failure::new(ConnectError::NoAddresses {
                host: self.host.clone(),
            }));
        }
        let result: Deferred<Rc<dyn Transport>> = Deferred::new();
        let race = Rc::new(Race {
            reactor,
            me: RefCell::new(std::rc::Weak::new()),
            result: result.clone(),
            factory,
            destination: self.destination(),
            queue: RefCell::new(interleave(addresses)),
            pending: RefCell::new(Vec::new()),
            failures: RefCell::new(Vec::new()),
            timer: RefCell::new(None),
            done: Cell::new(false),
            timeout: self.timeout,
            delay: self.attempt_delay,
        });
        *race.me.borrow_mut() = Rc::downgrade(&race);
        let keep = race.clone();
        let out = Deferred::with_canceller(move |_| keep.abandon());
        let o = out.clone();
        // The race stays alive through its attempts' factories and this link.
        result.add_both(move |r| {
            let _ = o.complete(r);
            Ok(())
        });
        race.start_next();
        out
    }
}

/// Interleave by family, starting with the family of the first address (RFC 8305 §4).
pub fn interleave(addresses: Vec<SocketAddr>) -> VecDeque<SocketAddr> {
    let first_v6 = addresses.first().is_some_and(SocketAddr::is_ipv6);
    let (mut a, mut b): (VecDeque<_>, VecDeque<_>) =
        addresses.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = VecDeque::with_capacity(a.len() + b.len());
    loop {
        match (a.pop_front(), b.pop_front()) {
            (None, None) => return out,
            (x, y) => {
                out.extend(x);
                out.extend(y);
            }
        }
    }
}

/// The state of one Happy Eyeballs connection.
struct Race<R: ReactorTcp + ReactorTime + 'static> {
    reactor: Rc<R>,
    me: RefCell<std::rc::Weak<Race<R>>>,
    result: Deferred<Rc<dyn Transport>>,
    factory: Rc<dyn Factory>,
    destination: String,
    queue: RefCell<VecDeque<SocketAddr>>,
    pending: RefCell<Vec<(SocketAddr, Rc<dyn Connector>)>>,
    failures: RefCell<Vec<(SocketAddr, Reason)>>,
    timer: RefCell<Option<DelayedCall>>,
    done: Cell<bool>,
    timeout: Option<Duration>,
    delay: Duration,
}

impl<R: ReactorTcp + ReactorTime + 'static> Race<R> {
    fn cancel_timer(&self) {
        let t = self.timer.borrow_mut().take();
        if let Some(t) = t {
            let _ = t.cancel();
        }
    }

    /// Start the next address's attempt, and schedule the one after.
    fn start_next(&self) {
        self.cancel_timer();
        if self.done.get() {
            return;
        }
        let Some(addr) = self.queue.borrow_mut().pop_front() else {
            return;
        };
        let Some(me) = self.me.borrow().upgrade() else {
            return;
        };
        log::debug!("{}: trying {addr}", self.destination);
        let attempt = Rc::new(Attempt {
            race: me.clone(),
            addr,
        });
        let connector = self.reactor.connect_tcp(addr, attempt, self.timeout);
        if self.done.get() {
            // Cannot happen (connect_tcp never calls back synchronously), but be safe.
            connector.stop_connecting();
            return;
        }
        self.pending.borrow_mut().push((addr, connector));
        if !self.queue.borrow().is_empty() {
            let weak = Rc::downgrade(&me);
            let call = self.reactor.call_later(self.delay, move || {
                if let Some(race) = weak.upgrade() {
                    race.start_next();
                }
            });
            *self.timer.borrow_mut() = Some(call);
        }
    }

    fn forget(&self, addr: SocketAddr) {
        self.pending.borrow_mut().retain(|(a, _)| *a != addr);
    }

    fn failed(&self, addr: SocketAddr, reason: Reason) {
        self.forget(addr);
        if self.done.get() {
            return;
        }
        log::debug!("{}: {addr} failed: {reason}", self.destination);
        self.failures.borrow_mut().push((addr, reason));
        if !self.queue.borrow().is_empty() {
            // RFC 8305 §5: a failure starts the next attempt at once.
            self.start_next();
        } else if self.pending.borrow().is_empty() {
            self.done.set(true);
            self.cancel_timer();
            let failures = std::mem::take(&mut *self.failures.borrow_mut());
            let _ = self.result.errback(Failure::new(ConnectError::failed(
                self.destination.clone(),
                failures,
            )));
        }
    }

    /// `addr` connected: the first one wins, the others are cancelled.
    fn connected(&self, addr: SocketAddr, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.forget(addr);
        if self.done.replace(true) {
            log::debug!(
                "{}: {addr} connected too late; closing it",
                self.destination
            );
            return None;
        }
        log::debug!("{}: connected to {addr}", self.destination);
        self.stop_others();
        build(&self.factory, peer, &self.result, &self.destination)
    }

    fn stop_others(&self) {
        self.cancel_timer();
        self.queue.borrow_mut().clear();
        let others = std::mem::take(&mut *self.pending.borrow_mut());
        for (_, c) in others {
            c.stop_connecting();
        }
    }

    /// The Deferred was cancelled: stop everything.
    fn abandon(&self) {
        if !self.done.replace(true) {
            self.stop_others();
        }
    }
}

/// The factory of one attempt.
struct Attempt<R: ReactorTcp + ReactorTime + 'static> {
    race: Rc<Race<R>>,
    addr: SocketAddr,
}

impl<R: ReactorTcp + ReactorTime + 'static> Factory for Attempt<R> {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.race.connected(self.addr, peer)
    }
}

impl<R: ReactorTcp + ReactorTime + 'static> ClientFactory for Attempt<R> {
    fn client_connection_failed(&self, reason: Reason) {
        self.race.failed(self.addr, reason);
    }
}

impl<R: ReactorTcp + ReactorTime + 'static> fmt::Debug for Race<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Race")
            .field("destination", &self.destination)
            .field("done", &self.done.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn interleaves_families_from_the_first() {
        let got: Vec<_> = interleave(vec![
            a("[::1]:1"),
            a("[::2]:1"),
            a("[::3]:1"),
            a("1.0.0.1:1"),
        ])
        .into_iter()
        .collect();
        assert_eq!(
            got,
            vec![a("[::1]:1"), a("1.0.0.1:1"), a("[::2]:1"), a("[::3]:1")]
        );
        let got: Vec<_> = interleave(vec![a("1.0.0.1:1"), a("[::1]:1"), a("1.0.0.2:1")])
            .into_iter()
            .collect();
        assert_eq!(got, vec![a("1.0.0.1:1"), a("[::1]:1"), a("1.0.0.2:1")]);
    }
}
