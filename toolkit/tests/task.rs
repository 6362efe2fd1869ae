//! `LoopingCall` and `defer_later` on the test kit's `Clock` (Twisted's `test_task.py`
//! `LoopTests` as the reference).

mod util;

use std::cell::{Cell, OnceCell, RefCell};
use std::ops::ControlFlow;
use std::rc::Rc;
use std::time::Duration;

use torsion_testing::Clock;
use torsion_toolkit::task::{
    LoopStep, LoopingCall, LoopingCallError, WeakLoopingCall, defer_later,
};
use torsion_transport::ReactorTime;
use torsion_transport::defer::{Deferred, Failure};
use util::watch;

const MS: Duration = Duration::from_millis(1);

/// A loop that records the clock's time at each call.
fn recorder(clock: &Clock) -> (LoopingCall, Rc<RefCell<Vec<Duration>>>) {
    let times = Rc::new(RefCell::new(Vec::new()));
    let (t, c) = (times.clone(), clock.clone());
    (
        LoopingCall::new(clock, move || t.borrow_mut().push(c.now())),
        times,
    )
}

#[test]
fn p7_drift_free_over_ten_thousand_intervals() {
    let clock = Clock::new();
    let (lc, times) = recorder(&clock);
    let _done = lc.start(100 * MS, true).unwrap();
    for _ in 0..10_000 {
        clock.advance(100 * MS);
    }
    let times = times.borrow();
    assert_eq!(times.len(), 10_001);
    for (k, t) in times.iter().enumerate() {
        assert_eq!(*t, 100 * MS * k as u32, "call {k} is off its boundary");
    }
}

#[test]
fn p7_late_wakeups_do_not_accumulate_into_drift() {
    // The clock moves in 37 ms steps: each call comes up to 37 ms late, but the next
    // deadline is start + k·interval, so lateness never adds up.
    let clock = Clock::new();
    let (lc, times) = recorder(&clock);
    let _done = lc.start(100 * MS, false).unwrap();
    for _ in 0..27_000 {
        clock.advance(37 * MS);
    }
    let times = times.borrow();
    // 27,000 × 37 ms = 999 s: boundaries 100 ms .. 999.0 s, one call each.
    assert_eq!(times.len(), 9_990);
    for (i, t) in times.iter().enumerate() {
        let boundary = 100 * MS * (i as u32 + 1);
        assert!(
            *t >= boundary && *t < boundary + 37 * MS,
            "call {i} at {t:?}"
        );
    }
}

#[test]
fn p7_skipped_intervals_are_skipped_when_the_reactor_is_late() {
    // Twisted's test_reactorTimeSkips.
    let clock = Clock::new();
    let (lc, times) = recorder(&clock);
    let _done = lc.start(500 * MS, true).unwrap();
    assert_eq!(*times.borrow(), [Duration::ZERO]);
    clock.advance(2000 * MS);
    assert_eq!(*times.borrow(), [Duration::ZERO, 2000 * MS]);
    clock.advance(1000 * MS);
    assert_eq!(*times.borrow(), [Duration::ZERO, 2000 * MS, 3000 * MS]);
    clock.advance(Duration::ZERO);
    assert_eq!(times.borrow().len(), 3);
}

#[test]
fn p7_a_call_that_takes_longer_than_the_interval_skips_to_the_next_future_boundary() {
    // Twisted's test_callbackTimeSkips: the function itself moves the clock.
    let clock = Clock::new();
    let times = Rc::new(RefCell::new(Vec::new()));
    let duration = Rc::new(Cell::new(2000 * MS));
    let (t, c, d) = (times.clone(), clock.clone(), duration.clone());
    let lc = LoopingCall::new(&clock, move || {
        t.borrow_mut().push(c.now());
        c.advance(d.get());
    });
    let _done = lc.start(500 * MS, true).unwrap();
    assert_eq!(*times.borrow(), [Duration::ZERO]);
    assert_eq!(clock.now(), 2000 * MS);
    clock.advance(Duration::ZERO); // 2.0 s is the present, not the future: skipped
    assert_eq!(times.borrow().len(), 1);
    duration.set(1000 * MS);
    clock.advance(500 * MS);
    assert_eq!(*times.borrow(), [Duration::ZERO, 2500 * MS]);
    assert_eq!(clock.now(), 3500 * MS);
    clock.advance(Duration::ZERO);
    assert_eq!(times.borrow().len(), 2);
    duration.set(Duration::ZERO);
    clock.advance(500 * MS);
    assert_eq!(*times.borrow(), [Duration::ZERO, 2500 * MS, 4000 * MS]);
}

/// (time, count) per call.
type Counts = Rc<RefCell<Vec<(Duration, u64)>>>;

fn counting(clock: &Clock) -> (LoopingCall, Counts) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let (s, c) = (seen.clone(), clock.clone());
    let lc = LoopingCall::with_count(clock, move |n| s.borrow_mut().push((c.now(), n)));
    (lc, seen)
}

#[test]
fn p7_with_count_reports_the_intervals_a_clock_jump_skipped() {
    // Twisted's test_reactorTimeCountSkips.
    let clock = Clock::new();
    let (lc, seen) = counting(&clock);
    let _done = lc.start(500 * MS, true).unwrap();
    assert_eq!(*seen.borrow(), [(Duration::ZERO, 1)]);
    clock.advance(510 * MS);
    assert_eq!(seen.borrow()[1], (510 * MS, 1));
    clock.advance(1510 * MS); // jump over three boundaries
    assert_eq!(seen.borrow()[2], (2020 * MS, 3));
    clock.advance(Duration::ZERO);
    assert_eq!(seen.borrow().len(), 3);
    clock.advance(480 * MS); // on time again
    assert_eq!(seen.borrow()[3], (2500 * MS, 1));
}

#[test]
fn p7_with_count_counts_boundaries_not_elapsed_time() {
    // Twisted's test_countLengthyIntervalCounts: called at T, 2.75T and 3T, the count
    // stays 1 although 1.75T passed between the first two.
    let clock = Clock::new();
    let (lc, seen) = counting(&clock);
    let _done = lc.start(500 * MS, true).unwrap();
    clock.advance(510 * MS);
    clock.advance(875 * MS);
    clock.advance(125 * MS);
    let counts: Vec<u64> = seen.borrow().iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, [1, 1, 1, 1]);
    assert_eq!(seen.borrow()[2].0, 1385 * MS);
}

#[test]
fn p7_with_count_sums_to_the_elapsed_intervals_and_is_never_zero() {
    // Twisted's test_withCountFloatingPointBoundary, with an interval (1/3 s) that is
    // not a whole number of nanoseconds.
    let clock = Clock::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let lc = LoopingCall::with_count(&clock, move |n| s.borrow_mut().push(n));
    let third = Duration::from_secs(1) / 3;
    let _done = lc.start(third, false).unwrap();
    for _ in 0..30 {
        clock.advance(third);
    }
    clock.advance(Duration::from_nanos(10));
    assert!(!seen.borrow().contains(&0));
    assert_eq!(seen.borrow().iter().sum::<u64>(), 30);
}

#[test]
fn p7_with_count_at_interval_zero_is_always_one() {
    // Twisted's test_withCountIntervalZero: stop from inside after five calls.
    let clock = Clock::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let lc = LoopingCall::with_count(&clock, move |n| {
        s.borrow_mut().push(n);
        if s.borrow().len() == 5 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let done = watch(lc.start(Duration::ZERO, false).unwrap());
    clock.pump(&[Duration::ZERO; 5]);
    assert_eq!(*seen.borrow(), [1; 5]);
    assert!(matches!(*done.borrow(), Some(Ok(()))));
    assert!(clock.delayed_calls().is_empty());
}

#[test]
fn p7_basic_function_then_stop_fires_the_deferred_and_leaves_no_timer() {
    // Twisted's testBasicFunction and testDelayedStart.
    for (now, expected) in [(true, 3), (false, 2)] {
        let clock = Clock::new();
        let (lc, times) = recorder(&clock);
        let done = watch(lc.start(100 * MS, now).unwrap());
        clock.pump(&[50 * MS, 100 * MS, 100 * MS]);
        assert_eq!(times.borrow().len(), expected, "now = {now}");
        assert!(lc.running());
        lc.stop().unwrap();
        assert!(!lc.running());
        clock.advance(Duration::ZERO);
        assert!(matches!(*done.borrow(), Some(Ok(()))));
        assert!(clock.delayed_calls().is_empty());
        assert_eq!(lc.calls(), expected as u64);
    }
}

#[test]
fn p7_stop_before_a_delayed_start_means_no_call() {
    // Twisted's testStopAtOnce and testStoppingBeforeDelayedStart.
    for interval in [Duration::ZERO, Duration::from_secs(10)] {
        let clock = Clock::new();
        let (lc, times) = recorder(&clock);
        let done = watch(lc.start(interval, false).unwrap());
        lc.stop().unwrap();
        clock.advance(Duration::from_secs(20));
        assert!(times.borrow().is_empty());
        assert!(clock.delayed_calls().is_empty());
        assert!(matches!(*done.borrow(), Some(Ok(()))));
    }
}

#[test]
fn p7_stop_from_inside_the_function_through_a_weak_handle() {
    let clock = Clock::new();
    let me: Rc<OnceCell<WeakLoopingCall>> = Rc::default();
    let calls = Rc::new(Cell::new(0));
    let (m, c) = (me.clone(), calls.clone());
    let lc = LoopingCall::new(&clock, move || {
        c.set(c.get() + 1);
        if c.get() == 3 {
            let lc = m
                .get()
                .and_then(WeakLoopingCall::upgrade)
                .expect("the loop exists");
            lc.stop().expect("running while its function runs");
        }
    });
    let _ = me.set(lc.downgrade());
    let done = watch(lc.start(Duration::from_secs(1), true).unwrap());
    clock.pump(&[Duration::from_secs(1); 5]);
    assert_eq!(calls.get(), 3);
    assert!(!lc.running());
    assert!(matches!(*done.borrow(), Some(Ok(()))));
    assert!(clock.delayed_calls().is_empty());
}

#[test]
fn p7_start_twice_is_a_typed_error_and_stop_or_reset_when_stopped_too() {
    let clock = Clock::new();
    let (lc, _) = recorder(&clock);
    assert_eq!(lc.stop(), Err(LoopingCallError::NotRunning));
    assert_eq!(lc.reset(), Err(LoopingCallError::NotRunning));
    let first = watch(lc.start(MS, false).unwrap());
    let again = lc.start(MS, false);
    assert_eq!(again.err(), Some(LoopingCallError::AlreadyRunning));
    assert!(
        LoopingCallError::AlreadyRunning
            .to_string()
            .contains("stop it before starting"),
        "the message says what to do"
    );
    assert!(lc.running(), "the failed start leaves the first run alone");
    clock.advance(MS);
    assert_eq!(lc.calls(), 1);
    lc.stop().unwrap();
    clock.advance(Duration::ZERO);
    assert!(matches!(*first.borrow(), Some(Ok(()))));
    // Once stopped it may start again.
    let second = watch(lc.start(MS, true).unwrap());
    assert_eq!(lc.calls(), 2);
    lc.stop().unwrap();
    clock.advance(Duration::ZERO);
    assert!(matches!(*second.borrow(), Some(Ok(()))));
}

#[test]
fn p7_a_panic_in_the_function_fails_the_deferred_and_stops_the_loop() {
    let clock = Clock::new();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let lc = LoopingCall::new(&clock, move || {
        c.set(c.get() + 1);
        if c.get() == 2 {
            panic!("tick {} broke", c.get());
        }
    });
    let done = watch(lc.start(Duration::from_secs(1), true).unwrap());
    clock.pump(&[Duration::from_secs(1); 4]);
    assert_eq!(calls.get(), 2, "no call after the panic");
    assert!(!lc.running());
    assert!(clock.delayed_calls().is_empty());
    match &*done.borrow() {
        Some(Err(Failure::Panicked(m))) => assert_eq!(m, "tick 2 broke"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(lc.stop(), Err(LoopingCallError::NotRunning));
}

#[test]
fn p7_an_error_returned_by_the_function_fails_the_deferred() {
    let clock = Clock::new();
    let lc = LoopingCall::new(&clock, || -> Result<(), std::io::Error> {
        Err(std::io::Error::other("disk full"))
    });
    let done = watch(lc.start(Duration::from_secs(1), true).unwrap());
    clock.advance(Duration::ZERO);
    assert!(!lc.running());
    match &*done.borrow() {
        Some(Err(f)) => assert_eq!(f.to_string(), "disk full"),
        other => panic!("expected the error, got {other:?}"),
    }
}

#[test]
fn p7_a_returned_deferred_holds_the_next_call_until_it_fires() {
    let clock = Clock::new();
    let pending: Rc<RefCell<Option<Deferred<()>>>> = Rc::default();
    let calls = Rc::new(Cell::new(0));
    let (p, c) = (pending.clone(), calls.clone());
    let lc = LoopingCall::new(&clock, move || {
        c.set(c.get() + 1);
        let d = Deferred::new();
        *p.borrow_mut() = Some(d.clone());
        d
    });
    let done = watch(lc.start(Duration::from_secs(1), true).unwrap());
    clock.pump(&[Duration::from_secs(1); 3]);
    assert_eq!(calls.get(), 1, "waits for the Deferred");
    let d = pending.borrow_mut().take().unwrap();
    d.callback(()).unwrap();
    clock.advance(Duration::ZERO);
    // The next call is at the next boundary in the future: 4 s.
    clock.advance(Duration::from_secs(1));
    assert_eq!(calls.get(), 2);
    assert_eq!(clock.now(), Duration::from_secs(4));
    // A failing Deferred stops the loop with its failure.
    let d = pending.borrow_mut().take().unwrap();
    d.errback(Failure::msg("upstream went away")).unwrap();
    clock.pump(&[Duration::ZERO, Duration::from_secs(5)]);
    assert_eq!(calls.get(), 2);
    assert!(!lc.running());
    match &*done.borrow() {
        Some(Err(f)) => assert_eq!(f.to_string(), "upstream went away"),
        other => panic!("expected the failure, got {other:?}"),
    }
}

#[test]
fn p7_stop_while_a_returned_deferred_is_pending_completes_when_it_fires() {
    let clock = Clock::new();
    let pending: Rc<RefCell<Option<Deferred<()>>>> = Rc::default();
    let p = pending.clone();
    let lc = LoopingCall::new(&clock, move || {
        let d = Deferred::new();
        *p.borrow_mut() = Some(d.clone());
        LoopStep::Wait(d)
    });
    let done = watch(lc.start(Duration::from_secs(1), true).unwrap());
    lc.stop().unwrap();
    clock.advance(Duration::ZERO);
    assert!(done.borrow().is_none(), "the call is still running");
    pending.borrow_mut().take().unwrap().callback(()).unwrap();
    clock.advance(Duration::ZERO);
    assert!(matches!(*done.borrow(), Some(Ok(()))));
    assert!(clock.delayed_calls().is_empty());
}

#[test]
fn p7_reset_skips_the_pending_call_and_counts_from_now() {
    // Twisted's test_reset.
    let clock = Clock::new();
    let (lc, times) = recorder(&clock);
    let _done = lc.start(Duration::from_secs(2), false).unwrap();
    clock.advance(Duration::from_secs(1));
    lc.reset().unwrap();
    clock.advance(Duration::from_secs(1));
    assert!(times.borrow().is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(*times.borrow(), [Duration::from_secs(3)]);
    clock.advance(Duration::from_secs(2));
    assert_eq!(times.borrow().len(), 2, "every 2 s from the reset on");
    assert_eq!(clock.delayed_calls().len(), 1);
}

#[test]
fn p7_defer_later_gives_the_value_after_the_delay() {
    let clock = Clock::new();
    let seen = watch(defer_later(&clock, Duration::from_secs(3), || "late"));
    clock.advance(Duration::from_secs(2));
    assert!(seen.borrow().is_none());
    clock.advance(Duration::from_secs(1));
    assert!(matches!(*seen.borrow(), Some(Ok("late"))));
}

#[test]
fn p7_defer_later_turns_a_panic_into_a_failure() {
    let clock = Clock::new();
    let seen = watch(defer_later(&clock, MS, || -> u8 { panic!("no value") }));
    clock.advance(MS);
    assert!(matches!(&*seen.borrow(), Some(Err(Failure::Panicked(m))) if m == "no value"));
}

#[test]
fn p7_cancelling_defer_later_cancels_the_timer_and_the_function_never_runs() {
    let clock = Clock::new();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let d = defer_later(&clock, Duration::from_secs(5), move || r.set(true));
    assert_eq!(clock.delayed_calls().len(), 1);
    let seen = watch(d.clone());
    d.cancel();
    assert!(
        clock.delayed_calls().is_empty(),
        "the timer is gone at once"
    );
    clock.advance(Duration::from_secs(10));
    assert!(!ran.get());
    assert!(matches!(*seen.borrow(), Some(Err(Failure::Cancelled))));
}

#[test]
fn p7_runs_on_the_real_reactor_and_its_deferred_stops_the_reactor() {
    let reactor = torsion_reactor::Reactor::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let lc = LoopingCall::new(&reactor, move || {
        c.set(c.get() + 1);
        if c.get() == 5 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let done = watch(lc.start(Duration::from_millis(5), true).unwrap());
    let d = done.clone();
    reactor
        .run_until(|| d.borrow().is_some(), Duration::from_secs(10))
        .expect("the loop ends within the deadline");
    assert_eq!(calls.get(), 5);
    assert!(matches!(*done.borrow(), Some(Ok(()))));
    assert!(reactor.delayed_calls().is_empty());
}

#[test]
fn p7_a_stopped_loop_is_freed_once_its_handles_are_dropped() {
    let clock = Clock::new();
    let (lc, _) = recorder(&clock);
    let _done = lc.start(MS, true).unwrap();
    clock.advance(3 * MS);
    let weak = lc.downgrade();
    lc.stop().unwrap();
    drop(lc);
    assert!(
        weak.upgrade().is_none(),
        "the cancelled timer let go of the loop"
    );
}
