//! The process transport: a child's pipes and exit, driving a [`ProcessProtocol`]
//! (CONTRACT F, I, J).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::{Rc, Weak};

use torsion_reactor::{Reactor, catch_panic};
use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessError, ProcessProtocol, ProcessTransport, Producer,
    ProducerError, PushProducer, Reason, Signal,
};

use crate::pipes::{PipeOwner, ProcessReader, ProcessWriter};
use crate::protocol_cell::ProtocolCell;
use crate::raw::{self, ResourceUsage};
use crate::reaper::ExitInfo;

/// A running (or finished) child, as the parent sees it (Twisted's `Process`).
///
/// Given to the protocol as `Rc<dyn ProcessTransport>` in `connection_made`. The protocol is
/// dropped after `process_ended` returns, which breaks the transport ↔ protocol cycle.
///
/// `process_exited` means the child is gone; `process_ended` means that *and* every pipe
/// the reactor created for it is closed, so no more output can arrive. They differ when
/// a grandchild inherited the pipes, or when the child closed its stdout early.
pub struct Process {
    pid: Cell<Option<u32>>,
    original_pid: u32,
    pidfd: RefCell<Option<Rc<OwnedFd>>>,
    protocol: ProtocolCell,
    /// Open pipes the child writes. A child has a handful of pipes, so a `Vec` searched
    /// by child fd: a `BTreeMap` would allocate a whole B-tree node for two or three
    /// entries (B8).
    readers: RefCell<Vec<Rc<ProcessReader>>>,
    /// Open pipes the child reads, as `readers`.
    writers: RefCell<Vec<Rc<ProcessWriter>>>,
    /// Child fds mapped `ChildFd::Write` at spawn (closed ones included).
    writable: Box<[i32]>,
    /// Set once reaped. Boxed: a live child pays 8 bytes for it, not 80 (B8).
    exit: OnceCell<Box<ExitInfo>>,
    ended: Cell<bool>,
    paused: Cell<bool>,
    me: Weak<Process>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.original_pid)
            .field("alive", &self.pid.get().is_some())
            .field(
                "readers",
                &child_fds(&self.readers.borrow(), |r| r.child_fd()),
            )
            .field(
                "writers",
                &child_fds(&self.writers.borrow(), |w| w.child_fd()),
            )
            .field("exit", &self.exit.get())
            .finish()
    }
}

/// The child fds of `pipes`, for `Debug`.
fn child_fds<T>(pipes: &[Rc<T>], fd: impl Fn(&T) -> i32) -> Vec<i32> {
    pipes.iter().map(|p| fd(p)).collect()
}

impl Process {
    pub(crate) fn new(
        _reactor: &Reactor,
        pid: u32,
        pidfd: Option<Rc<OwnedFd>>,
        protocol: Box<dyn ProcessProtocol>,
        fd_map: &BTreeMap<i32, ChildFd>,
    ) -> Rc<Process> {
        let count = |want: ChildFd| fd_map.values().filter(|d| **d == want).count();
        let (n_read, n_write) = (count(ChildFd::Read), count(ChildFd::Write));
        Rc::new_cyclic(|me| Process {
            pid: Cell::new(Some(pid)),
            original_pid: pid,
            pidfd: RefCell::new(pidfd),
            protocol: ProtocolCell::new(protocol),
            readers: RefCell::new(Vec::with_capacity(n_read)),
            writers: RefCell::new(Vec::with_capacity(n_write)),
            writable: fd_map
                .iter()
                .filter(|(_, w)| **w == ChildFd::Write)
                .map(|(k, _)| *k)
                .collect(),
            exit: OnceCell::new(),
            ended: Cell::new(false),
            paused: Cell::new(false),
            me: me.clone(),
        })
    }

    pub(crate) fn owner(&self) -> Option<Rc<dyn PipeOwner>> {
        self.me.upgrade().map(|p| p as Rc<dyn PipeOwner>)
    }

    pub(crate) fn add_reader(&self, r: Rc<ProcessReader>) {
        let mut readers = self.readers.borrow_mut();
        readers.retain(|old| old.child_fd() != r.child_fd());
        readers.push(r);
    }

    pub(crate) fn add_writer(&self, w: Rc<ProcessWriter>) {
        let mut writers = self.writers.borrow_mut();
        writers.retain(|old| old.child_fd() != w.child_fd());
        writers.push(w);
    }

    fn reader(&self, child_fd: i32) -> Option<Rc<ProcessReader>> {
        let readers = self.readers.borrow();
        readers.iter().find(|r| r.child_fd() == child_fd).cloned()
    }

    fn writer(&self, child_fd: i32) -> Option<Rc<ProcessWriter>> {
        let writers = self.writers.borrow();
        writers.iter().find(|w| w.child_fd() == child_fd).cloned()
    }

    /// Call `connection_made` and start reading (CONTRACT F1).
    pub(crate) fn start(self: &Rc<Self>) {
        let t: Rc<dyn ProcessTransport> = self.clone();
        self.deliver(move |p| p.connection_made(t));
        if !self.paused.get() {
            for r in self.readers.borrow().iter() {
                r.start_reading();
            }
        }
    }

    /// The pid this child had, even after it was reaped.
    pub fn original_pid(&self) -> u32 {
        self.original_pid
    }

    /// Why the child ended, once it was reaped.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.exit.get().map(|e| e.reason)
    }

    /// The raw wait status, once reaped (if it could be learned).
    pub fn wait_status(&self) -> Option<i32> {
        self.exit.get().and_then(|e| e.status)
    }

    /// CPU times and peak memory of the child, from `wait4`, once reaped.
    pub fn resource_usage(&self) -> Option<ResourceUsage> {
        self.exit.get().and_then(|e| e.rusage)
    }

    /// True once `process_ended` was delivered.
    pub fn ended(&self) -> bool {
        self.ended.get()
    }

    /// The writer for child fd 0, if there is one (for buffer size and state).
    pub fn stdin(&self) -> Option<Rc<ProcessWriter>> {
        self.writer(0)
    }

    fn deliver(&self, f: impl FnOnce(&mut dyn ProcessProtocol) + 'static) {
        self.protocol.deliver(f);
    }

    pub(crate) fn reaped(&self, info: ExitInfo) {
        self.pid.set(None);
        self.pidfd.borrow_mut().take();
        if self.exit.set(Box::new(info)).is_err() {
            log::warn!("process {} reaped twice", self.original_pid);
            return;
        }
        let reason = info.reason;
        // CONTRACT F7: a panic in process_exited is logged; process_ended still comes.
        self.deliver(move |p| {
            catch_panic("process_exited", || p.process_exited(reason));
        });
        self.maybe_ended();
    }

    fn maybe_ended(&self) {
        let Some(info) = self.exit.get().map(|e| **e) else {
            return;
        };
        if self.ended.get()
            || !self.readers.borrow().is_empty()
            || !self.writers.borrow().is_empty()
        {
            return;
        }
        self.ended.set(true);
        let reason = info.reason;
        log::debug!("process {} ended: {reason}", self.original_pid);
        self.deliver(move |p| {
            catch_panic("process_ended", || p.process_ended(reason));
        });
        // Break the transport <-> protocol cycle (the protocol may hold us).
        self.protocol.release();
    }

    fn for_each_reader(&self, f: impl Fn(&ProcessReader)) {
        let readers: Vec<_> = self.readers.borrow().clone();
        for r in readers {
            f(&r);
        }
    }
}

impl PipeOwner for Process {
    fn child_data_received(&self, child_fd: i32, data: &[u8]) {
        self.protocol.child_data_received(child_fd, data);
    }

    fn child_connection_lost(&self, child_fd: i32, reason: Reason) {
        log::debug!(
            "process {} child fd {child_fd} closed: {reason}",
            self.original_pid
        );
        // Taken out first and dropped after the borrows end.
        let reader = {
            let mut readers = self.readers.borrow_mut();
            let i = readers.iter().position(|r| r.child_fd() == child_fd);
            i.map(|i| readers.swap_remove(i))
        };
        let writer = {
            let mut writers = self.writers.borrow_mut();
            let i = writers.iter().position(|w| w.child_fd() == child_fd);
            i.map(|i| writers.swap_remove(i))
        };
        drop((reader, writer));
        self.deliver(move |p| p.child_connection_lost(child_fd));
        self.maybe_ended();
    }
}

impl Consumer for Process {
    /// Writes go to the child's stdin (CONTRACT I5); without a stdin pipe they are dropped
    /// with a `warn!`.
    fn write(&self, data: &[u8]) {
        if let Err(e) = self.write_to_child(0, data) {
            log::warn!("process {}: write dropped: {e}", self.original_pid);
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        match self.writer(0) {
            Some(w) => w.file_descriptor().write_sequence(data),
            None => log::warn!(
                "process {}: write dropped: no stdin pipe",
                self.original_pid
            ),
        }
    }

    /// Registers with the stdin pipe. Without one (or after it closed), the producer is
    /// stopped, as for any disconnected consumer (CONTRACT E1).
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        match self.writer(0) {
            Some(w) => w.file_descriptor().register_producer(producer),
            None => {
                producer.stop_producing();
                Ok(())
            }
        }
    }

    fn unregister_producer(&self) {
        if let Some(w) = self.writer(0) {
            w.file_descriptor().unregister_producer();
        }
    }
}

impl PushProducer for Process {
    /// Stop reading every pipe from the child (CONTRACT I6).
    fn pause_producing(&self) {
        self.paused.set(true);
        self.for_each_reader(|r| r.stop_reading());
    }

    /// Start reading every pipe again; output buffered meanwhile is delivered (CONTRACT I6).
    fn resume_producing(&self) {
        self.paused.set(false);
        self.for_each_reader(|r| r.start_reading());
    }

    fn stop_producing(&self) {
        ProcessTransport::lose_connection(self);
    }
}

impl ProcessTransport for Process {
    fn pid(&self) -> Option<u32> {
        self.pid.get()
    }

    fn write_to_child(&self, fd: i32, data: &[u8]) -> Result<(), ProcessError> {
        if !self.writable.contains(&fd) {
            return Err(ProcessError::NotWritable { fd });
        }
        // A closed pipe drops the write, as any disconnected transport does (CONTRACT D1).
        if let Some(w) = self.writer(fd) {
            w.write(data);
        }
        Ok(())
    }

    fn close_child_fd(&self, fd: i32) -> Result<(), ProcessError> {
        if let Some(w) = self.writer(fd) {
            w.file_descriptor().lose_connection();
        }
        if let Some(r) = self.reader(fd) {
            r.close();
        }
        Ok(())
    }

    fn signal_process(&self, signal: Signal) -> Result<(), ProcessError> {
        let Some(pid) = self.pid.get() else {
            return Err(ProcessError::ExitedAlready);
        };
        let pidfd = self.pidfd.borrow().clone();
        match raw::send_signal(pid, pidfd.as_ref().map(|f| f.as_fd()), signal) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Err(ProcessError::ExitedAlready),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Err(ProcessError::UnsupportedSignal(signal))
            }
            Err(e) => Err(ProcessError::Os(e)),
        }
    }

    /// CONTRACT I4: stdin closed after flushing, stderr and stdout closed; never kills.
    fn lose_connection(&self) {
        let _ = self.close_child_fd(0);
        let _ = self.close_child_fd(2);
        let _ = self.close_child_fd(1);
    }
}
