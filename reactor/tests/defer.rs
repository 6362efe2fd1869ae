//! Deferreds on the reactor: continuations run from the loop (ARCHITECTURE rule 6, CONTRACT
//! P1), never inside the completing call, and a pending continuation keeps the loop from
//! blocking.

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_reactor::Reactor;
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{Consumer, Transport};

use util::{DEADLINE, Recorder, shared, start_pair, tcp_sockets};

fn run_until(r: &Reactor, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < end, "deadline passed");
        r.iterate(Duration::from_millis(10)).unwrap();
    }
}

#[test]
fn p1_callback_inside_data_received_continues_after_it_returns() {
    let r = Reactor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::<&str>::new()));
    let in_data = Rc::new(Cell::new(false));
    let d: Deferred<Vec<u8>> = Deferred::new();
    let transport: Rc<RefCell<Option<Rc<dyn Transport>>>> = Rc::new(RefCell::new(None));

    let (o, busy, t) = (order.clone(), in_data.clone(), transport.clone());
    d.clone().add_callback(move |data| {
        assert!(!busy.get(), "the continuation ran inside data_received");
        o.borrow_mut().push("continuation");
        if let Some(t) = t.borrow().as_ref() {
            t.write(&data);
        }
    });

    let (o, busy, dd, t) = (order.clone(), in_data.clone(), d.clone(), transport.clone());
    let server_log = shared();
    let server = Recorder::new(&server_log).on_data(move |tr, data, _| {
        *t.borrow_mut() = Some(tr.clone());
        busy.set(true);
        let _ = dd.callback(data.to_vec());
        o.borrow_mut().push("data_received returns");
        busy.set(false);
    });
    let client_log = shared();
    let (c, s) = tcp_sockets();
    let (tc, _ts) = start_pair(&r, c, s, Recorder::new(&client_log).boxed(), server.boxed());
    tc.write(b"ping");
    run_until(&r, || client_log.borrow().data == b"ping");
    drop(tc);
    assert_eq!(*order.borrow(), ["data_received returns", "continuation"]);
}

#[test]
fn p1_a_queued_continuation_keeps_iterate_from_blocking() {
    let r = Reactor::new().unwrap();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let d: Deferred<u32> = Deferred::new();
    // Two links: the first runs at the start of the iteration and queues the second, which
    // must not wait behind a blocking poll.
    d.clone()
        .add_callback(|v| v + 1)
        .add_callback(move |v| g.set(v));
    d.callback(4).unwrap();
    let start = Instant::now();
    r.iterate(Duration::from_secs(30)).unwrap();
    assert_eq!(got.get(), 5);
    assert!(start.elapsed() < Duration::from_secs(10), "iterate blocked");
}

#[test]
fn add_timeout_on_the_reactor_fails_with_timed_out() {
    let r = Reactor::new().unwrap();
    let out: Rc<RefCell<Option<Result<u32, Failure>>>> = Rc::new(RefCell::new(None));
    let o = out.clone();
    let d: Deferred<u32> = Deferred::new();
    d.clone()
        .add_timeout(&r, Duration::from_millis(20))
        .add_both(move |res| {
            *o.borrow_mut() = Some(res);
            Ok(())
        });
    run_until(&r, || out.borrow().is_some());
    assert!(matches!(*out.borrow(), Some(Err(Failure::TimedOut(_)))));
    assert!(d.is_called(), "the source was cancelled");
}

#[test]
fn p1_a_timer_scheduled_by_a_continuation_bounds_the_next_poll() {
    // No timer exists when the iteration starts; the continuation schedules the first one.
    // The poll of that same iteration must wake for it, not block on the long timeout.
    let r = Reactor::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let (f, r2) = (fired.clone(), r.clone());
    let d: Deferred<()> = Deferred::new();
    d.clone().add_callback(move |()| {
        let f = f.clone();
        r2.call_later(Duration::from_millis(5), move || f.set(true));
    });
    d.callback(()).unwrap();
    let start = Instant::now();
    r.iterate(Duration::from_secs(30)).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the poll ignored the new timer"
    );
    run_until(&r, || fired.get());
}
