//! [`Clock`]: time as an input (CONTRACT O4).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use torsion_transport::{DelayedCall, ReactorTime, TimerQueue, defer};

/// A [`ReactorTime`] whose time moves only when the test says so (Twisted's
/// `task.Clock`, CONTRACT O4).
///
/// `seconds()` starts at 0. [`advance`](Self::advance) moves time forward and runs every
/// call that is due, **including calls that become due while advancing** (a call that
/// schedules `call_later(0)` sees it run in the same `advance`) — unlike the real reactor,
/// which leaves those for its next iteration (CONTRACT A5). Calls due at the same time run
/// in the order they were scheduled (A3). A panic in a call is not caught: it propagates
/// to the test.
///
/// The timers are the same [`TimerQueue`] the reactor uses, so [`DelayedCall`]'s
/// `cancel`/`reset`/`delay` and their errors behave the same.
///
/// Cloning gives another handle on the same clock.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use torsion_testing::Clock;
/// use torsion_transport::ReactorTime;
///
/// let clock = Clock::new();
/// let fired = Rc::new(Cell::new(false));
/// let f = fired.clone();
/// clock.call_later(Duration::from_secs(5), move || f.set(true));
/// clock.advance(Duration::from_secs(4));
/// assert!(!fired.get());
/// clock.advance(Duration::from_secs(1));
/// assert!(fired.get());
/// assert_eq!(clock.seconds(), 5.0);
/// ```
#[derive(Clone)]
pub struct Clock {
    now: Rc<Cell<Duration>>,
    queue: TimerQueue,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("now", &self.now.get())
            .field("queue", &self.queue)
            .finish()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock at time 0 with no pending calls.
    pub fn new() -> Self {
        let now = Rc::new(Cell::new(Duration::ZERO));
        let n = now.clone();
        Clock {
            now,
            queue: TimerQueue::new(Rc::new(move || n.get())),
        }
    }

    /// The current time since the clock's origin.
    pub fn now(&self) -> Duration {
        self.now.get()
    }

    /// Move time forward by `amount` and run every call due at the new time, including
    /// calls scheduled by those calls that are due by then, earliest first, FIFO for equal
    /// deadlines (CONTRACT O4). A panic in a call propagates; the calls after it stay
    /// pending.
    ///
    /// It also runs the thread's `Deferred` continuations (the soon queue, CONTRACT P1), as
    /// the reactor's loop does, before and after each call: so `clock.advance(ZERO)` after
    /// a `callback()` delivers the result, and a timeout's failure reaches its chain.
    pub fn advance(&self, amount: Duration) {
        defer::run_soon();
        let now = self.now.get().saturating_add(amount);
        self.now.set(now);
        while let Some((_call, f)) = self.queue.pop_due(now, None) {
            f();
            defer::run_soon();
        }
    }

    /// [`advance`](Self::advance) by each amount in turn (Twisted's `Clock.pump`).
    pub fn pump(&self, amounts: &[Duration]) {
        for amount in amounts {
            self.advance(*amount);
        }
    }

    /// The underlying timer queue (for assertions such as `heap_len`).
    pub fn timer_queue(&self) -> &TimerQueue {
        &self.queue
    }
}

impl ReactorTime for Clock {
    /// The clock's time in seconds; 0 at creation (CONTRACT O4, A2).
    fn seconds(&self) -> f64 {
        self.now.get().as_secs_f64()
    }

    /// Schedule `f` at `seconds() + delay` (CONTRACT A1); it runs in the
    /// [`advance`](Clock::advance) that reaches that time.
    fn call_later_boxed(&self, delay: Duration, f: Box<dyn FnOnce()>) -> DelayedCall {
        self.queue.call_later(delay, f)
    }

    /// The pending calls, earliest first (CONTRACT A11).
    fn delayed_calls(&self) -> Vec<DelayedCall> {
        self.queue.delayed_calls()
    }
}
