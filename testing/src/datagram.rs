//! [`FakeDatagramTransport`]: a datagram socket for tests (CONTRACT O7). Twisted's test
//! kit has no UDP fake (twisted#9695); this one records what a [`DatagramProtocol`] sends
//! and lets the test deliver datagrams, connect, and refuse.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::rc::{Rc, Weak};

use torsion_transport::{
    Address, DatagramError, DatagramProtocol, DatagramTransport, MulticastInterface,
};

/// The largest UDP payload over IPv4: a larger [`write`](DatagramTransport::write) to the
/// fake fails as the kernel's would (`EMSGSIZE`).
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// One datagram a protocol wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDatagram {
    /// Its bytes.
    pub data: Vec<u8>,
    /// Where it went: the address given, or the connected peer for `write_connected`.
    pub to: Address,
}

/// A [`DatagramTransport`] for tests: it records every datagram written (with its
/// address) and every option set, and the test plays the network: [`deliver`](Self::deliver)
/// a datagram, [`refuse`](Self::refuse) one (an ICMP refusal on a connected socket),
/// [`set_refusing`](Self::set_refusing) to make writes fail as on a refused socket.
///
/// It checks what the real port checks: a connected socket sends only to its peer and
/// receives only from it, a second `connect` is an error, nothing goes out after
/// `stop_listening`, and a datagram over [`MAX_UDP_PAYLOAD`] is refused.
///
/// Unlike the reactor's port, the fake calls the protocol synchronously from the test's
/// calls (`deliver`, `refuse`, `stop_listening`), as Twisted's fakes do; a call made while
/// the protocol is on the stack (the protocol stopping inside `datagram_received`) is
/// delivered when that callback returns.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use torsion_testing::FakeDatagramTransport;
/// use torsion_transport::{Address, DatagramProtocol, DatagramTransport};
///
/// #[derive(Default)]
/// struct Echo(Option<Rc<dyn DatagramTransport>>);
/// impl DatagramProtocol for Echo {
///     fn start_protocol(&mut self, t: Rc<dyn DatagramTransport>) { self.0 = Some(t) }
///     fn datagram_received(&mut self, data: &[u8], from: Address) {
///         self.0.as_ref().unwrap().write(data, &from).unwrap();
///     }
/// }
///
/// let port = FakeDatagramTransport::new(Address::Memory("server".into()));
/// port.start(Box::new(Echo::default()));
/// let client = Address::Memory("client".into());
/// assert!(port.deliver(b"ping", client.clone()));
/// assert_eq!(port.sent()[0].data, b"ping");
/// assert_eq!(port.sent()[0].to, client);
/// ```
pub struct FakeDatagramTransport {
    host: Address,
    peer: RefCell<Option<Address>>,
    sent: RefCell<Vec<SentDatagram>>,
    protocol: RefCell<Option<Box<dyn DatagramProtocol>>>,
    stopped: Cell<bool>,
    stop_pending: Cell<bool>,
    protocol_stopped: Cell<bool>,
    refusing: Cell<bool>,
    broadcast: Cell<bool>,
    groups: RefCell<Vec<(IpAddr, MulticastInterface)>>,
    ttl: Cell<u32>,
    loopback: Cell<bool>,
    interface: Cell<MulticastInterface>,
    me: Weak<Self>,
}

impl fmt::Debug for FakeDatagramTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeDatagramTransport")
            .field("host", &self.host)
            .field("peer", &*self.peer.borrow())
            .field("sent", &self.sent.borrow().len())
            .field("stopped", &self.stopped.get())
            .finish_non_exhaustive()
    }
}

impl FakeDatagramTransport {
    /// A fake socket bound to `host`, with no protocol yet.
    pub fn new(host: Address) -> Rc<Self> {
        Rc::new_cyclic(|me| FakeDatagramTransport {
            host,
            peer: RefCell::new(None),
            sent: RefCell::new(Vec::new()),
            protocol: RefCell::new(None),
            stopped: Cell::new(false),
            stop_pending: Cell::new(false),
            protocol_stopped: Cell::new(false),
            refusing: Cell::new(false),
            broadcast: Cell::new(false),
            groups: RefCell::new(Vec::new()),
            ttl: Cell::new(1),
            loopback: Cell::new(true),
            interface: Cell::new(MulticastInterface::Any),
            me: me.clone(),
        })
    }

    /// Give the fake its protocol and call `start_protocol` with the fake as transport.
    pub fn start(&self, protocol: Box<dyn DatagramProtocol>) {
        *self.protocol.borrow_mut() = Some(protocol);
        if let Some(me) = self.me.upgrade() {
            let transport: Rc<dyn DatagramTransport> = me;
            self.call(|p| p.start_protocol(transport));
        }
    }

    /// Call the protocol; then deliver a `stop_protocol` asked for meanwhile. `false` if
    /// there is no protocol or it is on the stack already.
    fn call(&self, f: impl FnOnce(&mut dyn DatagramProtocol)) -> bool {
        let called = match self.protocol.try_borrow_mut() {
            Ok(mut slot) => match slot.as_mut() {
                Some(p) => {
                    f(p.as_mut());
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        if self.stop_pending.get() {
            self.finish();
        }
        called
    }

    fn finish(&self) {
        let Ok(mut slot) = self.protocol.try_borrow_mut() else {
            return;
        };
        self.stop_pending.set(false);
        if let Some(mut p) = slot.take() {
            drop(slot);
            self.protocol_stopped.set(true);
            p.stop_protocol();
        }
    }

    /// Deliver a datagram from `from` to the protocol's `datagram_received`. Returns
    /// `false` (and delivers nothing) after `stop_listening`, or when connected to another
    /// address (the kernel filters those), or while the protocol is on the stack.
    pub fn deliver(&self, data: &[u8], from: Address) -> bool {
        if self.stopped.get() {
            return false;
        }
        if let Some(peer) = self.peer.borrow().as_ref() {
            if *peer != from {
                return false;
            }
        }
        self.call(|p| p.datagram_received(data, from))
    }

    /// Deliver a datagram too large for the receive buffer: `datagram_truncated(prefix,
    /// Some(size), from)`. Same conditions as [`deliver`](Self::deliver).
    pub fn deliver_truncated(&self, prefix: &[u8], size: usize, from: Address) -> bool {
        if self.stopped.get() {
            return false;
        }
        self.call(|p| p.datagram_truncated(prefix, Some(size), from))
    }

    /// An ICMP refusal: the protocol's `connection_refused`, on a connected socket only
    /// (as with the real one). Returns whether it was delivered.
    pub fn refuse(&self) -> bool {
        if self.stopped.get() || self.peer.borrow().is_none() {
            return false;
        }
        self.call(|p| p.connection_refused())
    }

    /// While on, writes on a connected socket fail with `ConnectionRefused` (and are not
    /// recorded), as after the peer refused.
    pub fn set_refusing(&self, on: bool) {
        self.refusing.set(on);
    }

    /// The datagrams written, in order.
    pub fn sent(&self) -> Vec<SentDatagram> {
        self.sent.borrow().clone()
    }

    /// Forget the datagrams written.
    pub fn clear(&self) {
        self.sent.borrow_mut().clear();
    }

    /// True once `stop_listening` was called.
    pub fn stopped(&self) -> bool {
        self.stopped.get()
    }

    /// True once the protocol got `stop_protocol`.
    pub fn protocol_stopped(&self) -> bool {
        self.protocol_stopped.get()
    }

    /// The multicast groups joined and not left.
    pub fn groups(&self) -> Vec<(IpAddr, MulticastInterface)> {
        self.groups.borrow().clone()
    }

    /// The outgoing multicast interface set.
    pub fn multicast_interface(&self) -> MulticastInterface {
        self.interface.get()
    }

    fn record(&self, data: &[u8], to: Address) -> io::Result<()> {
        if self.stopped.get() {
            return Err(DatagramError::Closed.into());
        }
        if data.len() > MAX_UDP_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "message too long: a {}-byte datagram (at most {MAX_UDP_PAYLOAD})",
                    data.len()
                ),
            ));
        }
        if self.refusing.get() && self.peer.borrow().is_some() {
            return Err(io::ErrorKind::ConnectionRefused.into());
        }
        self.sent.borrow_mut().push(SentDatagram {
            data: data.to_vec(),
            to,
        });
        Ok(())
    }

    fn open(&self) -> io::Result<()> {
        if self.stopped.get() {
            Err(DatagramError::Closed.into())
        } else {
            Ok(())
        }
    }
}

impl DatagramTransport for FakeDatagramTransport {
    fn write(&self, data: &[u8], to: &Address) -> io::Result<()> {
        if let Some(peer) = self.peer.borrow().as_ref() {
            if peer != to {
                return Err(DatagramError::ConnectedElsewhere {
                    peer: peer.clone(),
                    to: to.clone(),
                }
                .into());
            }
        }
        self.record(data, to.clone())
    }

    fn write_connected(&self, data: &[u8]) -> io::Result<()> {
        let peer = self.peer.borrow().clone();
        match peer {
            Some(peer) => self.record(data, peer),
            None => Err(DatagramError::NotConnected.into()),
        }
    }

    fn connect(&self, addr: &Address) -> io::Result<()> {
        self.open()?;
        if self.peer.borrow().is_some() {
            return Err(DatagramError::AlreadyConnected.into());
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
        if self.stopped.replace(true) {
            return;
        }
        self.stop_pending.set(true);
        self.finish();
    }

    fn set_broadcast_allowed(&self, allowed: bool) -> io::Result<()> {
        self.open()?;
        self.broadcast.set(allowed);
        Ok(())
    }

    fn broadcast_allowed(&self) -> io::Result<bool> {
        self.open()?;
        Ok(self.broadcast.get())
    }

    fn join_group(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()> {
        self.open()?;
        let mut groups = self.groups.borrow_mut();
        if groups.contains(&(group, interface)) {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("already a member of {group}"),
            ));
        }
        groups.push((group, interface));
        Ok(())
    }

    fn leave_group(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()> {
        self.open()?;
        let mut groups = self.groups.borrow_mut();
        match groups.iter().position(|g| *g == (group, interface)) {
            Some(i) => {
                groups.remove(i);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!("not a member of {group}"),
            )),
        }
    }

    fn set_multicast_ttl(&self, ttl: u32) -> io::Result<()> {
        self.open()?;
        self.ttl.set(ttl);
        Ok(())
    }

    fn multicast_ttl(&self) -> io::Result<u32> {
        self.open()?;
        Ok(self.ttl.get())
    }

    fn set_multicast_loopback(&self, on: bool) -> io::Result<()> {
        self.open()?;
        self.loopback.set(on);
        Ok(())
    }

    fn multicast_loopback(&self) -> io::Result<bool> {
        self.open()?;
        Ok(self.loopback.get())
    }

    fn set_multicast_interface(&self, interface: MulticastInterface) -> io::Result<()> {
        self.open()?;
        self.interface.set(interface);
        Ok(())
    }
}
