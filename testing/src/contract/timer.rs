//! The timer contract (CONTRACT A1, A3, A5–A11), generic over [`ReactorTime`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use torsion_transport::time::delay_from_secs;
use torsion_transport::{DelayedCall, ReactorTime, TimerError};

/// The time unit of the timer contract: small enough for a real reactor to wait it out,
/// with margins of several units wherever "not yet" is asserted.
pub const UNIT: Duration = Duration::from_millis(10);

/// A [`ReactorTime`] implementation under test, with a way to let time pass.
pub trait TimerHarness {
    /// The implementation.
    type Time: ReactorTime;

    /// The implementation under test.
    fn time(&self) -> &Self::Time;

    /// Let at least `amount` of time pass, running what becomes due (a `Clock` advances;
    /// a real reactor iterates until that much time has elapsed).
    fn advance(&mut self, amount: Duration);

    /// One pass of the loop without waiting: run what is due now (a `Clock` advances by
    /// zero; a real reactor iterates with a zero timeout).
    fn iterate(&mut self);

    /// True when a call scheduled from inside a timer waits for a later pass (CONTRACT
    /// A5). The real reactor claims it; `Clock` does not: its `advance` runs calls that
    /// become due while advancing (O4).
    fn separate_passes(&self) -> bool;
}

/// Counts how many of the calls it made have run.
#[derive(Clone, Default)]
struct Counter(Rc<Cell<usize>>);

impl Counter {
    fn call(&self) -> Box<dyn FnOnce()> {
        let n = self.0.clone();
        Box::new(move || n.set(n.get() + 1))
    }

    fn get(&self) -> usize {
        self.0.get()
    }
}

/// A1: `call_later` returns a pending `DelayedCall` that runs once, not before its delay.
pub fn a1_call_later_runs_once_after_its_delay<H: TimerHarness>(h: &mut H) {
    let ran = Counter::default();
    let call = h.time().call_later_boxed(5 * UNIT, ran.call());
    assert!(call.active(), "A1: a new call is pending");
    h.advance(UNIT);
    assert_eq!(ran.get(), 0, "A1: not before its delay");
    h.advance(5 * UNIT);
    assert_eq!(ran.get(), 1, "A1: runs once its delay has passed");
    assert!(call.called() && !call.active(), "A1: marked called");
    h.advance(5 * UNIT);
    assert_eq!(ran.get(), 1, "A1: runs once");
}

/// A1: a negative (or NaN) delay in Twisted-style seconds is an error; a valid one
/// schedules normally.
pub fn a1_negative_delay_is_an_error<H: TimerHarness>(h: &mut H) {
    assert_eq!(
        delay_from_secs(-0.5),
        Err(TimerError::InvalidDelay),
        "A1: negative delay"
    );
    assert_eq!(
        delay_from_secs(f64::NAN),
        Err(TimerError::InvalidDelay),
        "A1: NaN delay"
    );
    let delay = match delay_from_secs(UNIT.as_secs_f64()) {
        Ok(d) => d,
        Err(e) => panic!("A1: a valid delay was refused: {e}"),
    };
    let ran = Counter::default();
    h.time().call_later_boxed(delay, ran.call());
    h.advance(2 * UNIT);
    assert_eq!(ran.get(), 1, "A1: a valid delay in seconds schedules");
}

/// A3: calls with equal deadlines run in scheduling order.
pub fn a3_equal_deadlines_run_fifo<H: TimerHarness>(h: &mut H) {
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..20 {
        let order = order.clone();
        h.time()
            .call_later_boxed(2 * UNIT, Box::new(move || order.borrow_mut().push(i)));
    }
    h.advance(3 * UNIT);
    assert_eq!(*order.borrow(), (0..20).collect::<Vec<_>>(), "A3: FIFO");
}

/// A5: a call scheduled from inside a timer, even with delay 0, does not run inside
/// `call_later`, runs on the next pass, and — where the implementation claims
/// [`separate_passes`](TimerHarness::separate_passes) — not in the same pass.
pub fn a5_call_from_timer_runs_on_a_later_pass<H: TimerHarness>(h: &mut H)
where
    H::Time: Clone + 'static,
{
    let inner_ran = Rc::new(Cell::new(false));
    let ran_inside_call_later = Rc::new(Cell::new(false));
    let outer_ran = Rc::new(Cell::new(false));
    let time = h.time().clone();
    {
        let (inner_ran, inside, outer_ran) = (
            inner_ran.clone(),
            ran_inside_call_later.clone(),
            outer_ran.clone(),
        );
        h.time().call_later_boxed(
            Duration::ZERO,
            Box::new(move || {
                outer_ran.set(true);
                let flag = inner_ran.clone();
                time.call_later_boxed(Duration::ZERO, Box::new(move || flag.set(true)));
                inside.set(inner_ran.get());
            }),
        );
    }
    h.iterate();
    assert!(
        outer_ran.get(),
        "A5: a call with delay 0 runs on the next pass"
    );
    assert!(
        !ran_inside_call_later.get(),
        "A5: call_later never runs the call synchronously"
    );
    if h.separate_passes() {
        assert!(
            !inner_ran.get(),
            "A5: a call scheduled from a timer does not run in the same pass"
        );
    }
    h.iterate();
    assert!(inner_ran.get(), "A5: it runs on a later pass");
}

/// A6: a cancelled call never runs, also when cancelled by a call due at the same time;
/// many cancellations leave only the live calls pending.
pub fn a6_cancelled_call_never_runs<H: TimerHarness>(h: &mut H) {
    let ran = Counter::default();
    let calls: Vec<DelayedCall> = (0..200)
        .map(|i| {
            h.time()
                .call_later_boxed(UNIT + Duration::from_micros(i), ran.call())
        })
        .collect();
    for (i, c) in calls.iter().enumerate() {
        if i % 4 != 0 {
            assert!(c.cancel().is_ok());
        }
    }
    assert_eq!(
        h.time().delayed_calls().len(),
        50,
        "A6/A11: cancelled calls are not listed"
    );
    let victim_ran = Counter::default();
    let victim = Rc::new(RefCell::new(None::<DelayedCall>));
    let v = victim.clone();
    h.time().call_later_boxed(
        3 * UNIT,
        Box::new(move || {
            if let Some(c) = v.borrow().as_ref() {
                let _ = c.cancel();
            }
        }),
    );
    *victim.borrow_mut() = Some(h.time().call_later_boxed(3 * UNIT, victim_ran.call()));
    h.advance(5 * UNIT);
    assert_eq!(ran.get(), 50, "A6: only the calls not cancelled ran");
    assert_eq!(
        victim_ran.get(),
        0,
        "A6: cancelled by an earlier call at the same time"
    );
    assert!(h.time().delayed_calls().is_empty());
}

/// A7: a call is marked called before it runs: inside it, `cancel`/`reset`/`delay` on
/// itself fail with `AlreadyCalled`.
pub fn a7_call_is_marked_called_before_it_runs<H: TimerHarness>(h: &mut H) {
    let slot = Rc::new(RefCell::new(None::<DelayedCall>));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let marked = Rc::new(Cell::new(false));
    let (s, out, m) = (slot.clone(), seen.clone(), marked.clone());
    let call = h.time().call_later_boxed(
        UNIT,
        Box::new(move || {
            if let Some(me) = s.borrow().as_ref() {
                m.set(me.called() && !me.active());
                let mut out = out.borrow_mut();
                out.push(me.cancel());
                out.push(me.reset(UNIT));
                out.push(me.delay(UNIT));
            }
        }),
    );
    *slot.borrow_mut() = Some(call);
    h.advance(2 * UNIT);
    assert!(marked.get(), "A7: the call is marked called while it runs");
    let err = Err(TimerError::AlreadyCalled);
    assert_eq!(
        *seen.borrow(),
        vec![err, err, err],
        "A7: cancel/reset/delay from inside the call give AlreadyCalled"
    );
}

/// A8: `cancel` twice → `AlreadyCancelled`; `cancel` after the run → `AlreadyCalled`;
/// `reset`/`delay` give the same errors.
pub fn a8_cancel_errors<H: TimerHarness>(h: &mut H) {
    let c = h.time().call_later_boxed(UNIT, Box::new(|| {}));
    assert_eq!(c.cancel(), Ok(()));
    assert_eq!(c.cancel(), Err(TimerError::AlreadyCancelled), "A8");
    assert_eq!(c.reset(UNIT), Err(TimerError::AlreadyCancelled), "A8/A9");
    assert_eq!(c.delay(UNIT), Err(TimerError::AlreadyCancelled), "A8/A10");
    assert!(c.cancelled() && !c.active());
    let d = h.time().call_later_boxed(UNIT, Box::new(|| {}));
    h.advance(2 * UNIT);
    assert_eq!(d.cancel(), Err(TimerError::AlreadyCalled), "A8");
    assert_eq!(d.reset(UNIT), Err(TimerError::AlreadyCalled), "A8/A9");
    assert_eq!(d.delay(UNIT), Err(TimerError::AlreadyCalled), "A8/A10");
}

/// A9: `reset(d)` sets the deadline to now + d, earlier or later.
pub fn a9_reset_moves_the_deadline<H: TimerHarness>(h: &mut H) {
    let ran = Counter::default();
    let earlier = h.time().call_later_boxed(20 * UNIT, ran.call());
    let before = h.time().seconds();
    assert_eq!(earlier.reset(2 * UNIT), Ok(()));
    let after = h.time().seconds();
    let t = earlier.time().as_secs_f64();
    let d = (2 * UNIT).as_secs_f64();
    assert!(
        t >= before + d - 1e-6 && t <= after + d + 1e-6,
        "A9: the deadline is now + d ({t} not in [{}, {}])",
        before + d,
        after + d
    );
    h.advance(4 * UNIT);
    assert_eq!(ran.get(), 1, "A9: reset to an earlier time runs earlier");
    let later_ran = Counter::default();
    let later = h.time().call_later_boxed(2 * UNIT, later_ran.call());
    assert_eq!(later.reset(20 * UNIT), Ok(()));
    h.advance(4 * UNIT);
    assert_eq!(later_ran.get(), 0, "A9: reset to a later time waits");
    assert!(later.active());
    assert_eq!(later.cancel(), Ok(()));
}

/// A10: `delay(d)` moves the deadline by d from the current deadline.
pub fn a10_delay_moves_the_deadline_relative_to_itself<H: TimerHarness>(h: &mut H) {
    let ran = Counter::default();
    let c = h.time().call_later_boxed(2 * UNIT, ran.call());
    let t0 = c.time();
    assert_eq!(c.delay(10 * UNIT), Ok(()));
    assert_eq!(c.time(), t0 + 10 * UNIT, "A10: deadline moved by exactly d");
    h.advance(4 * UNIT);
    assert_eq!(ran.get(), 0, "A10: not at the old deadline");
    h.advance(10 * UNIT);
    assert_eq!(ran.get(), 1, "A10: at the new deadline");
}

/// A11: `active()` is neither cancelled nor called; `delayed_calls()` lists the pending
/// calls, earliest first.
pub fn a11_active_and_delayed_calls<H: TimerHarness>(h: &mut H) {
    let a = h.time().call_later_boxed(6 * UNIT, Box::new(|| {}));
    let b = h.time().call_later_boxed(2 * UNIT, Box::new(|| {}));
    let c = h.time().call_later_boxed(4 * UNIT, Box::new(|| {}));
    let list = h.time().delayed_calls();
    assert_eq!(list.len(), 3);
    assert!(
        list[0].same_as(&b) && list[1].same_as(&c) && list[2].same_as(&a),
        "A11: earliest first"
    );
    assert_eq!(c.cancel(), Ok(()));
    assert!(!c.active() && a.active() && b.active(), "A11: active");
    let list = h.time().delayed_calls();
    assert!(list.len() == 2 && list[0].same_as(&b) && list[1].same_as(&a));
    h.advance(8 * UNIT);
    assert!(!a.active() && !b.active(), "A11: not active once called");
    assert!(h.time().delayed_calls().is_empty(), "A11: nothing pending");
}

/// Expands to one `#[test]` per timer contract item (CONTRACT A1, A3, A5–A11), each
/// running against a fresh harness built by the given expression.
///
/// ```text
/// torsion_testing::timer_contract_suite!(ClockHarness::default());
/// ```
#[macro_export]
macro_rules! timer_contract_suite {
    ($harness:expr) => {
        $crate::timer_contract_suite!(@tests $harness;
            a1_call_later_runs_once_after_its_delay,
            a1_negative_delay_is_an_error,
            a3_equal_deadlines_run_fifo,
            a5_call_from_timer_runs_on_a_later_pass,
            a6_cancelled_call_never_runs,
            a7_call_is_marked_called_before_it_runs,
            a8_cancel_errors,
            a9_reset_moves_the_deadline,
            a10_delay_moves_the_deadline_relative_to_itself,
            a11_active_and_delayed_calls,
        );
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut harness = $harness;
                $crate::contract::$name(&mut harness);
            }
        )*
    };
}
