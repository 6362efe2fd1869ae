//! The timer queue shared by the real reactor and the test kit's `Clock`, so that
//! [`DelayedCall`] behaves identically in both (CONTRACT A1–A11, O4).
//!
//! Time is an input: the queue never reads a clock itself. Its owner passes a function that
//! returns "now" as a [`Duration`] since the owner's origin (the reactor's start on the
//! monotonic clock, or 0 for `Clock`).
//!
//! # Implementation notes
//!
//! An indexed 8-ary min-heap over a slab. Each call's state lives in a slab slot that
//! records the call's position in the heap, so `cancel` removes it and `reset`/`delay` sift
//! it in place: the heap holds exactly the pending calls, with no stale entries and no
//! compaction (CONTRACT A6). A heap entry is 24 bytes: the deadline in nanoseconds, the
//! sequence number that orders equal deadlines (A3, A5) and the slot. A [`DelayedCall`] is
//! the queue and a slot index; the slot counts its handles and is reused once the call is
//! over and no handle is left, so scheduling allocates nothing but the boxed closure (and
//! nothing at all for a closure that captures nothing). A call may wake a `Waker` instead
//! of running a closure ([`DelayedCall::wake_on_call`]): an async sleep allocates nothing.
//!
//! Storage is given back after a storm (issue 10): the heap and the free list shrink when
//! less than a quarter full, and the slab drops its vacant tail (the free slots after the
//! last one in use) once that is half of it. A slot cannot move (a [`DelayedCall`] holds
//! its index), so free slots are reused lowest index first: live calls gather at the front
//! and the tail drains even while some timers keep running. Nothing shrinks below 1,024
//! entries (`MIN_CAPACITY`). Each shrink is paid for by the removals before it, so every
//! operation stays O(log n) amortised.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;
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

/// Nanoseconds, saturating at `u64::MAX` (about 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Called,
    Cancelled,
}

/// `Slot::pos` of a call that ran (or is running).
const CALLED: u32 = u32::MAX;
/// `Slot::pos` of a cancelled call.
const CANCELLED: u32 = u32::MAX - 1;

/// What a call does when it is due.
enum Func {
    /// A closure, handed to the caller of [`TimerQueue::pop_due`].
    Call(Box<dyn FnOnce()>),
    /// A waker, woken by `pop_due` itself (an async sleep: no closure is allocated).
    Wake(Waker),
}

/// One call's state, 40 bytes: 10k slots and their heap fit in a core's L2 cache.
struct Slot {
    /// Nanoseconds since the queue's origin.
    deadline: u64,
    /// Index in the heap while pending, else [`CALLED`] or [`CANCELLED`].
    pos: u32,
    /// Live [`DelayedCall`] handles; the slot is free once this is 0 and the call is over.
    handles: u32,
    func: Option<Func>,
}

// A slot stays small (`Func` is a 16-byte pointer pair and a tag).
const _: () = assert!(std::mem::size_of::<Slot>() <= 40);

impl Slot {
    /// Over, with no handle left: on the free list.
    fn is_free(&self) -> bool {
        self.handles == 0 && self.pos >= CANCELLED
    }

    fn status(&self) -> Status {
        match self.pos {
            CALLED => Status::Called,
            CANCELLED => Status::Cancelled,
            _ => Status::Pending,
        }
    }

    fn add_handle(&mut self) {
        // As `Rc` does: overflowing the count would free a slot still in use.
        self.handles = self
            .handles
            .checked_add(1)
            .unwrap_or_else(|| std::process::abort());
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    deadline: u64,
    /// Scheduling order among equal deadlines; renewed by `reset`/`delay` (A3, A5).
    seq: u64,
    slot: usize,
}

impl Entry {
    /// Earlier deadline first, then lower sequence number (FIFO, CONTRACT A3).
    #[inline]
    fn before(&self, other: &Entry) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

/// Children per heap node. A wider heap is shallower, and a node's children sit side by
/// side in memory: on B5 (1M timers fired; cancel + reschedule with 10k live) 8 children
/// measured 10–20 % faster than 4 and 4 faster than 2.
const ARITY: usize = 8;

/// Entries of heap, slab and free list that are never given back: a reactor's usual timers
/// fit, and shrinking further would only make the next burst grow them again.
const MIN_CAPACITY: usize = 1024;

/// Everything behind the queue's one `RefCell`. No user code runs while it is borrowed:
/// closures are taken out first and dropped or run after the borrow ends.
#[derive(Default)]
struct State {
    /// A min-heap; `slots[e.slot].pos` is the index of every entry `e`.
    heap: Vec<Entry>,
    slots: Vec<Slot>,
    /// Free slots, lowest index on top, so that the slab's tail drains.
    free: BinaryHeap<Reverse<usize>>,
    /// Every slot from here to the end of the slab is free (the vacant tail).
    vacant_from: usize,
    next_seq: u64,
}

impl State {
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn check_pending(&self, slot: usize) -> Result<(), TimerError> {
        match self.slots[slot].status() {
            Status::Pending => Ok(()),
            Status::Called => Err(TimerError::AlreadyCalled),
            Status::Cancelled => Err(TimerError::AlreadyCancelled),
        }
    }

    fn insert(&mut self, deadline: u64, func: Box<dyn FnOnce()>) -> usize {
        let pos = self.heap.len();
        assert!(
            pos < CANCELLED as usize,
            "more than 4 billion pending calls"
        );
        let new = Slot {
            deadline,
            pos: pos as u32,
            handles: 1,
            func: Some(Func::Call(func)),
        };
        let slot = match self.free.pop() {
            Some(Reverse(i)) => {
                self.slots[i] = new;
                if self.free.capacity() > MIN_CAPACITY && self.free.len() < self.free.capacity() / 4
                {
                    self.free.shrink_to(MIN_CAPACITY.max(2 * self.free.len()));
                }
                i
            }
            None => {
                if self.slots.len() == self.slots.capacity() {
                    // The slab grows: grow the free list with it, so freeing these slots
                    // later (a storm draining) never reallocates it. Growing a big vector
                    // then, with many small blocks just freed, costs the allocator a walk
                    // over all of them (glibc's `malloc_consolidate`: a fifth of B10's
                    // sleepers run before).
                    self.slots.reserve(1);
                    let room = self.slots.capacity() - self.free.len();
                    self.free.reserve(room);
                }
                self.slots.push(new);
                self.slots.len() - 1
            }
        };
        self.vacant_from = self.vacant_from.max(slot + 1);
        let seq = self.take_seq();
        self.heap.push(Entry {
            deadline,
            seq,
            slot,
        });
        self.sift_up(pos);
        slot
    }

    /// Free `slot` if the call is over and no handle is left.
    fn release_if_unused(&mut self, slot: usize) {
        if !self.slots[slot].is_free() {
            return;
        }
        self.free.push(Reverse(slot));
        if slot + 1 != self.vacant_from {
            return;
        }
        // The vacant tail grows down past this slot and the free ones below it. A slot
        // joins it once per time it is freed, so this walk is O(1) amortised.
        let mut from = slot;
        while from > 0 && self.slots[from - 1].is_free() {
            from -= 1;
        }
        self.vacant_from = from;
        if self.slots.capacity() > MIN_CAPACITY && from <= self.slots.len() / 2 {
            self.drop_vacant_tail();
        }
    }

    /// Truncate the slab to its last slot in use and give back the memory. Costs the
    /// length of the free list, which is at most twice the number of slots dropped. Free
    /// slots hold no closure, so no user code runs here.
    fn drop_vacant_tail(&mut self) {
        let keep = self.vacant_from;
        self.slots.truncate(keep);
        self.slots.shrink_to(MIN_CAPACITY.max(keep));
        self.free.retain(|&Reverse(i)| i < keep);
        self.free.shrink_to(MIN_CAPACITY.max(self.free.len()));
    }

    /// Remove the entry at `pos` from the heap, keeping the heap order.
    fn remove_at(&mut self, pos: usize) {
        self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            self.sift(pos);
        }
        // Halve at a quarter full: a shrink copies `len` entries, paid for by the removals
        // since the last one.
        if self.heap.capacity() > MIN_CAPACITY && self.heap.len() < self.heap.capacity() / 4 {
            self.heap.shrink_to(MIN_CAPACITY.max(2 * self.heap.len()));
        }
    }

    /// Restore the order around `pos` after its entry was replaced or its key changed.
    fn sift(&mut self, pos: usize) {
        if pos > 0 && self.heap[pos].before(&self.heap[(pos - 1) / ARITY]) {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            let p = self.heap[parent];
            if !item.before(&p) {
                break;
            }
            self.heap[pos] = p;
            self.slots[p.slot].pos = pos as u32;
            pos = parent;
        }
        self.heap[pos] = item;
        self.slots[item.slot].pos = pos as u32;
    }

    fn sift_down(&mut self, mut pos: usize) {
        let item = self.heap[pos];
        let n = self.heap.len();
        loop {
            let first = ARITY * pos + 1;
            if first >= n {
                break;
            }
            let mut best = first;
            for child in first + 1..(first + ARITY).min(n) {
                if self.heap[child].before(&self.heap[best]) {
                    best = child;
                }
            }
            let c = self.heap[best];
            if !c.before(&item) {
                break;
            }
            self.heap[pos] = c;
            self.slots[c.slot].pos = pos as u32;
            pos = best;
        }
        self.heap[pos] = item;
        self.slots[item.slot].pos = pos as u32;
    }
}

struct Inner {
    state: RefCell<State>,
    /// Live [`TimerQueue`] handles: when the last goes, pending calls are cancelled.
    owners: Cell<usize>,
    now: NowFn,
}

/// A heap of pending calls, each removed or moved in place when it is cancelled or
/// rescheduled (CONTRACT A3, A6).
///
/// Cloning gives another handle on the same queue. When the last handle is dropped, the
/// pending calls are cancelled (as by [`clear`](Self::clear)) and their closures dropped.
pub struct TimerQueue {
    inner: Rc<Inner>,
}

impl Clone for TimerQueue {
    fn clone(&self) -> Self {
        self.inner.owners.set(self.inner.owners.get() + 1);
        TimerQueue {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for TimerQueue {
    fn drop(&mut self) {
        let owners = self.inner.owners.get() - 1;
        self.inner.owners.set(owners);
        if owners == 0 {
            // Closures of pending calls may hold `DelayedCall`s, which keep `Inner` alive:
            // dropping them here breaks that cycle.
            self.clear();
        }
    }
}

impl fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerQueue")
            .field("entries", &self.heap_len())
            .finish()
    }
}

impl TimerQueue {
    /// An empty queue that reads the time with `now`.
    pub fn new(now: NowFn) -> Self {
        TimerQueue {
            inner: Rc::new(Inner {
                state: RefCell::new(State::default()),
                owners: Cell::new(1),
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
        let deadline = nanos(self.now()).saturating_add(nanos(delay));
        let slot = self.inner.state.borrow_mut().insert(deadline, f);
        DelayedCall {
            queue: self.inner.clone(),
            slot,
        }
    }

    /// The sequence number the next scheduled (or reset) call will get. Pass it to
    /// [`pop_due`](Self::pop_due) as `before_seq` to run only calls that existed before.
    pub fn next_seq(&self) -> u64 {
        self.inner.state.borrow().next_seq
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Duration> {
        let state = self.inner.state.borrow();
        state.heap.first().map(|e| Duration::from_nanos(e.deadline))
    }

    /// Take the earliest call due at `now`, marked as called (CONTRACT A7), with its
    /// function. With `before_seq`, calls scheduled at or after that sequence number are
    /// left for later (CONTRACT A5). The caller runs the function; no borrow is held.
    ///
    /// A due call that only wakes a waker (see [`DelayedCall::wake_on_call`]) is run here,
    /// in its turn, with no borrow held and its panic caught: a wake only queues a task.
    pub fn pop_due(
        &self,
        now: Duration,
        before_seq: Option<u64>,
    ) -> Option<(DelayedCall, Box<dyn FnOnce()>)> {
        let now = nanos(now);
        loop {
            let mut state = self.inner.state.borrow_mut();
            let top = *state.heap.first()?;
            if top.deadline > now || before_seq.is_some_and(|s| top.seq >= s) {
                return None;
            }
            state.remove_at(0);
            let slot = &mut state.slots[top.slot];
            slot.pos = CALLED;
            match slot.func.take() {
                Some(Func::Wake(waker)) => {
                    state.release_if_unused(top.slot);
                    drop(state);
                    crate::callback::catch_panic("a timer's waker", move || waker.wake());
                }
                func => {
                    slot.add_handle();
                    drop(state);
                    // A pending call always has its function; `None` would only skip it.
                    let func = match func {
                        Some(Func::Call(f)) => f,
                        _ => Box::new(|| {}),
                    };
                    return Some((
                        DelayedCall {
                            queue: self.inner.clone(),
                            slot: top.slot,
                        },
                        func,
                    ));
                }
            }
        }
    }

    /// The pending calls, earliest first (CONTRACT A11).
    pub fn delayed_calls(&self) -> Vec<DelayedCall> {
        let mut state = self.inner.state.borrow_mut();
        let mut entries = state.heap.clone();
        entries.sort_by_key(|e| (e.deadline, e.seq));
        entries
            .into_iter()
            .map(|e| {
                state.slots[e.slot].add_handle();
                DelayedCall {
                    queue: self.inner.clone(),
                    slot: e.slot,
                }
            })
            .collect()
    }

    /// Number of entries in the heap. Cancelling or rescheduling leaves no stale entry, so
    /// this equals [`len`](Self::len) (CONTRACT A6).
    pub fn heap_len(&self) -> usize {
        self.inner.state.borrow().heap.len()
    }

    /// Number of pending calls.
    pub fn len(&self) -> usize {
        self.heap_len()
    }

    /// True when no call is pending.
    pub fn is_empty(&self) -> bool {
        self.inner.state.borrow().heap.is_empty()
    }

    /// Cancel every pending call (used when a reactor is dropped).
    pub fn clear(&self) {
        let funcs: Vec<Func> = {
            let mut state = self.inner.state.borrow_mut();
            let heap = std::mem::take(&mut state.heap);
            heap.iter()
                .filter_map(|e| {
                    let slot = &mut state.slots[e.slot];
                    slot.pos = CANCELLED;
                    let func = slot.func.take();
                    state.release_if_unused(e.slot);
                    func
                })
                .collect()
        };
        // Closures are dropped with no borrow held: their drop code may use the queue.
        drop(funcs);
    }
}

/// A call scheduled with `call_later` (Twisted's `DelayedCall`).
///
/// Cloning gives another handle on the same call.
pub struct DelayedCall {
    queue: Rc<Inner>,
    slot: usize,
}

impl Clone for DelayedCall {
    fn clone(&self) -> Self {
        self.queue.state.borrow_mut().slots[self.slot].add_handle();
        DelayedCall {
            queue: self.queue.clone(),
            slot: self.slot,
        }
    }
}

impl Drop for DelayedCall {
    fn drop(&mut self) {
        // The queue never drops a handle while it holds its borrow; should that change,
        // leaking the slot is better than panicking in `drop`.
        if let Ok(mut state) = self.queue.state.try_borrow_mut() {
            state.slots[self.slot].handles -= 1;
            state.release_if_unused(self.slot);
        }
    }
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall")
            .field("time", &self.time())
            .field("status", &self.status())
            .finish()
    }
}

impl DelayedCall {
    fn status(&self) -> Status {
        self.queue.state.borrow().slots[self.slot].status()
    }

    /// Cancel the call: it is removed from the queue at once and will never run (CONTRACT
    /// A6, A8).
    ///
    /// # Errors
    ///
    /// [`TimerError::AlreadyCancelled`] or [`TimerError::AlreadyCalled`].
    pub fn cancel(&self) -> Result<(), TimerError> {
        let func = {
            let mut state = self.queue.state.borrow_mut();
            state.check_pending(self.slot)?;
            let slot = &mut state.slots[self.slot];
            let pos = slot.pos as usize;
            slot.pos = CANCELLED;
            let func = slot.func.take();
            state.remove_at(pos);
            func
        };
        // The closure's drop code runs with no borrow held.
        drop(func);
        Ok(())
    }

    fn reschedule(&self, deadline: impl FnOnce(u64) -> u64) -> Result<(), TimerError> {
        let mut state = self.queue.state.borrow_mut();
        state.check_pending(self.slot)?;
        let deadline = deadline(state.slots[self.slot].deadline);
        // A new sequence number: FIFO after calls already due then, and left for a later
        // pass when reset from inside a timer (A3, A5).
        let seq = state.take_seq();
        let slot = &mut state.slots[self.slot];
        slot.deadline = deadline;
        let pos = slot.pos as usize;
        state.heap[pos].deadline = deadline;
        state.heap[pos].seq = seq;
        state.sift(pos);
        Ok(())
    }

    /// Run the call `delay` from now instead (earlier or later; CONTRACT A9).
    ///
    /// # Errors
    ///
    /// As [`cancel`](Self::cancel).
    pub fn reset(&self, delay: Duration) -> Result<(), TimerError> {
        let now = nanos((self.queue.now)());
        self.reschedule(|_| now.saturating_add(nanos(delay)))
    }

    /// Move the deadline `delay` later than it is now (CONTRACT A10).
    ///
    /// # Errors
    ///
    /// As [`cancel`](Self::cancel).
    pub fn delay(&self, delay: Duration) -> Result<(), TimerError> {
        self.reschedule(|old| old.saturating_add(nanos(delay)))
    }

    /// Make the call, when due, wake `waker` instead of running its function (which is
    /// dropped now, with no borrow held). For futures such as an async sleep: schedule with
    /// a closure that captures nothing (no allocation), then call this at each poll; a
    /// waker that [`will_wake`](Waker::will_wake) the one stored already is not cloned.
    /// The waker is woken by [`TimerQueue::pop_due`] in the call's turn (FIFO among
    /// equal deadlines, CONTRACT A3). Returns false, and does nothing, unless the call is
    /// pending.
    pub fn wake_on_call(&self, waker: &Waker) -> bool {
        let old = {
            let mut state = self.queue.state.borrow_mut();
            let slot = &mut state.slots[self.slot];
            if slot.status() != Status::Pending {
                return false;
            }
            if let Some(Func::Wake(w)) = &slot.func {
                if w.will_wake(waker) {
                    return true;
                }
            }
            slot.func.replace(Func::Wake(waker.clone()))
        };
        drop(old);
        true
    }

    /// Neither called nor cancelled (CONTRACT A11).
    pub fn active(&self) -> bool {
        self.status() == Status::Pending
    }

    /// True once the call has run (or is running).
    pub fn called(&self) -> bool {
        self.status() == Status::Called
    }

    /// True once the call was cancelled.
    pub fn cancelled(&self) -> bool {
        self.status() == Status::Cancelled
    }

    /// When the call is due, as time since the clock's origin.
    #[doc(alias = "getTime")]
    pub fn time(&self) -> Duration {
        Duration::from_nanos(self.queue.state.borrow().slots[self.slot].deadline)
    }

    /// True when both handles refer to the same call.
    pub fn same_as(&self, other: &DelayedCall) -> bool {
        Rc::ptr_eq(&self.queue, &other.queue) && self.slot == other.slot
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

    /// A waker that records `id` in `log` when woken.
    struct LogWaker(usize, std::sync::Mutex<Vec<usize>>);

    impl std::task::Wake for LogWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn a3_wake_on_call_wakes_in_its_fifo_turn_and_only_while_pending() {
        let (q, _) = queue();
        let order = Rc::new(RefCell::new(Vec::new()));
        let o = order.clone();
        let first = q.call_later(Duration::ZERO, Box::new(move || o.borrow_mut().push(1)));
        let sleeper = q.call_later(Duration::ZERO, Box::new(|| panic!("replaced")));
        let o = order.clone();
        q.call_later(Duration::ZERO, Box::new(move || o.borrow_mut().push(3)));
        let waker = std::sync::Arc::new(LogWaker(2, std::sync::Mutex::new(Vec::new())));
        let w = Waker::from(waker.clone());
        assert!(sleeper.wake_on_call(&w));
        assert!(sleeper.wake_on_call(&w), "the same waker again is kept");
        // The closure it replaced never runs; the wake happens between calls 1 and 3.
        let (c1, f1) = q.pop_due(Duration::ZERO, None).unwrap();
        f1();
        assert!(c1.same_as(&first));
        assert!(waker.1.lock().unwrap().is_empty());
        let (_, f3) = q.pop_due(Duration::ZERO, None).unwrap();
        assert_eq!(
            *waker.1.lock().unwrap(),
            [2],
            "woken by pop_due in its turn"
        );
        f3();
        assert_eq!(*order.borrow(), [1, 3]);
        assert!(sleeper.called());
        assert!(!sleeper.wake_on_call(&w), "a called call is not pending");
        let later = q.call_later(Duration::from_secs(1), Box::new(|| {}));
        later.cancel().unwrap();
        assert!(!later.wake_on_call(&w), "a cancelled call is not pending");
        assert_eq!(*waker.1.lock().unwrap(), [2]);
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
    fn a6_cancelled_never_runs_and_leaves_the_heap_at_once() {
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
        for (n, c) in calls[..150].iter().enumerate() {
            c.cancel().unwrap();
            assert_eq!(q.heap_len(), 199 - n, "cancel removes the entry at once");
        }
        assert_eq!(q.len(), 50);
        assert_eq!(run_due(&q, Duration::from_secs(1)), 50);
        assert_eq!(ran.get(), 50);
        assert_eq!(q.heap_len(), 0);
    }

    #[test]
    fn a6_cancel_drops_the_closure_at_once() {
        let (q, _) = queue();
        let token = Rc::new(());
        let t = token.clone();
        let c = q.call_later(Duration::from_secs(1), Box::new(move || drop(t)));
        assert_eq!(Rc::strong_count(&token), 2);
        c.cancel().unwrap();
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn heap_order_survives_random_cancels_and_resets() {
        let (q, now) = queue();
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut x: u64 = 12345;
        let mut rand = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let calls: Vec<_> = (0..2000)
            .map(|i| {
                let log = log.clone();
                q.call_later(
                    Duration::from_micros(rand(500)),
                    Box::new(move || log.borrow_mut().push(i)),
                )
            })
            .collect();
        for c in &calls {
            match rand(4) {
                0 => c.cancel().unwrap(),
                1 => c.reset(Duration::from_micros(rand(500))).unwrap(),
                2 => c.delay(Duration::from_micros(rand(500))).unwrap(),
                _ => {}
            }
        }
        let pending = q.delayed_calls();
        assert_eq!(pending.len(), q.len());
        let mut t = Duration::ZERO;
        while t <= Duration::from_millis(2) {
            now.set(t);
            while let Some((c, f)) = q.pop_due(t, None) {
                assert!(c.time() <= t);
                f();
            }
            t += Duration::from_micros(7);
        }
        assert!(q.is_empty());
        let want: Vec<usize> = (0..pending.len())
            .map(|k| calls.iter().position(|c| c.same_as(&pending[k])).unwrap())
            .collect();
        assert_eq!(*log.borrow(), want, "fired in delayed_calls() order");
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
    fn a_handle_keeps_its_call_after_it_ran_and_slots_are_reused_only_when_free() {
        let (q, _) = queue();
        let a = q.call_later(Duration::from_secs(1), Box::new(|| {}));
        let a2 = a.clone();
        assert_eq!(run_due(&q, Duration::from_secs(1)), 1);
        let b = q.call_later(Duration::from_secs(2), Box::new(|| {}));
        assert!(!a.same_as(&b) && a.same_as(&a2));
        assert!(a.called() && b.active());
        assert_eq!(a.time(), Duration::from_secs(1));
        drop(a);
        assert!(a2.called(), "a clone keeps the call alive");
        drop(a2);
        let c = q.call_later(Duration::from_secs(3), Box::new(|| {}));
        assert!(!c.same_as(&b));
        assert!(b.active() && c.active());
        assert_eq!(
            (b.time(), c.time()),
            (Duration::from_secs(2), Duration::from_secs(3))
        );
        c.cancel().unwrap();
        assert!(c.cancelled() && b.active());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn dropping_the_last_queue_handle_cancels_pending_calls_and_drops_their_closures() {
        let (q, _) = queue();
        let token = Rc::new(());
        let t = token.clone();
        let own: Rc<RefCell<Option<DelayedCall>>> = Rc::default();
        let o = own.clone();
        let call = q.call_later(Duration::from_secs(1), Box::new(move || drop((t, o))));
        *own.borrow_mut() = Some(call.clone());
        drop(own);
        let q2 = q.clone();
        drop(q);
        assert!(call.active(), "another queue handle is alive");
        drop(q2);
        assert!(call.cancelled());
        assert_eq!(
            Rc::strong_count(&token),
            1,
            "the closure and its cycle are gone"
        );
        assert_eq!(call.cancel(), Err(TimerError::AlreadyCancelled));
    }

    #[test]
    fn closures_dropped_by_cancel_and_clear_may_use_the_queue() {
        struct OnDrop(TimerQueue, Option<DelayedCall>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                if let Some(c) = self.1.take() {
                    let _ = c.cancel();
                }
                self.0.call_later(Duration::ZERO, Box::new(|| {}));
            }
        }
        let (q, _) = queue();
        let other = q.call_later(Duration::from_secs(5), Box::new(|| {}));
        let guard = OnDrop(q.clone(), Some(other.clone()));
        let c = q.call_later(Duration::from_secs(1), Box::new(move || drop(guard)));
        c.cancel().unwrap();
        assert!(other.cancelled());
        assert_eq!(q.len(), 1, "the call scheduled from the drop code");
        let guard = OnDrop(q.clone(), None);
        q.call_later(Duration::from_secs(1), Box::new(move || drop(guard)));
        q.clear();
        assert_eq!(
            q.len(),
            1,
            "scheduled while clearing, after the borrow ended"
        );
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

    /// Capacities of heap, slab and free list, and the slab's length.
    fn storage(q: &TimerQueue) -> (usize, usize, usize, usize) {
        let state = q.inner.state.borrow();
        (
            state.heap.capacity(),
            state.slots.capacity(),
            state.free.capacity(),
            state.slots.len(),
        )
    }

    const STORM: usize = 100_000;

    fn storm(q: &TimerQueue) -> Vec<DelayedCall> {
        (0..STORM)
            .map(|i| q.call_later(Duration::from_micros(i as u64 % 977), Box::new(|| {})))
            .collect()
    }

    fn assert_small(q: &TimerQueue) {
        let (heap, slots, free, _) = storage(q);
        assert!(
            heap <= MIN_CAPACITY && slots <= MIN_CAPACITY && free <= MIN_CAPACITY,
            "heap {heap}, slots {slots}, free {free} entries after the storm"
        );
    }

    #[test]
    fn issue_10_storage_shrinks_after_a_cancelled_storm() {
        let (q, _) = queue();
        let calls = storm(&q);
        assert!(storage(&q).1 >= STORM);
        for c in calls {
            c.cancel().unwrap();
            assert!(!c.active());
        }
        assert!(q.is_empty());
        assert_small(&q);
        // Still a working queue.
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        q.call_later(Duration::ZERO, Box::new(move || r.set(true)));
        assert_eq!(run_due(&q, Duration::ZERO), 1);
        assert!(ran.get());
    }

    #[test]
    fn issue_10_storage_shrinks_once_held_handles_of_cancelled_calls_are_dropped() {
        let (q, _) = queue();
        let calls = storm(&q);
        for c in &calls {
            c.cancel().unwrap();
        }
        assert_eq!(q.heap_len(), 0, "cancel stays eager (A6)");
        assert!(storage(&q).0 <= MIN_CAPACITY, "the heap shrinks at once");
        assert!(
            calls.iter().all(DelayedCall::cancelled),
            "the handles still answer"
        );
        drop(calls);
        assert_small(&q);
    }

    #[test]
    fn issue_10_storage_shrinks_after_a_fired_storm() {
        let (q, _) = queue();
        drop(storm(&q));
        assert_eq!(run_due(&q, Duration::from_secs(1)), STORM);
        assert_small(&q);
    }

    #[test]
    fn issue_10_sparse_slab_shrinks_once_its_tail_drains() {
        let (q, now) = queue();
        let mut calls = storm(&q);
        // The newest call holds the slab's last slot; a few others stay live at the front.
        let last = calls.pop().unwrap();
        last.reset(Duration::from_secs(3600)).unwrap();
        let front: Vec<_> = calls.drain(..10).collect();
        for c in calls {
            c.cancel().unwrap();
        }
        let (heap, _, _, len) = storage(&q);
        assert!(heap <= MIN_CAPACITY);
        assert_eq!(len, STORM, "a live call holds the tail");
        // New calls take the lowest free slots, not ones near the tail.
        let fresh: Vec<_> = (0..100)
            .map(|_| q.call_later(Duration::from_secs(1), Box::new(|| {})))
            .collect();
        assert!(
            fresh.iter().all(|c| c.slot < 200),
            "lowest free slots first"
        );
        last.cancel().unwrap();
        drop(last);
        assert_small(&q);
        assert_eq!(q.len(), 110);
        // The calls that stayed are intact.
        now.set(Duration::from_secs(1));
        assert_eq!(run_due(&q, Duration::from_secs(1)), 110);
        assert!(front.iter().chain(&fresh).all(DelayedCall::called));
    }
}
