//! The loop: timers (CONTRACT A), startup/shutdown (B), dispatch (C), and the dispatch
//! re-entrancy rules of ARCHITECTURE.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::{Interest, Registry, Token};
use torsion_reactor::{Event, IoStatus, Phase, Reactor, ReactorError, Selectable};
use torsion_transport::{ReactorTime, Reason, TimerError};

use util::{DEADLINE, pipe};

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

// ----- A. timers ---------------------------------------------------------------------

#[test]
fn a3_equal_deadlines_run_in_scheduling_order() {
    let r = Reactor::new().unwrap();
    let l = log();
    for i in 0..20 {
        let l = l.clone();
        r.call_later(Duration::ZERO, move || push(&l, i.to_string()));
    }
    r.iterate(Duration::ZERO).unwrap();
    let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(*l.borrow(), want);
}

#[test]
fn a4_thread_calls_run_before_timers_in_an_iteration() {
    let r = Reactor::new().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    r.call_later(Duration::ZERO, {
        let s = seen.clone();
        move || s.lock().unwrap().push("timer")
    });
    r.thread_handle()
        .call_from_thread(move || s.lock().unwrap().push("thread"))
        .unwrap();
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["thread", "timer"]);
}

#[test]
fn a4_iterate_waits_for_the_next_timer_not_longer() {
    let r = Reactor::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    r.call_later(Duration::from_millis(20), move || f.set(true));
    // One iteration may return before the deadline; a handful must reach it.
    r.run_until(|| fired.get(), DEADLINE).unwrap();
    assert!(r.now() >= Duration::from_millis(20));
}

#[test]
fn a5_call_later_zero_from_timer_runs_next_iteration() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (r2, l2) = (r.clone(), l.clone());
    r.call_later(Duration::ZERO, move || {
        push(&l2, "outer");
        let l3 = l2.clone();
        r2.call_later(Duration::ZERO, move || push(&l3, "inner"));
    });
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(
        *l.borrow(),
        vec!["outer"],
        "the inner call must wait for a later pass"
    );
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(*l.borrow(), vec!["outer", "inner"]);
}

#[test]
fn a5_reset_to_zero_from_timer_runs_next_iteration() {
    let r = Reactor::new().unwrap();
    let ran = Rc::new(Cell::new(0));
    let later = {
        let ran = ran.clone();
        r.call_later(Duration::from_secs(3600), move || ran.set(ran.get() + 1))
    };
    r.call_later(Duration::ZERO, move || later.reset(Duration::ZERO).unwrap());
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(ran.get(), 0);
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(ran.get(), 1);
}

#[test]
fn a6_cancelled_call_never_runs() {
    let r = Reactor::new().unwrap();
    let ran = Rc::new(Cell::new(false));
    let f = ran.clone();
    let c = r.call_later(Duration::ZERO, move || f.set(true));
    c.cancel().unwrap();
    r.iterate(Duration::ZERO).unwrap();
    assert!(!ran.get());
    assert!(r.delayed_calls().is_empty());
}

#[test]
fn a7_call_is_marked_called_before_it_runs() {
    let r = Reactor::new().unwrap();
    let slot: Rc<RefCell<Option<torsion_transport::DelayedCall>>> = Rc::default();
    let got = Rc::new(RefCell::new(None));
    let (s, g) = (slot.clone(), got.clone());
    let c = r.call_later(Duration::ZERO, move || {
        let me = s.borrow().clone().unwrap();
        *g.borrow_mut() = Some((
            me.cancel(),
            me.reset(Duration::ZERO),
            me.delay(Duration::ZERO),
        ));
    });
    *slot.borrow_mut() = Some(c);
    r.iterate(Duration::ZERO).unwrap();
    let (a, b, c) = got.borrow().unwrap();
    assert_eq!(a, Err(TimerError::AlreadyCalled));
    assert_eq!(b, Err(TimerError::AlreadyCalled));
    assert_eq!(c, Err(TimerError::AlreadyCalled));
}

#[test]
fn a7_panicking_call_is_caught_and_the_loop_goes_on() {
    let r = Reactor::new().unwrap();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    r.call_later(Duration::ZERO, || panic!("boom in a timer"));
    r.call_later(Duration::ZERO, move || a.set(true));
    r.iterate(Duration::ZERO).unwrap();
    assert!(after.get(), "the call after the panicking one still ran");
}

#[test]
fn a8_a9_a10_a11_delayed_call_operations_on_the_real_reactor() {
    let r = Reactor::new().unwrap();
    let c = r.call_later(Duration::from_secs(10), || {});
    assert!(c.active());
    let t0 = c.time();
    c.delay(Duration::from_secs(5)).unwrap();
    assert_eq!(c.time(), t0 + Duration::from_secs(5));
    c.reset(Duration::from_secs(1)).unwrap();
    assert!(c.time() < t0);
    assert_eq!(r.delayed_calls().len(), 1);
    c.cancel().unwrap();
    assert_eq!(c.cancel(), Err(TimerError::AlreadyCancelled));
    assert!(!c.active());
    assert!(r.delayed_calls().is_empty());
}

#[test]
fn a12_iterate_does_not_fire_startup() {
    let r = Reactor::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    r.add_system_event_trigger(Phase::During, Event::Startup, move || f.set(true));
    r.iterate(Duration::ZERO).unwrap();
    assert!(!fired.get());
    assert!(!r.running());
}

#[test]
fn a13_call_from_thread_fifo_exactly_once_from_many_threads() {
    let r = Reactor::new().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = r.thread_handle();
            let seen = seen.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let seen = seen.clone();
                    h.call_from_thread(move || seen.lock().unwrap().push((t, i)))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    r.run_until(|| seen.lock().unwrap().len() == 2000, DEADLINE)
        .unwrap();
    let seen = seen.lock().unwrap();
    for t in 0..4 {
        let order: Vec<i32> = seen
            .iter()
            .filter(|(tt, _)| *tt == t)
            .map(|(_, i)| *i)
            .collect();
        assert_eq!(
            order,
            (0..500).collect::<Vec<_>>(),
            "thread {t} out of order"
        );
    }
}

#[test]
fn a13_calls_queued_before_run_run_on_the_first_iteration() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let h = r.thread_handle();
    let r2 = r.clone();
    h.call_from_thread(move || {}).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = order.clone();
    h.call_from_thread(move || o.lock().unwrap().push("thread call"))
        .unwrap();
    let o = order.clone();
    r.call_later(Duration::ZERO, move || {
        o.lock().unwrap().push("timer");
        r2.stop().unwrap();
    });
    r.run().unwrap();
    assert_eq!(*order.lock().unwrap(), vec!["thread call", "timer"]);
}

#[test]
fn a13_call_queued_by_a_thread_call_waits_for_the_next_iteration() {
    let r = Reactor::new().unwrap();
    let h = r.thread_handle();
    let n = Arc::new(Mutex::new(0));
    let (h2, n2) = (h.clone(), n.clone());
    h.call_from_thread(move || {
        *n2.lock().unwrap() += 1;
        let n3 = n2.clone();
        h2.call_from_thread(move || *n3.lock().unwrap() += 10)
            .unwrap();
    })
    .unwrap();
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(*n.lock().unwrap(), 1);
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(*n.lock().unwrap(), 11);
}

#[test]
fn a13_call_from_thread_after_the_reactor_is_gone_is_an_error() {
    let r = Reactor::new().unwrap();
    let h = r.thread_handle();
    drop(r);
    assert!(h.call_from_thread(|| {}).is_err());
}

// ----- B. startup, shutdown ------------------------------------------------------------

#[test]
fn b1_b2_triggers_fire_in_phase_order_fifo_including_added_meanwhile() {
    let r = Reactor::new().unwrap();
    let l = log();
    for (phase, name) in [
        (Phase::After, "after"),
        (Phase::During, "during"),
        (Phase::Before, "before1"),
    ] {
        let l = l.clone();
        r.add_system_event_trigger(phase, Event::Shutdown, move || push(&l, name));
    }
    let (r2, l2) = (r.clone(), l.clone());
    r.add_system_event_trigger(Phase::Before, Event::Shutdown, move || {
        push(&l2, "before2");
        let l3 = l2.clone();
        r2.add_system_event_trigger(Phase::Before, Event::Shutdown, move || push(&l3, "before3"));
    });
    r.add_system_event_trigger(Phase::Before, Event::Shutdown, || {
        panic!("a panicking trigger")
    });
    let removed = {
        let l = l.clone();
        r.add_system_event_trigger(Phase::During, Event::Shutdown, move || push(&l, "removed"))
    };
    r.remove_system_event_trigger(removed).unwrap();
    assert_eq!(
        r.remove_system_event_trigger(removed),
        Err(ReactorError::UnknownTrigger)
    );
    r.fire_system_event(Event::Shutdown);
    assert_eq!(
        *l.borrow(),
        vec!["before1", "before2", "before3", "during", "after"]
    );
    r.fire_system_event(Event::Shutdown);
    assert_eq!(l.borrow().len(), 5, "each trigger runs at most once");
}

#[test]
fn b3_call_when_running_runs_after_startup_in_order_before_any_timer() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let l = log();
    {
        let (l, r2) = (l.clone(), r.clone());
        r.call_later(Duration::ZERO, move || {
            push(&l, "timer");
            r2.stop().unwrap();
        });
    }
    {
        let l = l.clone();
        r.add_system_event_trigger(Phase::During, Event::Startup, move || push(&l, "startup"));
    }
    for name in ["cwr1", "cwr2"] {
        let l = l.clone();
        r.call_when_running(move || push(&l, name));
    }
    let (l2, r2) = (l.clone(), r.clone());
    r.call_when_running(move || {
        // While running, call_when_running runs at once.
        let l3 = l2.clone();
        r2.call_when_running(move || push(&l3, "nested, at once"));
        push(&l2, "cwr3");
    });
    r.run().unwrap();
    assert_eq!(
        *l.borrow(),
        vec![
            "startup",
            "cwr1",
            "cwr2",
            "nested, at once",
            "cwr3",
            "timer"
        ]
    );
}

#[test]
fn b4_stop_only_sets_a_flag_and_errors_when_not_running() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    assert_eq!(r.stop(), Err(ReactorError::NotRunning));
    let l = log();
    {
        let l = l.clone();
        r.add_system_event_trigger(Phase::Before, Event::Shutdown, move || push(&l, "shutdown"));
    }
    let (r2, l2) = (r.clone(), l.clone());
    r.call_later(Duration::ZERO, move || {
        r2.stop().unwrap();
        push(&l2, "after stop, same callback");
        assert_eq!(r2.stop(), Err(ReactorError::NotRunning), "already stopping");
    });
    r.run().unwrap();
    assert_eq!(*l.borrow(), vec!["after stop, same callback", "shutdown"]);
}

#[test]
fn b5_shutdown_flushes_then_disconnects_every_selectable_once_then_during_and_after() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let l = log();
    let mut pipes = Vec::new();
    for i in 0..3 {
        let (tx, rx) = pipe::new().unwrap();
        pipes.push(tx);
        let s = Rc::new(PipeReader::new(rx, l.clone(), format!("p{i}")));
        let t = r.register(s.clone()).unwrap();
        r.add_reader(t);
    }
    // One whose connection_lost panics must not spare the rest.
    let (tx, rx) = pipe::new().unwrap();
    pipes.push(tx);
    let bad = Rc::new(PipeReader::new(rx, l.clone(), "panicker".into()));
    bad.panic_on_lost.set(true);
    r.register(bad).unwrap();
    for (phase, name) in [
        (Phase::Before, "before"),
        (Phase::During, "during"),
        (Phase::After, "after"),
    ] {
        let l = l.clone();
        r.add_system_event_trigger(phase, Event::Shutdown, move || push(&l, name));
    }
    let r2 = r.clone();
    r.call_when_running(move || r2.stop().unwrap());
    r.run().unwrap();
    let got = l.borrow().clone();
    assert_eq!(got.first().map(String::as_str), Some("before"));
    assert_eq!(
        &got[got.len() - 2..],
        &["during".to_string(), "after".to_string()]
    );
    for i in 0..3 {
        let lost = got
            .iter()
            .filter(|s| **s == format!("p{i} lost: connection was lost: the reactor shut down"))
            .count();
        assert_eq!(lost, 1, "{got:?}");
    }
    assert_eq!(r.selectable_count(), 0);
}

#[test]
fn b6_run_after_stop_is_not_restartable_after_crash_runs_again() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let r2 = r.clone();
    r.call_later(Duration::ZERO, move || r2.crash());
    r.run().unwrap();
    assert!(!r.running());
    let r2 = r.clone();
    r.call_later(Duration::ZERO, move || r2.stop().unwrap());
    r.run().unwrap();
    assert_eq!(r.run(), Err(ReactorError::NotRestartable));
}

#[test]
fn run_inside_run_is_refused() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let got = Rc::new(Cell::new(None));
    let (r2, g) = (r.clone(), got.clone());
    r.call_later(Duration::ZERO, move || {
        g.set(Some((r2.run(), r2.iterate(Duration::ZERO))));
        r2.stop().unwrap();
    });
    r.run().unwrap();
    let (a, b) = got.get().unwrap();
    assert_eq!(a, Err(ReactorError::AlreadyRunning));
    assert_eq!(b, Err(ReactorError::AlreadyRunning));
}

#[test]
fn stop_inside_timer_stops_the_loop() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let later = Rc::new(Cell::new(false));
    let r2 = r.clone();
    r.call_later(Duration::ZERO, move || r2.stop().unwrap());
    let l = later.clone();
    r.call_later(Duration::from_secs(3600), move || l.set(true));
    r.run().unwrap();
    assert!(!later.get());
}

#[test]
fn run_until_times_out_instead_of_hanging() {
    let r = Reactor::new().unwrap();
    assert_eq!(
        r.run_until(|| false, Duration::from_millis(30)),
        Err(ReactorError::TimedOut)
    );
}

// ----- C. dispatch -----------------------------------------------------------------

/// A selectable around a pipe's read end that records what happens to it.
struct PipeReader {
    rx: RefCell<pipe::Receiver>,
    log: Log,
    name: String,
    reads: Cell<usize>,
    budget_forever: Cell<bool>,
    panic_on_read: Cell<bool>,
    panic_on_lost: Cell<bool>,
    on_read: RefCell<Option<Box<dyn FnMut()>>>,
}

impl PipeReader {
    fn new(rx: pipe::Receiver, log: Log, name: String) -> Self {
        PipeReader {
            rx: RefCell::new(rx),
            log,
            name,
            reads: Cell::new(0),
            budget_forever: Cell::new(false),
            panic_on_read: Cell::new(false),
            panic_on_lost: Cell::new(false),
            on_read: RefCell::new(None),
        }
    }
}

impl Selectable for PipeReader {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut *self.rx.borrow_mut(), token, Interest::READABLE)
    }
    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut *self.rx.borrow_mut())
    }
    fn do_read(&self) -> Result<IoStatus, Reason> {
        self.reads.set(self.reads.get() + 1);
        if self.panic_on_read.get() {
            panic!("boom in do_read");
        }
        let mut cb = self.on_read.borrow_mut();
        if let Some(cb) = cb.as_mut() {
            cb();
        }
        if self.budget_forever.get() {
            return Ok(IoStatus::More);
        }
        let mut buf = [0u8; 4096];
        loop {
            match self.rx.borrow_mut().read(&mut buf) {
                Ok(0) => return Err(Reason::ConnectionDone),
                Ok(n) => push(&self.log, format!("{} read {n}", self.name)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(IoStatus::Blocked),
                Err(e) => return Err(Reason::lost(e)),
            }
        }
    }
    fn connection_lost(&self, reason: Reason) {
        push(&self.log, format!("{} lost: {reason}", self.name));
        if self.panic_on_lost.get() {
            panic!("boom in connection_lost");
        }
    }
}

fn reader(r: &Reactor, l: &Log, name: &str) -> (Rc<PipeReader>, Token, pipe::Sender) {
    let (tx, rx) = pipe::new().unwrap();
    let s = Rc::new(PipeReader::new(rx, l.clone(), name.into()));
    let t = r.register(s.clone()).unwrap();
    (s, t, tx)
}

#[test]
fn c1_add_and_remove_are_idempotent() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (_s, t, _tx) = reader(&r, &l, "a");
    r.remove_reader(t); // not reading: no-op
    r.add_reader(t);
    r.add_reader(t);
    assert_eq!(r.reader_count(), 1);
    r.remove_reader(t);
    r.remove_reader(t);
    assert_eq!(r.reader_count(), 0);
    assert!(r.remove(t).is_some());
    assert!(
        r.remove(t).is_none(),
        "removing what is not there is a no-op"
    );
    r.add_reader(t); // stale token: no-op
    assert_eq!(r.reader_count(), 0);
}

#[test]
fn c2_clean_eof_disconnects_with_connection_done_once() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (_s, t, mut tx) = reader(&r, &l, "a");
    r.add_reader(t);
    tx.write_all(b"hello").unwrap();
    drop(tx);
    r.run_until(|| l.borrow().iter().any(|s| s.contains("lost")), DEADLINE)
        .unwrap();
    assert_eq!(
        *l.borrow(),
        vec!["a read 5", "a lost: connection was closed cleanly"],
        "data is delivered before the loss"
    );
    assert!(!r.contains(t));
}

#[test]
fn c2_panic_in_do_read_disconnects_that_selectable_only() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (bad, tb, mut txb) = reader(&r, &l, "bad");
    let (_good, tg, mut txg) = reader(&r, &l, "good");
    bad.panic_on_read.set(true);
    r.add_reader(tb);
    r.add_reader(tg);
    txb.write_all(b"x").unwrap();
    txg.write_all(b"y").unwrap();
    r.run_until(
        || {
            let l = l.borrow();
            l.iter().any(|s| s.starts_with("bad lost")) && l.iter().any(|s| s == "good read 1")
        },
        DEADLINE,
    )
    .unwrap();
    assert_eq!(
        l.borrow()
            .iter()
            .filter(|s| s.starts_with("bad lost"))
            .count(),
        1
    );
    assert!(!r.contains(tb));
    assert!(r.contains(tg));
}

#[test]
fn c3_stale_token_after_slot_reuse_reaches_nobody() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (_a, ta, _txa) = reader(&r, &l, "a");
    r.remove(ta);
    let (_b, tb, _txb) = reader(&r, &l, "b");
    assert_ne!(ta, tb, "a reused slot gets a new generation");
    r.add_reader(ta);
    assert!(
        !r.is_reading(tb),
        "the old token must not reach the new selectable"
    );
}

#[test]
fn c4_a_busy_descriptor_cannot_starve_the_others() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (busy, tbusy, _txbusy) = reader(&r, &l, "busy");
    busy.budget_forever.set(true);
    let (_quiet, tq, mut txq) = reader(&r, &l, "quiet");
    r.add_reader(tbusy);
    r.add_reader(tq);
    txq.write_all(b"ping").unwrap();
    r.run_until(|| l.borrow().iter().any(|s| s == "quiet read 4"), DEADLINE)
        .unwrap();
    assert!(busy.reads.get() >= 1);
    let busy_reads = busy.reads.get();
    r.iterate(Duration::ZERO).unwrap();
    assert!(
        busy.reads.get() > busy_reads,
        "the busy one is re-dispatched without a new event"
    );
}

#[test]
fn remove_self_in_callback() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (s, t, mut tx) = reader(&r, &l, "a");
    let r2 = r.clone();
    *s.on_read.borrow_mut() = Some(Box::new(move || {
        r2.remove(t);
    }));
    r.add_reader(t);
    tx.write_all(b"1").unwrap();
    r.run_until(|| s.reads.get() == 1, DEADLINE).unwrap();
    tx.write_all(b"2").unwrap();
    for _ in 0..5 {
        r.iterate(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(
        s.reads.get(),
        1,
        "a removed selectable gets no further events"
    );
    assert!(
        !l.borrow().iter().any(|s| s.contains("lost")),
        "remove is not a disconnect"
    );
}

#[test]
fn remove_other_in_callback_same_batch() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (a, ta, mut txa) = reader(&r, &l, "a");
    let (b, tb, mut txb) = reader(&r, &l, "b");
    // Whichever runs first removes the other; the other must then not run at all.
    let r2 = r.clone();
    *a.on_read.borrow_mut() = Some(Box::new(move || {
        r2.remove(tb);
    }));
    let r3 = r.clone();
    *b.on_read.borrow_mut() = Some(Box::new(move || {
        r3.remove(ta);
    }));
    r.add_reader(ta);
    r.add_reader(tb);
    txa.write_all(b"1").unwrap();
    txb.write_all(b"1").unwrap();
    r.run_until(|| a.reads.get() + b.reads.get() >= 1, DEADLINE)
        .unwrap();
    for _ in 0..5 {
        r.iterate(Duration::from_millis(1)).unwrap();
    }
    assert_eq!(a.reads.get() + b.reads.get(), 1, "exactly one ran");
}

#[test]
fn disconnect_later_delivers_from_the_loop_not_inside_the_call() {
    let r = Reactor::new().unwrap();
    let l = log();
    let (_s, t, _tx) = reader(&r, &l, "a");
    r.disconnect_later(t, Reason::ConnectionAborted);
    assert!(l.borrow().is_empty(), "nothing synchronously");
    r.iterate(Duration::ZERO).unwrap();
    assert_eq!(*l.borrow(), vec!["a lost: connection was aborted locally"]);
}

#[test]
fn extension_is_one_instance_per_reactor() {
    let a = Reactor::new().unwrap();
    let b = Reactor::new().unwrap();
    let x = a.extension(|| Cell::new(1u32));
    x.set(7);
    assert_eq!(
        a.extension(|| Cell::new(0u32)).get(),
        7,
        "same instance on the same reactor"
    );
    assert_eq!(
        b.extension(|| Cell::new(3u32)).get(),
        3,
        "another reactor has its own"
    );
}

/// `Poll::poll` may return before its timeout with no events (mio on Windows does; so does
/// any wake-up): the loop re-reads the clock, so a timer never fires early, and `run`
/// still fires it on time.
#[test]
fn a4_early_poll_returns_do_not_fire_timers_early() {
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let handle = r.thread_handle();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let waker = std::thread::spawn(move || {
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            handle.wake();
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let start = std::time::Instant::now();
    let fired = Rc::new(Cell::new(None));
    let (f, r2) = (fired.clone(), r.clone());
    r.call_later(Duration::from_millis(80), move || {
        f.set(Some(start.elapsed()));
        r2.stop().unwrap();
    });
    r.run().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    waker.join().unwrap();
    let at = fired.get().expect("the timer fired");
    assert!(at >= Duration::from_millis(80), "fired early, at {at:?}");
}

/// Half-closeable: survives a clean EOF and records its writes.
struct HalfCloser {
    rx: RefCell<pipe::Receiver>,
    writes: Cell<usize>,
}

impl Selectable for HalfCloser {
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(&mut *self.rx.borrow_mut(), token, Interest::READABLE)
    }
    fn deregister(&self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut *self.rx.borrow_mut())
    }
    fn do_read(&self) -> Result<IoStatus, Reason> {
        let mut buf = [0u8; 64];
        match self.rx.borrow_mut().read(&mut buf) {
            Ok(0) => Err(Reason::ConnectionDone),
            _ => Ok(IoStatus::Blocked),
        }
    }
    fn do_write(&self) -> Result<IoStatus, Reason> {
        self.writes.set(self.writes.get() + 1);
        Ok(IoStatus::Blocked)
    }
    fn read_connection_lost(&self) -> bool {
        true
    }
    fn connection_lost(&self, _reason: Reason) {}
}

#[test]
fn c2_half_close_eof_still_runs_the_pending_write_of_the_same_dispatch() {
    // Regression: the write half of a dispatch was skipped when the read half hit a clean
    // EOF on a half-closeable selectable, and with the writable edge consumed, queued
    // output then waited forever (seen as a stalled inetd after the client's FIN).
    let r = Reactor::new().unwrap();
    let (tx, rx) = pipe::new().unwrap();
    drop(tx);
    let s = Rc::new(HalfCloser {
        rx: RefCell::new(rx),
        writes: Cell::new(0),
    });
    let t = r.register(s.clone()).unwrap();
    r.add_reader(t);
    r.add_writer(t);
    r.iterate(Duration::ZERO).unwrap();
    assert!(r.contains(t), "half-closed, still registered");
    assert!(!r.is_reading(t));
    assert_eq!(s.writes.get(), 1, "the write ran in the same dispatch");
}

#[test]
fn b3_b4_reactor_core_lets_generic_code_run_on_the_real_reactor() {
    use torsion_transport::{ReactorCore, ReactorStateError};
    fn stop_when_started<R: ReactorCore + Clone + 'static>(reactor: &R, log: Log) {
        let r = reactor.clone();
        reactor.call_when_running(move || {
            push(&log, "running");
            push(
                &log,
                if r.stop().is_ok() {
                    "stopped"
                } else {
                    "stop failed"
                },
            );
        });
    }
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let l = log();
    stop_when_started(&r, l.clone());
    assert_eq!(ReactorCore::stop(&r), Err(ReactorStateError::NotRunning));
    r.run().unwrap();
    assert_eq!(*l.borrow(), ["running", "stopped"]);
}

#[test]
fn a13_call_from_thread_with_reaches_per_reactor_state() {
    #[derive(Default)]
    struct Seen(Cell<u32>);
    let r = Reactor::new().unwrap();
    let handle = r.thread_handle();
    std::thread::spawn(move || {
        for _ in 0..3 {
            handle
                .call_from_thread_with(|reactor| {
                    let seen = reactor.extension(Seen::default);
                    seen.0.set(seen.0.get() + 1);
                })
                .unwrap();
        }
    })
    .join()
    .unwrap();
    let seen = r.extension(Seen::default);
    r.run_until(|| seen.0.get() == 3, Duration::from_secs(5))
        .unwrap();
}
