//! `StandardIo`: a [`Transport`] over a pair of fds — this process's own stdin and stdout
//! (Twisted's `twisted.internet.stdio.StandardIO`), or any read fd and write fd, such as the
//! two ends of pipes — and [`StdoutWriter`], a one-call writer for our stdout or stderr.
//!
//! The write side has the full [`FileDescriptor`](torsion_reactor::FileDescriptor)
//! behaviour: buffering, producers, flush-then-close.
//!
//! # Shared descriptions stay blocking
//!
//! Our stdin and stdout are usually shared: with the shell, with the other commands of a
//! pipeline, with a parent that reads our output. `O_NONBLOCK` belongs to the shared *open
//! file description* (a `dup` shares it too), so setting it would make the other writers of
//! the same pipe fail with `EAGAIN` or short writes, and would outlive us. `StandardIo` and
//! [`StdoutWriter`] never set it where they can avoid it:
//!
//! - pipes, FIFOs and terminals are reopened through `/proc/self/fd/N`, which gives a new
//!   description, non-blocking and ours alone;
//! - sockets are read and written with `MSG_DONTWAIT`, flags untouched;
//! - regular files never block (they cannot be polled either): read and written directly,
//!   so `run < file` works and the file offset stays shared;
//! - the last resort (no `/proc`, as on macOS, or a reopen refused): the flag is set, and
//!   cleared again when the fd is closed, after an error or a panic too, and at process
//!   exit (`atexit`). Nothing can clear it after `SIGKILL`.
//!
//! # Portability
//!
//! Unix. The reopen needs Linux's `/proc`; elsewhere the last resort is used for pipes and
//! terminals.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::{Rc, Weak};

use torsion_reactor::{ProtocolSlot, Reactor, catch_panic};
use torsion_transport::{
    Address, Consumer, Producer, ProducerError, Protocol, PushProducer, Reason, Transport,
};

mod fd;
mod reader;
mod writer;

use fd::StdioFd;
use reader::Reader;
pub use writer::StdoutWriter;

/// What the reader and writer report to.
trait Owner {
    /// The read side received `data`.
    fn data_received(&self, data: &[u8]);
    /// One side is closed (`write_side` tells which); called once per side.
    fn side_lost(&self, write_side: bool, reason: Reason);
}

/// A transport reading one fd and writing another.
///
/// The protocol gets `connection_made` inside [`StandardIo::start`], `data_received` for
/// what arrives on the read fd, and `connection_lost` once **both** sides are closed: with
/// [`Reason::ConnectionDone`] when that was clean. EOF on the read side reaches a
/// half-closeable protocol as `read_connection_lost` (the write side stays usable);
/// otherwise it closes the write side after flushing.
///
/// Neither fd's shared open file description is made non-blocking (see the
/// [module docs](self)).
pub struct StandardIo {
    reader: RefCell<Option<Rc<Reader>>>,
    writer: RefCell<Option<Rc<StdoutWriter>>>,
    protocol: ProtocolSlot,
    reason: RefCell<Option<Reason>>,
    lost: Cell<bool>,
    /// Made with a write side (not [`StandardIo::stdin`]).
    write_side: bool,
    me: Weak<StandardIo>,
}

impl fmt::Debug for StandardIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandardIo")
            .field("reading", &self.reader.borrow().is_some())
            .field("writing", &self.writer.borrow().is_some())
            .finish()
    }
}

impl StandardIo {
    /// Drive `protocol` over `read` and `write`. Both are ours to close; their shared
    /// descriptions are left blocking.
    ///
    /// # Errors
    ///
    /// The OS error from `fstat`, reopening or registering the fds.
    pub fn start(
        reactor: &Reactor,
        read: OwnedFd,
        write: OwnedFd,
        protocol: Box<dyn Protocol>,
    ) -> io::Result<Rc<StandardIo>> {
        let read = StdioFd::new(read, false)?;
        let write = StdioFd::new(write, true)?;
        Self::start_with(reactor, read, Some(write), protocol)
    }

    fn start_with(
        reactor: &Reactor,
        read: StdioFd,
        write: Option<StdioFd>,
        protocol: Box<dyn Protocol>,
    ) -> io::Result<Rc<StandardIo>> {
        let me = Rc::new_cyclic(|me| StandardIo {
            reader: RefCell::new(None),
            writer: RefCell::new(None),
            protocol: ProtocolSlot::new(protocol),
            reason: RefCell::new(None),
            lost: Cell::new(false),
            write_side: write.is_some(),
            me: me.clone(),
        });
        let owner: Rc<dyn Owner> = me.clone();
        let writer = match write {
            Some(w) => Some(StdoutWriter::with_owner(reactor, w, Some(owner.clone()))?),
            None => None,
        };
        let reader = Rc::new(Reader::new(reactor, read, owner));
        match reactor.register(reader.clone()) {
            Ok(token) => reader.set_token(token),
            Err(e) => {
                // Unregister the writer quietly: no protocol has seen the connection.
                if let Some(t) = writer.as_ref().and_then(|w| w.file_descriptor().token()) {
                    reactor.remove(t);
                }
                return Err(e);
            }
        }
        *me.reader.borrow_mut() = Some(reader.clone());
        *me.writer.borrow_mut() = writer;
        let t: Rc<dyn Transport> = me.clone();
        if !me.call("connection_made", |p| p.connection_made(t)) {
            // CONTRACT C5: a panic closes this transport; connection_lost still comes.
            me.abort_connection();
            return Ok(me);
        }
        if !me.writer_disconnecting() {
            reader.start_reading();
        }
        Ok(me)
    }

    /// This process's stdin and stdout (duplicated, so the originals stay open and
    /// blocking).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), or the error of duplicating fd 0 or 1.
    pub fn stdio(reactor: &Reactor, protocol: Box<dyn Protocol>) -> io::Result<Rc<StandardIo>> {
        let read = io::stdin().as_fd().try_clone_to_owned()?;
        let write = io::stdout().as_fd().try_clone_to_owned()?;
        StandardIo::start(reactor, read, write, protocol)
    }

    /// A transport that only reads `read` (ours to close; its description is left
    /// blocking). What it reads goes to `protocol`; at EOF (or a read error) the protocol
    /// gets `connection_lost`, never `read_connection_lost`. Writes are dropped with a
    /// `warn!`. As a [`PushProducer`] (say, feeding a child's stdin), `stop_producing`
    /// stops reading and closes `read`, nothing else.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn read_only(
        reactor: &Reactor,
        read: OwnedFd,
        protocol: Box<dyn Protocol>,
    ) -> io::Result<Rc<StandardIo>> {
        Self::start_with(reactor, StdioFd::new(read, false)?, None, protocol)
    }

    /// This process's stdin alone: [`read_only`](Self::read_only) over a copy of fd 0.
    ///
    /// # Errors
    ///
    /// The error of duplicating fd 0, or as [`start`](Self::start).
    pub fn stdin(reactor: &Reactor, protocol: Box<dyn Protocol>) -> io::Result<Rc<StandardIo>> {
        Self::read_only(reactor, io::stdin().as_fd().try_clone_to_owned()?, protocol)
    }

    /// A writer for this process's stdout, with no protocol and no reading: one line to
    /// print through the reactor with flow control (a copy of fd 1, left blocking).
    ///
    /// # Errors
    ///
    /// The error of duplicating fd 1, as [`StdoutWriter::new`].
    pub fn stdout(reactor: &Reactor) -> io::Result<Rc<StdoutWriter>> {
        StdoutWriter::new(reactor, io::stdout().as_fd().try_clone_to_owned()?)
    }

    /// As [`stdout`](Self::stdout), for this process's stderr (fd 2).
    ///
    /// # Errors
    ///
    /// The error of duplicating fd 2, as [`StdoutWriter::new`].
    pub fn stderr(reactor: &Reactor) -> io::Result<Rc<StdoutWriter>> {
        StdoutWriter::new(reactor, io::stderr().as_fd().try_clone_to_owned()?)
    }

    fn writer(&self) -> Option<Rc<StdoutWriter>> {
        self.writer.borrow().clone()
    }

    /// The write side is closing or closed (never, without one).
    fn writer_disconnecting(&self) -> bool {
        self.write_side
            && self
                .writer()
                .is_none_or(|w| w.file_descriptor().disconnecting())
    }

    /// Call the protocol through the funnel (CONTRACT C5); `false` if it panicked.
    fn call(&self, what: &str, f: impl FnOnce(&mut dyn Protocol)) -> bool {
        self.protocol.call(what, f).is_ok()
    }

    fn maybe_lost(&self) {
        if self.lost.get() || self.reader.borrow().is_some() || self.writer.borrow().is_some() {
            return;
        }
        self.lost.set(true);
        let reason = self
            .reason
            .borrow_mut()
            .take()
            .unwrap_or(Reason::ConnectionDone);
        self.protocol.lose(reason);
    }
}

impl Owner for StandardIo {
    fn data_received(&self, data: &[u8]) {
        if !self.call("data_received", |p| p.data_received(data)) {
            // A panic closes this transport only (ARCHITECTURE, errors).
            self.abort_connection();
        }
    }

    fn side_lost(&self, write_side: bool, reason: Reason) {
        if !reason.is_clean() && self.reason.borrow().is_none() {
            *self.reason.borrow_mut() = Some(reason.clone());
        }
        if !write_side {
            self.reader.borrow_mut().take();
            let mut half = false;
            if self.write_side && !self.writer_disconnecting() {
                let ok = self.call("read_connection_lost", |p| {
                    if let Some(hc) = p.as_half_closeable() {
                        half = true;
                        hc.read_connection_lost();
                    }
                });
                half &= ok;
            }
            if !half {
                if let Some(w) = self.writer() {
                    let fd = w.file_descriptor();
                    if !fd.disconnecting() && matches!(fd.producer(), Some(Producer::Pull(_))) {
                        // The end of input ends the connection, as EOF on a socket does. A
                        // pull producer would hold a flush-then-close open for ever (E2), so
                        // the write side closes now and the producer is stopped with it.
                        fd.abort_with(Reason::ConnectionDone);
                    } else {
                        w.lose_connection();
                    }
                }
            }
        } else {
            self.writer.borrow_mut().take();
            let reader = self.reader.borrow().clone();
            if let Some(r) = reader {
                if reason.is_clean() {
                    // The write side was half-closed (CONTRACT D6): reading goes on.
                    self.call("write_connection_lost", |p| {
                        if let Some(hc) = p.as_half_closeable() {
                            hc.write_connection_lost();
                        }
                    });
                } else {
                    r.close();
                }
            }
        }
        self.maybe_lost();
    }
}

impl Consumer for StandardIo {
    fn write(&self, data: &[u8]) {
        match self.writer() {
            Some(w) => w.write(data),
            None if !self.write_side => log::warn!("write to a read-only StandardIo dropped"),
            None => {}
        }
    }
    fn write_sequence(&self, data: &[&[u8]]) {
        if let Some(w) = self.writer() {
            w.file_descriptor().write_sequence(data);
        }
    }
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        match self.writer() {
            Some(w) => w.file_descriptor().register_producer(producer),
            None => {
                catch_panic("stop_producing", || producer.stop_producing());
                Ok(())
            }
        }
    }
    fn unregister_producer(&self) {
        if let Some(w) = self.writer() {
            w.file_descriptor().unregister_producer();
        }
    }
}

impl PushProducer for StandardIo {
    fn pause_producing(&self) {
        if let Some(r) = self.reader.borrow().as_ref() {
            r.stop_reading();
        }
    }
    fn resume_producing(&self) {
        if self.writer_disconnecting() {
            return;
        }
        if let Some(r) = self.reader.borrow().as_ref() {
            r.start_reading();
        }
    }
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

impl Transport for StandardIo {
    /// Stop reading now; close the write side after flushing; then `connection_lost`.
    fn lose_connection(&self) {
        if let Some(r) = self.reader.borrow().clone() {
            r.stop_reading();
            r.close();
        }
        if let Some(w) = self.writer() {
            w.file_descriptor().lose_connection();
        }
    }

    fn abort_connection(&self) {
        if let Some(r) = self.reader.borrow().clone() {
            r.close();
        }
        if let Some(w) = self.writer() {
            w.file_descriptor().abort_connection();
        }
    }

    /// Flush, then close the write fd; reading goes on.
    fn lose_write_connection(&self) {
        if let Some(w) = self.writer() {
            w.file_descriptor().lose_write_connection();
        }
    }

    fn host(&self) -> Address {
        Address::Process
    }

    fn peer(&self) -> Address {
        Address::Process
    }

    /// What the stdout writer has not handed to the OS yet (0 without a writer).
    fn unsent_bytes(&self) -> usize {
        self.writer().map_or(0, |w| w.file_descriptor().unsent())
    }
}

impl StandardIo {
    /// This transport as the `Rc<dyn Transport>` protocols hold.
    pub fn as_transport(&self) -> Option<Rc<dyn Transport>> {
        self.me.upgrade().map(|t| t as Rc<dyn Transport>)
    }
}
