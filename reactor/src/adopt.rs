//! Adopting sockets opened elsewhere (Twisted's `IReactorSocket`): a listening socket from
//! systemd or a prefork parent, a connection accepted by other code, a bound datagram
//! socket (CONTRACT Q5). Unix only.
//!
//! The reactor takes ownership of the descriptor: it is made non-blocking and
//! close-on-exec, and closed when the port or connection ends. The socket's family (IPv4,
//! IPv6 or Unix) is read from the descriptor (`getsockname`); a descriptor of the wrong
//! kind is refused with an [`AdoptError`] and closed.
//!
//! # Examples
//!
//! ```
//! use std::os::fd::OwnedFd;
//! use torsion_reactor::Reactor;
//! use torsion_transport::*;
//!
//! struct Discard;
//! impl Protocol for Discard {
//!     fn data_received(&mut self, _: &[u8]) {}
//! }
//!
//! // A listener opened by someone else (here std; in a daemon, systemd).
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let reactor = Reactor::new()?;
//! let port = reactor.adopt_stream_port(OwnedFd::from(listener), factory_fn(|_| Box::new(Discard)))?;
//! assert_eq!(port.host().socket_addr(), Some(addr));
//! port.stop_listening();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use torsion_transport::{DatagramProtocol, Factory, ListeningPort};

use crate::callback::catch_panic;
use crate::datagram::{DatagramPort, DatagramSocket, UdpPort};
use crate::error::AdoptError;
use crate::port::Port;
use crate::reactor::Reactor;
use crate::stream::{StreamSocket, StreamTransport};
use crate::sys::socket::{self as syssock, Family, SocketKind};

/// Inspect `fd`, check it is a socket of a family we drive and of the wanted type, and
/// prepare it.
fn check(fd: &OwnedFd, stream: bool) -> io::Result<SocketKind> {
    let kind = syssock::inspect(fd.as_fd())?.ok_or(AdoptError::NotASocket)?;
    if let Family::Other(family) = kind.family {
        return Err(AdoptError::UnsupportedFamily(family).into());
    }
    if kind.stream != Some(stream) {
        return Err(AdoptError::WrongType {
            expected: if stream { "stream" } else { "datagram" },
            found: kind.type_name.to_owned(),
        }
        .into());
    }
    syssock::prepare_adopted(fd.as_fd())?;
    Ok(kind)
}

impl Reactor {
    /// Listen on an already listening stream socket — TCP (IPv4 or IPv6) or Unix — taking
    /// ownership of it (Twisted's `adoptStreamPort`, without its `addressFamily` argument:
    /// the family is read from the socket). Accepted connections get protocols from
    /// `factory`, as with [`listen_tcp`](torsion_transport::ReactorTcp::listen_tcp).
    ///
    /// Returns the port as a [`ListeningPort`] (its concrete type, [`TcpPort`] or
    /// [`UnixPort`], depends on the family found).
    ///
    /// [`TcpPort`]: crate::TcpPort
    /// [`UnixPort`]: crate::UnixPort
    ///
    /// # Errors
    ///
    /// An [`AdoptError`] (inside an `InvalidInput` `io::Error`) for a descriptor that is not
    /// a socket, not a stream socket, not listening, or of another family; the OS error of
    /// inspecting or registering it. The descriptor is closed.
    #[doc(alias = "adoptStreamPort")]
    pub fn adopt_stream_port(
        &self,
        fd: OwnedFd,
        factory: Rc<dyn Factory>,
    ) -> io::Result<Rc<dyn ListeningPort>> {
        let kind = check(&fd, true)?;
        if !kind.listening {
            return Err(AdoptError::NotListening.into());
        }
        Ok(match kind.family {
            Family::Unix => {
                let listener =
                    mio::net::UnixListener::from_std(std::os::unix::net::UnixListener::from(fd));
                Port::start(self, listener, factory, None, None)?
            }
            _ => {
                let listener = mio::net::TcpListener::from_std(std::net::TcpListener::from(fd));
                Port::start(self, listener, factory, None, None)?
            }
        })
    }

    /// Drive an already connected stream socket — TCP or Unix — with a protocol from
    /// `factory`, taking ownership of it (Twisted's `adoptStreamConnection`). As in Twisted
    /// nothing is returned: the protocol's `connection_made` runs before this returns and
    /// gets the transport; a factory that refuses (`None`) has the socket closed, and that
    /// is not an error.
    ///
    /// # Errors
    ///
    /// An [`AdoptError`] for a descriptor that is not a socket, not a stream socket, a
    /// listening socket, not connected, or of another family; the OS error of registering
    /// it. The descriptor is closed.
    #[doc(alias = "adoptStreamConnection")]
    pub fn adopt_stream_connection(&self, fd: OwnedFd, factory: Rc<dyn Factory>) -> io::Result<()> {
        let kind = check(&fd, true)?;
        if kind.listening {
            return Err(AdoptError::Listening.into());
        }
        match kind.family {
            Family::Unix => {
                let std = std::os::unix::net::UnixStream::from(fd);
                std.peer_addr().map_err(not_connected)?;
                self.adopt_connected(mio::net::UnixStream::from_std(std), factory)
            }
            _ => {
                let std = std::net::TcpStream::from(fd);
                std.peer_addr().map_err(not_connected)?;
                self.adopt_connected(mio::net::TcpStream::from_std(std), factory)
            }
        }
    }

    fn adopt_connected<S: StreamSocket + 'static>(
        &self,
        sock: S,
        factory: Rc<dyn Factory>,
    ) -> io::Result<()> {
        let peer = sock.peer_address();
        match catch_panic("build_protocol", || factory.build_protocol(&peer)) {
            Some(Some(protocol)) => {
                StreamTransport::start(self, sock, protocol, None)?;
            }
            Some(None) => log::debug!("adopted connection from {peer}: factory refused it"),
            None => log::warn!("adopted connection from {peer} closed"),
        }
        Ok(())
    }

    /// Drive an already bound datagram socket — UDP (IPv4 or IPv6) or Unix — with
    /// `protocol`, taking ownership of it (Twisted's `adoptDatagramPort`). As
    /// [`listen_udp`](Self::listen_udp) from then on.
    ///
    /// # Errors
    ///
    /// An [`AdoptError`] for a descriptor that is not a socket, not a datagram socket, or
    /// of another family; the OS error of registering it. The descriptor is closed and the
    /// protocol dropped without a callback.
    #[doc(alias = "adoptDatagramPort")]
    pub fn adopt_datagram_port(
        &self,
        fd: OwnedFd,
        protocol: Box<dyn DatagramProtocol>,
    ) -> io::Result<Rc<UdpPort>> {
        let kind = check(&fd, false)?;
        let sock = match kind.family {
            Family::Unix => DatagramSocket::Unix(mio::net::UnixDatagram::from_std(
                std::os::unix::net::UnixDatagram::from(fd),
            )),
            _ => DatagramSocket::Udp(mio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd))),
        };
        DatagramPort::start(self, sock, protocol)
    }
}

fn not_connected(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::NotConnected {
        AdoptError::NotConnected.into()
    } else {
        e
    }
}
