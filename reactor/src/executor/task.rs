//! Tasks: the ready queue, wakers and the per-executor task table (CONTRACT P4, P5).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use crate::callback::{catch_panic, guard};
use crate::executor::join::{JoinError, JoinHandle, JoinState};
use crate::thread::ThreadShared;

/// Task polls per loop iteration before the rest of the ready queue waits for the next one,
/// so a busy task cannot starve I/O (CONTRACT P4; as [`READ_BUDGET`](crate::READ_BUDGET)
/// does for reads).
pub const TASK_BUDGET: usize = 256;

/// A task's slot index and generation: a waker of a finished task never polls the task that
/// reuses its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskKey {
    index: usize,
    generation: u64,
}

/// The part of an executor wakers reach, from any thread.
pub(crate) struct ReadyShared {
    queue: Mutex<Vec<TaskKey>>,
    notified: AtomicBool,
    /// The loop's thread, as [`thread_mark`].
    owner: usize,
    loop_waker: Option<Arc<ThreadShared>>,
}

impl ReadyShared {
    fn push(&self, key: Option<TaskKey>) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(key) = key {
                q.push(key);
            }
            self.notified.store(true, Ordering::Release);
        }
        // A wake from the loop's own thread happens in user code the loop is running, and
        // the loop checks `notified` before it blocks; only another thread must wake the
        // poller (through the thread queue's mio waker, which coalesces).
        if thread_mark() != self.owner {
            if let Some(w) = &self.loop_waker {
                w.wake();
            }
        }
    }
}

thread_local! {
    static MARK: u8 = const { 0 };
}

/// An identity of the current thread that is cheap to read (the address of a thread-local:
/// distinct among live threads, and the loop's thread outlives its executor).
fn thread_mark() -> usize {
    MARK.with(|m| std::ptr::from_ref(m) as usize)
}

/// One task's waker: `Send + Sync`; waking only queues the task, once until it is polled
/// (CONTRACT P4).
struct TaskWaker {
    key: TaskKey,
    scheduled: AtomicBool,
    /// Strong: the ready queue holds keys, never wakers, so there is no cycle; a wake
    /// after the executor is gone queues into a queue nobody runs.
    shared: Arc<ReadyShared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.shared.push(Some(self.key));
        }
    }
}

/// A waker that only flags its owner and nudges the loop: for [`Reactor::block_on`]'s
/// future, which is polled by `block_on` itself, not from the task table.
///
/// [`Reactor::block_on`]: crate::Reactor::block_on
pub(crate) struct FlagWaker {
    pub(crate) woken: AtomicBool,
    shared: Weak<ReadyShared>,
}

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            if let Some(shared) = self.shared.upgrade() {
                shared.push(None);
            }
        }
    }
}

/// The error side of a task's [`JoinState`], without its output type.
pub(crate) trait Fail {
    fn fail(&self, error: JoinError);
}

impl<T> Fail for JoinState<T> {
    fn fail(&self, error: JoinError) {
        self.complete(Err(error));
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

struct Task {
    generation: u64,
    /// `None` while the task is being polled (the future is out of the table then).
    future: Option<BoxFuture>,
    waker: Arc<TaskWaker>,
    /// Resolves the `JoinHandle` with an error: panic, abort, shutdown.
    fail: Rc<dyn Fail>,
    aborted: bool,
}

/// The task table and ready queue shared by the reactor's executor and
/// [`LocalExecutor`](crate::executor::LocalExecutor).
pub(crate) struct Executor {
    tasks: RefCell<Slab<Task>>,
    generation: Cell<u64>,
    shared: Arc<ReadyShared>,
    /// Tasks taken from the shared queue and not polled yet (the budget ran out).
    ready: RefCell<VecDeque<TaskKey>>,
    /// The shared queue's buffer, swapped in and out so a run does not allocate.
    spare: RefCell<Vec<TaskKey>>,
    polls: Cell<u64>,
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.tasks.try_borrow().map(|t| t.len()).ok())
            .finish()
    }
}

impl Executor {
    /// An executor whose wakes from other threads nudge `loop_waker` (the reactor's thread
    /// queue); `None` for one driven by hand.
    pub(crate) fn new(loop_waker: Option<Arc<ThreadShared>>) -> Executor {
        Executor {
            tasks: RefCell::new(Slab::new()),
            generation: Cell::new(0),
            shared: Arc::new(ReadyShared {
                queue: Mutex::new(Vec::new()),
                notified: AtomicBool::new(false),
                owner: thread_mark(),
                loop_waker,
            }),
            ready: RefCell::new(VecDeque::new()),
            spare: RefCell::new(Vec::new()),
            polls: Cell::new(0),
        }
    }

    pub(crate) fn flag_waker(&self) -> Arc<FlagWaker> {
        Arc::new(FlagWaker {
            woken: AtomicBool::new(true),
            shared: Arc::downgrade(&self.shared),
        })
    }

    /// Whether a task (or `block_on`'s future) was woken since the last run: the loop must
    /// not block.
    pub(crate) fn has_ready(&self) -> bool {
        self.shared.notified.load(Ordering::Acquire) || !self.ready.borrow().is_empty()
    }

    /// Number of live tasks.
    pub(crate) fn len(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Total task polls so far (for tests of the once-per-batch rule).
    pub(crate) fn polls(&self) -> u64 {
        self.polls.get()
    }

    pub(crate) fn spawn<F>(self: &Rc<Self>, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let state = Rc::new(JoinState::new());
        let done = state.clone();
        let wrapped: BoxFuture = Box::pin(async move {
            let out = fut.await;
            done.complete(Ok(out));
        });
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        let key = {
            let mut tasks = self.tasks.borrow_mut();
            let entry = tasks.vacant_entry();
            let key = TaskKey {
                index: entry.key(),
                generation,
            };
            entry.insert(Task {
                generation,
                future: Some(wrapped),
                waker: Arc::new(TaskWaker {
                    key,
                    // Queued below, as a wake would.
                    scheduled: AtomicBool::new(true),
                    shared: self.shared.clone(),
                }),
                fail: state.clone(),
                aborted: false,
            });
            key
        };
        // A new task is polled from the loop, never inside spawn.
        self.shared.push(Some(key));
        JoinHandle::new(state, key, Rc::downgrade(self))
    }

    fn with_task<R>(&self, key: TaskKey, f: impl FnOnce(&mut Task) -> R) -> Option<R> {
        let mut tasks = self.tasks.borrow_mut();
        match tasks.get_mut(key.index) {
            Some(t) if t.generation == key.generation => Some(f(t)),
            _ => None,
        }
    }

    fn remove(&self, key: TaskKey) -> Option<Task> {
        let mut tasks = self.tasks.borrow_mut();
        match tasks.get(key.index) {
            Some(t) if t.generation == key.generation => Some(tasks.remove(key.index)),
            _ => None,
        }
    }

    /// Mark the task aborted and queue it: its future is dropped on its next turn, from the
    /// loop (CONTRACT P5). A no-op for a finished task.
    pub(crate) fn abort(&self, key: TaskKey) {
        if self.with_task(key, |t| t.aborted = true).is_some() {
            // Queue it even if it is queued already (the flag is per batch).
            self.shared.push(Some(key));
        }
    }

    /// Poll the tasks woken before this call, each at most once, at most `TASK_BUDGET`
    /// of them; the rest stay queued, first in line for the next run. Returns how many
    /// were polled.
    pub(crate) fn run_ready(&self) -> usize {
        if self.shared.notified.load(Ordering::Acquire) {
            let mut spare = std::mem::take(&mut *self.spare.borrow_mut());
            {
                let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::swap(&mut *q, &mut spare);
                self.shared.notified.store(false, Ordering::Release);
            }
            self.ready.borrow_mut().extend(spare.drain(..));
            *self.spare.borrow_mut() = spare;
        }
        // Only what is queued now: a task woken while this runs waits for the next run.
        let n = self.ready.borrow().len().min(TASK_BUDGET);
        let mut polled = 0;
        for _ in 0..n {
            let next = self.ready.borrow_mut().pop_front();
            match next {
                Some(key) => {
                    if self.poll_task(key) {
                        polled += 1;
                    }
                }
                None => break,
            }
        }
        if !self.ready.borrow().is_empty() {
            log::trace!(
                "task budget spent; {} tasks wait for the next turn",
                self.ready.borrow().len()
            );
        }
        polled
    }

    /// Poll one task; false if it was stale or its turn only dropped it (abort).
    fn poll_task(&self, key: TaskKey) -> bool {
        enum Turn {
            Poll(BoxFuture, Arc<TaskWaker>),
            Abort,
            Busy,
        }
        let turn = self.with_task(key, |t| {
            if t.aborted {
                return Turn::Abort;
            }
            match t.future.take() {
                Some(f) => Turn::Poll(f, t.waker.clone()),
                None => Turn::Busy,
            }
        });
        let (mut fut, task_waker) = match turn {
            None | Some(Turn::Busy) => return false,
            Some(Turn::Abort) => {
                if let Some(task) = self.remove(key) {
                    finish(task, JoinError::Aborted);
                }
                return false;
            }
            Some(Turn::Poll(f, w)) => (f, w),
        };
        // Cleared before the poll: a wake during the poll queues the task for the next
        // batch, never a second poll of this one.
        task_waker.scheduled.store(false, Ordering::Release);
        let waker = Waker::from(task_waker);
        let mut cx = Context::from_waker(&waker);
        self.polls.set(self.polls.get() + 1);
        match guard("a task", || fut.as_mut().poll(&mut cx)) {
            Ok(Poll::Pending) => {
                // Put back, unless the task is gone (it cannot be: only this loop removes).
                let mut slot = Some(fut);
                self.with_task(key, |t| t.future = slot.take());
                if let Some(fut) = slot {
                    drop_future(fut);
                }
            }
            Ok(Poll::Ready(())) => {
                let task = self.remove(key);
                drop_future(fut);
                drop(task);
            }
            Err(p) => {
                let task = self.remove(key);
                drop_future(fut);
                if let Some(task) = task {
                    task.fail.fail(JoinError::Panicked(p.message));
                }
            }
        }
        true
    }

    /// Drop every task (shutdown): their futures' destructors run, through the funnel, and
    /// each `JoinHandle` resolves with [`JoinError::Shutdown`]. Tasks spawned by those
    /// destructors are dropped too.
    pub(crate) fn drop_all(&self) -> usize {
        let mut dropped = 0;
        for _ in 0..16 {
            let tasks: Vec<Task> = self.tasks.borrow_mut().drain().collect();
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                finish(task, JoinError::Shutdown);
                dropped += 1;
            }
        }
        self.shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.ready.borrow_mut().clear();
        dropped
    }
}

fn drop_future(fut: BoxFuture) {
    catch_panic("dropping a task", move || drop(fut));
}

fn finish(mut task: Task, error: JoinError) {
    if let Some(fut) = task.future.take() {
        drop_future(fut);
    }
    task.fail.fail(error);
}
