//! Datagram sockets: UDP and Unix datagram sockets (Twisted's `IUDPTransport`,
//! `IMulticastTransport`, `DatagramProtocol` and `IReactorUDP`; CONTRACT Q).
//!
//! A [`DatagramProtocol`] is owned by its port, which is its [`DatagramTransport`]: there
//! is no connection and no factory. The port calls [`start_protocol`](DatagramProtocol::start_protocol)
//! once when it starts listening, [`datagram_received`](DatagramProtocol::datagram_received)
//! per datagram, and [`stop_protocol`](DatagramProtocol::stop_protocol) once when it stops.
//!
//! # Examples
//!
//! A UDP echo protocol:
//!
//! ```
//! use std::rc::Rc;
//! use torsion_transport::{Address, DatagramProtocol, DatagramTransport};
//!
//! #[derive(Default)]
//! struct Echo(Option<Rc<dyn DatagramTransport>>);
//!
//! impl DatagramProtocol for Echo {
//!     fn start_protocol(&mut self, transport: Rc<dyn DatagramTransport>) {
//!         self.0 = Some(transport);
//!     }
//!     fn datagram_received(&mut self, data: &[u8], from: Address) {
//!         if let Some(t) = &self.0 {
//!             if let Err(e) = t.write(data, &from) {
//!                 log::warn!("cannot echo to {from}: {e}");
//!             }
//!         }
//!     }
//! }
//! # let _ = Echo::default();
//! ```

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use crate::Address;

/// The largest datagram a port receives whole by default: 64 KiB, more than any UDP
/// payload over IPv4 or IPv6 (65,507 and 65,527 bytes) without jumbograms. A larger one
/// (possible on a Unix datagram socket) is reported through
/// [`DatagramProtocol::datagram_truncated`], never passed on silently cut.
pub const MAX_DATAGRAM_SIZE: usize = 64 * 1024;

/// The code that handles a datagram socket (Twisted's `DatagramProtocol`).
///
/// The port owns its protocol (`Box<dyn DatagramProtocol>`) and calls these methods from
/// the loop, never while another of them is on the stack, and never from inside a
/// [`DatagramTransport`] method (ARCHITECTURE, ownership rule 4). Every call goes through
/// the reactor's funnel: a panic is caught and logged and the port keeps running.
pub trait DatagramProtocol {
    /// The port is listening; `transport` writes and controls it. Called once, first,
    /// from inside `listen_udp` (Twisted's `startProtocol`, called from `doStart`). Keep
    /// the `Rc` to write later.
    #[doc(alias = "startProtocol")]
    #[doc(alias = "doStart")]
    fn start_protocol(&mut self, transport: Rc<dyn DatagramTransport>) {
        let _ = transport;
    }

    /// A datagram arrived from `from` (CONTRACT Q1). `data` is the whole datagram.
    #[doc(alias = "datagramReceived")]
    fn datagram_received(&mut self, data: &[u8], from: Address);

    /// A datagram larger than the port's receive buffer arrived (CONTRACT Q3): `data` holds
    /// its first bytes, `size` its full length where the system reports it (Linux; `None`
    /// elsewhere). It is *not* passed to [`datagram_received`](Self::datagram_received).
    /// The default logs a warning naming the sender and the sizes.
    fn datagram_truncated(&mut self, data: &[u8], size: Option<usize>, from: Address) {
        match size {
            Some(size) => log::warn!(
                "dropped a {size}-byte datagram from {from}: larger than the {}-byte receive buffer",
                data.len()
            ),
            None => log::warn!(
                "dropped a datagram from {from}: larger than the {}-byte receive buffer",
                data.len()
            ),
        }
    }

    /// A connected socket's peer refused a datagram (an ICMP port-unreachable, reported by
    /// the kernel as `ECONNREFUSED` on a later receive or send; CONTRACT Q2). The port stays
    /// open. Only connected sockets learn of refusals.
    #[doc(alias = "connectionRefused")]
    fn connection_refused(&mut self) {}

    /// The port stopped listening (Twisted's `stopProtocol`, called from `doStop`): called
    /// once, last; the protocol is dropped after it returns.
    #[doc(alias = "stopProtocol")]
    #[doc(alias = "doStop")]
    fn stop_protocol(&mut self) {}
}

/// Which interface a multicast operation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MulticastInterface {
    /// Let the system choose (`INADDR_ANY`, or interface index 0 for IPv6).
    #[default]
    Any,
    /// The IPv4 interface with this address (IPv4 groups only).
    V4(Ipv4Addr),
    /// The interface with this index (`if_nametoindex`; IPv6 groups only).
    Index(u32),
}

/// Says which interface in words, for error messages: "any interface", "the IPv4
/// interface 192.0.2.1", "interface index 3".
impl fmt::Display for MulticastInterface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MulticastInterface::Any => f.write_str("any interface"),
            MulticastInterface::V4(a) => write!(f, "the IPv4 interface {a}"),
            MulticastInterface::Index(i) => write!(f, "interface index {i}"),
        }
    }
}

/// A datagram socket (Twisted's `IUDPTransport` + `IMulticastTransport`): what a
/// [`DatagramProtocol`] writes to. Implemented by the reactor's UDP and Unix datagram
/// ports and by the test kit's fake.
///
/// **Re-entrancy:** no method calls back into the protocol synchronously (CONTRACT C6);
/// a refusal seen by [`write`](Self::write) is returned *and* reported to
/// `connection_refused` from the loop.
///
/// Errors are `io::Error`s; where torsion itself refuses, the error wraps a
/// [`DatagramError`] (see [`DatagramError::of`]).
pub trait DatagramTransport {
    /// Send `data` as one datagram to `to` (Twisted's `write(datagram, addr)`; CONTRACT Q1).
    /// A datagram is sent whole or not at all; nothing is buffered.
    ///
    /// # Errors
    ///
    /// - `EMSGSIZE` (the OS error; kind `InvalidInput` on some systems) for a datagram too
    ///   big for the socket (CONTRACT Q3);
    /// - `WouldBlock` when the socket's send buffer is full: the datagram was not sent;
    /// - [`DatagramError::ConnectedElsewhere`] on a connected socket when `to` is not its
    ///   peer; [`DatagramError::WrongAddressKind`] for an address of another family;
    ///   [`DatagramError::Closed`] after `stop_listening`;
    /// - `ConnectionRefused` on a connected socket whose peer refused an earlier datagram
    ///   (then `connection_refused` is also called, from the loop).
    fn write(&self, data: &[u8], to: &Address) -> io::Result<()>;

    /// Send `data` to the peer of a connected socket (Twisted's `write(datagram)` without
    /// an address).
    ///
    /// # Errors
    ///
    /// [`DatagramError::NotConnected`] if [`connect`](Self::connect) was not called; else
    /// as [`write`](Self::write).
    #[doc(alias = "send")]
    fn write_connected(&self, data: &[u8]) -> io::Result<()>;

    /// Connect the socket to `addr` (Twisted's `connect(host, port)`): from now on only
    /// datagrams from `addr` are received, [`write_connected`](Self::write_connected) sends
    /// to it, and a refusal is reported to [`DatagramProtocol::connection_refused`]
    /// (CONTRACT Q2).
    ///
    /// # Errors
    ///
    /// [`DatagramError::AlreadyConnected`] on a second call (as in Twisted);
    /// [`DatagramError::WrongAddressKind`]; the OS error of `connect(2)`.
    fn connect(&self, addr: &Address) -> io::Result<()>;

    /// The peer of a connected socket.
    fn peer(&self) -> Option<Address>;

    /// The local address (with the real port when port 0 was asked for).
    #[doc(alias = "getHost")]
    fn host(&self) -> Address;

    /// Stop listening: the socket is closed now and the protocol gets `stop_protocol` from
    /// the loop. Calling it again is a no-op.
    #[doc(alias = "stopListening")]
    #[doc(alias = "loseConnection")]
    fn stop_listening(&self);

    /// Allow sending to broadcast addresses (`SO_BROADCAST`; Twisted's
    /// `setBroadcastAllowed`).
    ///
    /// # Errors
    ///
    /// The OS error; `Unsupported` on a socket family without broadcast.
    #[doc(alias = "setBroadcastAllowed")]
    fn set_broadcast_allowed(&self, allowed: bool) -> io::Result<()>;

    /// Whether broadcast is allowed (Twisted's `getBroadcastAllowed`).
    ///
    /// # Errors
    ///
    /// As [`set_broadcast_allowed`](Self::set_broadcast_allowed).
    #[doc(alias = "getBroadcastAllowed")]
    fn broadcast_allowed(&self) -> io::Result<bool>;

    /// Join the multicast `group` on `interface` (Twisted's `joinGroup`).
    ///
    /// # Errors
    ///
    /// [`DatagramError::WrongAddressKind`] for a group of the other IP family than the
    /// socket, or an interface of the wrong kind; the OS error (`EADDRINUSE` if already
    /// joined, `ENODEV`, ...); `Unsupported` on a Unix socket.
    #[doc(alias = "joinGroup")]
    fn join_group(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()>;

    /// Leave a group joined with [`join_group`](Self::join_group) (Twisted's `leaveGroup`).
    ///
    /// # Errors
    ///
    /// As [`join_group`](Self::join_group).
    #[doc(alias = "leaveGroup")]
    fn leave_group(&self, group: IpAddr, interface: MulticastInterface) -> io::Result<()>;

    /// The time-to-live (hop limit) of multicast datagrams sent (Twisted's `setTTL`).
    ///
    /// # Errors
    ///
    /// The OS error; `Unsupported` on a Unix socket.
    #[doc(alias = "setTTL")]
    fn set_multicast_ttl(&self, ttl: u32) -> io::Result<()>;

    /// The multicast time-to-live (Twisted's `getTTL`).
    ///
    /// # Errors
    ///
    /// As [`set_multicast_ttl`](Self::set_multicast_ttl).
    #[doc(alias = "getTTL")]
    fn multicast_ttl(&self) -> io::Result<u32>;

    /// Whether multicast datagrams sent are looped back to this host (Twisted's
    /// `setLoopbackMode`).
    ///
    /// # Errors
    ///
    /// As [`set_multicast_ttl`](Self::set_multicast_ttl).
    #[doc(alias = "setLoopbackMode")]
    fn set_multicast_loopback(&self, on: bool) -> io::Result<()>;

    /// The multicast loopback mode (Twisted's `getLoopbackMode`).
    ///
    /// # Errors
    ///
    /// As [`set_multicast_ttl`](Self::set_multicast_ttl).
    #[doc(alias = "getLoopbackMode")]
    fn multicast_loopback(&self) -> io::Result<bool>;

    /// The interface outgoing multicast datagrams leave by (Twisted's
    /// `setOutgoingInterface`).
    ///
    /// # Errors
    ///
    /// As [`join_group`](Self::join_group).
    #[doc(alias = "setOutgoingInterface")]
    fn set_multicast_interface(&self, interface: MulticastInterface) -> io::Result<()>;
}

/// Why a datagram operation was refused by torsion (not by the OS). Carried inside the
/// `io::Error` the operation returns; [`DatagramError::of`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatagramError {
    /// `connect` on a socket that is already connected (Twisted: "already connected").
    AlreadyConnected,
    /// `write_connected` on a socket that is not connected.
    NotConnected,
    /// `write` to an address other than the connected peer.
    ConnectedElsewhere {
        /// The connected peer.
        peer: Address,
        /// The address given.
        to: Address,
    },
    /// An address (or multicast group or interface) of the wrong kind for this socket: an
    /// IPv6 address on an IPv4 socket, a path on a UDP socket.
    WrongAddressKind {
        /// What the socket needs (`"IPv4"`, `"IPv6"`, `"a Unix path"`).
        expected: &'static str,
        /// The address given.
        got: String,
    },
    /// The port stopped listening.
    Closed,
}

impl DatagramError {
    /// The `DatagramError` inside an `io::Error` returned by a datagram operation, if
    /// torsion (rather than the OS) refused it.
    pub fn of(e: &io::Error) -> Option<&DatagramError> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }

    fn kind(&self) -> io::ErrorKind {
        match self {
            DatagramError::AlreadyConnected => io::ErrorKind::AlreadyExists,
            DatagramError::NotConnected | DatagramError::Closed => io::ErrorKind::NotConnected,
            DatagramError::ConnectedElsewhere { .. } | DatagramError::WrongAddressKind { .. } => {
                io::ErrorKind::InvalidInput
            }
        }
    }
}

impl fmt::Display for DatagramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramError::AlreadyConnected => {
                f.write_str("the datagram socket is already connected; a socket connects once")
            }
            DatagramError::NotConnected => f.write_str(
                "the datagram socket is not connected: call connect first, or write with an address",
            ),
            DatagramError::ConnectedElsewhere { peer, to } => write!(
                f,
                "the datagram socket is connected to {peer} and cannot send to {to}"
            ),
            DatagramError::WrongAddressKind { expected, got } => {
                write!(f, "this datagram socket needs {expected} addresses, not {got}")
            }
            DatagramError::Closed => f.write_str("the datagram port has stopped listening"),
        }
    }
}

impl std::error::Error for DatagramError {}

impl From<DatagramError> for io::Error {
    fn from(e: DatagramError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// UDP (Twisted's `IReactorUDP`), so application code is generic over the real reactor and
/// the test kit's `MemoryReactor`.
pub trait ReactorUdp {
    /// Bind a UDP socket to `addr` (port 0 picks a free port) and start `protocol` on it:
    /// `start_protocol` is called before this returns (CONTRACT Q1).
    ///
    /// # Errors
    ///
    /// The OS error of `socket`/`bind` (`AddrInUse`, `PermissionDenied`,
    /// `AddrNotAvailable`, ...); the protocol is dropped without a callback.
    #[doc(alias = "listenUDP")]
    fn listen_udp(
        &self,
        addr: SocketAddr,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<dyn DatagramTransport>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_typed_inside_io_errors() {
        let e: io::Error = DatagramError::AlreadyConnected.into();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(
            DatagramError::of(&e),
            Some(&DatagramError::AlreadyConnected)
        );
        assert!(e.to_string().contains("already connected"));
        let os = io::Error::from_raw_os_error(90);
        assert_eq!(DatagramError::of(&os), None);
    }
}
