//! [`JoinHandle`] and [`JoinError`] (CONTRACT P5).

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use crate::executor::task::{Executor, TaskKey};

/// Why a task gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoinError {
    /// The task panicked; the message is the panic's (the panic was also logged). The loop
    /// went on.
    Panicked(String),
    /// [`JoinHandle::abort`] dropped the task before it finished.
    Aborted,
    /// The reactor shut down (or the executor was dropped) before the task finished; its
    /// future was dropped.
    Shutdown,
}

impl JoinError {
    /// True if the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// True if the task was aborted or dropped at shutdown.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Aborted | JoinError::Shutdown)
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(m) => write!(f, "the task panicked: {m}"),
            JoinError::Aborted => f.write_str("the task was aborted before it finished"),
            JoinError::Shutdown => {
                f.write_str("the reactor shut down before the task finished; it was dropped")
            }
        }
    }
}

impl std::error::Error for JoinError {}

pub(crate) struct JoinState<T> {
    result: RefCell<Option<Result<T, JoinError>>>,
    done: std::cell::Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

impl<T> JoinState<T> {
    pub(crate) fn new() -> Self {
        JoinState {
            result: RefCell::new(None),
            done: std::cell::Cell::new(false),
            waiter: RefCell::new(None),
        }
    }

    /// Store the task's outcome and wake the task awaiting the handle (which only queues it).
    pub(crate) fn complete(&self, r: Result<T, JoinError>) {
        if self.done.replace(true) {
            return;
        }
        *self.result.borrow_mut() = Some(r);
        let waiter = self.waiter.borrow_mut().take();
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

/// The handle of a task started with [`Reactor::spawn_local`](crate::Reactor::spawn_local):
/// a future of the task's output.
///
/// Awaiting it gives `Ok(value)`, or `Err(JoinError)` if the task panicked, was aborted or
/// was dropped at shutdown. Dropping the handle **detaches** the task: it keeps running.
pub struct JoinHandle<T> {
    state: Rc<JoinState<T>>,
    key: TaskKey,
    executor: Weak<Executor>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(state: Rc<JoinState<T>>, key: TaskKey, executor: Weak<Executor>) -> Self {
        JoinHandle {
            state,
            key,
            executor,
        }
    }

    /// Abort the task: its future is dropped on the loop's next turn (never inside this
    /// call) and the handle resolves with [`JoinError::Aborted`] (CONTRACT P5). A no-op if
    /// the task already finished.
    pub fn abort(&self) {
        if let Some(ex) = self.executor.upgrade() {
            ex.abort(self.key);
        }
    }

    /// A handle that can abort the task but not await it (it may be cloned and kept by a
    /// canceller).
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle {
            key: self.key,
            executor: self.executor.clone(),
        }
    }

    /// True once the task has finished (value, panic, abort or shutdown).
    pub fn is_finished(&self) -> bool {
        self.state.done.get()
    }

    /// The outcome if the task has finished, else the handle back: for code that drives an
    /// executor by hand (tests on [`LocalExecutor`](crate::executor::LocalExecutor)).
    ///
    /// # Errors
    ///
    /// The handle itself, while the task is still running.
    pub fn try_take(self) -> Result<Result<T, JoinError>, Self> {
        let taken = self.state.result.borrow_mut().take();
        match taken {
            Some(r) => Ok(r),
            None => Err(self),
        }
    }
}

impl<T> Unpin for JoinHandle<T> {}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.state.result.borrow_mut().take() {
            return Poll::Ready(r);
        }
        *self.state.waiter.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Aborts a task without awaiting it; see [`JoinHandle::abort_handle`].
#[derive(Clone)]
pub struct AbortHandle {
    key: TaskKey,
    executor: Weak<Executor>,
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AbortHandle(..)")
    }
}

impl AbortHandle {
    /// As [`JoinHandle::abort`].
    pub fn abort(&self) {
        if let Some(ex) = self.executor.upgrade() {
            ex.abort(self.key);
        }
    }
}
