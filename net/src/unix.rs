//! Unix stream sockets as futures, on the reactor's Unix transports.

use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use torsion_reactor::Reactor;
use torsion_reactor::unix::{UnixPort, connect_unix, listen_unix};
use torsion_transport::{Address, Connector, ListeningPort, UnixListenOptions};

use crate::socket::{AcceptQueue, connect, stream_methods};
use crate::stream::Io;

/// A connected Unix stream socket, read and written with `.await`. Dropping it closes the
/// connection once what was written is sent.
pub struct UnixStream {
    pub(crate) io: Rc<Io>,
}

stream_methods!(UnixStream);

impl UnixStream {
    /// Connect to the socket file `path`. Dropping the future cancels the attempt.
    ///
    /// # Errors
    ///
    /// `ConnectionRefused` when nothing listens there (or the file is missing), or
    /// another OS error kind.
    pub async fn connect(reactor: &Reactor, path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref().to_path_buf();
        let start = |f| connect_unix(reactor, path, f, None) as Rc<dyn Connector>;
        Ok(UnixStream {
            io: connect(start).await?,
        })
    }
}

/// A listening Unix socket; [`accept`](Self::accept) waits for the next connection.
/// Dropping it stops listening and removes the socket file.
pub struct UnixListener {
    port: Rc<UnixPort>,
    queue: Rc<AcceptQueue>,
    path: PathBuf,
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener")
            .field("path", &self.path)
            .finish()
    }
}

impl UnixListener {
    /// Listen on the socket file `path` (it must not exist).
    ///
    /// # Errors
    ///
    /// The OS error of `bind`/`listen`; `AddrInUse` if `path` exists.
    pub fn bind(reactor: &Reactor, path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref().to_path_buf();
        let queue = Rc::new(AcceptQueue::default());
        let mut options = UnixListenOptions::default();
        options.unlink_on_stop = true;
        let port = listen_unix(reactor, &path, queue.factory(), &options)?;
        queue.set_port(reactor, port.token());
        Ok(UnixListener { port, queue, path })
    }

    /// The address listened on (`Address::Unix(Some(path))`).
    ///
    /// # Errors
    ///
    /// None today; `io::Result` for symmetry with [`TcpListener`](crate::TcpListener).
    pub fn local_addr(&self) -> io::Result<Address> {
        Ok(self.port.host())
    }

    /// The next connection and its peer's address (usually unnamed).
    ///
    /// # Errors
    ///
    /// None today; `io::Result` for symmetry with std and tokio.
    pub async fn accept(&self) -> io::Result<(UnixStream, Address)> {
        let (io, peer) = self.queue.accept().await;
        Ok((UnixStream { io }, peer))
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        self.port.stop_listening();
    }
}
