//! The socket under a datagram port: UDP or Unix datagram, one enum, and the multicast
//! membership calls.

use std::io;
use std::net::Ipv4Addr;
#[cfg(unix)]
use std::path::Path;

use torsion_transport::Address;

use crate::sys::socket as syssock;

/// One datagram received: see `sys::socket::recv_datagram`.
#[derive(Debug)]
pub(crate) struct Received {
    /// Bytes placed in the buffer.
    pub(crate) len: usize,
    /// The datagram did not fit.
    pub(crate) truncated: bool,
    /// Its full length, where the system reports it (Linux).
    pub(crate) size: Option<usize>,
    /// The sender.
    pub(crate) from: Address,
}

/// The socket under a [`DatagramPort`].
#[derive(Debug)]
pub(crate) enum DatagramSocket {
    Udp(mio::net::UdpSocket),
    #[cfg(unix)]
    Unix(mio::net::UnixDatagram),
}

impl DatagramSocket {
    pub(super) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            DatagramSocket::Udp(s) => s,
            #[cfg(unix)]
            DatagramSocket::Unix(s) => s,
        }
    }

    pub(super) fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        match self {
            DatagramSocket::Udp(s) => syssock::recv_udp(s, buf),
            #[cfg(unix)]
            DatagramSocket::Unix(s) => syssock::recv_unix_datagram(s, buf),
        }
    }

    pub(super) fn local_address(&self) -> Address {
        match self {
            DatagramSocket::Udp(s) => s
                .local_addr()
                .map(Address::from)
                .unwrap_or(Address::Memory("unknown".into())),
            #[cfg(unix)]
            DatagramSocket::Unix(s) => Address::Unix(
                s.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(Path::to_path_buf)),
            ),
        }
    }

    pub(super) fn peer_address(&self) -> Option<Address> {
        match self {
            DatagramSocket::Udp(s) => s.peer_addr().ok().map(Address::from),
            #[cfg(unix)]
            DatagramSocket::Unix(s) => s
                .peer_addr()
                .ok()
                .map(|a| Address::Unix(a.as_pathname().map(Path::to_path_buf))),
        }
    }

    pub(super) fn udp(&self) -> io::Result<&mio::net::UdpSocket> {
        match self {
            DatagramSocket::Udp(s) => Ok(s),
            #[cfg(unix)]
            DatagramSocket::Unix(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "broadcast and multicast are UDP options; this is a Unix datagram socket",
            )),
        }
    }
}

pub(super) fn v4_membership(
    s: &mio::net::UdpSocket,
    g: Ipv4Addr,
    i: Ipv4Addr,
    join: bool,
) -> io::Result<()> {
    if join {
        s.join_multicast_v4(&g, &i)
    } else {
        s.leave_multicast_v4(&g, &i)
    }
}

pub(super) fn v6_membership(
    s: &mio::net::UdpSocket,
    g: std::net::Ipv6Addr,
    i: u32,
    join: bool,
) -> io::Result<()> {
    if join {
        s.join_multicast_v6(&g, i)
    } else {
        s.leave_multicast_v6(&g, i)
    }
}
