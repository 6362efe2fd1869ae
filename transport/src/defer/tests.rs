use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use super::*;
use crate::{DelayedCall, TimerQueue};

/// A minimal manual clock over the crate's timer queue (the test kit's `Clock` lives above
/// this crate).
struct TestClock {
    now: Rc<Cell<Duration>>,
    queue: TimerQueue,
}

impl TestClock {
    fn new() -> Self {
        let now = Rc::new(Cell::new(Duration::ZERO));
        let n = now.clone();
        TestClock {
            now,
            queue: TimerQueue::new(Rc::new(move || n.get())),
        }
    }
    fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
        while let Some((_, f)) = self.queue.pop_due(self.now.get(), None) {
            f();
        }
        run_soon();
    }
}

impl ReactorTime for TestClock {
    fn seconds(&self) -> f64 {
        self.now.get().as_secs_f64()
    }
    fn call_later_boxed(&self, delay: Duration, f: Box<dyn FnOnce()>) -> DelayedCall {
        self.queue.call_later(delay, f)
    }
    fn delayed_calls(&self) -> Vec<DelayedCall> {
        self.queue.delayed_calls()
    }
}

fn sink<T: 'static>(d: Deferred<T>) -> Rc<RefCell<Option<Result<T, Failure>>>> {
    let out = Rc::new(RefCell::new(None));
    let o = out.clone();
    d.add_both(move |r| {
        *o.borrow_mut() = Some(r);
        Ok(())
    });
    out
}

fn value<T: Clone>(s: &Rc<RefCell<Option<Result<T, Failure>>>>) -> Option<T> {
    s.borrow().as_ref().and_then(|r| r.as_ref().ok().cloned())
}

fn failure<T>(s: &Rc<RefCell<Option<Result<T, Failure>>>>) -> Option<String> {
    s.borrow()
        .as_ref()
        .and_then(|r| r.as_ref().err().map(|f| format!("{f:?}")))
}

#[test]
fn callback_runs_the_chain_from_the_soon_queue_not_inline() {
    let d = Deferred::new();
    let out = sink(d.clone().add_callback(|n: u32| n + 1));
    d.callback(1).unwrap();
    assert!(out.borrow().is_none(), "P1: nothing runs inside callback()");
    run_soon();
    assert_eq!(value(&out), Some(2));
}

#[test]
fn a_second_completion_is_already_called_and_keeps_the_first() {
    let d = Deferred::new();
    let out = sink(d.clone());
    d.callback(1).unwrap();
    assert_eq!(d.callback(2), Err(AlreadyCalled));
    assert_eq!(d.errback("late"), Err(AlreadyCalled));
    run_soon();
    assert_eq!(value(&out), Some(1));
    assert!(d.is_called());
}

#[test]
fn chaining_after_the_result_still_runs_later() {
    let d = Deferred::succeed(5u8);
    let out = sink(d.add_callback(|n| n * 2));
    assert!(out.borrow().is_none());
    run_soon();
    assert_eq!(value(&out), Some(10));
}

#[test]
fn failures_skip_callbacks_and_errbacks_recover() {
    let d: Deferred<u32> = Deferred::new();
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    let out = sink(
        d.clone()
            .add_callback(move |n| {
                c.set(true);
                n
            })
            .add_errback(|f| {
                assert_eq!(f.to_string(), "nope");
                Ok(7)
            }),
    );
    d.errback("nope").unwrap();
    run_soon();
    assert!(!called.get());
    assert_eq!(value(&out), Some(7));
}

#[test]
fn a_panicking_callback_becomes_a_panicked_failure_down_the_chain() {
    let d: Deferred<u32> = Deferred::new();
    let out = sink(
        d.clone()
            .add_callback(|_| -> u32 { panic!("bad callback") }),
    );
    d.callback(1).unwrap();
    run_soon();
    assert_eq!(failure(&out).as_deref(), Some("Panicked(\"bad callback\")"));
}

#[test]
fn chain_waits_for_the_returned_deferred() {
    let inner: Deferred<String> = Deferred::new();
    let i2 = inner.clone();
    let d: Deferred<u32> = Deferred::new();
    let out = sink(d.clone().chain(move |_| i2));
    d.callback(1).unwrap();
    run_soon();
    assert!(out.borrow().is_none());
    inner.callback("done".into()).unwrap();
    run_soon();
    assert_eq!(value(&out).as_deref(), Some("done"));
}

#[test]
fn cancel_without_canceller_fails_with_cancelled() {
    let d: Deferred<u32> = Deferred::new();
    let out = sink(d.clone());
    d.cancel();
    run_soon();
    assert_eq!(failure(&out).as_deref(), Some("Cancelled"));
    // Cancelling again, or completing afterwards, is harmless.
    d.cancel();
    assert_eq!(d.callback(3), Err(AlreadyCalled));
}

#[test]
fn a_canceller_runs_once_and_may_complete_the_deferred() {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let d: Deferred<u32> = Deferred::with_canceller(move |d| {
        r.set(r.get() + 1);
        d.callback(99).unwrap();
    });
    let out = sink(d.clone());
    d.cancel();
    d.cancel();
    run_soon();
    assert_eq!(runs.get(), 1);
    assert_eq!(value(&out), Some(99));
}

#[test]
fn cancelling_a_later_link_cancels_the_source() {
    let cancelled = Rc::new(Cell::new(false));
    let c = cancelled.clone();
    let src: Deferred<u32> = Deferred::with_canceller(move |_| c.set(true));
    let last = src.clone().add_callback(|n| n + 1).add_callback(|n| n * 2);
    let out = sink(last.clone());
    last.cancel();
    assert!(cancelled.get());
    run_soon();
    assert_eq!(failure(&out).as_deref(), Some("Cancelled"));
}

#[test]
fn cancelling_while_waiting_on_an_inner_deferred_cancels_the_inner_one() {
    let inner_cancelled = Rc::new(Cell::new(false));
    let c = inner_cancelled.clone();
    let inner = Deferred::<u32>::with_canceller(move |_| c.set(true));
    let i2 = inner.clone(); // its producer keeps it
    let d: Deferred<u32> = Deferred::new();
    let last = d.clone().chain(move |_| i2);
    let out = sink(last.clone());
    d.callback(1).unwrap();
    run_soon();
    last.cancel();
    assert!(inner_cancelled.get());
    run_soon();
    assert_eq!(failure(&out).as_deref(), Some("Cancelled"));
}

#[test]
fn add_timeout_fails_with_timed_out_and_runs_the_canceller() {
    let clock = TestClock::new();
    let cancelled = Rc::new(Cell::new(false));
    let c = cancelled.clone();
    let d: Deferred<u32> = Deferred::with_canceller(move |_| c.set(true));
    let out = sink(d.clone().add_timeout(&clock, Duration::from_secs(5)));
    clock.advance(Duration::from_secs(4));
    assert!(out.borrow().is_none());
    clock.advance(Duration::from_secs(1));
    assert!(cancelled.get());
    assert_eq!(failure(&out).as_deref(), Some("TimedOut(5s)"));
    assert_eq!(d.callback(1), Err(AlreadyCalled));
}

#[test]
fn the_add_timeout_function_and_deferred_list_constructor_are_the_methods() {
    let clock = TestClock::new();
    let d: Deferred<u32> = Deferred::new();
    let out = sink(add_timeout(&clock, d.clone(), Duration::from_secs(1)));
    clock.advance(Duration::from_secs(1));
    assert_eq!(failure(&out).as_deref(), Some("TimedOut(1s)"));

    let a = Deferred::succeed(1u8);
    let list = sink(DeferredList::new(vec![a]));
    run_soon();
    assert!(matches!(list.borrow().as_ref(), Some(Ok(v)) if v.len() == 1));
}

#[test]
fn a_result_in_time_cancels_the_timeout() {
    let clock = TestClock::new();
    let d: Deferred<u32> = Deferred::new();
    let out = sink(d.clone().add_timeout(&clock, Duration::from_secs(5)));
    d.callback(3).unwrap();
    clock.advance(Duration::ZERO);
    assert_eq!(value(&out), Some(3));
    assert!(clock.delayed_calls().is_empty(), "the timer was cancelled");
}

#[test]
fn a_second_consumer_gets_consumed() {
    let d: Deferred<u32> = Deferred::new();
    let first = sink(d.clone());
    let second = sink(d.clone());
    d.callback(1).unwrap();
    run_soon();
    assert_eq!(value(&first), Some(1));
    assert_eq!(failure(&second).as_deref(), Some("Consumed"));
}

#[test]
fn gather_keeps_order_and_fails_on_the_first_failure() {
    let (a, b, c) = (Deferred::new(), Deferred::new(), Deferred::new());
    let out = sink(gather(vec![a.clone(), b.clone(), c.clone()]));
    c.callback(3).unwrap();
    a.callback(1).unwrap();
    b.callback(2).unwrap();
    run_soon();
    assert_eq!(value(&out), Some(vec![1, 2, 3]));

    let (a, b) = (Deferred::<u8>::new(), Deferred::<u8>::new());
    let out = sink(gather(vec![a.clone(), b.clone()]));
    b.errback("b failed").unwrap();
    a.errback("a failed too").unwrap();
    run_soon();
    assert_eq!(
        out.borrow()
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap_err()
            .to_string(),
        "b failed"
    );
    assert_eq!(value(&sink(gather::<u8>(vec![]))), None);
    run_soon();
}

#[test]
fn deferred_list_gives_every_outcome_and_cancels_members() {
    let (a, b) = (Deferred::<u8>::new(), Deferred::<u8>::new());
    let list = deferred_list(vec![a.clone(), b.clone()]);
    let out = sink(list.clone());
    a.callback(1).unwrap();
    list.cancel();
    run_soon();
    let got = out.borrow_mut().take().unwrap().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(*got[0].as_ref().unwrap(), 1);
    assert!(got[1].as_ref().unwrap_err().is_cancelled());
}

#[test]
fn race_takes_the_first_value_and_cancels_the_rest() {
    let cancelled = Rc::new(Cell::new(false));
    let c = cancelled.clone();
    let a: Deferred<&str> = Deferred::with_canceller(move |_| c.set(true));
    let b: Deferred<&str> = Deferred::new();
    let out = sink(race(vec![a.clone(), b.clone()]));
    b.callback("b").unwrap();
    run_soon();
    assert_eq!(value(&out), Some((1, "b")));
    assert!(cancelled.get());

    let (a, b) = (Deferred::<u8>::new(), Deferred::<u8>::new());
    let out = sink(race(vec![a.clone(), b.clone()]));
    a.errback("a").unwrap();
    run_soon();
    assert!(
        out.borrow().is_none(),
        "one failure is not the end of a race"
    );
    b.errback("b").unwrap();
    run_soon();
    assert_eq!(failure(&out).as_deref(), Some("Error(Message(\"b\"))"));
}

struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn awaiting_takes_the_result_and_completion_wakes_without_polling() {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(counter.clone());
    let mut cx = Context::from_waker(&waker);
    let d: Deferred<u32> = Deferred::new();
    let mut fut = d.clone();
    assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
    d.callback(8).unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "woken once");
    match Pin::new(&mut fut).poll(&mut cx) {
        Poll::Ready(Ok(8)) => {}
        other => panic!("unexpected {other:?}"),
    }
    // Polled again after completion: a value, not a panic.
    assert!(matches!(
        Pin::new(&mut fut).poll(&mut cx),
        Poll::Ready(Err(Failure::Consumed))
    ));
}

#[test]
fn an_abandoned_chain_is_freed() {
    let d: Deferred<u32> = Deferred::new();
    let weak = Rc::downgrade(&d.node);
    let last = d
        .clone()
        .add_callback(|n| n)
        .add_timeout(&TestClock::new(), Duration::from_secs(1));
    let weak_last = Rc::downgrade(&last.node);
    drop(last);
    drop(d);
    assert!(weak.upgrade().is_none());
    assert!(weak_last.upgrade().is_none());
}

#[test]
fn run_soon_batch_leaves_what_the_batch_queued_for_the_next_round() {
    let d: Deferred<u32> = Deferred::new();
    let out = sink(d.clone().add_callback(|n| n).add_callback(|n| n));
    d.callback(1).unwrap();
    assert_eq!(run_soon_batch(), 1);
    assert!(has_soon());
    assert!(out.borrow().is_none());
    run_soon();
    assert_eq!(value(&out), Some(1));
}
