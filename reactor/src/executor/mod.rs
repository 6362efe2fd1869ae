//! async/await on the reactor: a single-threaded executor run by the loop itself.
//!
//! - [`Reactor::spawn_local`] starts a task (no `Send` bound) and returns its
//!   [`JoinHandle`]; [`Reactor::block_on`] runs the loop until one future completes.
//! - [`Reactor::sleep`] and [`Reactor::timeout`] are futures on the reactor's monotonic
//!   timers; the same futures exist for any [`ReactorTime`](torsion_transport::ReactorTime)
//!   ([`ReactorTimeExt`], [`sleep`], [`timeout`]), so async code runs on the test kit's
//!   `Clock` with no real waiting, driven by a [`LocalExecutor`].
//! - [`deferred_from_future`] / [`DeferredFromFuture::from_future`] turn a future into a
//!   [`Deferred`] (Twisted's `Deferred.fromCoroutine`); a `Deferred` is a `Future` already.
//! - Embedding the reactor in another loop: `Reactor` implements `AsFd` (the poller's fd,
//!   readable when an fd the reactor watches is ready) and [`Reactor::next_timeout`] says
//!   how long the host may sleep before calling `iterate(Duration::ZERO)`.
//!
//! # Rules (CONTRACT P4, P5)
//!
//! - A wake only queues the task; tasks are polled from the loop, at one fixed point of
//!   each iteration (after I/O dispatch), never inside `wake()` or a protocol callback.
//!   Wakers are `Send + Sync`: a wake from another thread queues the task and wakes the
//!   poller through the reactor's thread queue, so N wakes are never lost, and a task is
//!   polled at most once per batch however many wakes arrived.
//! - At most [`TASK_BUDGET`] polls per iteration; the rest wait for the next one, which then
//!   does not block.
//! - A panicking task resolves its handle with [`JoinError::Panicked`] (through the funnel
//!   [`guard`](crate::guard)) and the loop goes on; `abort` drops the future on the next
//!   turn; dropping a handle detaches the task; shutdown drops every pending task (its
//!   destructors run) and resolves the handles with [`JoinError::Shutdown`].
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//!
//! let reactor = Reactor::new()?;
//! let r = reactor.clone();
//! let answer = reactor.block_on(async move {
//!     let task = r.spawn_local(async { 6 * 7 });
//!     r.sleep(Duration::from_millis(1)).await;
//!     task.await
//! })?;
//! assert_eq!(answer?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod join;
mod task;
mod time;

use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use torsion_transport::defer::{Deferred, Failure};

pub use join::{AbortHandle, JoinError, JoinHandle};
pub(crate) use task::Executor;
pub use task::TASK_BUDGET;
pub use time::{Elapsed, ReactorTimeExt, Sleep, Timeout, sleep, timeout};

use crate::error::ReactorError;
use crate::reactor::{Reactor, RunState};

/// An executor driven by hand, with no reactor: for async code tested on the test kit's
/// `Clock` or `MemoryReactor` (time is injected, nothing really waits).
///
/// [`run_until_stalled`](Self::run_until_stalled) polls woken tasks (and runs the Deferred
/// soon queue) until nothing is left to do; a test then advances its clock and runs it
/// again. The rules of the reactor's executor hold (wakes only queue, panics are caught).
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::executor::{LocalExecutor, ReactorTimeExt};
/// use torsion_testing::Clock;
///
/// let clock = Clock::new();
/// let ex = LocalExecutor::new();
/// let c = clock.clone();
/// let task = ex.spawn(async move {
///     c.sleep(Duration::from_secs(3600)).await;
///     "an hour later"
/// });
/// ex.run_until_stalled();
/// let task = task.try_take().unwrap_err(); // still sleeping
/// clock.advance(Duration::from_secs(3600)); // no real waiting
/// ex.run_until_stalled();
/// assert_eq!(task.try_take().unwrap().unwrap(), "an hour later");
/// ```
pub struct LocalExecutor {
    executor: Rc<Executor>,
}

impl fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("tasks", &self.executor.len())
            .finish()
    }
}

impl Default for LocalExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalExecutor {
    /// An executor with no task.
    pub fn new() -> Self {
        LocalExecutor {
            executor: Rc::new(Executor::new(None)),
        }
    }

    /// Start `fut` as a task; it is first polled by the next
    /// [`run_until_stalled`](Self::run_until_stalled).
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.executor.spawn(fut)
    }

    /// Poll woken tasks and run the thread's Deferred soon queue until neither has
    /// anything left. Returns the number of task polls. A task that wakes itself forever
    /// makes this run forever, as it would make a loop spin.
    pub fn run_until_stalled(&self) -> usize {
        let mut polls = 0;
        loop {
            let soon = torsion_transport::defer::run_soon_batch();
            let ran = self.executor.run_ready();
            polls += ran;
            if soon == 0 && ran == 0 && !self.executor.has_ready() {
                return polls;
            }
        }
    }

    /// Number of tasks not finished.
    pub fn task_count(&self) -> usize {
        self.executor.len()
    }
}

impl Drop for LocalExecutor {
    fn drop(&mut self) {
        self.executor.drop_all();
    }
}

impl Reactor {
    /// Start `fut` as a task on this reactor's loop (no `Send` bound): it is first polled
    /// from the loop, never inside this call. Dropping the returned [`JoinHandle`] detaches
    /// the task; awaiting it gives the output, or a [`JoinError`].
    ///
    /// ```
    /// use torsion_reactor::Reactor;
    /// use std::rc::Rc;
    ///
    /// let reactor = Reactor::new()?;
    /// let not_send = Rc::new(5);
    /// let task = reactor.spawn_local(async move { *not_send + 1 });
    /// assert_eq!(reactor.block_on(task)??, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_local<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.inner.executor.spawn(fut)
    }

    /// Number of tasks spawned on this reactor and not finished.
    pub fn task_count(&self) -> usize {
        self.inner.executor.len()
    }

    /// Total task polls so far: lets a test check that N wakes make one poll.
    pub fn task_polls(&self) -> u64 {
        self.inner.executor.polls()
    }

    /// Run the loop until `fut` completes and return its output. Like
    /// [`run`](Self::run), it fires `startup` (so `call_when_running` callbacks run); unlike
    /// it, it installs no signal handlers, and when `fut` completes the reactor is left
    /// idle, not shut down: `block_on` or `run` may be called again. `fut` is polled by
    /// `block_on` itself, with the loop's rules (wakes only queue).
    ///
    /// # Errors
    ///
    /// [`ReactorError::AlreadyRunning`] from inside the loop (a callback or a task) or
    /// while `run` runs; [`ReactorError::NotRestartable`] on a reactor already shut down;
    /// [`ReactorError::Stopped`] if the reactor was stopped (and shut down) before `fut`
    /// completed, and [`ReactorError::Crashed`] if it was crashed: `fut` is dropped.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output, ReactorError> {
        match self.inner.state.get() {
            RunState::Idle if !self.inner.in_iteration.get() => {}
            RunState::Stopped => return Err(ReactorError::NotRestartable),
            _ => return Err(ReactorError::AlreadyRunning),
        }
        let mut fut = std::pin::pin!(fut);
        let flag = self.inner.executor.flag_waker();
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        self.inner.state.set(RunState::Running);
        self.inner.crash_requested.set(false);
        // Back to idle however this returns (a panic of `fut` unwinds through here).
        let _idle = IdleOnDrop(self);
        self.fire_system_event(crate::Event::Startup);
        loop {
            if flag.woken.swap(false, Ordering::AcqRel) {
                // The future is inside the loop: `iterate`, `run` and `block_on` from it
                // are refused, as from a task.
                self.inner.in_iteration.set(true);
                let polled = {
                    let _out = InIteration(self);
                    fut.as_mut().poll(&mut cx)
                };
                if let Poll::Ready(v) = polled {
                    return Ok(v);
                }
            }
            if self.inner.crash_requested.replace(false) {
                return Err(ReactorError::Crashed);
            }
            if self.inner.stop_requested.get() {
                self.shutdown();
                return Err(ReactorError::Stopped);
            }
            self.iteration(None);
        }
    }

    /// A future that completes `delay` from now, on the reactor's monotonic timers.
    pub fn sleep(&self, delay: Duration) -> Sleep {
        sleep(self, delay)
    }

    /// `fut`, or [`Elapsed`] if `delay` passes first (the future is then dropped).
    pub fn timeout<F: Future>(&self, delay: Duration, fut: F) -> Timeout<F> {
        timeout(self, delay, fut)
    }

    /// How long a host loop that embeds this reactor may sleep before it calls
    /// [`iterate(Duration::ZERO)`](Self::iterate): `Some(ZERO)` when work is waiting
    /// (ready tasks, queued continuations, pending dispatch, calls from threads), the time
    /// to the next timer, or `None` when only I/O can bring work — the host then waits for
    /// the reactor's fd (`as_fd()`) to be readable (libuv's `uv_backend_timeout`).
    pub fn next_timeout(&self) -> Option<Duration> {
        if self.has_immediate_work() {
            return Some(Duration::ZERO);
        }
        self.inner
            .timers
            .next_deadline()
            .map(|d| d.saturating_sub(self.now()))
    }

    pub(crate) fn run_tasks(&self) -> usize {
        self.inner.executor.run_ready()
    }

    /// Drop every pending task now, as shutdown does (their destructors run; their handles
    /// resolve with [`JoinError::Shutdown`]). Returns how many. For a reactor driven only
    /// by [`block_on`](Self::block_on) or `iterate`, never shut down: a task that holds a
    /// clone of the reactor keeps it alive until the task is dropped.
    pub fn drop_tasks(&self) -> usize {
        let n = self.inner.executor.drop_all();
        if n > 0 {
            log::debug!("shutdown dropped {n} unfinished tasks");
        }
        n
    }
}

/// Clears `in_iteration` however the poll ends (a panic unwinds through it).
struct InIteration<'a>(&'a Reactor);

impl Drop for InIteration<'_> {
    fn drop(&mut self) {
        self.0.inner.in_iteration.set(false);
    }
}

struct IdleOnDrop<'a>(&'a Reactor);

impl Drop for IdleOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.inner.state.get() == RunState::Running {
            self.0.inner.state.set(RunState::Idle);
        }
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for Reactor {
    /// The poller's fd (epoll on Linux, kqueue on BSD/macOS): readable when an fd the
    /// reactor watches is ready, or another thread woke the reactor. Timers and queued work
    /// do not make it readable: use [`Reactor::next_timeout`] for those.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.registry.as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for Reactor {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.as_fd().as_raw_fd()
    }
}

/// A [`Deferred`] fired with `fut`'s result, `fut` running as a task on `reactor`
/// (Twisted's `Deferred.fromCoroutine` / `ensureDeferred`). A panic in `fut` fails the
/// Deferred with [`Failure::Panicked`]; cancelling the Deferred aborts the task and fails
/// it with [`Failure::Cancelled`].
pub fn deferred_from_future<T, F>(reactor: &Reactor, fut: F) -> Deferred<T>
where
    T: 'static,
    F: Future<Output = Result<T, Failure>> + 'static,
{
    let slot: Rc<std::cell::RefCell<Option<AbortHandle>>> = Rc::default();
    let s = slot.clone();
    let d = Deferred::with_canceller(move |_d: &Deferred<T>| {
        let handle = s.borrow_mut().take();
        if let Some(h) = handle {
            h.abort();
        }
    });
    let out = d.clone();
    let task = reactor.spawn_local(async move {
        let r = fut.await;
        let _ = out.complete(r);
    });
    *slot.borrow_mut() = Some(task.abort_handle());
    let watch = d.clone();
    // Detached: it only reports how the task ended.
    let _watcher = reactor.spawn_local(async move {
        match task.await {
            Ok(()) => {}
            Err(JoinError::Panicked(m)) => {
                let _ = watch.errback(Failure::Panicked(m));
            }
            Err(e) => {
                if !watch.is_called() {
                    log::debug!("task behind a Deferred ended: {e}");
                    let _ = watch.errback(Failure::Cancelled);
                }
            }
        }
    });
    d
}

/// `Deferred::from_future(&reactor, fut)`: [`deferred_from_future`] as an associated
/// function of [`Deferred`] (in `torsion::prelude`).
///
/// ```
/// use torsion_reactor::Reactor;
/// use torsion_reactor::executor::DeferredFromFuture;
/// use torsion_transport::defer::Deferred;
///
/// let reactor = Reactor::new()?;
/// let d = Deferred::from_future(&reactor, async { Ok(2 + 2) });
/// assert_eq!(reactor.block_on(d)?.unwrap(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait DeferredFromFuture<T>: Sized {
    /// Run `fut` as a task on `reactor`; the Deferred fires with its result.
    #[doc(alias = "fromCoroutine")]
    #[doc(alias = "ensureDeferred")]
    fn from_future<F>(reactor: &Reactor, fut: F) -> Self
    where
        F: Future<Output = Result<T, Failure>> + 'static;
}

impl<T: 'static> DeferredFromFuture<T> for Deferred<T> {
    fn from_future<F>(reactor: &Reactor, fut: F) -> Self
    where
        F: Future<Output = Result<T, Failure>> + 'static,
    {
        deferred_from_future(reactor, fut)
    }
}
