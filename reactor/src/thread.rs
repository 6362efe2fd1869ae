//! Calls from other threads (CONTRACT A13).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use mio::{Registry, Token, Waker};

use crate::callback::catch_panic;
use crate::error::ReactorGone;
use crate::reactor::Reactor;

type ThreadCall = Box<dyn FnOnce(&Reactor) + Send>;

pub(crate) struct ThreadShared {
    queue: Mutex<VecDeque<ThreadCall>>,
    waker: Waker,
    notified: AtomicBool,
    closed: AtomicBool,
}

impl ThreadShared {
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<Arc<ThreadShared>> {
        Ok(Arc::new(ThreadShared {
            queue: Mutex::new(VecDeque::new()),
            waker: Waker::new(registry, token)?,
            notified: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }))
    }

    pub(crate) fn wake(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::warn!("waking the reactor failed: {e}");
            }
        }
    }

    fn push(&self, f: ThreadCall) -> Result<(), ReactorGone> {
        {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if self.closed.load(Ordering::Acquire) {
                return Err(ReactorGone);
            }
            q.push_back(f);
        }
        self.wake();
        Ok(())
    }

    /// True if a call (or a bare wake) arrived since the last [`run_queued`](Self::run_queued).
    /// Every `push` sets `notified` after queueing, so this never misses a call whose push
    /// completed; one still in progress wakes the poller itself.
    pub(crate) fn has_queued(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    /// Run the calls queued now; calls queued while they run wait for the next iteration.
    /// Without a notification since the last run nothing was queued, and the lock is
    /// skipped (an idle iteration then costs no mutex round trip).
    #[inline]
    pub(crate) fn run_queued(&self, reactor: &Reactor) {
        // A plain load first: the swap is a locked instruction, paid only after a wake-up.
        if !self.notified.load(Ordering::Acquire) || !self.notified.swap(false, Ordering::AcqRel) {
            return;
        }
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        for f in batch {
            catch_panic("a call from another thread", || f(reactor));
        }
    }

    pub(crate) fn close(&self) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Release);
        if !q.is_empty() {
            log::warn!(
                "reactor dropped with {} calls from threads not run",
                q.len()
            );
            q.clear();
        }
    }
}

/// A `Send + Sync` handle for running code on the reactor's thread (Twisted's
/// `callFromThread`). N calls run N callbacks, in FIFO order, even when wake-ups coalesce.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::Reactor;
///
/// let reactor = Reactor::new()?;
/// let handle = reactor.thread_handle();
/// let r = reactor.clone();
/// let worker = std::thread::spawn(move || {
///     handle.call_from_thread(|| println!("on the reactor thread")).unwrap();
/// });
/// worker.join().unwrap();
/// reactor.iterate(Duration::from_secs(1))?;
/// # let _ = r;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ThreadHandle {
    shared: Weak<ThreadShared>,
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadHandle(..)")
    }
}

impl ThreadHandle {
    pub(crate) fn new(shared: &Arc<ThreadShared>) -> Self {
        ThreadHandle {
            shared: Arc::downgrade(shared),
        }
    }

    /// Queue `f` to run on the reactor's thread at the start of its next iteration and wake
    /// the reactor (CONTRACT A13). Calls queued before `run` run on its first iteration.
    ///
    /// # Errors
    ///
    /// [`ReactorGone`] if the reactor was dropped; `f` is not run.
    #[doc(alias = "callFromThread")]
    pub fn call_from_thread<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), ReactorGone> {
        self.call_from_thread_with(move |_| f())
    }

    /// [`call_from_thread`](Self::call_from_thread), with the reactor handed to `f` on its
    /// thread: a `Send` closure cannot carry the (`!Send`) reactor or anything that holds
    /// it, so this is how a thread's work reaches per-reactor state
    /// ([`Reactor::extension`]).
    ///
    /// # Errors
    ///
    /// [`ReactorGone`] if the reactor was dropped; `f` is not run.
    pub fn call_from_thread_with<F: FnOnce(&Reactor) + Send + 'static>(
        &self,
        f: F,
    ) -> Result<(), ReactorGone> {
        match self.shared.upgrade() {
            Some(shared) => shared.push(Box::new(f)),
            None => Err(ReactorGone),
        }
    }

    /// Wake the reactor without queueing anything.
    pub fn wake(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.wake();
        }
    }
}
