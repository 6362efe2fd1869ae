//! Time-driven helpers (Twisted's `twisted.internet.task`): [`LoopingCall`] calls a
//! function every interval, [`defer_later`] gives a [`Deferred`] of a function's result
//! after a delay.
//!
//! Both are generic over [`ReactorTime`], so the test kit's `Clock` drives them without
//! sleeping, and both call user code through the funnel
//! ([`guard`]): a panic becomes a [`Failure`].
//!
//! # Examples
//!
//! ```
//! use std::cell::Cell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion_testing::Clock;
//! use torsion_toolkit::task::LoopingCall;
//!
//! let clock = Clock::new();
//! let ticks = Rc::new(Cell::new(0));
//! let t = ticks.clone();
//! let lc = LoopingCall::new(&clock, move || t.set(t.get() + 1));
//! let done = lc.start(Duration::from_secs(1), true)?; // `true`: call once right now
//! assert_eq!(ticks.get(), 1);
//! clock.advance(Duration::from_secs(3));
//! // Late by two intervals: one call, not three (the skipped ones are skipped).
//! assert_eq!(ticks.get(), 2);
//! clock.pump(&[Duration::from_secs(1); 2]);
//! assert_eq!(ticks.get(), 4);
//! lc.stop()?;
//! clock.advance(Duration::ZERO); // run the Deferred's continuations (CONTRACT P1)
//! # let _ = done;
//! # Ok::<(), torsion_toolkit::task::LoopingCallError>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::ControlFlow;
use std::rc::{Rc, Weak};
use std::time::Duration;

use torsion_transport::callback::guard;
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{DelayedCall, ReactorTime};

/// A [`LoopingCall`] was asked to do what its state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoopingCallError {
    /// `start` on a loop that is running: stop it first (Twisted asserts).
    AlreadyRunning,
    /// `stop` or `reset` on a loop that is not running.
    NotRunning,
}

impl fmt::Display for LoopingCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopingCallError::AlreadyRunning => {
                f.write_str("the LoopingCall is already running; stop it before starting it again")
            }
            LoopingCallError::NotRunning => f.write_str("the LoopingCall is not running"),
        }
    }
}

impl std::error::Error for LoopingCallError {}

/// What one call of a [`LoopingCall`]'s function asks for next.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoopStep {
    /// Go on at the next interval.
    Continue,
    /// Stop the loop: its completion `Deferred` succeeds (as [`LoopingCall::stop`]).
    Stop,
    /// Stop the loop: its completion `Deferred` fails with this (Twisted: `f` raised).
    Fail(Failure),
    /// Wait for this `Deferred` before scheduling the next call (Twisted: `f` returned a
    /// Deferred); if it fails, the loop stops with its failure.
    Wait(Deferred<()>),
}

/// What a [`LoopingCall`]'s function may return: `()`, [`ControlFlow<()>`]
/// (`Break` stops the loop), `Result<T, E>` (an `Err` stops the loop and fails its
/// Deferred), a [`Deferred<()>`] (the loop waits for it) or a [`LoopStep`].
pub trait IntoLoopStep {
    /// This result as a [`LoopStep`].
    fn into_loop_step(self) -> LoopStep;
}

impl IntoLoopStep for () {
    fn into_loop_step(self) -> LoopStep {
        LoopStep::Continue
    }
}

impl IntoLoopStep for LoopStep {
    fn into_loop_step(self) -> LoopStep {
        self
    }
}

impl IntoLoopStep for ControlFlow<()> {
    fn into_loop_step(self) -> LoopStep {
        match self {
            ControlFlow::Continue(()) => LoopStep::Continue,
            ControlFlow::Break(()) => LoopStep::Stop,
        }
    }
}

impl<T: IntoLoopStep, E: Into<Failure>> IntoLoopStep for Result<T, E> {
    fn into_loop_step(self) -> LoopStep {
        match self {
            Ok(t) => t.into_loop_step(),
            Err(e) => LoopStep::Fail(e.into()),
        }
    }
}

impl IntoLoopStep for Deferred<()> {
    fn into_loop_step(self) -> LoopStep {
        LoopStep::Wait(self)
    }
}

type LoopFn = Box<dyn FnMut(u64) -> LoopStep>;

/// Where the loop stands; every field is changed only with no user code on the stack
/// below the borrow.
#[derive(Default)]
struct State {
    running: bool,
    /// Nanoseconds; 0 calls again as soon as the loop gets to it.
    interval: u128,
    /// The clock's time at `start` (or the last `reset`), in nanoseconds.
    start: u128,
    /// `start(.., now: true)`: the first call came at `start`.
    run_at_start: bool,
    /// The interval boundary (`start + k·interval`) the last call was scheduled for.
    fired_k: u128,
    /// `with_count`: when the function was last given a count.
    real_last: Option<u128>,
    /// The pending timer, if the next call is scheduled.
    call: Option<DelayedCall>,
    /// Completed when the loop stops or fails.
    completion: Option<Deferred<()>>,
    /// The function, or its `Deferred`, is running: `start(now)` from inside it waits.
    in_call: bool,
}

struct Inner {
    clock: Rc<dyn ReactorTime>,
    f: RefCell<Option<LoopFn>>,
    counting: bool,
    state: RefCell<State>,
    calls: Cell<u64>,
}

/// Call a function every `interval` (Twisted's `task.LoopingCall`).
///
/// - [`start(interval, now)`](Self::start) begins: with `now`, the function is called at
///   once, inside `start` (Twisted's default); then at `start + k·interval` for k = 1, 2,
///   … Deadlines come from the start time, not from when the last call ran, so the loop
///   does not drift however long the calls take. When the loop is late (a blocked reactor,
///   a slow call, a clock jump), the intervals that already passed are skipped: the next
///   call is at the next boundary still in the future, as in Twisted (CONTRACT P7).
/// - Its `Deferred` succeeds when the loop is [stopped](Self::stop), and fails with the
///   function's failure if the function panics (→ [`Failure::Panicked`]) or returns an
///   error; the loop stops then.
/// - The function may return `()`, [`ControlFlow`] (`Break` stops), `Result`, or a
///   [`Deferred<()>`] the loop waits for before scheduling the next call
///   ([`IntoLoopStep`]).
/// - [`with_count`](Self::with_count) passes the function how many intervals passed
///   since it was last called (1 when on time).
///
/// `LoopingCall` is a cheap handle (`Clone`). While running, the pending timer keeps the
/// loop alive (as Twisted's reactor does): dropping every handle does not stop it. The
/// times come from [`ReactorTime::seconds`], the monotonic clock (CONTRACT A2).
///
/// To stop the loop from inside its function, return `ControlFlow::Break(())`, or call
/// [`stop`](Self::stop) on a handle from [`LoopingCall::downgrade`] stored where the
/// function can reach it (a strong handle inside the function would be a reference cycle).
///
/// ```
/// use std::ops::ControlFlow;
/// use std::time::Duration;
/// use torsion_testing::Clock;
/// use torsion_toolkit::task::LoopingCall;
///
/// let clock = Clock::new();
/// let mut left = 3;
/// let lc = LoopingCall::new(&clock, move || {
///     left -= 1;
///     if left == 0 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
/// });
/// let done = lc.start(Duration::from_millis(100), false).unwrap();
/// clock.pump(&[Duration::from_millis(100); 3]);
/// assert!(!lc.running());
/// assert_eq!(lc.calls(), 3);
/// # let _ = done;
/// ```
#[derive(Clone)]
pub struct LoopingCall {
    inner: Rc<Inner>,
}

/// A handle on a [`LoopingCall`] that does not keep it alive ([`LoopingCall::downgrade`]).
#[derive(Clone)]
pub struct WeakLoopingCall {
    inner: Weak<Inner>,
}

impl fmt::Debug for WeakLoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakLoopingCall(..)")
    }
}

impl WeakLoopingCall {
    /// The loop, if it still exists.
    pub fn upgrade(&self) -> Option<LoopingCall> {
        self.inner.upgrade().map(|inner| LoopingCall { inner })
    }
}

impl fmt::Debug for LoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LoopingCall");
        if let Ok(s) = self.inner.state.try_borrow() {
            d.field("running", &s.running)
                .field("interval", &duration(s.interval));
        }
        d.field("calls", &self.inner.calls.get()).finish()
    }
}

fn nanos(d: Duration) -> u128 {
    d.as_nanos()
}

fn duration(n: u128) -> Duration {
    let secs = u64::try_from(n / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    Duration::new(secs, (n % 1_000_000_000) as u32)
}

impl LoopingCall {
    fn build<C>(clock: &C, counting: bool, f: LoopFn) -> Self
    where
        C: ReactorTime + Clone + 'static,
    {
        LoopingCall {
            inner: Rc::new(Inner {
                clock: Rc::new(clock.clone()),
                f: RefCell::new(Some(f)),
                counting,
                state: RefCell::new(State::default()),
                calls: Cell::new(0),
            }),
        }
    }

    /// A loop that calls `f` on `clock` (any [`ReactorTime`]: the reactor, the test kit's
    /// `Clock` or `MemoryReactor`). Nothing runs until [`start`](Self::start).
    pub fn new<C, R>(clock: &C, mut f: impl FnMut() -> R + 'static) -> Self
    where
        C: ReactorTime + Clone + 'static,
        R: IntoLoopStep,
    {
        Self::build(clock, false, Box::new(move |_| f().into_loop_step()))
    }

    /// A loop whose function gets the number of intervals that passed since it was last
    /// called: 1 when on time, more when the loop was late (Twisted's
    /// `LoopingCall.withCount`). With interval 0 the count is always 1. An animation
    /// advances that many frames; a rate counter divides by it.
    ///
    /// The first call counts one interval (Twisted's rule). A call that would get 0 (a
    /// reset moved the boundaries) is not made.
    #[doc(alias = "withCount")]
    pub fn with_count<C, R>(clock: &C, mut f: impl FnMut(u64) -> R + 'static) -> Self
    where
        C: ReactorTime + Clone + 'static,
        R: IntoLoopStep,
    {
        Self::build(clock, true, Box::new(move |n| f(n).into_loop_step()))
    }

    /// A handle that does not keep the loop alive, for the loop's own function.
    pub fn downgrade(&self) -> WeakLoopingCall {
        WeakLoopingCall {
            inner: Rc::downgrade(&self.inner),
        }
    }

    /// Start calling the function every `interval`; with `now`, call it once at once,
    /// inside this call (Twisted's `start(interval, now=True)`). An interval of zero calls
    /// it again on each turn of the loop.
    ///
    /// Returns the loop's completion: it succeeds when the loop is [stopped](Self::stop)
    /// (or its function returns `ControlFlow::Break`), and fails with the function's
    /// failure (a panic, an `Err`, a failed `Deferred`) — the loop stops then. After the
    /// loop ended it may be started again.
    ///
    /// # Errors
    ///
    /// [`LoopingCallError::AlreadyRunning`] if it is running.
    pub fn start(&self, interval: Duration, now: bool) -> Result<Deferred<()>, LoopingCallError> {
        let completion = Deferred::new();
        let previous;
        let immediate = {
            let mut s = self.inner.state.borrow_mut();
            if s.running {
                return Err(LoopingCallError::AlreadyRunning);
            }
            // Stopped from inside its function and started again before that call
            // returned: the previous run is over now.
            previous = s.completion.take();
            let at = self.inner.now();
            *s = State {
                running: true,
                interval: nanos(interval),
                start: at,
                run_at_start: now,
                fired_k: 0,
                real_last: None,
                call: None,
                completion: Some(completion.clone()),
                in_call: s.in_call,
            };
            now && !s.in_call
        };
        if let Some(d) = previous {
            let _ = d.callback(());
        }
        log::debug!("LoopingCall started, every {interval:?}");
        if immediate {
            self.inner.clone().fire();
        } else if now {
            // Started again from inside its own function: the call comes from the loop.
            let call = self.inner.clock.call_later_boxed(Duration::ZERO, {
                let inner = self.inner.clone();
                Box::new(move || inner.fire())
            });
            self.inner.state.borrow_mut().call = Some(call);
        } else {
            let at = self.inner.state.borrow().start;
            self.inner.schedule_from(at);
        }
        Ok(completion)
    }

    /// Stop: no more calls; the completion `Deferred` succeeds — at once if the next call
    /// was only scheduled, or when the running call (or the `Deferred` it returned)
    /// finishes. Safe to call from inside the function.
    ///
    /// # Errors
    ///
    /// [`LoopingCallError::NotRunning`] if it is not running.
    pub fn stop(&self) -> Result<(), LoopingCallError> {
        let (call, completion) = {
            let mut s = self.inner.state.borrow_mut();
            if !s.running {
                return Err(LoopingCallError::NotRunning);
            }
            s.running = false;
            match s.call.take() {
                Some(call) => (Some(call), s.completion.take()),
                None => (None, None),
            }
        };
        log::debug!("LoopingCall stopped");
        if let Some(call) = call {
            let _ = call.cancel();
        }
        if let Some(d) = completion {
            let _ = d.callback(());
        }
        Ok(())
    }

    /// Skip the pending call and start counting intervals again from now: the next call is
    /// one interval from now (Twisted's `reset`). While the function (or its `Deferred`)
    /// is running, this does nothing, as in Twisted.
    ///
    /// # Errors
    ///
    /// [`LoopingCallError::NotRunning`] if it is not running.
    pub fn reset(&self) -> Result<(), LoopingCallError> {
        let (call, at) = {
            let mut s = self.inner.state.borrow_mut();
            if !s.running {
                return Err(LoopingCallError::NotRunning);
            }
            let Some(call) = s.call.take() else {
                return Ok(());
            };
            let at = self.inner.now();
            s.start = at;
            s.fired_k = 0;
            s.run_at_start = false;
            s.real_last = Some(at);
            (call, at)
        };
        let _ = call.cancel();
        self.inner.schedule_from(at);
        Ok(())
    }

    /// True from `start` until `stop`, a `Break`, or a failure (Twisted's `running`).
    pub fn running(&self) -> bool {
        self.inner.state.borrow().running
    }

    /// The interval of the current (or last) run.
    pub fn interval(&self) -> Duration {
        duration(self.inner.state.borrow().interval)
    }

    /// How many times the function was called, over every run.
    pub fn calls(&self) -> u64 {
        self.inner.calls.get()
    }
}

impl Inner {
    fn now(&self) -> u128 {
        let secs = self.clock.seconds();
        Duration::try_from_secs_f64(secs.max(0.0))
            .map(nanos)
            .unwrap_or(0)
    }

    /// Schedule the next call at the first boundary `start + k·interval` after both `at`
    /// and the boundary last fired: never earlier than due, never twice for one boundary
    /// (so a clock read rounded down cannot fire it again).
    fn schedule_from(self: &Rc<Self>, at: u128) {
        let delay = {
            let mut s = self.state.borrow_mut();
            match at.saturating_sub(s.start).checked_div(s.interval) {
                None => Duration::ZERO,
                Some(passed) => {
                    let k = (passed + 1).max(s.fired_k + 1);
                    s.fired_k = k;
                    duration((s.start + k * s.interval).saturating_sub(at))
                }
            }
        };
        let inner = self.clone();
        let call = self
            .clock
            .call_later_boxed(delay, Box::new(move || inner.fire()));
        self.state.borrow_mut().call = Some(call);
    }

    /// `with_count`: how many intervals passed since the last call (Twisted's `counter`);
    /// `None` if none did.
    fn count(&self, s: &mut State, now: u128) -> Option<u64> {
        if s.interval == 0 {
            s.real_last = Some(now);
            return Some(1);
        }
        let start = s.start as i128;
        let interval = s.interval as i128;
        let last = match s.real_last {
            Some(t) => t as i128,
            None if s.run_at_start => start - interval,
            None => start,
        };
        let of = |t: i128| (t - start).div_euclid(interval);
        let n = of(now as i128) - of(last);
        if n > 0 {
            s.real_last = Some(now);
            Some(u64::try_from(n).unwrap_or(u64::MAX))
        } else {
            None
        }
    }

    /// One call of the function, then what it asked for.
    fn fire(self: Rc<Self>) {
        let count = {
            let mut s = self.state.borrow_mut();
            s.call = None;
            if !s.running {
                return;
            }
            if self.counting {
                let now = self.now();
                self.count(&mut s, now)
            } else {
                Some(1)
            }
        };
        let Some(count) = count else {
            let now = self.now();
            self.schedule_from(now);
            return;
        };
        let Some(mut f) = self.f.borrow_mut().take() else {
            // Only reachable if the function started the loop from inside itself, which
            // `start` routes through the clock instead.
            log::warn!("LoopingCall: the function is already running; call skipped");
            return;
        };
        self.state.borrow_mut().in_call = true;
        self.calls.set(self.calls.get() + 1);
        let step = guard("a LoopingCall function", || f(count));
        *self.f.borrow_mut() = Some(f);
        match step {
            Ok(LoopStep::Continue) => self.after_call(),
            Ok(LoopStep::Stop) => {
                self.state.borrow_mut().running = false;
                self.after_call();
            }
            Ok(LoopStep::Fail(e)) => self.fail(e),
            Err(p) => self.fail(Failure::Panicked(p.message)),
            Ok(LoopStep::Wait(d)) => {
                let inner = self.clone();
                // The chained link's result is `()`; nothing waits for it.
                drop(d.add_both(move |r| {
                    match r {
                        Ok(()) => inner.after_call(),
                        Err(e) => inner.fail(e),
                    }
                    Ok(())
                }));
            }
        }
    }

    /// The call finished: schedule the next one, or complete if the loop was stopped.
    fn after_call(self: &Rc<Self>) {
        let done = {
            let mut s = self.state.borrow_mut();
            s.in_call = false;
            if s.call.is_some() {
                // Restarted from inside the function: the new run is already scheduled.
                return;
            }
            if s.running { None } else { s.completion.take() }
        };
        match done {
            Some(d) => {
                let _ = d.callback(());
            }
            None => {
                if self.state.borrow().running {
                    let now = self.now();
                    self.schedule_from(now);
                }
            }
        }
    }

    fn fail(self: &Rc<Self>, e: Failure) {
        log::debug!("LoopingCall failed: {e}");
        let (d, call) = {
            let mut s = self.state.borrow_mut();
            s.in_call = false;
            s.running = false;
            (s.completion.take(), s.call.take())
        };
        if let Some(call) = call {
            let _ = call.cancel();
        }
        if let Some(d) = d {
            let _ = d.errback(e);
        }
    }
}

/// A [`Deferred`] of `f()`, called `delay` from now on `clock` (Twisted's
/// `task.deferLater`). A panic in `f` fails it with [`Failure::Panicked`]; cancelling it
/// before `f` ran cancels the timer (`f` never runs) and fails it with
/// [`Failure::Cancelled`]. For an `f` that can fail, return a `Result` and chain
/// [`and_then(|r| r.map_err(Failure::from))`](Deferred::and_then).
///
/// ```
/// use std::time::Duration;
/// use torsion_testing::Clock;
/// use torsion_toolkit::task::defer_later;
///
/// let clock = Clock::new();
/// let d = defer_later(&clock, Duration::from_secs(2), || 6 * 7);
/// let seen = std::rc::Rc::new(std::cell::Cell::new(0));
/// let s = seen.clone();
/// d.add_callback(move |v| s.set(v));
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(seen.get(), 0);
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(seen.get(), 42);
/// ```
#[doc(alias = "deferLater")]
pub fn defer_later<T, C>(clock: &C, delay: Duration, f: impl FnOnce() -> T + 'static) -> Deferred<T>
where
    T: 'static,
    C: ReactorTime + ?Sized,
{
    let timer: Rc<RefCell<Option<DelayedCall>>> = Rc::default();
    let t = timer.clone();
    let d = Deferred::with_canceller(move |_| {
        if let Some(call) = t.borrow_mut().take() {
            let _ = call.cancel();
        }
    });
    let out = d.clone();
    let call = clock.call_later_boxed(
        delay,
        Box::new(move || {
            let r = guard("a defer_later function", f).map_err(|p| Failure::Panicked(p.message));
            let _ = out.complete(r);
        }),
    );
    *timer.borrow_mut() = Some(call);
    d
}
