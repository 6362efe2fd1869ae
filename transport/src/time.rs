//! The timer queue shared by the real reactor and the test kit's `Clock`, so that
//! [`DelayedCall`] behaves identically in both (CONTRACT A1–A11, O4).
//!
//! Time is an input: the queue never reads a clock itself. Its owner passes a function that
//! returns "now" as a [`Duration`] since the owner's origin (the reactor's start on the
//! monotonic clock, or 0 for `Clock`).

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::error::TimerError;

/// A function returning the current time since the owner's origin.
pub type NowFn = Rc<dyn Fn() -> Duration>;

/// Converts a Twisted-style delay in seconds to a [`Duration`] (CONTRACT A1).
///
/// # Errors
///
/// [`TimerError::InvalidDelay`] for a negative, NaN or infinite value.
pub fn delay_from_secs(secs: f64) -> Result<Duration, TimerError> {
    if secs.is_finite() && secs >= 0.0 {
        Duration::try_from_secs_f64(secs).map_err(|_| TimerError::InvalidDelay)
    } else {
        Err(TimerError::InvalidDelay)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Called,
    Cancelled,
}

struct CallState {
    deadline: Cell<Duration>,
    status: Cell<Status>,
    /// Bumped by `reset`/`delay`; heap entries with an older value are stale.
    generation: Cell<u32>,
    func: RefCell<Option<Box<dyn FnOnce()>>>,
    queue: Weak<Inner>,
}

struct Entry {
    deadline: Duration,
    seq: u64,
    generation: u32,
    call: Rc<CallState>,
}

impl Entry {
    fn is_live(&self) -> bool {
        self.call.status.get() == Status::Pending && self.call.generation.get() == self.generation
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so the max-heap pops the earliest deadline, then the lowest sequence (FIFO).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

struct Inner {
    heap: RefCell<BinaryHeap<Entry>>,
    next_seq: Cell<u64>,
    /// Entries in the heap that will never run (cancelled, or superseded by a reset).
    stale: Cell<usize>,
    now: NowFn,
}

impl Inner {
    fn push(&self, call: &Rc<CallState>) {
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        self.heap.borrow_mut().push(Entry {
            deadline: call.deadline.get(),
            seq,
            generation: call.generation.get(),
            call: call.clone(),
        });
    }

    fn add_stale(&self) {
        self.stale.set(self.stale.get() + 1);
        let len = self.heap.borrow().len();
        if self.stale.get() > 50 && self.stale.get() * 2 > len {
            self.compact();
        }
    }

    /// Drop every stale entry (CONTRACT A6).
    fn compact(&self) {
        let mut heap = self.heap.borrow_mut();
        let entries = std::mem::take(&mut *heap).into_vec();
        *heap = entries.into_iter().filter(Entry::is_live).collect();
        self.stale.set(0);
    }
}

/// A heap of pending calls with lazy cancellation (CONTRACT A3, A6).
///
/// Cloning gives another handle on the same queue.
#[derive(Clone)]
pub struct TimerQueue {
    inner: Rc<Inner>,
}

impl fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerQueue")
            .field("entries", &self.inner.heap.borrow().len())
            .field("stale", &self.inner.stale.get())
            .finish()
    }
}

impl TimerQueue {
    /// An empty queue that reads the time with `now`.
    pub fn new(now: NowFn) -> Self {
        TimerQueue {
            inner: Rc::new(Inner {
                heap: RefCell::new(BinaryHeap::new()),
                next_seq: Cell::new(0),
                stale: Cell::new(0),
                now,
            }),
        }
    }

    /// The current time, as the queue's owner defines it.
    pub fn now(&self) -> Duration {
        (self.inner.now)()
    }

    /// Schedule `f` to run `delay` from now (CONTRACT A1).
    pub fn call_later(&self, delay: Duration, f: Box<dyn FnOnce()>) -> DelayedCall {
        let deadline = self.now().saturating_add(delay);
        let call = Rc::new(CallState {
            deadline: Cell::new(deadline),
            status: Cell::new(Status::Pending),
            generation: Cell::new(0),
            func: RefCell::new(Some(f)),
            queue: Rc::downgrade(&self.inner),
        });
        self.inner.push(&call);
        DelayedCall { call }
    }

    /// The sequence number the next scheduled (or reset) call will get. Pass it to
    /// [`pop_due`](Self::pop_due) as `before_seq` to run only calls that existed before.
    pub fn next_seq(&self) -> u64 {
        self.inner.next_seq.get()
    }

    fn drop_stale_top(&self) {
        let mut heap = self.inner.heap.borrow_mut();
        while heap.peek().is_some_and(|e| !e.is_live()) {
            heap.pop();
            self.inner
                .stale
                .set(self.inner.stale.get().saturating_sub(1));
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.drop_stale_top();
        self.inner.heap.borrow().peek().map(|e| e.deadline)
    }

    /// Take the earliest call due at `now`, marked as called (CONTRACT A7), with its
    /// function. With `before_seq`, calls scheduled at or after that sequence number are
    /// left for later (CONTRACT A5). The caller runs the function; no borrow is held.
    pub fn pop_due(
        &self,
        now: Duration,
        before_seq: Option<u64>,
    ) -> Option<(DelayedCall, Box<dyn FnOnce()>)> {
        loop {
            self.drop_stale_top();
            let entry = {
                let mut heap = self.inner.heap.borrow_mut();
                let top = heap.peek()?;
                if top.deadline > now || before_seq.is_some_and(|s| top.seq >= s) {
                    return None;
                }
                heap.pop()?
            };
            let call = entry.call;
            call.status.set(Status::Called);
            let func = call.func.borrow_mut().take();
            if let Some(func) = func {
                return Some((DelayedCall { call }, func));
            }
        }
    }

    /// The pending calls, earliest first (CONTRACT A11).
    pub fn delayed_calls(&self) -> Vec<DelayedCall> {
        let heap = self.inner.heap.borrow();
        let mut live: Vec<&Entry> = heap.iter().filter(|e| e.is_live()).collect();
        live.sort_by(|a, b| b.cmp(a));
        live.into_iter()
            .map(|e| DelayedCall {
                call: e.call.clone(),
            })
            .collect()
    }

    /// Number of entries physically in the heap, stale ones included (for tests of A6).
    pub fn heap_len(&self) -> usize {
        self.inner.heap.borrow().len()
    }

    /// Number of pending calls.
    pub fn len(&self) -> usize {
        self.inner
            .heap
            .borrow()
            .iter()
            .filter(|e| e.is_live())
            .count()
    }

    /// True when no call is pending.
    pub fn is_empty(&self) -> bool {
        self.next_deadline().is_none()
    }

    /// Cancel every pending call (used when a reactor is dropped).
    pub fn clear(&self) {
        let entries = std::mem::take(&mut *self.inner.heap.borrow_mut());
        for e in entries {
            if e.is_live() {
                e.call.status.set(Status::Cancelled);
                e.call.func.borrow_mut().take();
            }
        }
        self.inner.stale.set(0);
    }
}

/// A call scheduled with `call_later` (Twisted's `DelayedCall`).
///
/// Cloning gives another handle on the same call.
#[derive(Clone)]
pub struct DelayedCall {
    call: Rc<CallState>,
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall")
            .field("time", &self.call.deadline.get())
            .field("status", &self.call.status.get())
            .finish()
    }
}

impl DelayedCall {
    fn check_pending(&self) -> Result<(), TimerError> {
        match self.call.status.get() {
            Status::Pending => Ok(()),
            Status::Called => Err(TimerError::AlreadyCalled),
            Status::Cancelled => Err(TimerError::AlreadyCancelled),
        }
    }

    /// Cancel the call: it will never run (CONTRACT A6, A8).
    ///
    /// # Errors
    ///
    /// [`TimerError::AlreadyCancelled`] or [`TimerError::AlreadyCalled`].
    pub fn cancel(&self) -> Result<(), TimerError> {
        self.check_pending()?;
        self.call.status.set(Status::Cancelled);
        self.call.func.borrow_mut().take();
        if let Some(q) = self.call.queue.upgrade() {
            q.add_stale();
        }
        Ok(())
    }

    fn reschedule(&self, deadline: Duration) -> Result<(), TimerError> {
        self.check_pending()?;
        self.call.deadline.set(deadline);
        self.call
            .generation
            .set(self.call.generation.get().wrapping_add(1));
        if let Some(q) = self.call.queue.upgrade() {
            q.push(&self.call);
            q.add_stale();
        }
        Ok(())
    }

    /// Run the call `delay` from now instead (earlier or later; CONTRACT A9).
    ///
    /// # Errors
    ///
    /// As [`cancel`](Self::cancel).
    pub fn reset(&self, delay: Duration) -> Result<(), TimerError> {
        let now = match self.call.queue.upgrade() {
            Some(q) => (q.now)(),
            None => self.call.deadline.get(),
        };
        self.reschedule(now.saturating_add(delay))
    }

    /// Move the deadline `delay` later than it is now (CONTRACT A10).
    ///
    /// # Errors
    ///
    /// As [`cancel`](Self::cancel).
    pub fn delay(&self, delay: Duration) -> Result<(), TimerError> {
        self.reschedule(self.call.deadline.get().saturating_add(delay))
    }

    /// Neither called nor cancelled (CONTRACT A11).
    pub fn active(&self) -> bool {
        self.call.status.get() == Status::Pending
    }

    /// True once the call has run (or is running).
    pub fn called(&self) -> bool {
        self.call.status.get() == Status::Called
    }

    /// True once the call was cancelled.
    pub fn cancelled(&self) -> bool {
        self.call.status.get() == Status::Cancelled
    }

    /// When the call is due, as time since the clock's origin.
    #[doc(alias = "getTime")]
    pub fn time(&self) -> Duration {
        self.call.deadline.get()
    }

    /// True when both handles refer to the same call.
    pub fn same_as(&self, other: &DelayedCall) -> bool {
        Rc::ptr_eq(&self.call, &other.call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn queue() -> (TimerQueue, Rc<Cell<Duration>>) {
        let now = Rc::new(Cell::new(Duration::ZERO));
        let n = now.clone();
        (TimerQueue::new(Rc::new(move || n.get())), now)
    }

    fn run_due(q: &TimerQueue, now: Duration) -> usize {
        let mut n = 0;
        while let Some((_, f)) = q.pop_due(now, None) {
            f();
            n += 1;
        }
        n
    }

    #[test]
    fn a3_equal_deadlines_run_fifo() {
        let (q, _) = queue();
        let log = Rc::new(RefCell::new(Vec::new()));
        for i in 0..100 {
            let log = log.clone();
            q.call_later(
                Duration::from_secs(1),
                Box::new(move || log.borrow_mut().push(i)),
            );
        }
        assert_eq!(run_due(&q, Duration::from_secs(1)), 100);
        assert_eq!(*log.borrow(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn a6_cancelled_never_runs_and_heap_compacts() {
        let (q, _) = queue();
        let ran = Rc::new(Cell::new(0));
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let ran = ran.clone();
                q.call_later(
                    Duration::from_millis(i),
                    Box::new(move || ran.set(ran.get() + 1)),
                )
            })
            .collect();
        for c in &calls[..150] {
            c.cancel().unwrap();
        }
        assert!(q.heap_len() < 200, "compaction dropped cancelled entries");
        assert_eq!(q.len(), 50);
        assert_eq!(run_due(&q, Duration::from_secs(1)), 50);
        assert_eq!(ran.get(), 50);
    }

    #[test]
    fn a8_cancel_errors() {
        let (q, _) = queue();
        let c = q.call_later(Duration::ZERO, Box::new(|| {}));
        c.cancel().unwrap();
        assert_eq!(c.cancel(), Err(TimerError::AlreadyCancelled));
        assert_eq!(c.reset(Duration::ZERO), Err(TimerError::AlreadyCancelled));
        let d = q.call_later(Duration::ZERO, Box::new(|| {}));
        run_due(&q, Duration::ZERO);
        assert_eq!(d.cancel(), Err(TimerError::AlreadyCalled));
        assert_eq!(d.delay(Duration::ZERO), Err(TimerError::AlreadyCalled));
        assert!(!d.active() && d.called());
    }

    #[test]
    fn a9_a10_reset_and_delay_move_the_deadline() {
        let (q, now) = queue();
        let c = q.call_later(Duration::from_secs(5), Box::new(|| {}));
        now.set(Duration::from_secs(1));
        c.reset(Duration::from_secs(1)).unwrap();
        assert_eq!(c.time(), Duration::from_secs(2));
        c.delay(Duration::from_secs(3)).unwrap();
        assert_eq!(c.time(), Duration::from_secs(5));
        assert_eq!(run_due(&q, Duration::from_secs(4)), 0);
        assert_eq!(
            run_due(&q, Duration::from_secs(5)),
            1,
            "stale entry must not run twice"
        );
        assert_eq!(q.heap_len(), 0);
    }

    #[test]
    fn a5_before_seq_leaves_new_calls_for_later() {
        let (q, _) = queue();
        let q2 = q.clone();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        q.call_later(
            Duration::ZERO,
            Box::new(move || {
                q2.call_later(Duration::ZERO, Box::new(move || r.set(true)));
            }),
        );
        let cutoff = q.next_seq();
        while let Some((_, f)) = q.pop_due(Duration::ZERO, Some(cutoff)) {
            f();
        }
        assert!(!ran.get());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a1_delay_from_secs_rejects_bad_values() {
        assert_eq!(delay_from_secs(-1.0), Err(TimerError::InvalidDelay));
        assert_eq!(delay_from_secs(f64::NAN), Err(TimerError::InvalidDelay));
        assert_eq!(
            delay_from_secs(f64::INFINITY),
            Err(TimerError::InvalidDelay)
        );
        assert_eq!(delay_from_secs(1.5), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn a11_delayed_calls_lists_pending_in_order() {
        let (q, _) = queue();
        let a = q.call_later(Duration::from_secs(3), Box::new(|| {}));
        let b = q.call_later(Duration::from_secs(1), Box::new(|| {}));
        let c = q.call_later(Duration::from_secs(2), Box::new(|| {}));
        c.cancel().unwrap();
        let list = q.delayed_calls();
        assert_eq!(list.len(), 2);
        assert!(list[0].same_as(&b) && list[1].same_as(&a));
    }
}
