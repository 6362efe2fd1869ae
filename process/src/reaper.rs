//! Reaping children without stealing anyone else's (CONTRACT J2, J3, J4).
//!
//! Per reactor, one [`ChildWatcher`] (a reactor extension) tracks the children it was asked
//! to watch. Where the kernel has pidfds, each child's pidfd is registered in the loop and
//! becomes readable when the child exits. Otherwise (or when forced with
//! [`set_reap_mode`]) the reactor watches SIGCHLD through its self-pipe and, on each one,
//! calls `wait4(pid, WNOHANG)` for each child it owns — never `waitpid(-1)`, so children
//! of other code in the process are left alone. A child that someone else reaped first
//! (`ECHILD`) ends with [`ExitReason::Unknown`] instead of hanging.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use torsion_reactor::{Event, IoStatus, Phase, Reactor, Selectable, ShutdownHold, SignalId};
use torsion_transport::{ExitReason, Reason, ShutdownPolicy, Signal};

use crate::raw::{self, WaitResult};

/// How a reactor learns that its children exited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReapMode {
    /// A pidfd per child where the kernel has them (Linux ≥ 5.3), else SIGCHLD.
    #[default]
    Auto,
    /// Always the SIGCHLD self-pipe (for tests of that path, or seccomp sandboxes).
    Sigchld,
}

pub use crate::core::ExitInfo;

impl From<WaitResult> for ExitInfo {
    fn from(w: WaitResult) -> Self {
        ExitInfo {
            reason: w.reason,
            status: Some(w.status),
            rusage: Some(w.rusage),
        }
    }
}

impl ExitInfo {
    fn unknown() -> Self {
        ExitInfo {
            reason: ExitReason::Unknown,
            status: None,
            rusage: None,
        }
    }
}

type OnExit = Box<dyn FnOnce(ExitInfo)>;

/// One watched child. With a pidfd it is also the pidfd's [`Selectable`] in the loop:
/// readable once the child has exited.
struct Watched {
    pid: u32,
    policy: ShutdownPolicy,
    on_exit: RefCell<Option<OnExit>>,
    pidfd: Option<Rc<OwnedFd>>,
    token: Cell<Option<Token>>,
    hold: RefCell<Option<ShutdownHold>>,
    watcher: Weak<ChildWatcher>,
}

impl Watched {
    /// Try to reap; true if the child is gone (and `on_exit` was called).
    fn poll(&self) -> bool {
        let info = match raw::try_wait(self.pid) {
            Ok(Some(w)) => ExitInfo::from(w),
            Ok(None) => return false,
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                log::warn!(
                    "child {} was reaped by someone else; exit status unknown",
                    self.pid
                );
                ExitInfo::unknown()
            }
            Err(e) => {
                log::warn!("wait4({}) failed: {e}", self.pid);
                return false;
            }
        };
        log::debug!("child {} reaped: {}", self.pid, info.reason);
        self.hold.borrow_mut().take();
        let f = self.on_exit.borrow_mut().take();
        if let Some(f) = f {
            f(info);
        }
        true
    }
}

impl Selectable for Watched {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        match &self.pidfd {
            Some(fd) => {
                registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
            }
            None => Err(io::Error::from(io::ErrorKind::InvalidInput)),
        }
    }

    /// Nothing to do: the pidfd is removed only once the child is reaped (or the reactor
    /// shuts down) and is closed with this record, which takes it out of the epoll set;
    /// no `EPOLL_CTL_DEL` first (see `pipes::deregister_fd`).
    fn deregister(&self, _registry: &Registry) -> io::Result<()> {
        Ok(())
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        if self.poll() {
            if let Some(watcher) = self.watcher.upgrade() {
                watcher.forget(self.pid);
                if let (Some(r), Some(t)) = (watcher.reactor.upgrade(), self.token.get()) {
                    r.remove(t);
                }
            }
        }
        Ok(IoStatus::Blocked)
    }

    fn connection_lost(&self, _reason: Reason) {
        // The reactor shut down with the child alive. `Leave`: stop tracking it.
        // `Terminate`: the shutdown `during` trigger still kills and reaps it.
        if self.policy == ShutdownPolicy::Leave {
            if let Some(watcher) = self.watcher.upgrade() {
                watcher.forget(self.pid);
            }
        }
    }

    fn describe(&self) -> String {
        format!("pidfd of child {}", self.pid)
    }
}

/// One reactor's children (a reactor extension; see the module docs).
pub struct ChildWatcher {
    reactor: torsion_reactor::WeakReactor,
    mode: Cell<ReapMode>,
    sigchld: Cell<Option<SignalId>>,
    children: RefCell<Vec<Rc<Watched>>>,
    shutdown_hooked: Cell<bool>,
}

impl fmt::Debug for ChildWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildWatcher")
            .field("mode", &self.mode.get())
            .field("children", &self.children.borrow().len())
            .finish()
    }
}

/// Choose how `reactor` reaps children spawned from now on.
pub fn set_reap_mode(reactor: &Reactor, mode: ReapMode) {
    ChildWatcher::of(reactor).mode.set(mode);
}

impl ChildWatcher {
    /// The watcher of `reactor`.
    pub fn of(reactor: &Reactor) -> Rc<ChildWatcher> {
        reactor.extension(|| ChildWatcher {
            reactor: reactor.downgrade(),
            mode: Cell::new(ReapMode::Auto),
            sigchld: Cell::new(None),
            children: RefCell::new(Vec::new()),
            shutdown_hooked: Cell::new(false),
        })
    }

    /// True if children spawned now should get a pidfd.
    pub fn wants_pidfd(&self) -> bool {
        self.mode.get() == ReapMode::Auto && raw::pidfd_supported()
    }

    /// Make sure SIGCHLD is watched. Call *before* spawning on the SIGCHLD path, so an exit
    /// right after the spawn is not missed.
    ///
    /// # Errors
    ///
    /// The OS error from installing the handler.
    pub fn prepare(self: &Rc<Self>, reactor: &Reactor) -> io::Result<()> {
        self.hook_shutdown(reactor);
        if self.wants_pidfd() || self.sigchld.get().is_some() {
            return Ok(());
        }
        let me = Rc::downgrade(self);
        let id = reactor.on_signal(Signal::Chld, move || {
            if let Some(w) = me.upgrade() {
                w.poll_all();
            }
        })?;
        self.sigchld.set(Some(id));
        Ok(())
    }

    /// Number of children being watched.
    pub fn len(&self) -> usize {
        self.children.borrow().len()
    }

    /// True if no child is being watched.
    pub fn is_empty(&self) -> bool {
        self.children.borrow().is_empty()
    }

    fn forget(&self, pid: u32) {
        self.children.borrow_mut().retain(|c| c.pid != pid);
    }

    fn poll_all(&self) {
        let children = self.children.borrow().clone();
        for c in children {
            if c.poll() {
                self.forget(c.pid);
            }
        }
    }

    /// Watch `pid` (a child of this process); `on_exit` runs from the loop once it is
    /// reaped (CONTRACT F3, F6). With a pidfd, the pidfd is registered in the loop;
    /// otherwise SIGCHLD (see [`prepare`](Self::prepare)) and one check from the loop right
    /// away cover an exit that happened already.
    ///
    /// # Errors
    ///
    /// The OS error from registering the pidfd.
    pub fn watch(
        self: &Rc<Self>,
        reactor: &Reactor,
        pid: u32,
        pidfd: Option<Rc<OwnedFd>>,
        policy: ShutdownPolicy,
        on_exit: OnExit,
    ) -> io::Result<()> {
        let watched = Rc::new(Watched {
            pid,
            policy,
            on_exit: RefCell::new(Some(on_exit)),
            pidfd,
            token: Cell::new(None),
            hold: RefCell::new(None),
            watcher: Rc::downgrade(self),
        });
        if watched.pidfd.is_some() {
            let token = reactor.register(watched.clone())?;
            watched.token.set(Some(token));
            reactor.add_reader(token);
        } else {
            self.prepare(reactor)?;
            let w = watched.clone();
            let me = Rc::downgrade(self);
            reactor.call_later(Duration::ZERO, move || {
                if w.poll() {
                    if let Some(me) = me.upgrade() {
                        me.forget(w.pid);
                    }
                }
            });
        }
        self.children.borrow_mut().push(watched);
        Ok(())
    }

    /// The pidfd of a watched child, for signalling without a pid-reuse race.
    pub fn pidfd(&self, pid: u32) -> Option<Rc<OwnedFd>> {
        self.children
            .borrow()
            .iter()
            .find(|c| c.pid == pid)
            .and_then(|c| c.pidfd.clone())
    }

    /// CONTRACT J4: at shutdown, children with a `Terminate` policy get SIGTERM, then
    /// SIGKILL after their grace period, and are reaped before `run` returns.
    fn hook_shutdown(self: &Rc<Self>, reactor: &Reactor) {
        if self.shutdown_hooked.replace(true) {
            return;
        }
        let me = Rc::downgrade(self);
        let r = reactor.downgrade();
        reactor.add_system_event_trigger(Phase::Before, Event::Shutdown, move || {
            let (Some(me), Some(r)) = (me.upgrade(), r.upgrade()) else {
                return;
            };
            me.terminate_children(&r);
        });
        let me = Rc::downgrade(self);
        reactor.add_system_event_trigger(Phase::During, Event::Shutdown, move || {
            if let Some(me) = me.upgrade() {
                me.kill_stragglers();
            }
        });
    }

    fn terminate_children(&self, reactor: &Reactor) {
        let children = self.children.borrow().clone();
        for c in children {
            let ShutdownPolicy::Terminate { grace } = c.policy else {
                continue;
            };
            let fd = c.pidfd.as_ref().map(|f| f.as_fd());
            if let Err(e) = raw::send_signal(c.pid, fd, Signal::Term) {
                log::debug!("SIGTERM to child {} at shutdown: {e}", c.pid);
            }
            *c.hold.borrow_mut() = Some(reactor.hold_shutdown());
            let w = Rc::downgrade(&c);
            reactor.call_later(grace, move || {
                if let Some(c) = w.upgrade() {
                    if c.on_exit.borrow().is_some() {
                        let fd = c.pidfd.as_ref().map(|f| f.as_fd());
                        let _ = raw::send_signal(c.pid, fd, Signal::Kill);
                    }
                }
            });
        }
    }

    /// After the loop stopped: children with a `Terminate` policy still alive (the
    /// reactor's grace ran out first) are killed and reaped here, bounded in time.
    fn kill_stragglers(&self) {
        let children = std::mem::take(&mut *self.children.borrow_mut());
        for c in children {
            if !matches!(c.policy, ShutdownPolicy::Terminate { .. }) || c.on_exit.borrow().is_none()
            {
                continue;
            }
            let fd = c.pidfd.as_ref().map(|f| f.as_fd());
            let _ = raw::send_signal(c.pid, fd, Signal::Kill);
            for _ in 0..200 {
                if c.poll() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}
