//! Prefork: one parent binds the listening sockets once and supervises N worker processes
//! that each adopt them and serve on their own reactor (the multi-process pattern Twisted
//! documents, with `adoptStreamPort` in the workers). The kernel spreads the connections
//! over the workers' `accept` calls.
//!
//! # The parent: [`Supervisor`]
//!
//! - spawns each worker with the torsion process API ([`ProcessBuilder`]): the sockets at
//!   fds 3, 4, ... of the child (through the child fd map), stdin/stdout/stderr shared, and
//!   the environment variables [`ENV_FDS`] (how many), [`ENV_WORKER`] (the worker's index)
//!   and [`ENV_PARENT`] (the parent's pid); `NOTIFY_SOCKET` and the watchdog variables are
//!   removed, since systemd talks to the parent;
//! - replaces a worker that dies, after a restart delay that doubles (from
//!   [`PreforkOptions::restart_delay`] up to [`PreforkOptions::max_restart_delay`]) while
//!   workers die young, so that a crash loop does not spin;
//! - on SIGTERM or SIGINT (the reactor's `run` handles them) stops restarting and, as the
//!   reactor shuts down, sends each worker SIGTERM, then SIGKILL after
//!   [`PreforkOptions::grace`], and reaps them before `run` returns (the workers are spawned
//!   with [`ShutdownPolicy::Terminate`]).
//!
//! # The worker: [`Worker::from_env`]
//!
//! - takes the sockets (removing the variables, marking the fds close-on-exec);
//! - makes sure it does not outlive the parent: on Linux with `PR_SET_PDEATHSIG` (SIGTERM
//!   when the parent dies; then it checks the parent is still the one that spawned it, in
//!   case it died before the call), elsewhere by [`Worker::watch_parent`] polling
//!   `getppid()` every second on the reactor.
//!
//! ```no_run
//! use std::time::Duration;
//! use torsion_daemon::endpoints::{BindOptions, ServerEndpoint};
//! use torsion_daemon::prefork::{PreforkOptions, Supervisor, Worker};
//! use torsion_reactor::Reactor;
//! use torsion_transport::{ProcessBuilder, Protocol, factory_fn};
//!
//! struct Discard;
//! impl Protocol for Discard { fn data_received(&mut self, _: &[u8]) {} }
//!
//! let reactor = Reactor::new()?;
//! if let Some(worker) = Worker::from_env()? {
//!     worker.watch_parent(&reactor);
//!     for i in 0..worker.len() {
//!         worker.listen(&reactor, i, factory_fn(|_| Box::new(Discard)))?;
//!     }
//! } else {
//!     let bound = ServerEndpoint::parse("tcp:8080")?.bind(&BindOptions::new())?;
//!     let me = std::env::current_exe()?;
//!     let _supervisor = Supervisor::start(
//!         &reactor,
//!         ProcessBuilder::new(&me).args(std::env::args_os().skip(1)),
//!         vec![bound.fd().try_clone_to_owned()?],
//!         PreforkOptions::new(2),
//!     )?;
//! }
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::{Rc, Weak};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use torsion_process::ProcessBuilderExt;
use torsion_reactor::{Event, Phase, Reactor};
use torsion_transport::{
    ChildFd, DelayedCall, ExitReason, Factory, ListeningPort, ProcessBuilder, ProcessProtocol,
    ProcessTransport, ShutdownPolicy, SpawnError,
};

use crate::sys;

/// How many sockets the parent passed (at fds 3, 4, ...).
pub const ENV_FDS: &str = "TORSION_PREFORK_FDS";
/// The worker's index, from 0.
pub const ENV_WORKER: &str = "TORSION_PREFORK_WORKER";
/// The parent's pid.
pub const ENV_PARENT: &str = "TORSION_PREFORK_PARENT";
/// The first socket's fd in a worker.
pub const FIRST_FD: RawFd = 3;

/// How a [`Supervisor`] runs its workers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PreforkOptions {
    /// How many workers.
    pub workers: usize,
    /// How long a worker has to exit after SIGTERM at shutdown before SIGKILL (default 5 s).
    pub grace: Duration,
    /// The first restart delay after a worker dies (default 100 ms).
    pub restart_delay: Duration,
    /// The longest restart delay (default 5 s).
    pub max_restart_delay: Duration,
    /// A worker that ran at least this long before dying resets the restart delay
    /// (default 1 s); one that died sooner doubles it.
    pub min_uptime: Duration,
}

impl PreforkOptions {
    /// `workers` workers, the other options at their defaults.
    pub fn new(workers: usize) -> Self {
        PreforkOptions {
            workers,
            grace: Duration::from_secs(5),
            restart_delay: Duration::from_millis(100),
            max_restart_delay: Duration::from_secs(5),
            min_uptime: Duration::from_secs(1),
        }
    }

    /// Set [`grace`](Self::grace).
    #[must_use]
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Set [`restart_delay`](Self::restart_delay) and
    /// [`max_restart_delay`](Self::max_restart_delay).
    #[must_use]
    pub fn with_restart_delays(mut self, first: Duration, max: Duration) -> Self {
        self.restart_delay = first;
        self.max_restart_delay = max.max(first);
        self
    }
}

struct Slot {
    process: Option<Rc<dyn ProcessTransport>>,
    started: Duration,
    restart: Option<DelayedCall>,
    /// The next restart delay of this worker.
    delay: Duration,
}

/// The parent of prefork workers; see the [module docs](self).
pub struct Supervisor {
    reactor: Reactor,
    command: ProcessBuilder,
    sockets: Vec<OwnedFd>,
    options: PreforkOptions,
    slots: RefCell<Vec<Slot>>,
    stopping: Cell<bool>,
    spawned: Cell<u64>,
    me: Weak<Supervisor>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("workers", &self.pids())
            .field("spawned", &self.spawned.get())
            .field("stopping", &self.stopping.get())
            .finish()
    }
}

impl Supervisor {
    /// Spawn `options.workers` workers running `command`, each given `sockets` at fds 3,
    /// 4, ... (the supervisor keeps them open to give them to replacements), and supervise
    /// them until the reactor shuts down.
    ///
    /// # Errors
    ///
    /// The [`SpawnError`] of the first worker that cannot be spawned (the ones already
    /// started are left to the reactor's shutdown).
    pub fn start(
        reactor: &Reactor,
        command: ProcessBuilder,
        sockets: Vec<OwnedFd>,
        options: PreforkOptions,
    ) -> Result<Rc<Supervisor>, SpawnError> {
        let sup = Rc::new_cyclic(|me| Supervisor {
            reactor: reactor.clone(),
            command,
            sockets,
            slots: RefCell::new(
                (0..options.workers)
                    .map(|_| Slot {
                        process: None,
                        started: Duration::ZERO,
                        restart: None,
                        delay: options.restart_delay,
                    })
                    .collect(),
            ),
            options,
            stopping: Cell::new(false),
            spawned: Cell::new(0),
            me: me.clone(),
        });
        let weak = Rc::downgrade(&sup);
        reactor.add_system_event_trigger(Phase::Before, Event::Shutdown, move || {
            if let Some(s) = weak.upgrade() {
                s.stop_restarting();
            }
        });
        for i in 0..sup.options.workers {
            sup.spawn(i)?;
        }
        Ok(sup)
    }

    fn builder(&self, index: usize) -> ProcessBuilder {
        let mut b = self
            .command
            .clone()
            .env(ENV_FDS, self.sockets.len().to_string())
            .env(ENV_WORKER, index.to_string())
            .env(ENV_PARENT, std::process::id().to_string())
            // systemd talks to the parent: a worker must not send READY=1 or pings.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .shutdown_policy(ShutdownPolicy::Terminate {
                grace: self.options.grace,
            });
        for fd in 0..3 {
            b = b.child_fd(fd, ChildFd::Inherit(fd));
        }
        for (i, s) in self.sockets.iter().enumerate() {
            b = b.child_fd(FIRST_FD + i as RawFd, ChildFd::Inherit(s.as_raw_fd()));
        }
        b
    }

    fn spawn(&self, index: usize) -> Result<(), SpawnError> {
        let protocol = Box::new(WorkerProtocol {
            supervisor: self.me.clone(),
            index,
        });
        let process = self.builder(index).spawn(&self.reactor, protocol)?;
        self.spawned.set(self.spawned.get() + 1);
        log::info!("prefork: worker {index} started (pid {:?})", process.pid());
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots.get_mut(index) {
            slot.process = Some(process);
            slot.started = self.reactor.now();
        }
        Ok(())
    }

    fn ended(&self, index: usize, reason: &ExitReason) {
        if self.stopping.get() {
            if let Some(slot) = self.slots.borrow_mut().get_mut(index) {
                slot.process = None;
            }
            log::info!("prefork: worker {index} ended ({reason})");
            return;
        }
        let now = self.reactor.now();
        let delay = {
            let mut slots = self.slots.borrow_mut();
            let Some(slot) = slots.get_mut(index) else {
                return;
            };
            slot.process = None;
            let uptime = now.saturating_sub(slot.started);
            let delay = if uptime >= self.options.min_uptime {
                self.options.restart_delay
            } else {
                slot.delay
            };
            slot.delay = (delay * 2).min(self.options.max_restart_delay);
            delay
        };
        log::warn!("prefork: worker {index} ended ({reason}); restarting it in {delay:?}");
        let weak = self.me.clone();
        let call = self.reactor.call_later(delay, move || {
            if let Some(s) = weak.upgrade() {
                if s.stopping.get() {
                    return;
                }
                if let Err(e) = s.spawn(index) {
                    log::error!("prefork: cannot restart worker {index}: {e}; trying again");
                    s.ended(index, &ExitReason::ProcessDone);
                }
            }
        });
        if let Some(slot) = self.slots.borrow_mut().get_mut(index) {
            slot.restart = Some(call);
        }
    }

    fn stop_restarting(&self) {
        self.stopping.set(true);
        let calls: Vec<DelayedCall> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(|s| s.restart.take())
            .collect();
        for c in calls {
            let _ = c.cancel();
        }
    }

    /// The pids of the workers alive now, by index (`None`: between a death and its
    /// replacement).
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.slots
            .borrow()
            .iter()
            .map(|s| s.process.as_ref().and_then(|p| p.pid()))
            .collect()
    }

    /// How many workers were spawned in all (the first ones and the replacements).
    pub fn spawned(&self) -> u64 {
        self.spawned.get()
    }

    /// Stop replacing workers and end them (SIGTERM; the reactor's shutdown sends SIGKILL
    /// after the grace). Shutting the reactor down does this too.
    pub fn stop(&self) {
        self.stop_restarting();
        let processes: Vec<_> = self
            .slots
            .borrow()
            .iter()
            .filter_map(|s| s.process.clone())
            .collect();
        for p in processes {
            let _ = p.signal_process(torsion_transport::Signal::Term);
        }
    }
}

struct WorkerProtocol {
    supervisor: Weak<Supervisor>,
    index: usize,
}

impl ProcessProtocol for WorkerProtocol {
    fn process_ended(&mut self, reason: ExitReason) {
        if let Some(s) = self.supervisor.upgrade() {
            s.ended(self.index, &reason);
        }
    }
}

/// Why a worker cannot take what its parent passed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PreforkError {
    /// A variable is not a number.
    BadVariable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// A passed fd is not open.
    BadFd {
        /// The fd.
        fd: RawFd,
        /// The OS error.
        error: Arc<io::Error>,
    },
    /// The parent died before the worker could watch it.
    ParentGone {
        /// The pid that spawned us.
        parent: u32,
    },
}

impl fmt::Display for PreforkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreforkError::BadVariable { name, value } => {
                write!(f, "{name}: \"{value}\" is not a number")
            }
            PreforkError::BadFd { fd, error } => {
                write!(f, "fd {fd} from the prefork parent is unusable: {error}")
            }
            PreforkError::ParentGone { parent } => {
                write!(f, "the prefork parent (pid {parent}) is gone")
            }
        }
    }
}

impl std::error::Error for PreforkError {}

/// A worker's share of what its [`Supervisor`] passed: its index and the sockets.
#[derive(Debug)]
pub struct Worker {
    index: usize,
    parent: u32,
    sockets: Vec<OwnedFd>,
}

static WORKER: OnceLock<Result<Option<Worker>, PreforkError>> = OnceLock::new();

fn number(name: &'static str, v: &str) -> Result<u64, PreforkError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PreforkError::BadVariable {
            name,
            value: v.to_owned(),
        });
    }
    v.parse().map_err(|_| PreforkError::BadVariable {
        name,
        value: v.to_owned(),
    })
}

impl Worker {
    /// In a worker, what the parent passed (`Ok(None)` in a process that is not a
    /// worker). The first call removes the variables, takes the fds (close-on-exec) and
    /// arranges to die with the parent (Linux: `PR_SET_PDEATHSIG`); call it early in
    /// `main`, before starting threads. Later calls return the same worker.
    ///
    /// # Errors
    ///
    /// [`PreforkError`]: a malformed variable, a closed fd, a parent already gone.
    pub fn from_env() -> Result<Option<&'static Worker>, PreforkError> {
        WORKER
            .get_or_init(Self::take_env)
            .as_ref()
            .map(Option::as_ref)
            .map_err(Clone::clone)
    }

    fn take_env() -> Result<Option<Worker>, PreforkError> {
        let read = |k: &str| std::env::var(k).ok();
        let (count, index, parent) = (read(ENV_FDS), read(ENV_WORKER), read(ENV_PARENT));
        for k in [ENV_FDS, ENV_WORKER, ENV_PARENT] {
            sys::remove_env(k);
        }
        let Some(count) = count else { return Ok(None) };
        let count = number(ENV_FDS, &count)?;
        if count > 1024 {
            return Err(PreforkError::BadVariable {
                name: ENV_FDS,
                value: count.to_string(),
            });
        }
        let index = number(ENV_WORKER, index.as_deref().unwrap_or(""))? as usize;
        let parent =
            u32::try_from(number(ENV_PARENT, parent.as_deref().unwrap_or(""))?).map_err(|_| {
                PreforkError::BadVariable {
                    name: ENV_PARENT,
                    value: "out of range".into(),
                }
            })?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(e) = sys::set_parent_death_signal(libc::SIGTERM) {
            log::warn!("prefork worker: PR_SET_PDEATHSIG: {e}");
        }
        if std::os::unix::process::parent_id() != parent {
            return Err(PreforkError::ParentGone { parent });
        }
        let fds: Vec<RawFd> = (0..count as RawFd).map(|i| FIRST_FD + i).collect();
        for fd in &fds {
            fcntl(*fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(|e| PreforkError::BadFd {
                fd: *fd,
                error: Arc::new(io::Error::from(e)),
            })?;
        }
        let sockets = fds.into_iter().map(sys::own_inherited_fd).collect();
        Ok(Some(Worker {
            index,
            parent,
            sockets,
        }))
    }

    /// This worker's index, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many sockets the parent passed.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// True when the parent passed none.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The `i`th socket (fd `3 + i`), borrowed.
    pub fn socket(&self, i: usize) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.sockets.get(i).map(AsFd::as_fd)
    }

    /// Listen on the `i`th socket (a listening stream socket) with `factory`, adopting a
    /// duplicate of it.
    ///
    /// # Errors
    ///
    /// `NotFound` for no such socket; the error of `adopt_stream_port`.
    pub fn listen(
        &self,
        reactor: &Reactor,
        i: usize,
        factory: Rc<dyn Factory>,
    ) -> io::Result<Rc<dyn ListeningPort>> {
        let fd = self
            .sockets
            .get(i)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no socket {i} from the prefork parent"),
                )
            })?
            .try_clone()?;
        reactor.adopt_stream_port(fd, factory)
    }

    /// Stop the reactor when the parent is gone. On Linux `PR_SET_PDEATHSIG` already sends
    /// SIGTERM (which `run` turns into a graceful stop) and this does nothing; elsewhere it
    /// checks `getppid()` every second.
    pub fn watch_parent(&self, reactor: &Reactor) {
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            fn check(r: Reactor, parent: u32) {
                if std::os::unix::process::parent_id() != parent {
                    log::warn!("prefork worker: the parent ({parent}) is gone; stopping");
                    let _ = torsion_transport::ReactorCore::stop(&r);
                    return;
                }
                let r2 = r.clone();
                r.call_later(Duration::from_secs(1), move || check(r2, parent));
            }
            check(reactor.clone(), self.parent);
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = (reactor, self.parent);
    }
}
