//! Endpoint addresses returned by [`Transport::host`](crate::Transport::host) and
//! [`Transport::peer`](crate::Transport::peer).

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::PathBuf;

/// The address of one end of a connection.
///
/// Twisted's `IPv4Address`, `IPv6Address`, `UNIXAddress` and `_ProcessAddress` in one enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// A TCP endpoint over IPv4.
    Ipv4(SocketAddrV4),
    /// A TCP endpoint over IPv6.
    Ipv6(SocketAddrV6),
    /// A Unix-domain socket; `None` for an unnamed (unbound or abstract-less) socket.
    Unix(Option<PathBuf>),
    /// The parent's end of a child process's pipes or PTY.
    Process,
    /// An in-memory endpoint used by test transports, with a free-form label.
    Memory(String),
}

impl Address {
    /// The socket address of a TCP endpoint, `None` for other kinds.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self {
            Address::Ipv4(a) => Some(SocketAddr::V4(*a)),
            Address::Ipv6(a) => Some(SocketAddr::V6(*a)),
            _ => None,
        }
    }

    /// The port of a TCP endpoint, `None` for other kinds.
    pub fn port(&self) -> Option<u16> {
        self.socket_addr().map(|a| a.port())
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(a) => Address::Ipv4(a),
            SocketAddr::V6(a) => Address::Ipv6(a),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ipv4(a) => write!(f, "tcp:{a}"),
            Address::Ipv6(a) => write!(f, "tcp6:{a}"),
            Address::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            Address::Unix(None) => f.write_str("unix:(unnamed)"),
            Address::Process => f.write_str("process"),
            Address::Memory(label) => write!(f, "memory:{label}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_port() {
        let a: Address = "127.0.0.1:80".parse::<SocketAddr>().unwrap().into();
        assert_eq!(a.to_string(), "tcp:127.0.0.1:80");
        assert_eq!(a.port(), Some(80));
        let b: Address = "[::1]:8080".parse::<SocketAddr>().unwrap().into();
        assert_eq!(b.to_string(), "tcp6:[::1]:8080");
        assert_eq!(Address::Unix(None).port(), None);
    }
}
