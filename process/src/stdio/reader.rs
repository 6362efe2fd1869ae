//! The read side of [`StandardIo`](super::StandardIo): a selectable over a [`StdioFd`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use torsion_reactor::{IoStatus, Reactor, Selectable, WeakReactor};
use torsion_transport::Reason;

use super::Owner;
use super::fd::StdioFd;

/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

/// Register `fd` for `interest`. Regular files and `/dev/null` cannot be polled (`EPERM`):
/// they are always ready, and the reactor tries a reader or writer once whenever it is
/// added, so they work without registration.
pub(super) fn register(
    registry: &Registry,
    fd: Option<&StdioFd>,
    token: Token,
    interest: Interest,
) -> io::Result<()> {
    let Some(fd) = fd else {
        return Err(io::ErrorKind::NotConnected.into());
    };
    match registry.register(&mut SourceFd(&fd.as_fd().as_raw_fd()), token, interest) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        other => other,
    }
}

/// Undo [`register`]; an fd that was never registered is fine.
pub(super) fn deregister(registry: &Registry, fd: Option<&StdioFd>) -> io::Result<()> {
    let Some(fd) = fd else { return Ok(()) };
    match registry.deregister(&mut SourceFd(&fd.as_fd().as_raw_fd())) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOENT)) => Ok(()),
        other => other,
    }
}

/// Reads an fd while the reactor says so, handing each chunk to its owner.
pub(super) struct Reader {
    fd: RefCell<Option<StdioFd>>,
    /// Held strongly until the connection is lost: the reactor keeps the transport alive
    /// while it is connected, whoever else holds it (the cycle ends in `connection_lost`).
    owner: RefCell<Option<Rc<dyn Owner>>>,
    token: Cell<Option<Token>>,
    reactor: WeakReactor,
    /// Taken out while a chunk is handed over, so no borrow is held during user code.
    buf: Cell<Vec<u8>>,
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("fd", &self.fd.borrow())
            .field("token", &self.token.get())
            .finish()
    }
}

impl Reader {
    pub(super) fn new(reactor: &Reactor, fd: StdioFd, owner: Rc<dyn Owner>) -> Reader {
        Reader {
            fd: RefCell::new(Some(fd)),
            owner: RefCell::new(Some(owner)),
            token: Cell::new(None),
            reactor: reactor.downgrade(),
            buf: Cell::new(Vec::new()),
        }
    }

    pub(super) fn set_token(&self, token: Token) {
        self.token.set(Some(token));
    }

    fn with_reactor<R>(&self, f: impl FnOnce(&Reactor, Token) -> R) -> Option<R> {
        match (self.reactor.upgrade(), self.token.get()) {
            (Some(r), Some(t)) => Some(f(&r, t)),
            _ => None,
        }
    }

    pub(super) fn start_reading(&self) {
        self.with_reactor(|r, t| r.add_reader(t));
    }

    pub(super) fn stop_reading(&self) {
        self.with_reactor(|r, t| r.remove_reader(t));
    }

    /// Stop now; the loss is reported from the loop.
    pub(super) fn close(&self) {
        self.with_reactor(|r, t| r.disconnect_later(t, Reason::ConnectionDone));
    }

    fn reading(&self) -> bool {
        self.with_reactor(|r, t| r.is_reading(t)).unwrap_or(false)
    }

    fn read_loop(&self, buf: &mut [u8]) -> Result<IoStatus, Reason> {
        for _ in 0..torsion_reactor::READ_BUDGET {
            if !self.reading() {
                return Ok(IoStatus::Blocked);
            }
            let res = match self.fd.borrow().as_ref() {
                Some(fd) => fd.read(buf),
                None => return Ok(IoStatus::Blocked),
            };
            match res {
                Ok(0) => return Err(Reason::ConnectionDone),
                Ok(n) => {
                    let owner = self.owner.borrow().clone();
                    if let Some(owner) = owner {
                        owner.data_received(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Reason::lost(e)),
            }
        }
        Ok(IoStatus::More)
    }
}

impl Selectable for Reader {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        register(
            registry,
            self.fd.borrow().as_ref(),
            token,
            Interest::READABLE,
        )
    }

    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        deregister(registry, self.fd.borrow().as_ref())
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        let mut buf = self.buf.take();
        buf.resize(READ_CHUNK, 0);
        let res = self.read_loop(&mut buf);
        self.buf.set(buf);
        res
    }

    fn connection_lost(&self, reason: Reason) {
        drop(self.fd.borrow_mut().take());
        let owner = self.owner.borrow_mut().take();
        if let Some(owner) = owner {
            owner.side_lost(false, reason);
        }
    }

    fn describe(&self) -> String {
        String::from("standard input reader")
    }
}
