//! The executor: spawn_local, block_on, wakes, budget, abort, panics, shutdown, time
//! (CONTRACT P4, P5).

mod util;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use torsion_reactor::executor::{
    DeferredFromFuture, JoinError, LocalExecutor, ReactorTimeExt, TASK_BUDGET,
};
use torsion_reactor::{Reactor, ReactorError};
use torsion_testing::Clock;
use torsion_transport::defer::{Deferred, Failure};

use util::DEADLINE;

/// Counts drops: a task's future holds one, so its destructor is observable.
struct DropCounter(Rc<Cell<usize>>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

/// A future pending once (it wakes itself), then ready.
fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

fn iterate_until(reactor: &Reactor, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "deadline passed");
        reactor.iterate(Duration::from_millis(50)).unwrap();
    }
}

#[test]
fn spawn_local_runs_from_the_loop_not_inside_spawn() {
    let reactor = Reactor::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let handle = reactor.spawn_local(async move {
        r.set(true);
        7
    });
    assert!(!ran.get(), "polled inside spawn_local");
    assert_eq!(reactor.block_on(handle).unwrap(), Ok(7));
    assert!(ran.get());
    assert_eq!(reactor.task_count(), 0);
}

#[test]
fn p4_n_wakes_from_another_thread_poll_once_and_never_inline() {
    let reactor = Reactor::new().unwrap();
    let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
    let polls = Rc::new(Cell::new(0));
    let (s, p) = (slot.clone(), polls.clone());
    let _task = reactor.spawn_local(poll_fn(move |cx| {
        p.set(p.get() + 1);
        *s.lock().unwrap() = Some(cx.waker().clone());
        Poll::<()>::Pending
    }));
    iterate_until(&reactor, || polls.get() == 1);
    let waker = slot.lock().unwrap().clone().unwrap();
    // A wake on the loop's thread only queues.
    waker.wake_by_ref();
    assert_eq!(polls.get(), 1, "wake polled inline");
    // 1000 wakes from another thread while the loop is not iterating: one more poll.
    let w = waker.clone();
    std::thread::spawn(move || {
        for _ in 0..1000 {
            w.wake_by_ref();
        }
    })
    .join()
    .unwrap();
    assert_eq!(polls.get(), 1);
    // The other thread's wake woke the poller: this iterate does not wait its timeout.
    let before = Instant::now();
    reactor.iterate(Duration::from_secs(5)).unwrap();
    assert!(before.elapsed() < Duration::from_secs(4));
    assert_eq!(polls.get(), 2, "N wakes must make exactly one poll");
    // Wakes from a thread while the loop waits in its poll are not lost either.
    let w = waker.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        w.wake();
    });
    iterate_until(&reactor, || polls.get() == 3);
    t.join().unwrap();
    drop(waker);
}

#[test]
fn p4_the_budget_limits_polls_per_iteration() {
    let reactor = Reactor::new().unwrap();
    let n = 2 * TASK_BUDGET + 1;
    let done = Rc::new(Cell::new(0));
    for _ in 0..n {
        let d = done.clone();
        drop(reactor.spawn_local(async move {
            d.set(d.get() + 1);
        }));
    }
    assert_eq!(reactor.next_timeout(), Some(Duration::ZERO));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(done.get(), TASK_BUDGET);
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(done.get(), 2 * TASK_BUDGET);
    reactor.iterate(Duration::from_secs(5)).unwrap();
    assert_eq!(done.get(), n);
    assert_eq!(reactor.task_polls(), n as u64);
}

#[test]
fn p5_abort_drops_the_future_at_the_next_turn() {
    let reactor = Reactor::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let counter = DropCounter(drops.clone());
    let handle = reactor.spawn_local(async move {
        let _c = counter;
        std::future::pending::<()>().await;
    });
    reactor.iterate(Duration::ZERO).unwrap();
    handle.abort();
    assert_eq!(drops.get(), 0, "abort dropped the future inside the call");
    assert_eq!(reactor.block_on(handle).unwrap(), Err(JoinError::Aborted));
    assert_eq!(drops.get(), 1);
    assert_eq!(reactor.task_count(), 0);
}

#[test]
fn p5_a_panicking_task_gives_join_error_and_the_loop_goes_on() {
    let reactor = Reactor::new().unwrap();
    let bad = reactor.spawn_local(async {
        panic!("task boom");
    });
    let good = reactor.spawn_local(async { 1 });
    let r = reactor.clone();
    let (bad, good) = reactor
        .block_on(async move {
            r.sleep(Duration::from_millis(1)).await;
            (bad.await, good.await)
        })
        .unwrap();
    let err = bad.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("task boom"), "{err}");
    assert_eq!(good, Ok(1));
}

#[test]
fn dropping_a_join_handle_detaches_the_task() {
    let reactor = Reactor::new().unwrap();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let r = reactor.clone();
    drop(reactor.spawn_local(async move {
        r.sleep(Duration::from_millis(2)).await;
        d.set(true);
    }));
    iterate_until(&reactor, || done.get());
}

#[test]
fn shutdown_drops_pending_tasks_and_their_destructors_run() {
    let reactor = Reactor::new().unwrap();
    reactor.set_install_signal_handlers(false);
    let drops = Rc::new(Cell::new(0));
    let mut handles = Vec::new();
    for _ in 0..10 {
        let c = DropCounter(drops.clone());
        // Each task holds the reactor: a cycle only shutdown can break.
        let r = reactor.clone();
        handles.push(reactor.spawn_local(async move {
            let _c = c;
            r.sleep(Duration::from_secs(3600)).await;
        }));
    }
    let r = reactor.clone();
    reactor.call_later(Duration::from_millis(5), move || r.stop().unwrap());
    reactor.run().unwrap();
    assert_eq!(drops.get(), 10);
    assert_eq!(reactor.task_count(), 0);
    for h in handles {
        assert_eq!(h.try_take().unwrap(), Err(JoinError::Shutdown));
    }
    let weak = reactor.downgrade();
    drop(reactor);
    assert!(weak.upgrade().is_none(), "tasks kept the reactor alive");
}

#[test]
fn block_on_refuses_inside_the_loop_and_reports_a_stop() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    let inner = reactor
        .block_on(async move { r.block_on(async {}).map(drop) })
        .unwrap();
    assert_eq!(inner, Err(ReactorError::AlreadyRunning));
    // From block_on's own future too (it is inside the loop), and iterate as well.
    let r = reactor.clone();
    let nested = reactor
        .block_on(async move { (r.block_on(async {}).map(drop), r.iterate(Duration::ZERO)) })
        .unwrap();
    assert_eq!(
        nested,
        (
            Err(ReactorError::AlreadyRunning),
            Err(ReactorError::AlreadyRunning)
        )
    );

    let r = reactor.clone();
    reactor.call_later(Duration::from_millis(1), move || r.stop().unwrap());
    let stopped = reactor.block_on(std::future::pending::<()>());
    assert_eq!(stopped, Err(ReactorError::Stopped));
    assert_eq!(
        reactor.block_on(async {}),
        Err(ReactorError::NotRestartable)
    );
}

#[test]
fn sleep_and_timeout_on_the_reactor() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    let (slept, short, long) = reactor
        .block_on(async move {
            let start = r.now();
            r.sleep(Duration::from_millis(20)).await;
            let slept = r.now() - start;
            let short = r
                .timeout(Duration::from_millis(5), r.sleep(Duration::from_secs(60)))
                .await;
            let long = r.timeout(Duration::from_secs(60), async { 3 }).await;
            (slept, short, long)
        })
        .unwrap();
    assert!(slept >= Duration::from_millis(20), "{slept:?}");
    assert!(short.is_err());
    assert_eq!(long, Ok(3));
    assert!(reactor.delayed_calls_empty());
}

trait DelayedEmpty {
    fn delayed_calls_empty(&self) -> bool;
}
impl DelayedEmpty for Reactor {
    fn delayed_calls_empty(&self) -> bool {
        use torsion_transport::ReactorTime;
        self.delayed_calls().is_empty()
    }
}

#[test]
fn clock_driven_sleep_and_timeout_need_no_real_waiting() {
    let clock = Clock::new();
    let ex = LocalExecutor::new();
    let c = clock.clone();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let task = ex.spawn(async move {
        c.sleep(Duration::from_secs(10)).await;
        l.borrow_mut().push("slept 10s");
        let r = c
            .timeout(Duration::from_secs(5), c.sleep(Duration::from_secs(100)))
            .await;
        l.borrow_mut().push(if r.is_err() {
            "timed out"
        } else {
            "no timeout"
        });
        c.seconds_now()
    });
    let start = Instant::now();
    ex.run_until_stalled();
    assert!(log.borrow().is_empty());
    clock.advance(Duration::from_secs(9));
    ex.run_until_stalled();
    assert!(log.borrow().is_empty());
    clock.advance(Duration::from_secs(1));
    ex.run_until_stalled();
    assert_eq!(*log.borrow(), ["slept 10s"]);
    clock.advance(Duration::from_secs(5));
    ex.run_until_stalled();
    assert_eq!(*log.borrow(), ["slept 10s", "timed out"]);
    assert_eq!(task.try_take().unwrap(), Ok(15.0));
    assert!(start.elapsed() < Duration::from_secs(1));
    // The timed-out sleep cancelled its timer.
    assert!(torsion_transport::ReactorTime::delayed_calls(&clock).is_empty());
}

trait SecondsNow {
    fn seconds_now(&self) -> f64;
}
impl SecondsNow for Clock {
    fn seconds_now(&self) -> f64 {
        torsion_transport::ReactorTime::seconds(self)
    }
}

#[test]
fn deferred_from_future_fires_fails_and_cancels() {
    let reactor = Reactor::new().unwrap();
    let ok = Deferred::from_future(&reactor, async { Ok(5) });
    assert_eq!(reactor.block_on(ok).unwrap().unwrap(), 5);

    let failed: Deferred<u8> =
        Deferred::from_future(&reactor, async { Err(Failure::msg("no luck")) });
    let f = reactor.block_on(failed).unwrap().unwrap_err();
    assert_eq!(f.to_string(), "no luck");

    let panicked: Deferred<u8> = Deferred::from_future(&reactor, async { panic!("inside") });
    let f = reactor.block_on(panicked).unwrap().unwrap_err();
    assert!(
        matches!(f, Failure::Panicked(ref m) if m.contains("inside")),
        "{f}"
    );

    let drops = Rc::new(Cell::new(0));
    let c = DropCounter(drops.clone());
    let forever: Deferred<u8> = Deferred::from_future(&reactor, async move {
        let _c = c;
        std::future::pending::<Result<u8, Failure>>().await
    });
    reactor.iterate(Duration::ZERO).unwrap();
    forever.cancel();
    let f = reactor.block_on(forever).unwrap().unwrap_err();
    assert!(f.is_cancelled(), "{f}");
    // The task's future is dropped on its next turn.
    iterate_until(&reactor, || drops.get() == 1 && reactor.task_count() == 0);
}

#[test]
fn a_yielding_task_does_not_starve_timers() {
    let reactor = Reactor::new().unwrap();
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let spins = reactor.spawn_local(async move {
        let mut n = 0u64;
        while !s.get() {
            yield_now().await;
            n += 1;
        }
        n
    });
    let s = stop.clone();
    reactor.call_later(Duration::from_millis(10), move || s.set(true));
    let n = reactor.block_on(spins).unwrap().unwrap();
    assert!(n > 0);
}

#[test]
fn async_code_generic_over_reactor_time_runs_on_memory_reactor() {
    use torsion_testing::MemoryReactor;
    use torsion_transport::ReactorTime;

    /// Application code written against `ReactorTime`: a retry loop with a deadline.
    async fn poll_until_ready<C: ReactorTime>(clock: &C, ready_at: f64) -> Result<u32, ()> {
        let mut tries = 0;
        clock
            .timeout(Duration::from_secs(30), async {
                while clock.seconds() < ready_at {
                    tries += 1;
                    clock.sleep(Duration::from_secs(5)).await;
                }
            })
            .await
            .map_err(drop)?;
        Ok(tries)
    }

    let reactor = Rc::new(MemoryReactor::new());
    let ex = LocalExecutor::new();
    let (r1, r2) = (reactor.clone(), reactor.clone());
    let ok = ex.spawn(async move { poll_until_ready(&*r1, 12.0).await });
    let late = ex.spawn(async move { poll_until_ready(&*r2, 100.0).await });
    ex.run_until_stalled();
    for _ in 0..6 {
        reactor.clock().advance(Duration::from_secs(5));
        ex.run_until_stalled();
    }
    assert_eq!(ok.try_take().unwrap().unwrap(), Ok(3));
    assert_eq!(late.try_take().unwrap().unwrap(), Err(()));
    assert_eq!(ex.task_count(), 0);
}

#[test]
fn drop_tasks_breaks_the_cycle_of_a_reactor_never_shut_down() {
    let reactor = Reactor::new().unwrap();
    let drops = Rc::new(Cell::new(0));
    let c = DropCounter(drops.clone());
    let r = reactor.clone();
    let handle = reactor.spawn_local(async move {
        let _c = c;
        loop {
            r.sleep(Duration::from_secs(3600)).await;
        }
    });
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(reactor.drop_tasks(), 1);
    assert_eq!(drops.get(), 1);
    assert_eq!(handle.try_take().unwrap(), Err(JoinError::Shutdown));
    let weak = reactor.downgrade();
    drop(reactor);
    assert!(weak.upgrade().is_none());
}

#[test]
fn block_on_reports_a_crash_and_the_reactor_can_run_again() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    reactor.call_later(Duration::from_millis(1), move || r.crash());
    assert_eq!(
        reactor.block_on(std::future::pending::<()>()),
        Err(ReactorError::Crashed)
    );
    assert_eq!(reactor.block_on(async { 5 }), Ok(5));
}
