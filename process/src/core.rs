//! The process core: what every child shares, whatever its channels are (pipes or a PTY)
//! — pid, exit, the end, `signal_process`, and delivery to the protocol (CONTRACT F, J).
//! Twisted's `_BaseProcess`.

#[cfg(unix)]
use std::cell::RefCell;
use std::cell::{Cell, OnceCell};
use std::fmt;
#[cfg(unix)]
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use torsion_transport::{ExitReason, ProcessProtocol, ProcessTransport};
#[cfg(unix)]
use torsion_transport::{ProcessError, Signal};

use crate::protocol_cell::ProtocolCell;
#[cfg(unix)]
use crate::raw::{self, ResourceUsage};

/// What became of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// Why it ended.
    pub reason: ExitReason,
    /// The raw wait status (POSIX) or exit code (Windows), if it was learned.
    pub status: Option<i32>,
    /// Resource usage from `wait4`, if it was learned.
    #[cfg(unix)]
    pub rusage: Option<ResourceUsage>,
}

/// The state of one child that does not depend on how the parent talks to it: shared by
/// the pipe and PTY children of the POSIX back end and by the Windows back end.
pub(crate) struct ProcessCore {
    pid: Cell<Option<u32>>,
    original_pid: u32,
    #[cfg(unix)]
    pidfd: RefCell<Option<Rc<OwnedFd>>>,
    protocol: ProtocolCell,
    /// Set once reaped. Boxed: a live child pays 8 bytes for it, not 80 (B8).
    exit: OnceCell<Box<ExitInfo>>,
    ended: Cell<bool>,
    paused: Cell<bool>,
}

impl fmt::Debug for ProcessCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessCore")
            .field("pid", &self.original_pid)
            .field("alive", &self.pid.get().is_some())
            .field("exit", &self.exit.get())
            .field("ended", &self.ended.get())
            .finish()
    }
}

impl ProcessCore {
    pub(crate) fn new(pid: u32, protocol: Box<dyn ProcessProtocol>) -> Self {
        ProcessCore {
            pid: Cell::new(Some(pid)),
            original_pid: pid,
            #[cfg(unix)]
            pidfd: RefCell::new(None),
            protocol: ProtocolCell::new(protocol),
            exit: OnceCell::new(),
            ended: Cell::new(false),
            paused: Cell::new(false),
        }
    }

    /// Signal through this pidfd from now on (POSIX).
    #[cfg(unix)]
    pub(crate) fn set_pidfd(&self, pidfd: Option<Rc<OwnedFd>>) {
        *self.pidfd.borrow_mut() = pidfd;
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid.get()
    }

    pub(crate) fn original_pid(&self) -> u32 {
        self.original_pid
    }

    pub(crate) fn exit(&self) -> Option<ExitInfo> {
        self.exit.get().map(|e| **e)
    }

    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        self.exit.get().map(|e| e.reason)
    }

    pub(crate) fn wait_status(&self) -> Option<i32> {
        self.exit.get().and_then(|e| e.status)
    }

    #[cfg(unix)]
    pub(crate) fn resource_usage(&self) -> Option<ResourceUsage> {
        self.exit.get().and_then(|e| e.rusage)
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended.get()
    }

    pub(crate) fn paused(&self) -> bool {
        self.paused.get()
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.set(paused);
    }

    /// `connection_made(transport)` (CONTRACT F1). Returns `false` if it panicked: the
    /// caller then closes the channels, and the exit and the end are still delivered.
    pub(crate) fn connection_made(&self, transport: Rc<dyn ProcessTransport>) -> bool {
        self.protocol
            .deliver("connection_made", move |p| p.connection_made(transport))
    }

    /// `child_data_received(fd, data)`; `false` if it panicked (CONTRACT F7: the caller
    /// closes that channel).
    pub(crate) fn data_received(&self, fd: i32, data: &[u8]) -> bool {
        self.protocol.child_data_received(fd, data)
    }

    /// `child_connection_lost(fd)` (CONTRACT F2). A panic in it is logged; the caller goes
    /// on to [`end_if`](Self::end_if) whatever happened.
    pub(crate) fn channel_lost(&self, fd: i32) {
        self.protocol.deliver("child_connection_lost", move |p| {
            p.child_connection_lost(fd)
        });
    }

    /// The child was reaped: forget the pid, record the exit, deliver `process_exited`
    /// (CONTRACT F3; a panic in it is logged, F7). Returns `false` for a second report.
    pub(crate) fn reaped(&self, info: ExitInfo) -> bool {
        self.pid.set(None);
        #[cfg(unix)]
        self.pidfd.borrow_mut().take();
        if self.exit.set(Box::new(info)).is_err() {
            log::warn!("process {} reaped twice", self.original_pid);
            return false;
        }
        let reason = info.reason;
        self.protocol
            .deliver("process_exited", move |p| p.process_exited(reason));
        true
    }

    /// Deliver `process_ended` (CONTRACT F4, L5) once the child is reaped and
    /// `channels_closed` says every channel the reactor created is closed; then release the
    /// protocol, breaking the transport ↔ protocol cycle.
    pub(crate) fn end_if(&self, channels_closed: bool) {
        let Some(reason) = self.exit_reason() else {
            return;
        };
        if self.ended.get() || !channels_closed {
            return;
        }
        self.ended.set(true);
        log::debug!("process {} ended: {reason}", self.original_pid);
        self.protocol
            .deliver("process_ended", move |p| p.process_ended(reason));
        self.protocol.release();
    }

    /// `signal_process` on POSIX (CONTRACT J1): through the pidfd where there is one, so a reused pid
    /// is never signalled.
    #[cfg(unix)]
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
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
}
