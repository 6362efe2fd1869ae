//! [`StdoutWriter`]: a non-blocking writer for our own stdout or stderr (or any fd), with
//! the full [`FileDescriptor`] write side; also the write side of
//! [`StandardIo`](super::StandardIo).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::OwnedFd;
use std::rc::Rc;

use mio::{Interest, Registry, Token};
use torsion_reactor::{FileDescriptor, IoStatus, Reactor, Selectable, WriteOutcome, WriteSink};
use torsion_transport::{Consumer, Producer, ProducerError, Reason};

use super::Owner;
use super::fd::StdioFd;
use super::reader::{deregister, register};

/// Writes to one fd through the reactor: buffered, never blocking, with producers for
/// flow control and flush-then-close (CONTRACT D1–D7, E1–E4).
///
/// Made by [`StandardIo::stdout`](super::StandardIo::stdout),
/// [`StandardIo::stderr`](super::StandardIo::stderr) or [`StdoutWriter::new`]. The fd's
/// open file description, which other processes may share, is never made non-blocking
/// (see the [module docs](super)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use torsion_process::StandardIo;
/// use torsion_reactor::Reactor;
/// use torsion_transport::Consumer;
///
/// let reactor = Reactor::new()?;
/// let out = StandardIo::stdout(&reactor)?;
/// out.write(b"hello from the reactor\n");
/// out.lose_connection(); // flush, then close our copy of fd 1
/// let o = out.clone();
/// reactor.run_until(move || o.is_closed(), Duration::from_secs(10))?;
/// assert_eq!(out.unsent(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StdoutWriter {
    fd: FileDescriptor,
    file: RefCell<Option<StdioFd>>,
    /// Held strongly until the connection is lost (see the reader's).
    owner: RefCell<Option<Rc<dyn Owner>>>,
    lost: RefCell<Option<Reason>>,
}

impl fmt::Debug for StdoutWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutWriter")
            .field("fd", &self.file.borrow())
            .field("write_side", &self.fd)
            .finish()
    }
}

impl StdoutWriter {
    /// Write `fd` through `reactor`. `fd` is ours to close (pass a `dup` to keep the
    /// original open: its description is left blocking either way).
    ///
    /// # Errors
    ///
    /// The OS error of `fstat` or of registering the fd.
    pub fn new(reactor: &Reactor, fd: OwnedFd) -> io::Result<Rc<StdoutWriter>> {
        Self::with_owner(reactor, StdioFd::new(fd, true)?, None)
    }

    pub(super) fn with_owner(
        reactor: &Reactor,
        fd: StdioFd,
        owner: Option<Rc<dyn Owner>>,
    ) -> io::Result<Rc<StdoutWriter>> {
        let w = Rc::new(StdoutWriter {
            fd: FileDescriptor::new(reactor),
            file: RefCell::new(Some(fd)),
            owner: RefCell::new(owner),
            lost: RefCell::new(None),
        });
        let token = reactor.register(w.clone())?;
        w.fd.set_token(token);
        Ok(w)
    }

    /// The write side: buffer size, low-water mark, state.
    pub fn file_descriptor(&self) -> &FileDescriptor {
        &self.fd
    }

    /// Bytes written but not yet taken by the kernel.
    pub fn unsent(&self) -> usize {
        self.fd.unsent()
    }

    /// Flush what is buffered, then close the fd (CONTRACT D5). Writes made before the
    /// close completes are still flushed.
    #[doc(alias = "loseConnection")]
    pub fn lose_connection(&self) {
        self.fd.lose_connection();
    }

    /// Drop what is buffered and close the fd now (CONTRACT D5).
    #[doc(alias = "abortConnection")]
    pub fn abort_connection(&self) {
        self.fd.abort_connection();
    }

    /// True once the fd is closed: after [`lose_connection`](Self::lose_connection)
    /// completed, an abort, or a write error (the reader went away: `EPIPE`).
    pub fn is_closed(&self) -> bool {
        self.lost.borrow().is_some()
    }

    /// Why the fd was closed ([`Reason::ConnectionDone`] after a clean
    /// `lose_connection`); `None` while it is open.
    pub fn close_reason(&self) -> Option<Reason> {
        self.lost.borrow().clone()
    }
}

impl Consumer for StdoutWriter {
    /// Straight to the fd when nothing is buffered and it was last seen writable; the rest
    /// is buffered (CONTRACT D1, D4).
    fn write(&self, data: &[u8]) {
        self.fd.write_through(data, |chunk| {
            let file = self.file.try_borrow().ok()?;
            Some(file.as_ref()?.write_vectored(&[IoSlice::new(chunk)]))
        });
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        self.fd.write_sequence(data);
    }

    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        self.fd.register_producer(producer)
    }

    fn unregister_producer(&self) {
        self.fd.unregister_producer();
    }
}

struct Sink<'a>(&'a StdioFd);

impl WriteSink for Sink<'_> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }
    /// Closing our fd is the shutdown: others may hold the same pipe or socket.
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Selectable for StdoutWriter {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        register(
            registry,
            self.file.borrow().as_ref(),
            token,
            Interest::WRITABLE,
        )
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        deregister(registry, self.file.borrow().as_ref())
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        Ok(IoStatus::Blocked)
    }

    fn do_write(&self) -> Result<IoStatus, Reason> {
        let step = {
            let file = self.file.borrow();
            let Some(f) = file.as_ref() else {
                return Ok(IoStatus::Blocked);
            };
            self.fd.do_write(&mut Sink(f))
        };
        // The borrow is released: resuming the producer may close this very file.
        let outcome = self.fd.finish_write(step)?;
        match outcome {
            WriteOutcome::More => Ok(IoStatus::More),
            // The write side shuts down by closing: the half-close is complete.
            WriteOutcome::WriteShutdown => Err(Reason::ConnectionDone),
            WriteOutcome::Blocked | WriteOutcome::Drained => Ok(IoStatus::Blocked),
        }
    }

    /// The reader of our pipe went away: report it now rather than at the next write.
    fn on_write_closed(&self) -> Option<Reason> {
        Some(Reason::lost(io::Error::from(io::ErrorKind::BrokenPipe)))
    }

    fn connection_lost(&self, reason: Reason) {
        if !self.fd.connection_lost() {
            return;
        }
        drop(self.file.borrow_mut().take());
        *self.lost.borrow_mut() = Some(reason.clone());
        let owner = self.owner.borrow_mut().take();
        if let Some(owner) = owner {
            owner.side_lost(true, reason);
        }
    }

    fn describe(&self) -> String {
        String::from("standard output writer")
    }
}
