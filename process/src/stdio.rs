//! `StandardIo`: a [`Transport`] over a pair of fds — this process's own stdin and stdout
//! (Twisted's `twisted.internet.stdio.StandardIO`), or any read fd and write fd, such as the
//! two ends of pipes.
//!
//! Built from the same selectables as a child's pipes ([`ProcessReader`] and
//! [`ProcessWriter`]), so it has the full [`FileDescriptor`](torsion_reactor::FileDescriptor)
//! behaviour: buffering, producers, flush-then-close.
//!
//! Regular files cannot be polled; a regular file on either side is read or written
//! without waiting for readiness (it is always ready), so `run < file` works.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::rc::{Rc, Weak};

use torsion_reactor::Reactor;
use torsion_transport::{
    Address, Consumer, Producer, ProducerError, Protocol, PushProducer, Reason, Transport,
};

use crate::pipes::{PipeOwner, ProcessReader, ProcessWriter};

/// A transport reading one fd and writing another.
///
/// The protocol gets `connection_made` inside [`StandardIo::start`], `data_received` for
/// what arrives on the read fd, and `connection_lost` once **both** sides are closed: with
/// [`Reason::ConnectionDone`] when that was clean. EOF on the read side reaches a
/// half-closeable protocol as `read_connection_lost` (the write side stays usable);
/// otherwise it closes the write side after flushing.
pub struct StandardIo {
    reader: RefCell<Option<Rc<ProcessReader>>>,
    writer: RefCell<Option<Rc<ProcessWriter>>>,
    protocol: RefCell<Option<Box<dyn Protocol>>>,
    reason: RefCell<Option<Reason>>,
    lost: Cell<bool>,
    restore_stdio: Cell<bool>,
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

const READ_SIDE: i32 = 0;
const WRITE_SIDE: i32 = 1;

impl StandardIo {
    /// Drive `protocol` over `read` and `write` (both made non-blocking here).
    ///
    /// # Errors
    ///
    /// The OS error from making the fds non-blocking or registering them.
    pub fn start(
        reactor: &Reactor,
        read: OwnedFd,
        write: OwnedFd,
        protocol: Box<dyn Protocol>,
    ) -> io::Result<Rc<StandardIo>> {
        use std::os::fd::AsFd;
        crate::raw::set_nonblocking(read.as_fd(), true)?;
        crate::raw::set_nonblocking(write.as_fd(), true)?;
        let me = Rc::new_cyclic(|me| StandardIo {
            reader: RefCell::new(None),
            writer: RefCell::new(None),
            protocol: RefCell::new(Some(protocol)),
            reason: RefCell::new(None),
            lost: Cell::new(false),
            restore_stdio: Cell::new(false),
            me: me.clone(),
        });
        let owner: Rc<dyn PipeOwner> = me.clone();
        let reader = ProcessReader::register(reactor, read, READ_SIDE, owner.clone(), false)?;
        let writer = ProcessWriter::register(reactor, write, WRITE_SIDE, owner)?;
        *me.reader.borrow_mut() = Some(reader.clone());
        *me.writer.borrow_mut() = Some(writer);
        let t: Rc<dyn Transport> = me.clone();
        if let Ok(mut p) = me.protocol.try_borrow_mut() {
            if let Some(p) = p.as_mut() {
                p.connection_made(t);
            }
        }
        if !me.writer_disconnecting() {
            reader.start_reading();
        }
        Ok(me)
    }

    /// This process's stdin and stdout (duplicated, so the originals stay open). Their
    /// shared file descriptions are made non-blocking while the transport is open and
    /// blocking again when it is lost, so the shell that started us is not left with a
    /// non-blocking terminal.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), or the error of duplicating fd 0 or 1.
    pub fn stdio(reactor: &Reactor, protocol: Box<dyn Protocol>) -> io::Result<Rc<StandardIo>> {
        use std::os::fd::AsFd;
        let read = io::stdin().as_fd().try_clone_to_owned()?;
        let write = io::stdout().as_fd().try_clone_to_owned()?;
        let t = StandardIo::start(reactor, read, write, protocol)?;
        t.restore_stdio.set(true);
        Ok(t)
    }

    fn writer(&self) -> Option<Rc<ProcessWriter>> {
        self.writer.borrow().clone()
    }

    fn writer_disconnecting(&self) -> bool {
        self.writer()
            .is_none_or(|w| w.file_descriptor().disconnecting())
    }

    fn maybe_lost(&self) {
        if self.lost.get() || self.reader.borrow().is_some() || self.writer.borrow().is_some() {
            return;
        }
        self.lost.set(true);
        if self.restore_stdio.get() {
            use std::os::fd::AsFd;
            let _ = crate::raw::set_nonblocking(io::stdin().as_fd(), false);
            let _ = crate::raw::set_nonblocking(io::stdout().as_fd(), false);
        }
        let reason = self
            .reason
            .borrow_mut()
            .take()
            .unwrap_or(Reason::ConnectionDone);
        let protocol = self.protocol.borrow_mut().take();
        if let Some(mut p) = protocol {
            p.connection_lost(reason);
        }
    }
}

impl PipeOwner for StandardIo {
    fn child_data_received(&self, _side: i32, data: &[u8]) {
        if let Ok(mut p) = self.protocol.try_borrow_mut() {
            if let Some(p) = p.as_mut() {
                p.data_received(data);
            }
        }
    }

    fn child_connection_lost(&self, side: i32, reason: Reason) {
        if !reason.is_clean() && self.reason.borrow().is_none() {
            *self.reason.borrow_mut() = Some(reason.clone());
        }
        if side == READ_SIDE {
            self.reader.borrow_mut().take();
            let half = !self.writer_disconnecting()
                && self.protocol.try_borrow_mut().is_ok_and(|mut p| {
                    match p.as_mut().and_then(|p| p.as_half_closeable()) {
                        Some(hc) => {
                            hc.read_connection_lost();
                            true
                        }
                        None => false,
                    }
                });
            if !half {
                if let Some(w) = self.writer() {
                    w.file_descriptor().lose_connection();
                }
            }
        } else {
            self.writer.borrow_mut().take();
            let reader = self.reader.borrow().clone();
            if let Some(r) = reader {
                if reason.is_clean() {
                    // The write side was half-closed (CONTRACT D6): reading goes on.
                    if let Ok(mut p) = self.protocol.try_borrow_mut() {
                        if let Some(hc) = p.as_mut().and_then(|p| p.as_half_closeable()) {
                            hc.write_connection_lost();
                        }
                    }
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
        if let Some(w) = self.writer() {
            w.write(data);
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
                producer.stop_producing();
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
}

impl StandardIo {
    /// This transport as the `Rc<dyn Transport>` protocols hold.
    pub fn as_transport(&self) -> Option<Rc<dyn Transport>> {
        self.me.upgrade().map(|t| t as Rc<dyn Transport>)
    }
}
