//! The soon queue: where completed results wait for their continuations (CONTRACT P1).
//!
//! Completing a [`Deferred`](super::Deferred) never runs a chained callback inside the
//! completing call: the continuation is queued here, on the current thread, and runs when
//! the thread's loop gets to it. The reactor runs the queue every iteration (so does the
//! test kit's `Clock::advance`); a test with no loop at all calls [`run_soon`].
//!
//! The queue is per thread, like the reactor and every `Deferred` (both are `!Send`).

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::callback::catch_panic;

type Job = Box<dyn FnOnce()>;

thread_local! {
    static SOON: RefCell<VecDeque<Job>> = const { RefCell::new(VecDeque::new()) };
}

/// Queue `f` to run from this thread's loop, after the current callback returns
/// (Twisted's `reactor.callLater(0, f)`, without a timer).
pub fn call_soon(f: impl FnOnce() + 'static) {
    // During thread teardown the queue may be gone; the job is dropped with it then.
    let _ = SOON.try_with(|q| q.borrow_mut().push_back(Box::new(f)));
}

/// Whether anything waits in this thread's soon queue (a loop that sees `true` must not
/// block in its poll).
pub fn has_soon() -> bool {
    SOON.try_with(|q| !q.borrow().is_empty()).unwrap_or(false)
}

fn pop() -> Option<Job> {
    SOON.try_with(|q| q.borrow_mut().pop_front()).ok().flatten()
}

/// Run the jobs that are queued now, not those they queue in turn (those wait for the next
/// call): a loop's per-iteration step, so a callback chain that keeps scheduling cannot
/// starve I/O. Returns how many ran. Each job runs through the funnel with no borrow held.
pub fn run_soon_batch() -> usize {
    let n = SOON.try_with(|q| q.borrow().len()).unwrap_or(0);
    for _ in 0..n {
        match pop() {
            Some(job) => {
                catch_panic("a Deferred continuation", job);
            }
            None => return n,
        }
    }
    n
}

/// Run this thread's soon queue until it is empty, including what the jobs queue in turn:
/// for tests and drivers that have no loop. Returns how many ran.
pub fn run_soon() -> usize {
    let mut ran = 0;
    while let Some(job) = pop() {
        catch_panic("a Deferred continuation", job);
        ran += 1;
    }
    ran
}
