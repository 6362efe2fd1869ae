//! The PTY master as one selectable: it reads what the child writes (EIO or 0 is the clean
//! end, CONTRACT L4) and writes through a [`FileDescriptor`] (buffering, producers,
//! flush-then-close). [`PtyTransport`](crate::PtyTransport) and `torsion-process`'s PTY
//! children both embed it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use torsion_reactor::{
    FileDescriptor, IoStatus, Reactor, Selectable, WeakReactor, WriteOutcome, WriteSink,
};
use torsion_transport::Reason;

/// Bytes read per `read` call. A PTY hands out at most a few KiB per read; the buffer is
/// reused for the whole dispatch.
const READ_CHUNK: usize = 16 * 1024;

/// What the master reports to: the transport that embeds it.
pub trait MasterOwner {
    /// The child (or the slave's holder) wrote `data`.
    fn data_received(&self, data: &[u8]);
    /// Every slave fd is closed and everything written to the terminal was read: reading
    /// has stopped, the master is still open. The owner calls [`PtyMaster::close`] when it
    /// is ready to hang the terminal up. Called once.
    fn end_of_output(&self);
    /// The master is closed ([`PtyMaster::close`], `lose_connection` completed, an error, or
    /// reactor shutdown); called once, after the fd is closed.
    fn master_lost(&self, reason: Reason);
}

/// The parent's end of a PTY, registered with the reactor for reading and writing.
pub struct PtyMaster {
    fd: FileDescriptor,
    reactor: WeakReactor,
    file: RefCell<Option<Rc<File>>>,
    /// The owner, until the master is lost (that breaks the owner ↔ master cycle).
    owner: RefCell<Option<Rc<dyn MasterOwner>>>,
    /// For logs: the fd number the master had.
    number: i32,
    lost: Cell<bool>,
    eof: Cell<bool>,
}

impl fmt::Debug for PtyMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PtyMaster")
            .field("fd", &self.number)
            .field("open", &self.file.borrow().is_some())
            .field("state", &self.fd)
            .finish()
    }
}

/// Writes to a clone of the file handle: no borrow of the selectable is held during a write
/// pass, whatever runs next.
struct MasterSink<'a>(&'a File);

impl WriteSink for MasterSink<'_> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut f = self.0;
        f.write_vectored(bufs)
    }

    /// A terminal has no half-close; [`PtyMaster`] never asks for one (the transports
    /// turn `lose_write_connection` into `lose_connection`).
    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl PtyMaster {
    /// Register `master` (non-blocking) with `reactor`, neither reading nor writing yet.
    ///
    /// # Errors
    ///
    /// The OS error from registration.
    pub fn register(
        reactor: &Reactor,
        master: OwnedFd,
        owner: Rc<dyn MasterOwner>,
    ) -> io::Result<Rc<PtyMaster>> {
        let number = master.as_raw_fd();
        let m = Rc::new(PtyMaster {
            fd: FileDescriptor::new(reactor),
            reactor: reactor.downgrade(),
            file: RefCell::new(Some(Rc::new(File::from(master)))),
            owner: RefCell::new(Some(owner)),
            number,
            lost: Cell::new(false),
            eof: Cell::new(false),
        });
        let token = reactor.register(m.clone())?;
        m.fd.set_token(token);
        Ok(m)
    }

    /// The write side: buffer, producer, closing state.
    pub fn file_descriptor(&self) -> &FileDescriptor {
        &self.fd
    }

    /// Run `f` on the master fd while it is open.
    pub fn with_fd<R>(&self, f: impl FnOnce(BorrowedFd<'_>) -> R) -> Option<R> {
        self.file.borrow().as_ref().map(|file| f(file.as_fd()))
    }

    /// True once the master is closed.
    pub fn is_lost(&self) -> bool {
        self.lost.get()
    }

    /// True once the end of output was read (the master may still be open).
    pub fn at_eof(&self) -> bool {
        self.eof.get()
    }

    /// Close the master from the loop (never inside this call): `master_lost` follows with
    /// [`Reason::ConnectionDone`]. If this is the last master fd, the terminal hangs up.
    pub fn close(&self) {
        if let (Some(r), Some(t)) = (self.reactor.upgrade(), self.fd.token()) {
            r.disconnect_later(t, Reason::ConnectionDone);
        }
    }

    /// CONTRACT L4: the end of output is clean. Stop reading but keep the fd open: closing
    /// the master hangs the terminal up, which would send SIGHUP to a child that closed its
    /// terminal fds before exiting (as `cat` does) and is still running. The owner closes
    /// it once that cannot matter.
    fn end_of_output(&self) -> IoStatus {
        if !self.eof.replace(true) {
            self.fd.stop_reading();
            log::debug!("PTY master {}: end of output", self.number);
            let owner = self.owner.borrow().clone();
            if let Some(o) = owner {
                o.end_of_output();
            }
        }
        IoStatus::Blocked
    }

    fn read_loop(&self, buf: &mut [u8]) -> Result<IoStatus, Reason> {
        for _ in 0..torsion_reactor::READ_BUDGET {
            if !self.fd.is_reading() || self.eof.get() {
                return Ok(IoStatus::Blocked);
            }
            let file = self.file.borrow().clone();
            let res = match file {
                Some(f) => (&*f).read(buf),
                None => return Ok(IoStatus::Blocked),
            };
            match res {
                // The BSDs: 0 once every slave fd is closed.
                Ok(0) => return Ok(self.end_of_output()),
                Ok(n) => {
                    let owner = self.owner.borrow().clone();
                    if let Some(o) = owner {
                        o.data_received(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Linux: EIO once every slave fd is closed and the buffered output is read
                // (CONTRACT L4).
                Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                    return Ok(self.end_of_output());
                }
                Err(e) => return Err(Reason::lost(e)),
            }
        }
        Ok(IoStatus::More)
    }
}

impl Selectable for PtyMaster {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.file.borrow().as_ref() {
            Some(f) => registry.register(
                &mut SourceFd(&f.as_raw_fd()),
                token,
                Interest::READABLE | Interest::WRITABLE,
            ),
            None => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        match self.file.borrow().as_ref() {
            Some(f) => registry.deregister(&mut SourceFd(&f.as_raw_fd())),
            None => Ok(()),
        }
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        let mut buf = vec![0u8; READ_CHUNK];
        self.read_loop(&mut buf)
    }

    fn do_write(&self) -> Result<IoStatus, Reason> {
        // Cloned out, so no borrow is held at all: `do_write` makes the system calls, then
        // `finish_write` resumes the producer, which may close this very file
        // (`unregister_producer`, `close_stdin`, `lose_connection`); the clone keeps the fd
        // open until this write pass ends.
        let Some(file) = self.file.borrow().clone() else {
            return Ok(IoStatus::Blocked);
        };
        let step = self.fd.do_write(&mut MasterSink(&file));
        let outcome = self.fd.finish_write(step)?;
        match outcome {
            WriteOutcome::More => Ok(IoStatus::More),
            WriteOutcome::Blocked | WriteOutcome::Drained | WriteOutcome::WriteShutdown => {
                Ok(IoStatus::Blocked)
            }
        }
    }

    fn connection_lost(&self, reason: Reason) {
        if !self.fd.connection_lost() {
            return;
        }
        self.lost.set(true);
        // Closing the last master fd hangs the terminal up: the session gets SIGHUP (L6).
        drop(self.file.borrow_mut().take());
        log::debug!("PTY master {} closed: {reason}", self.number);
        let owner = self.owner.borrow_mut().take();
        if let Some(o) = owner {
            o.master_lost(reason);
        }
    }

    fn describe(&self) -> String {
        format!("PTY master {}", self.number)
    }
}
