//! Datagram receives, binding with options, and the multicast options std lacks, through
//! Winsock.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::windows::io::AsRawSocket;

use torsion_transport::{Address, ListenOptions};
use windows_sys::Win32::Networking::WinSock::{
    IN_ADDR, IN_ADDR_0, IP_MULTICAST_IF, IPPROTO_IP, IPPROTO_IPV6, IPV6_MULTICAST_HOPS,
    IPV6_MULTICAST_IF, SOCKET, SOCKET_ERROR, WSAEMSGSIZE, WSAGetLastError, getsockopt, setsockopt,
};

use crate::datagram::Received;

fn wsa(ret: i32) -> io::Result<()> {
    if ret == SOCKET_ERROR {
        // SAFETY: WSAGetLastError only reads the calling thread's last Winsock error.
        Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
    } else {
        Ok(())
    }
}

fn raw(sock: &mio::net::UdpSocket) -> SOCKET {
    sock.as_raw_socket() as SOCKET
}

fn set_raw<T>(sock: &mio::net::UdpSocket, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: the pointer is to a live `T` and the length is its size.
    wsa(unsafe {
        setsockopt(
            raw(sock),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as i32,
        )
    })
}

/// Receive one datagram; a datagram larger than `buf` is `WSAEMSGSIZE` on Windows, with
/// `buf` holding its start.
///
/// # References
/// `recvfrom` (winsock2.h).
pub(crate) fn recv_udp(sock: &mio::net::UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    match sock.recv_from(buf) {
        Ok((len, from)) => Ok(Received {
            len,
            truncated: false,
            size: None,
            from: Address::from(from),
        }),
        Err(e) if e.raw_os_error() == Some(WSAEMSGSIZE) => Ok(Received {
            len: buf.len(),
            truncated: true,
            size: None,
            from: Address::Memory("unknown".into()),
        }),
        Err(e) => Err(e),
    }
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported on Windows"),
    )
}

fn check(options: &ListenOptions) -> io::Result<()> {
    if options.reuse_port {
        return Err(unsupported("SO_REUSEPORT"));
    }
    if options.ipv6_only == Some(false) {
        return Err(unsupported(
            "a dual-stack listening socket (ipv6_only = false)",
        ));
    }
    Ok(())
}

/// A non-blocking UDP socket bound to `addr`.
///
/// # Portability
/// `reuse_port` and `ipv6_only = Some(false)` are `Unsupported` (Windows sockets are
/// IPv6-only by default).
pub(crate) fn bind_udp(
    addr: SocketAddr,
    options: &ListenOptions,
) -> io::Result<mio::net::UdpSocket> {
    check(options)?;
    mio::net::UdpSocket::bind(addr)
}

/// A non-blocking TCP listener on `addr`; as [`bind_udp`].
pub(crate) fn bind_tcp(
    addr: SocketAddr,
    options: &ListenOptions,
) -> io::Result<mio::net::TcpListener> {
    check(options)?;
    let listener = std::net::TcpListener::bind(addr)?;
    super::net::set_backlog(&listener, options.backlog)?;
    listener.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(listener))
}

/// `IPV6_MULTICAST_HOPS`.
pub(crate) fn set_multicast_hops_v6(sock: &mio::net::UdpSocket, hops: u32) -> io::Result<()> {
    let hops = i32::try_from(hops).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    set_raw(sock, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops)
}

/// `IPV6_MULTICAST_HOPS`.
pub(crate) fn multicast_hops_v6(sock: &mio::net::UdpSocket) -> io::Result<u32> {
    let mut value: i32 = 0;
    let mut len = mem::size_of::<i32>() as i32;
    // SAFETY: the pointers are to live locals; `len` holds the size of `value`.
    wsa(unsafe {
        getsockopt(
            raw(sock),
            IPPROTO_IPV6,
            IPV6_MULTICAST_HOPS,
            (&raw mut value).cast(),
            &raw mut len,
        )
    })?;
    Ok(value.max(0) as u32)
}

/// `IP_MULTICAST_IF` with the interface's address.
pub(crate) fn set_multicast_if_v4(
    sock: &mio::net::UdpSocket,
    interface: Ipv4Addr,
) -> io::Result<()> {
    let addr = IN_ADDR {
        S_un: IN_ADDR_0 {
            S_addr: u32::from_ne_bytes(interface.octets()),
        },
    };
    set_raw(sock, IPPROTO_IP, IP_MULTICAST_IF, &addr)
}

/// `IPV6_MULTICAST_IF` with the interface's index.
pub(crate) fn set_multicast_if_v6(sock: &mio::net::UdpSocket, index: u32) -> io::Result<()> {
    set_raw(sock, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index)
}
