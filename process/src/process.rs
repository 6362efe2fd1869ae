//! The process transport: a child's pipes and exit, driving a [`ProcessProtocol`]
//! (CONTRACT F, I, J).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::{Rc, Weak};

use torsion_reactor::{Reactor, catch_panic};
use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessError, ProcessProtocol, ProcessTransport, Producer,
    ProducerError, PushProducer, Reason, Signal,
};

use crate::pipes::{PipeOwner, ProcessReader, ProcessWriter};
use crate::raw::{self, ResourceUsage};
use crate::reaper::ExitInfo;

type Queued = Box<dyn FnOnce(&mut dyn ProcessProtocol)>;

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
    protocol: RefCell<Option<Box<dyn ProcessProtocol>>>,
    queued: RefCell<VecDeque<Queued>>,
    readers: RefCell<BTreeMap<i32, Rc<ProcessReader>>>,
    writers: RefCell<BTreeMap<i32, Rc<ProcessWriter>>>,
    /// Child fds mapped `ChildFd::Write` at spawn (closed ones included).
    writable: BTreeSet<i32>,
    exit: Cell<Option<ExitInfo>>,
    ended: Cell<bool>,
    paused: Cell<bool>,
    me: Weak<Process>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.original_pid)
            .field("alive", &self.pid.get().is_some())
            .field("readers", &self.readers.borrow().keys().collect::<Vec<_>>())
            .field("writers", &self.writers.borrow().keys().collect::<Vec<_>>())
            .field("exit", &self.exit.get())
            .finish()
    }
}

impl Process {
    pub(crate) fn new(
        _reactor: &Reactor,
        pid: u32,
        pidfd: Option<Rc<OwnedFd>>,
        protocol: Box<dyn ProcessProtocol>,
        fd_map: &BTreeMap<i32, ChildFd>,
    ) -> Rc<Process> {
        Rc::new_cyclic(|me| Process {
            pid: Cell::new(Some(pid)),
            original_pid: pid,
            pidfd: RefCell::new(pidfd),
            protocol: RefCell::new(Some(protocol)),
            queued: RefCell::new(VecDeque::new()),
            readers: RefCell::new(BTreeMap::new()),
            writers: RefCell::new(BTreeMap::new()),
            writable: fd_map
                .iter()
                .filter(|(_, w)| **w == ChildFd::Write)
                .map(|(k, _)| *k)
                .collect(),
            exit: Cell::new(None),
            ended: Cell::new(false),
            paused: Cell::new(false),
            me: me.clone(),
        })
    }

    pub(crate) fn owner(&self) -> Option<Rc<dyn PipeOwner>> {
        self.me.upgrade().map(|p| p as Rc<dyn PipeOwner>)
    }

    pub(crate) fn add_reader(&self, r: Rc<ProcessReader>) {
        self.readers.borrow_mut().insert(r.child_fd(), r);
    }

    pub(crate) fn add_writer(&self, w: Rc<ProcessWriter>) {
        self.writers.borrow_mut().insert(w.child_fd(), w);
    }

    /// Call `connection_made` and start reading (CONTRACT F1).
    pub(crate) fn start(self: &Rc<Self>) {
        let t: Rc<dyn ProcessTransport> = self.clone();
        self.deliver(move |p| p.connection_made(t));
        if !self.paused.get() {
            for r in self.readers.borrow().values() {
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
        self.writers.borrow().get(&0).cloned()
    }

    /// Call into the protocol, or queue the call if the protocol is already on the stack
    /// (DESIGN rule 4: queued, never a panic).
    fn deliver(&self, f: impl FnOnce(&mut dyn ProcessProtocol) + 'static) {
        self.queued.borrow_mut().push_back(Box::new(f));
        loop {
            let Ok(mut guard) = self.protocol.try_borrow_mut() else {
                return; // the outer call drains the queue when it returns
            };
            let Some(next) = self.queued.borrow_mut().pop_front() else {
                return;
            };
            if let Some(p) = guard.as_mut() {
                next(p.as_mut());
            }
        }
    }

    pub(crate) fn reaped(&self, info: ExitInfo) {
        self.pid.set(None);
        self.pidfd.borrow_mut().take();
        self.exit.set(Some(info));
        let reason = info.reason;
        // CONTRACT F7: a panic in process_exited is logged; process_ended still comes.
        self.deliver(move |p| {
            catch_panic("process_exited", || p.process_exited(reason));
        });
        self.maybe_ended();
    }

    fn maybe_ended(&self) {
        let Some(info) = self.exit.get() else { return };
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
        if let Ok(mut g) = self.protocol.try_borrow_mut() {
            g.take();
        }
    }

    fn for_each_reader(&self, f: impl Fn(&ProcessReader)) {
        let readers: Vec<_> = self.readers.borrow().values().cloned().collect();
        for r in readers {
            f(&r);
        }
    }
}

impl PipeOwner for Process {
    fn child_data_received(&self, child_fd: i32, data: &[u8]) {
        match self.protocol.try_borrow_mut() {
            Ok(mut g) => {
                if let Some(p) = g.as_mut() {
                    p.child_data_received(child_fd, data);
                }
            }
            Err(_) => {
                let data = data.to_vec();
                self.deliver(move |p| p.child_data_received(child_fd, &data));
            }
        }
    }

    fn child_connection_lost(&self, child_fd: i32, reason: Reason) {
        log::debug!(
            "process {} child fd {child_fd} closed: {reason}",
            self.original_pid
        );
        self.readers.borrow_mut().remove(&child_fd);
        self.writers.borrow_mut().remove(&child_fd);
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
        match self.writers.borrow().get(&0) {
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
        let w = self.writers.borrow().get(&0).cloned();
        match w {
            Some(w) => w.file_descriptor().register_producer(producer),
            None => {
                producer.stop_producing();
                Ok(())
            }
        }
    }

    fn unregister_producer(&self) {
        let w = self.writers.borrow().get(&0).cloned();
        if let Some(w) = w {
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
        if let Some(w) = self.writers.borrow().get(&fd) {
            w.file_descriptor().write(data);
        }
        Ok(())
    }

    fn close_child_fd(&self, fd: i32) -> Result<(), ProcessError> {
        let w = self.writers.borrow().get(&fd).cloned();
        if let Some(w) = w {
            w.file_descriptor().lose_connection();
        }
        let r = self.readers.borrow().get(&fd).cloned();
        if let Some(r) = r {
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
