//! Datagram ports: UDP and Unix datagram sockets driving a
//! [`DatagramProtocol`] (Twisted's `udp.Port` and `unix.DatagramPort`; CONTRACT Q).
//!
//! One type, [`DatagramPort`] (also named [`UdpPort`]), over either kind of socket: it is
//! a selectable of the reactor and the protocol's [`DatagramTransport`].
//!
//! # Examples
//!
//! A UDP echo server and a client on one reactor:
//!
//! ```
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//! use torsion_transport::*;
//!
//! #[derive(Default)]
//! struct Echo(Option<Rc<dyn DatagramTransport>>);
//! impl DatagramProtocol for Echo {
//!     fn start_protocol(&mut self, t: Rc<dyn DatagramTransport>) { self.0 = Some(t) }
//!     fn datagram_received(&mut self, data: &[u8], from: Address) {
//!         if let Some(t) = &self.0 { let _ = t.write(data, &from); }
//!     }
//! }
//! struct Collect(Rc<RefCell<Vec<Vec<u8>>>>);
//! impl DatagramProtocol for Collect {
//!     fn datagram_received(&mut self, data: &[u8], _: Address) {
//!         self.0.borrow_mut().push(data.to_vec());
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! let server = reactor.listen_udp("127.0.0.1:0".parse()?, Box::new(Echo::default()))?;
//! let got = Rc::new(RefCell::new(Vec::new()));
//! let client = reactor.listen_udp("127.0.0.1:0".parse()?, Box::new(Collect(got.clone())))?;
//! client.write(b"ping", &server.host())?;
//! reactor.run_until(|| !got.borrow().is_empty(), Duration::from_secs(5))?;
//! assert_eq!(got.borrow()[0], b"ping");
//! server.stop_listening();
//! client.stop_listening();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::rc::{Rc, Weak};
use std::time::Duration;

use mio::{Interest, Registry, Token};
use torsion_transport::{
    Address, DatagramError, DatagramProtocol, DatagramTransport, MAX_DATAGRAM_SIZE,
    MulticastInterface, Reason,
};

use crate::callback::catch_panic;
use crate::reactor::{Reactor, WeakReactor};
use crate::selectable::{IoStatus, Selectable};
use crate::sys::socket as syssock;

mod listen;
mod socket;

pub(crate) use socket::{DatagramSocket, Received};
use socket::{v4_membership, v6_membership};

/// Datagrams received per dispatch before the port yields to others (CONTRACT C4, Q4).
pub const DATAGRAM_BUDGET: usize = 64;

thread_local! {
    static RECV_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM_SIZE]);
}

fn wrong_kind(expected: &'static str, got: impl fmt::Display) -> io::Error {
    DatagramError::WrongAddressKind {
        expected,
        got: got.to_string(),
    }
    .into()
}

/// A bound (or connected) datagram socket driving a [`DatagramProtocol`]: Twisted's
/// `udp.Port`, which is also the protocol's transport. See [`Reactor::listen_udp`].
///
/// Receives up to [`DATAGRAM_BUDGET`] datagrams per dispatch, then yields (CONTRACT C4).
/// A panic in the protocol is caught and logged; the port keeps running (there is no
/// connection to close). Datagrams are never buffered on the way out: [`write`] sends at
/// once or returns the error (`WouldBlock` included).
///
/// [`write`]: DatagramTransport::write
pub struct DatagramPort {
    reactor: WeakReactor,
    sock: RefCell<Option<DatagramSocket>>,
    protocol: RefCell<Option<Box<dyn DatagramProtocol>>>,
    host: Address,
    peer: RefCell<Option<Address>>,
    token: Cell<Option<Token>>,
    stop_scheduled: Cell<bool>,
    received: Cell<u64>,
    on_close: RefCell<Option<Box<dyn FnOnce()>>>,
    /// The largest datagram received whole.
    max_size: Cell<usize>,
    /// This port's own receive buffer, when `max_size` is not [`MAX_DATAGRAM_SIZE`].
    own_buf: RefCell<Vec<u8>>,
    me: Weak<Self>,
}

/// A UDP port: a [`DatagramPort`] over a UDP socket.
pub type UdpPort = DatagramPort;
/// A Unix datagram port: a [`DatagramPort`] over a Unix datagram socket.
pub type UnixDatagramPort = DatagramPort;

impl fmt::Debug for DatagramPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramPort")
            .field("host", &self.host)
            .field("peer", &self.peer.try_borrow().ok())
            .field("token", &self.token.get())
            .field("received", &self.received.get())
            .finish()
    }
}

impl DatagramPort {
    /// Register `sock` with `reactor`, call `start_protocol` and start reading.
    pub(crate) fn start(
        reactor: &Reactor,
        sock: DatagramSocket,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<Self>> {
        let host = sock.local_address();
        let peer = sock.peer_address();
        let port = Rc::new_cyclic(|me| DatagramPort {
            reactor: reactor.downgrade(),
            sock: RefCell::new(Some(sock)),
            protocol: RefCell::new(Some(protocol)),
            host,
            peer: RefCell::new(peer),
            token: Cell::new(None),
            stop_scheduled: Cell::new(false),
            received: Cell::new(0),
            on_close: RefCell::new(None),
            max_size: Cell::new(MAX_DATAGRAM_SIZE),
            own_buf: RefCell::new(Vec::new()),
            me: me.clone(),
        });
        let token = match reactor.register(port.clone()) {
            Ok(token) => token,
            Err(e) => {
                // Not started: drop the protocol without a callback, as documented.
                port.protocol.borrow_mut().take();
                port.sock.borrow_mut().take();
                return Err(e);
            }
        };
        port.token.set(Some(token));
        log::debug!("datagram port on {}", port.host);
        let transport: Rc<dyn DatagramTransport> = port.clone();
        if port
            .call("start_protocol", |p| p.start_protocol(transport))
            .is_none()
        {
            port.stop_listening();
            return Ok(port);
        }
        if port.is_listening() {
            reactor.add_reader(token);
        }
        Ok(port)
    }

    /// Call `f` on the protocol through the funnel. `None` if the protocol is gone, busy
    /// (a call from inside one of its own callbacks: not delivered) or panicked.
    fn call<R>(&self, what: &str, f: impl FnOnce(&mut dyn DatagramProtocol) -> R) -> Option<R> {
        let Ok(mut slot) = self.protocol.try_borrow_mut() else {
            log::warn!("{what} while the datagram protocol is busy: not delivered");
            return None;
        };
        let p = slot.as_mut()?;
        catch_panic(what, || f(p.as_mut()))
    }

    /// The reactor token while listening.
    pub fn token(&self) -> Option<Token> {
        self.token.get()
    }

    /// True until `stop_listening` (or reactor shutdown) closed the socket.
    pub fn is_listening(&self) -> bool {
        self.sock.borrow().is_some()
    }

    /// Number of datagrams received (whole or truncated), for monitoring and tests.
    pub fn datagrams_received(&self) -> u64 {
        self.received.get()
    }

    /// Receive datagrams of up to `size` bytes whole (default [`MAX_DATAGRAM_SIZE`], which
    /// covers every UDP payload; a Unix datagram socket can carry more). A larger datagram
    /// goes to [`DatagramProtocol::datagram_truncated`] (CONTRACT Q3). A size other than the
    /// default gives the port a buffer of its own; at least 1.
    /// May be called from inside the protocol's callbacks; it applies from the next
    /// datagram read.
    pub fn set_max_datagram_size(&self, size: usize) {
        self.max_size.set(size.max(1));
    }

    /// The largest datagram this port receives whole.
    pub fn max_datagram_size(&self) -> usize {
        self.max_size.get()
    }

    /// Run `f` on the mio UDP socket (to set options std offers), if this is an open UDP
    /// port. `None` for a Unix datagram port or once closed.
    pub fn with_udp_socket<R>(&self, f: impl FnOnce(&mio::net::UdpSocket) -> R) -> Option<R> {
        let sock = self.sock.try_borrow().ok()?;
        match sock.as_ref()? {
            DatagramSocket::Udp(s) => Some(f(s)),
            #[cfg(unix)]
            DatagramSocket::Unix(_) => None,
        }
    }

    /// `stop_protocol`, from the loop, once.
    fn schedule_stop(&self) {
        if self.stop_scheduled.replace(true) {
            return;
        }
        let Some(reactor) = self.reactor.upgrade() else {
            self.finish();
            return;
        };
        // A strong handle: the protocol gets `stop_protocol` even when nobody else keeps
        // the port.
        let me = self.me.upgrade();
        reactor.call_later(Duration::ZERO, move || {
            if let Some(port) = me {
                port.finish();
            }
        });
    }

    /// The last callback: `stop_protocol`, then drop the protocol, each through the funnel.
    fn finish(&self) {
        let protocol = match self.protocol.try_borrow_mut() {
            Ok(mut p) => p.take(),
            Err(_) => {
                log::warn!("stop_protocol while the datagram protocol is busy: not delivered");
                None
            }
        };
        if let Some(mut p) = protocol {
            catch_panic("stop_protocol", || p.stop_protocol());
            catch_panic("dropping the datagram protocol", move || drop(p));
        }
    }

    /// Deregister and close the socket; idempotent.
    fn close(&self) {
        if let (Some(token), Some(r)) = (self.token.take(), self.reactor.upgrade()) {
            r.remove(token);
        }
        let sock = match self.sock.try_borrow_mut() {
            Ok(mut s) => s.take(),
            Err(_) => None,
        };
        if sock.is_some() {
            log::debug!("datagram port on {} closed", self.host);
        }
        drop(sock);
        let on_close = self.on_close.borrow_mut().take();
        if let Some(f) = on_close {
            f();
        }
    }

    fn refused_later(&self) {
        let Some(reactor) = self.reactor.upgrade() else {
            return;
        };
        let weak = self.me.clone();
        reactor.call_later(Duration::ZERO, move || {
            if let Some(port) = weak.upgrade() {
                port.call("connection_refused", |p| p.connection_refused());
            }
        });
    }

    /// Where a datagram to `to` goes on this socket, checked against the connected peer.
    fn target(&self, to: &Address) -> io::Result<Target> {
        if let Some(peer) = self.peer.borrow().as_ref() {
            if !same_address(peer, to) {
                return Err(DatagramError::ConnectedElsewhere {
                    peer: peer.clone(),
                    to: to.clone(),
                }
                .into());
            }
            return Ok(Target::Connected);
        }
        match (&self.host, to) {
            (Address::Ipv4(_), Address::Ipv4(a)) => Ok(Target::Inet(SocketAddr::V4(*a))),
            (Address::Ipv4(_), Address::Ipv6(a)) => match a.ip().to_ipv4_mapped() {
                Some(v4) => Ok(Target::Inet(SocketAddr::V4(SocketAddrV4::new(
                    v4,
                    a.port(),
                )))),
                None => Err(wrong_kind("IPv4", to)),
            },
            (Address::Ipv6(_), Address::Ipv6(a)) => Ok(Target::Inet(SocketAddr::V6(*a))),
            (Address::Ipv6(_), Address::Ipv4(a)) => Ok(Target::Inet(SocketAddr::V6(
                SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
            ))),
            (Address::Ipv4(_) | Address::Ipv6(_), _) => Err(wrong_kind("IP", to)),
            #[cfg(unix)]
            (Address::Unix(_), Address::Unix(Some(path))) => Ok(Target::Path(path.clone())),
            #[cfg(unix)]
            (Address::Unix(_), _) => Err(wrong_kind("a named Unix socket's", to)),
            _ => Err(wrong_kind("its own family's", to)),
        }
    }

    fn send(&self, data: &[u8], target: Target) -> io::Result<()> {
        let res = {
            let sock = self.sock.borrow();
            let Some(sock) = sock.as_ref() else {
                return Err(DatagramError::Closed.into());
            };
            match (sock, target) {
                (DatagramSocket::Udp(s), Target::Connected) => s.send(data),
                (DatagramSocket::Udp(s), Target::Inet(a)) => s.send_to(data, a),
                #[cfg(unix)]
                (DatagramSocket::Unix(s), Target::Connected) => s.send(data),
                #[cfg(unix)]
                (DatagramSocket::Unix(s), Target::Path(p)) => s.send_to(data, p),
                #[allow(unreachable_patterns)]
                (_, _) => return Err(wrong_kind("its own family's", "this address")),
            }
        };
        match res {
            Ok(n) if n == data.len() => Ok(()),
            Ok(n) => Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {n} of {} bytes of a datagram", data.len()),
            )),
            Err(e) => {
                if is_refusal(&e) && self.peer.borrow().is_some() {
                    self.refused_later();
                }
                Err(e)
            }
        }
    }

    fn read_loop(&self, buf: &mut [u8]) -> Result<IoStatus, Reason> {
        for _ in 0..DATAGRAM_BUDGET {
            let res = {
                let sock = self.sock.borrow();
                match sock.as_ref() {
                    Some(s) => s.recv(buf),
                    None => return Ok(IoStatus::Blocked),
                }
            };
            match res {
                Ok(r) => {
                    self.received.set(self.received.get() + 1);
                    let data = &buf[..r.len];
                    if r.truncated {
                        self.call("datagram_truncated", |p| {
                            p.datagram_truncated(data, r.size, r.from)
                        });
                    } else {
                        self.call("datagram_received", |p| p.datagram_received(data, r.from));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) if is_refusal(&e) => {
                    if self.peer.borrow().is_some() {
                        self.call("connection_refused", |p| p.connection_refused());
                    } else {
                        log::debug!(
                            "{}: refusal reported on an unconnected socket: {e}",
                            self.host
                        );
                    }
                }
                Err(e) => log::warn!("{}: receiving a datagram: {e}", self.host),
            }
        }
        Ok(IoStatus::More)
    }
}

enum Target {
    Connected,
    Inet(SocketAddr),
    #[cfg(unix)]
    Path(std::path::PathBuf),
}

/// An ICMP refusal as the socket reports it: `ECONNREFUSED` (Unix), `WSAECONNRESET`
/// (Windows, where a port-unreachable resets the socket).
fn is_refusal(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// Addresses equal, reading an IPv4-mapped IPv6 address as its IPv4 address.
fn same_address(a: &Address, b: &Address) -> bool {
    fn norm(a: &Address) -> Address {
        match a {
            Address::Ipv6(v6) => match v6.ip().to_ipv4_mapped() {
                Some(v4) => Address::Ipv4(SocketAddrV4::new(v4, v6.port())),
                None => a.clone(),
            },
            other => other.clone(),
        }
    }
    norm(a) == norm(b)
}

impl Selectable for DatagramPort {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.sock.borrow_mut().as_mut() {
            Some(s) => registry.register(s.source(), token, Interest::READABLE),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        match self.sock.borrow_mut().as_mut() {
            Some(s) => registry.deregister(s.source()),
            None => Ok(()),
        }
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        let size = self.max_size.get();
        if size != MAX_DATAGRAM_SIZE {
            if let Ok(mut own) = self.own_buf.try_borrow_mut() {
                own.resize(size, 0);
                return self.read_loop(&mut own);
            }
        }
        RECV_BUF.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => self.read_loop(&mut buf),
            Err(_) => self.read_loop(&mut vec![0; MAX_DATAGRAM_SIZE]),
        })
    }

    fn connection_lost(&self, reason: Reason) {
        log::debug!("{}: datagram port closed: {reason}", self.host);
        self.token.set(None);
        self.close();
        self.stop_scheduled.set(true);
        self.finish();
    }

    fn describe(&self) -> String {
        format!("datagram port {}", self.host)
    }
}

impl DatagramTransport for DatagramPort {
    fn write(&self, data: &[u8], to: &Address) -> io::Result<()> {
        let target = self.target(to)?;
        self.send(data, target)
    }

    fn write_connected(&self, data: &[u8]) -> io::Result<()> {
        if self.peer.borrow().is_none() {
            return Err(DatagramError::NotConnected.into());
        }
        self.send(data, Target::Connected)
    }

    fn connect(&self, addr: &Address) -> io::Result<()> {
        if self.peer.borrow().is_some() {
            return Err(DatagramError::AlreadyConnected.into());
        }
        let target = self.target(addr)?;
        {
            let sock = self.sock.borrow();
            let Some(sock) = sock.as_ref() else {
                return Err(DatagramError::Closed.into());
            };
            match (sock, &target) {
                (DatagramSocket::Udp(s), Target::Inet(a)) => s.connect(*a)?,
                #[cfg(unix)]
                (DatagramSocket::Unix(s), Target::Path(p)) => s.connect(p)?,
                _ => return Err(wrong_kind("its own family's", addr)),
            }
        }
        *self.peer.borrow_mut() = Some(addr.clone());
        Ok(())
    }

    fn peer(&self) -> Option<Address> {
        self.peer.borrow().clone()
    }

    fn host(&self) -> Address {
        self.host.clone()
    }

    fn stop_listening(&self) {
        self.close();
        self.schedule_stop();
    }

    fn set_broadcast_allowed(&self, allowed: bool) -> io::Result<()> {
        self.with_sock(|s| s.udp()?.set_broadcast(allowed))
    }

    fn broadcast_allowed(&self) -> io::Result<bool> {
        self.with_sock(|s| s.udp()?.broadcast())
    }

    fn join_group(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()> {
        self.multicast(group, interface, true)
    }

    fn leave_group(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()> {
        self.multicast(group, interface, false)
    }

    fn set_multicast_ttl(&self, ttl: u32) -> io::Result<()> {
        self.by_family(
            |s| s.set_multicast_ttl_v4(ttl),
            |s| syssock::set_multicast_hops_v6(s, ttl),
        )
    }

    fn multicast_ttl(&self) -> io::Result<u32> {
        self.by_family(|s| s.multicast_ttl_v4(), syssock::multicast_hops_v6)
    }

    fn set_multicast_loopback(&self, on: bool) -> io::Result<()> {
        self.by_family(
            |s| s.set_multicast_loop_v4(on),
            |s| s.set_multicast_loop_v6(on),
        )
    }

    fn multicast_loopback(&self) -> io::Result<bool> {
        self.by_family(|s| s.multicast_loop_v4(), |s| s.multicast_loop_v6())
    }

    fn set_multicast_interface(&self, interface: MulticastInterface) -> io::Result<()> {
        let v6 = self.is_v6();
        self.with_sock(|s| {
            let s = s.udp()?;
            match (v6, interface) {
                (false, MulticastInterface::Any) => {
                    syssock::set_multicast_if_v4(s, Ipv4Addr::UNSPECIFIED)
                }
                (false, MulticastInterface::V4(a)) => syssock::set_multicast_if_v4(s, a),
                (true, MulticastInterface::Any) => syssock::set_multicast_if_v6(s, 0),
                (true, MulticastInterface::Index(i)) => syssock::set_multicast_if_v6(s, i),
                (false, other) => Err(wrong_kind("IPv4 interface", other)),
                (true, other) => Err(wrong_kind("IPv6 interface-index", other)),
            }
        })
    }
}

impl DatagramPort {
    fn is_v6(&self) -> bool {
        matches!(self.host, Address::Ipv6(_))
    }

    fn with_sock<R>(&self, f: impl FnOnce(&DatagramSocket) -> io::Result<R>) -> io::Result<R> {
        let sock = self.sock.borrow();
        match sock.as_ref() {
            Some(s) => f(s),
            None => Err(DatagramError::Closed.into()),
        }
    }

    /// Run `v4` or `v6` on the UDP socket, as the port's family says (`Unsupported` on a
    /// Unix datagram socket, `Closed` once stopped).
    fn by_family<R>(
        &self,
        v4: impl FnOnce(&mio::net::UdpSocket) -> io::Result<R>,
        v6: impl FnOnce(&mio::net::UdpSocket) -> io::Result<R>,
    ) -> io::Result<R> {
        let is_v6 = self.is_v6();
        self.with_sock(|s| {
            let s = s.udp()?;
            if is_v6 { v6(s) } else { v4(s) }
        })
    }

    fn multicast(
        &self,
        group: IpAddr,
        interface: MulticastInterface,
        join: bool,
    ) -> io::Result<()> {
        let v6 = self.is_v6();
        self.with_sock(|s| {
            let s = s.udp()?;
            match (v6, group, interface) {
                (false, IpAddr::V4(g), MulticastInterface::Any) => {
                    v4_membership(s, g, Ipv4Addr::UNSPECIFIED, join)
                }
                (false, IpAddr::V4(g), MulticastInterface::V4(i)) => v4_membership(s, g, i, join),
                (true, IpAddr::V6(g), MulticastInterface::Any) => v6_membership(s, g, 0, join),
                (true, IpAddr::V6(g), MulticastInterface::Index(i)) => v6_membership(s, g, i, join),
                (false, IpAddr::V6(_), _) | (true, IpAddr::V4(_), _) => {
                    Err(wrong_kind(if v6 { "IPv6" } else { "IPv4" }, group))
                }
                (_, _, other) => Err(wrong_kind(
                    if v6 {
                        "IPv6 interface-index"
                    } else {
                        "IPv4 interface"
                    },
                    other,
                )),
            }
        })
    }
}
