//! The connected stream every socket type shares: a [`Protocol`] on the reactor's
//! [`StreamTransport`](torsion_reactor::StreamTransport) feeding an [`Inbound`], and an
//! [`Outbound`] producer registered with the transport; [`ReadHalf`], [`WriteHalf`].

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use torsion_transport::{
    Address, HalfCloseableProtocol, Producer, Protocol, PushProducer, Reason, Transport,
};

use crate::lines::{HasInbound, Lines};
use crate::pipe::{Gate, Inbound, Outbound, WRITE_CHUNK};

/// State shared by the protocol (the reactor side) and the stream handles (the task side).
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Rc<Outbound>,
    transport: RefCell<Option<Rc<dyn Transport>>>,
}

impl Shared {
    pub(crate) fn transport(&self) -> Option<Rc<dyn Transport>> {
        self.transport.borrow().clone()
    }
}

type Made = Box<dyn FnOnce(Rc<Shared>)>;

/// The protocol behind every stream: it only moves bytes and wakes tasks (wakes queue;
/// no task runs inside a protocol callback, CONTRACT P4).
pub(crate) struct StreamProtocol {
    shared: Rc<Shared>,
    made: Option<Made>,
}

impl StreamProtocol {
    /// A protocol that hands its shared state to `made` once connected.
    pub(crate) fn new(made: Made) -> Self {
        StreamProtocol {
            shared: Rc::new(Shared::default()),
            made: Some(made),
        }
    }
}

impl Protocol for StreamProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let gate: Rc<dyn PushProducer> = Rc::new(Gate(Rc::downgrade(&self.shared.outbound)));
        if let Err(e) = transport.register_producer(Producer::Push(gate)) {
            log::warn!("stream: cannot register its writer as a producer: {e}");
        }
        self.shared.inbound.set_source(transport.clone());
        *self.shared.transport.borrow_mut() = Some(transport);
        if let Some(made) = self.made.take() {
            made(self.shared.clone());
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        self.shared.inbound.push(data);
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("stream lost: {reason}");
        self.shared.inbound.finish(Some(reason));
        self.shared.outbound.set_shut();
        // Break the transport ↔ protocol cycle.
        self.shared.transport.borrow_mut().take();
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}

impl HalfCloseableProtocol for StreamProtocol {
    fn read_connection_lost(&mut self) {
        self.shared.inbound.finish(None);
    }

    fn write_connection_lost(&mut self) {
        self.shared.outbound.set_shut();
    }
}

/// The owner of a connection: dropping the last handle (stream, or both halves) closes it
/// after what was written is sent.
pub(crate) struct Io {
    pub(crate) shared: Rc<Shared>,
}

impl Io {
    pub(crate) fn new(shared: Rc<Shared>) -> Rc<Io> {
        Rc::new(Io { shared })
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.shared.inbound.poll_read(cx, buf)
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.shared.outbound.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        let Some(t) = self.shared.transport() else {
            self.shared.outbound.close();
            return self.shared.outbound.poll_ready(cx).map(|r| r.map(|()| 0));
        };
        let n = data.len().min(WRITE_CHUNK);
        t.write(&data[..n]);
        Poll::Ready(Ok(n))
    }

    /// Half-close: start it (once) and wait until the write side is shut down.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shared.outbound.is_closed() {
            self.shared.outbound.close();
            match self.shared.transport() {
                Some(t) => t.lose_write_connection(),
                None => self.shared.outbound.set_shut(),
            }
        }
        self.shared.outbound.poll_shut(cx).map(Ok)
    }

    pub(crate) async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) async fn write(&self, data: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, data)).await
    }

    pub(crate) async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write(data).await?;
            data = &data[n..];
        }
        Ok(())
    }

    pub(crate) async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.poll_shutdown(cx)).await
    }

    pub(crate) fn peer(&self) -> Option<Address> {
        self.shared.transport().map(|t| t.peer())
    }

    pub(crate) fn host(&self) -> Option<Address> {
        self.shared.transport().map(|t| t.host())
    }
}

impl HasInbound for Io {
    fn inbound(&self) -> &Inbound {
        &self.shared.inbound
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.shared.outbound.close();
        if let Some(t) = self.shared.transport() {
            t.unregister_producer();
            t.lose_connection();
        }
    }
}

/// The read half of a stream ([`TcpStream::split`](crate::TcpStream::split)): reads
/// while the [`WriteHalf`] writes, from another task. Dropping it discards what arrives
/// later; the connection closes when both halves are gone.
pub struct ReadHalf {
    io: Rc<Io>,
    /// False once turned into [`Lines`], which reads on.
    abandon_on_drop: bool,
}

/// The write half of a stream: dropping it half-closes the connection (the peer reads
/// EOF) once what was written is sent.
pub struct WriteHalf {
    io: Rc<Io>,
}

impl std::fmt::Debug for ReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadHalf")
            .field("peer", &self.io.peer())
            .finish()
    }
}

impl std::fmt::Debug for WriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteHalf")
            .field("peer", &self.io.peer())
            .finish()
    }
}

pub(crate) fn split(io: Rc<Io>) -> (ReadHalf, WriteHalf) {
    (
        ReadHalf {
            io: io.clone(),
            abandon_on_drop: true,
        },
        WriteHalf { io },
    )
}

impl ReadHalf {
    /// Read into `buf`: the number of bytes read, `Ok(0)` at EOF. Waits for data.
    ///
    /// # Errors
    ///
    /// The connection ended with an error (reset): its kind, with
    /// [`NetError::ConnectionLost`](crate::NetError::ConnectionLost) inside.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf).await
    }

    /// The stream of lines of this half.
    pub fn lines(mut self) -> Lines {
        self.abandon_on_drop = false;
        Lines::new(self.io.clone())
    }

    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    pub(crate) fn io_rc(&self) -> Rc<Io> {
        self.io.clone()
    }
}

impl Drop for ReadHalf {
    fn drop(&mut self) {
        if self.abandon_on_drop && Rc::strong_count(&self.io) > 1 {
            self.io.shared.inbound.abandon();
        }
    }
}

impl WriteHalf {
    /// Write some of `data`: waits while the transport's buffer is over its size.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` with [`NetError::WriteClosed`](crate::NetError::WriteClosed) after a
    /// shutdown or once the connection is closed.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.io.write(data).await
    }

    /// Write all of `data`, waiting (in chunks) while the transport's buffer is over its
    /// size (CONTRACT P6).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.io.write_all(data).await
    }

    /// Half-close: once what was written is sent, shut the write side down (the peer reads
    /// EOF); reading goes on.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` for symmetry with std and tokio.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }

    #[cfg_attr(not(feature = "futures-io"), allow(dead_code))]
    pub(crate) fn io_rc(&self) -> Rc<Io> {
        self.io.clone()
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        if Rc::strong_count(&self.io) > 1 && !self.io.shared.outbound.is_closed() {
            self.io.shared.outbound.close();
            if let Some(t) = self.io.shared.transport() {
                t.lose_write_connection();
            }
        }
    }
}
