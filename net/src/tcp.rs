//! TCP streams and listeners as futures, on the reactor's TCP transports.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use torsion_reactor::Reactor;
use torsion_reactor::tcp::{TcpOptions, TcpPort, connect_tcp, listen_tcp};
use torsion_transport::{Connector, ListeningPort};

use crate::socket::{AcceptQueue, connect, stream_methods};
use crate::stream::Io;

/// A connected TCP socket, read and written with `.await`. Dropping it closes the
/// connection once what was written is sent.
pub struct TcpStream {
    pub(crate) io: Rc<Io>,
}

stream_methods!(TcpStream);

impl TcpStream {
    /// Connect to `addr` (each address it resolves to in turn, like std; name resolution
    /// itself is std's, blocking). Dropping the future cancels the attempt.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused`, `TimedOut` (the OS's), or another OS error kind, of the last
    /// address tried; `InvalidInput` if `addr` resolves to nothing.
    pub async fn connect(reactor: &Reactor, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
        for addr in addr.to_socket_addrs()? {
            let start = |f| {
                connect_tcp(reactor, addr, f, None, &TcpOptions::default()) as Rc<dyn Connector>
            };
            match connect(start).await {
                Ok(io) => return Ok(TcpStream { io }),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The remote socket address.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the connection is closed.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.peer()
            .and_then(|a| a.socket_addr())
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// The local socket address.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the connection is closed.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.host()
            .and_then(|a| a.socket_addr())
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

/// A listening TCP socket; [`accept`](Self::accept) waits for the next connection.
/// Dropping it stops listening (connections accepted and not taken are closed).
pub struct TcpListener {
    port: Rc<TcpPort>,
    queue: Rc<AcceptQueue>,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.port.host())
            .finish()
    }
}

impl TcpListener {
    /// Listen on `addr` (port 0 picks a free port: see [`local_addr`](Self::local_addr)).
    ///
    /// # Errors
    ///
    /// The OS error of `bind`/`listen` (`AddrInUse`, ...); `InvalidInput` if `addr`
    /// resolves to nothing.
    pub fn bind(reactor: &Reactor, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
        for addr in addr.to_socket_addrs()? {
            let queue = Rc::new(AcceptQueue::default());
            match listen_tcp(reactor, addr, queue.factory(), &TcpOptions::default()) {
                Ok(port) => {
                    queue.set_port(reactor, port.token());
                    return Ok(TcpListener { port, queue });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The address listened on.
    ///
    /// # Errors
    ///
    /// `NotConnected` if the port has no socket address (it stopped).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.port
            .host()
            .socket_addr()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// Connections accepted by the port and waiting for [`accept`](Self::accept) (at most
    /// about [`ACCEPT_QUEUE_MAX`](crate::ACCEPT_QUEUE_MAX): then the port pauses and the
    /// kernel's backlog holds the rest).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The next connection and its peer's address.
    ///
    /// # Errors
    ///
    /// None today (accept errors are retried by the port with a backoff); `io::Result` for
    /// symmetry with std and tokio.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            let (io, peer) = self.queue.accept().await;
            if let Some(addr) = peer.socket_addr() {
                return Ok((TcpStream { io }, addr));
            }
            log::warn!("accepted a TCP connection without a socket address: {peer}");
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        self.port.stop_listening();
    }
}
