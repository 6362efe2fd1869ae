//! CONTRACT O4: `Clock`. (The generic timer contract runs against `Clock` in
//! `contract_loopback.rs`.)

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use torsion_testing::Clock;
use torsion_transport::ReactorTime;

const S: Duration = Duration::from_secs(1);

#[test]
fn o4_seconds_starts_at_zero_and_follows_advance() {
    let clock = Clock::new();
    assert_eq!(clock.seconds(), 0.0);
    clock.advance(Duration::from_millis(1500));
    assert_eq!(clock.seconds(), 1.5);
    assert_eq!(clock.now(), Duration::from_millis(1500));
}

#[test]
fn o4_equal_times_run_fifo() {
    let clock = Clock::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..10 {
        let order = order.clone();
        clock.call_later(S, move || order.borrow_mut().push(i));
    }
    clock.advance(S);
    assert_eq!(*order.borrow(), (0..10).collect::<Vec<_>>());
}

#[test]
fn o4_clock_advance_runs_calls_that_become_due() {
    let clock = Clock::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (c, l) = (clock.clone(), log.clone());
    clock.call_later(S, move || {
        l.borrow_mut().push("first");
        let l2 = l.clone();
        let c2 = c.clone();
        c.call_later(Duration::ZERO, move || {
            l2.borrow_mut().push("zero from first");
            let l3 = l2.clone();
            c2.call_later(S, move || l3.borrow_mut().push("a second later"));
        });
    });
    clock.advance(S);
    assert_eq!(*log.borrow(), vec!["first", "zero from first"]);
    assert_eq!(clock.delayed_calls().len(), 1, "not due yet");
    clock.advance(S);
    assert_eq!(log.borrow().len(), 3);
}

#[test]
fn o4_advance_runs_only_what_is_due() {
    let clock = Clock::new();
    let ran = Rc::new(Cell::new(0));
    for secs in [1, 2, 3] {
        let ran = ran.clone();
        clock.call_later(secs * S, move || ran.set(ran.get() + 1));
    }
    clock.advance(2 * S);
    assert_eq!(ran.get(), 2);
    assert_eq!(clock.delayed_calls().len(), 1);
    assert_eq!(clock.delayed_calls()[0].time(), 3 * S);
}

#[test]
fn o4_pump_advances_step_by_step() {
    let clock = Clock::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    for secs in [1, 3] {
        let (seen, c) = (seen.clone(), clock.clone());
        clock.call_later(secs * S, move || seen.borrow_mut().push(c.seconds()));
    }
    clock.pump(&[S, S, S]);
    assert_eq!(
        *seen.borrow(),
        vec![1.0, 3.0],
        "each call sees the time of its step"
    );
    assert_eq!(clock.seconds(), 3.0);
}

#[test]
#[should_panic(expected = "boom from a timer")]
fn o4_a_panic_in_a_call_propagates() {
    let clock = Clock::new();
    clock.call_later(S, || panic!("boom from a timer"));
    clock.advance(S);
}

#[test]
fn o4_cancel_and_reset_behave_as_on_the_reactor() {
    let clock = Clock::new();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let call = clock.call_later(10 * S, move || r.set(true));
    clock.advance(S);
    call.reset(S).unwrap();
    assert_eq!(call.time(), 2 * S);
    clock.advance(S);
    assert!(ran.get());
    assert_eq!(clock.timer_queue().heap_len(), 0, "the stale entry is gone");
}

#[test]
fn advance_runs_deferred_continuations_and_timeouts_without_sleeping() {
    use torsion_transport::defer::{Deferred, Failure};

    let clock = Clock::new();
    let out: Rc<RefCell<Vec<String>>> = Rc::new(RefCell::new(Vec::new()));
    let d: Deferred<u32> = Deferred::new();
    let o = out.clone();
    d.clone()
        .add_callback(move |v| o.borrow_mut().push(format!("value {v}")));
    d.callback(3).unwrap();
    assert!(out.borrow().is_empty(), "P1: not inside callback()");
    clock.advance(Duration::ZERO);
    assert_eq!(*out.borrow(), ["value 3"]);

    let slow: Deferred<u32> = Deferred::new();
    let o = out.clone();
    slow.clone()
        .add_timeout(&clock, Duration::from_secs(30))
        .add_both(move |r| {
            o.borrow_mut().push(match r {
                Err(Failure::TimedOut(d)) => format!("timed out after {}s", d.as_secs()),
                other => format!("unexpected {other:?}"),
            });
            Ok(())
        });
    clock.advance(Duration::from_secs(29));
    assert_eq!(out.borrow().len(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(out.borrow()[1], "timed out after 30s");
}
