//! The parent's ends of a child's pipes as selectables (CONTRACT I1, I2).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use torsion_reactor::{FileDescriptor, IoStatus, Reactor, Selectable, WriteOutcome, WriteSink};
use torsion_transport::{Reason, SharedBytes};

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// One read buffer for every pipe on this thread: data is handed to the owner before
    /// the next read, so no pipe needs its own (and no read allocates).
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}

/// Register `file` for `interest`. Regular files and `/dev/null` cannot be polled (`EPERM`);
/// they are always ready, and the reactor tries a reader or writer once whenever it is
/// added, so they work without registration.
fn register_fd(
    registry: &Registry,
    file: Option<&File>,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    match file {
        Some(f) => match registry.register(&mut SourceFd(&f.as_raw_fd()), token, interest) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
            other => other,
        },
        None => Err(io::Error::from(io::ErrorKind::NotConnected)),
    }
}

/// A pipe's `Selectable::deregister`: nothing to do. The reactor removes a pipe only when
/// it is lost, and the pipe closes its fd right then (`connection_lost`, or the drop of
/// the last `Rc`) and is never registered again; closing the last reference removes the
/// fd from the epoll/kqueue set, so an `EPOLL_CTL_DEL` first would be one system call more
/// per pipe for nothing (issue 15, B1: a child with three pipes and a pidfd cost eight
/// `epoll_ctl` calls, half of them these). Should an event still arrive for it (the
/// description kept open by a child between fork and exec), its token is stale and the
/// reactor drops it.
fn deregister_fd(_registry: &Registry, _file: Option<&File>) -> io::Result<()> {
    Ok(())
}

/// What a pipe reports to: the process transport (or the PTY transport).
pub trait PipeOwner {
    /// The child wrote `data` on its fd `child_fd`.
    fn child_data_received(&self, child_fd: i32, data: &[u8]);
    /// The pipe for `child_fd` is closed; called once.
    fn child_connection_lost(&self, child_fd: i32, reason: Reason);
}

/// The parent's read end of a pipe the child writes (Twisted's `ProcessReader`).
pub struct ProcessReader {
    file: RefCell<Option<File>>,
    child_fd: i32,
    owner: Rc<dyn PipeOwner>,
    token: Cell<Option<Token>>,
    reactor: torsion_reactor::WeakReactor,
    /// On a PTY master, `EIO` means the slave side is closed: a clean end (CONTRACT L4).
    eio_is_eof: bool,
}

impl fmt::Debug for ProcessReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessReader")
            .field("child_fd", &self.child_fd)
            .field("token", &self.token.get())
            .finish()
    }
}

impl ProcessReader {
    /// Register `fd` (non-blocking, the parent's read end) with `reactor`, not yet reading.
    ///
    /// # Errors
    ///
    /// The OS error from registration.
    pub fn register(
        reactor: &Reactor,
        fd: OwnedFd,
        child_fd: i32,
        owner: Rc<dyn PipeOwner>,
        eio_is_eof: bool,
    ) -> io::Result<Rc<ProcessReader>> {
        let r = Rc::new(ProcessReader {
            file: RefCell::new(Some(File::from(fd))),
            child_fd,
            owner,
            token: Cell::new(None),
            reactor: reactor.downgrade(),
            eio_is_eof,
        });
        let token = reactor.register(r.clone())?;
        r.token.set(Some(token));
        Ok(r)
    }

    /// The child fd this pipe is connected to.
    pub fn child_fd(&self) -> i32 {
        self.child_fd
    }

    fn with_reactor(&self, f: impl FnOnce(&Reactor, Token)) {
        if let (Some(r), Some(t)) = (self.reactor.upgrade(), self.token.get()) {
            f(&r, t);
        }
    }

    /// Start reading.
    pub fn start_reading(&self) {
        self.with_reactor(|r, t| r.add_reader(t));
    }

    /// Stop reading (data stays in the pipe).
    pub fn stop_reading(&self) {
        self.with_reactor(|r, t| r.remove_reader(t));
    }

    /// Stop now and report the loss from the loop (CONTRACT I3).
    pub fn close(&self) {
        self.with_reactor(|r, t| r.disconnect_later(t, Reason::ConnectionDone));
    }

    fn reading(&self) -> bool {
        match (self.reactor.upgrade(), self.token.get()) {
            (Some(r), Some(t)) => r.is_reading(t),
            _ => false,
        }
    }
}

impl Selectable for ProcessReader {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        register_fd(
            registry,
            self.file.borrow().as_ref(),
            token,
            Interest::READABLE,
        )
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        deregister_fd(registry, self.file.borrow().as_ref())
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        READ_BUF.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => self.read_loop(&mut buf),
            // Re-entered from a callback of another pipe's read: a buffer of its own.
            Err(_) => self.read_loop(&mut vec![0; READ_CHUNK]),
        })
    }

    fn connection_lost(&self, reason: Reason) {
        drop(self.file.borrow_mut().take());
        self.owner.child_connection_lost(self.child_fd, reason);
    }

    fn describe(&self) -> String {
        format!("process reader for child fd {}", self.child_fd)
    }
}

impl ProcessReader {
    /// Read until the pipe is empty, closed or the budget is spent, handing each chunk to
    /// the owner.
    fn read_loop(&self, buf: &mut [u8]) -> Result<IoStatus, Reason> {
        for _ in 0..torsion_reactor::READ_BUDGET {
            if !self.reading() {
                return Ok(IoStatus::Blocked);
            }
            let res = match self.file.borrow_mut().as_mut() {
                Some(f) => f.read(buf),
                None => return Ok(IoStatus::Blocked),
            };
            match res {
                Ok(0) => return Err(Reason::ConnectionDone),
                Ok(n) => self.owner.child_data_received(self.child_fd, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.eio_is_eof && e.raw_os_error() == Some(libc::EIO) => {
                    return Err(Reason::ConnectionDone);
                }
                Err(e) => return Err(Reason::lost(e)),
            }
        }
        Ok(IoStatus::More)
    }
}

/// Writes to a clone of the file handle: no borrow of the selectable is held during a write
/// pass, whatever runs next.
struct FileSink<'a>(&'a File);

impl WriteSink for FileSink<'_> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut f = self.0;
        f.write_vectored(bufs)
    }
    /// `vmsplice(2)` on Linux: the pipe references the pages (CONTRACT D11).
    fn write_static(&mut self, data: &'static [u8]) -> io::Result<usize> {
        use std::os::fd::AsFd;
        crate::sys::unix::fd::vmsplice_static(self.0.as_fd(), data)
    }
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The parent's write end of a pipe the child reads (Twisted's `ProcessWriter`), with a
/// [`FileDescriptor`] write side: buffering, producers, flush-then-close.
pub struct ProcessWriter {
    fd: FileDescriptor,
    file: RefCell<Option<Rc<File>>>,
    child_fd: i32,
    owner: Rc<dyn PipeOwner>,
}

impl fmt::Debug for ProcessWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessWriter")
            .field("child_fd", &self.child_fd)
            .field("fd", &self.fd)
            .finish()
    }
}

impl ProcessWriter {
    /// Register `fd` (non-blocking, the parent's write end) with `reactor`.
    ///
    /// # Errors
    ///
    /// The OS error from registration.
    pub fn register(
        reactor: &Reactor,
        fd: OwnedFd,
        child_fd: i32,
        owner: Rc<dyn PipeOwner>,
    ) -> io::Result<Rc<ProcessWriter>> {
        let w = Rc::new(ProcessWriter {
            fd: FileDescriptor::new(reactor),
            file: RefCell::new(Some(Rc::new(File::from(fd)))),
            child_fd,
            owner,
        });
        let token = reactor.register(w.clone())?;
        w.fd.set_token(token);
        Ok(w)
    }

    /// Write `data` to the child: straight to the pipe when nothing is buffered and it was
    /// last seen writable, the rest buffered (see [`FileDescriptor::write_through`]; a write
    /// error is still reported from the loop).
    pub fn write(&self, data: &[u8]) {
        self.fd.write_through(data, |chunk| {
            let file = self.file.try_borrow().ok()?.clone()?;
            Some((&*file).write(chunk))
        });
    }

    /// [`write`](Self::write) of an owned buffer, queued without copying (CONTRACT D10).
    pub fn write_owned(&self, data: Vec<u8>) {
        self.fd.write_through_vec(data, |chunk| {
            let file = self.file.try_borrow().ok()?.clone()?;
            Some((&*file).write(chunk))
        });
    }

    /// [`write`](Self::write) of a shared buffer, queued as a reference (CONTRACT D10).
    pub fn write_shared(&self, data: SharedBytes) {
        self.fd.write_through_shared(data, |chunk| {
            let file = self.file.try_borrow().ok()?.clone()?;
            Some((&*file).write(chunk))
        });
    }

    /// Queue `data` without copying it; on Linux it is written with `vmsplice(2)`, so the
    /// pipe references its pages instead of copying them (CONTRACT D11). `data` must be
    /// `'static`: the reader may see those pages after this process has moved on, so they
    /// are handed over for good (a `static`, `include_bytes!`, or `Box::leak`). Elsewhere,
    /// an ordinary write.
    #[doc(alias = "vmsplice")]
    pub fn write_static(&self, data: &'static [u8]) {
        self.fd.write_static(data);
    }

    /// The write side: buffer, producer, closing.
    pub fn file_descriptor(&self) -> &FileDescriptor {
        &self.fd
    }

    /// The child fd this pipe is connected to.
    pub fn child_fd(&self) -> i32 {
        self.child_fd
    }
}

impl Selectable for ProcessWriter {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        register_fd(
            registry,
            self.file.borrow().as_deref(),
            token,
            Interest::WRITABLE,
        )
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        deregister_fd(registry, self.file.borrow().as_deref())
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        Ok(IoStatus::Blocked)
    }

    fn do_write(&self) -> Result<IoStatus, Reason> {
        // Cloned out, so no borrow is held at all: `do_write` makes the system calls, then
        // `finish_write` resumes the producer, which may close this very file
        // (`unregister_producer`, `close_stdin`, `lose_connection`); the clone keeps the fd
        // open until this write pass ends.
        let Some(file) = self.file.borrow().clone() else {
            return Ok(IoStatus::Blocked);
        };
        let step = self.fd.do_write(&mut FileSink(&file));
        let outcome = self.fd.finish_write(step)?;
        match outcome {
            WriteOutcome::More => Ok(IoStatus::More),
            // A pipe's write side shuts down by closing: the half-close is complete.
            WriteOutcome::WriteShutdown => Err(Reason::ConnectionDone),
            WriteOutcome::Blocked | WriteOutcome::Drained => Ok(IoStatus::Blocked),
        }
    }

    /// CONTRACT I1: the child closed its end; report it now rather than at the next write.
    fn on_write_closed(&self) -> Option<Reason> {
        Some(Reason::lost(io::Error::from(io::ErrorKind::BrokenPipe)))
    }

    fn connection_lost(&self, reason: Reason) {
        if !self.fd.connection_lost() {
            return;
        }
        drop(self.file.borrow_mut().take());
        self.owner.child_connection_lost(self.child_fd, reason);
    }

    fn describe(&self) -> String {
        format!("process writer for child fd {}", self.child_fd)
    }
}
