//! The reactor's datagram entry points: `listen_udp` and the Unix datagram forms
//! (CONTRACT Q1).

use std::io;
use std::net::SocketAddr;
#[cfg(unix)]
use std::path::Path;
use std::rc::Rc;

use torsion_transport::{DatagramProtocol, DatagramTransport, ListenOptions, ReactorUdp};

#[cfg(unix)]
use super::UnixDatagramPort;
use super::{DatagramPort, DatagramSocket, UdpPort};
use crate::reactor::Reactor;
use crate::sys::socket as syssock;

impl Reactor {
    /// Bind a UDP socket to `addr` (port 0 picks a free port) and start `protocol` on it
    /// (Twisted's `listenUDP`; CONTRACT Q1): `start_protocol` is called before this
    /// returns, then `datagram_received` from the loop for each datagram.
    ///
    /// # Errors
    ///
    /// The OS error of `socket`/`bind` (`AddrInUse`, `PermissionDenied`,
    /// `AddrNotAvailable`, ...); the protocol is dropped without a callback.
    #[doc(alias = "listenUDP")]
    pub fn listen_udp(
        &self,
        addr: SocketAddr,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<UdpPort>> {
        self.listen_udp_with(addr, ListenOptions::default(), protocol)
    }

    /// [`listen_udp`](Self::listen_udp) with socket options set before `bind`
    /// (`SO_REUSEPORT`, `IPV6_V6ONLY`; the backlog is ignored).
    ///
    /// # Errors
    ///
    /// As `listen_udp`; `Unsupported` for `reuse_port` on a system without it.
    pub fn listen_udp_with(
        &self,
        addr: SocketAddr,
        options: ListenOptions,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<UdpPort>> {
        let sock = syssock::bind_udp(addr, &options)?;
        DatagramPort::start(self, DatagramSocket::Udp(sock), protocol)
    }

    /// Bind a Unix datagram socket to the file `path` and start `protocol` on it
    /// (Twisted's `listenUNIXDatagram`). The socket file is removed when the port stops.
    ///
    /// # Errors
    ///
    /// The OS error of `bind` (`AddrInUse` if the path exists, ...).
    #[cfg(unix)]
    #[doc(alias = "listenUNIXDatagram")]
    pub fn listen_unix_datagram(
        &self,
        path: &Path,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<UnixDatagramPort>> {
        let sock = mio::net::UnixDatagram::bind(path)?;
        let unlink = crate::unix::unlink_when_closed(path);
        let port = DatagramPort::start(self, DatagramSocket::Unix(sock), protocol)?;
        if port.is_listening() {
            *port.on_close.borrow_mut() = unlink;
        } else if let Some(f) = unlink {
            f();
        }
        Ok(port)
    }

    /// An unbound Unix datagram socket connected to `path` (Twisted's
    /// `connectUNIXDatagram`): [`write_connected`](DatagramTransport::write_connected)
    /// sends there, and replies come back if the peer can address them (an unbound socket
    /// has no name, so a server sees `Address::Unix(None)`; bind with
    /// [`listen_unix_datagram`](Self::listen_unix_datagram) and `connect` instead to get
    /// replies).
    ///
    /// # Errors
    ///
    /// The OS error of `connect` (`NotFound`, `ConnectionRefused` if nobody is bound
    /// there).
    #[cfg(unix)]
    #[doc(alias = "connectUNIXDatagram")]
    pub fn connect_unix_datagram(
        &self,
        path: &Path,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<UnixDatagramPort>> {
        let sock = mio::net::UnixDatagram::unbound()?;
        sock.connect(path)?;
        DatagramPort::start(self, DatagramSocket::Unix(sock), protocol)
    }

    /// An unbound Unix datagram socket, to [`write`](DatagramTransport::write) to any
    /// named socket.
    ///
    /// # Errors
    ///
    /// The OS error of `socket`.
    #[cfg(unix)]
    pub fn unbound_unix_datagram(
        &self,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<UnixDatagramPort>> {
        let sock = mio::net::UnixDatagram::unbound()?;
        DatagramPort::start(self, DatagramSocket::Unix(sock), protocol)
    }
}

impl ReactorUdp for Reactor {
    fn listen_udp(
        &self,
        addr: SocketAddr,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<dyn DatagramTransport>> {
        Ok(Reactor::listen_udp(self, addr, protocol)?)
    }
}
