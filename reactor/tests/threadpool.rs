//! The reactor's thread pool and name resolution (CONTRACT Q6, Q7).

mod util;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use torsion_reactor::{DEFAULT_THREAD_POOL_SIZE, Reactor};
use torsion_transport::defer::{Deferred, Failure};
use util::DEADLINE;

/// Collect a Deferred's result.
fn watch<T: 'static>(d: Deferred<T>) -> Rc<RefCell<Option<Result<T, Failure>>>> {
    let slot = Rc::new(RefCell::new(None));
    let s = slot.clone();
    d.add_both(move |r| {
        *s.borrow_mut() = Some(r);
        Ok(())
    });
    slot
}

#[test]
fn q6_call_in_thread_returns_on_the_reactor_thread() {
    let reactor = Reactor::new().unwrap();
    let main = std::thread::current().id();
    let worker = Arc::new(std::sync::Mutex::new(None));
    let w = worker.clone();
    let result = watch(reactor.call_in_thread(move || {
        *w.lock().unwrap() = Some(std::thread::current().id());
        6 * 7
    }));
    assert!(result.borrow().is_none(), "never inside call_in_thread");
    reactor
        .run_until(|| result.borrow().is_some(), DEADLINE)
        .unwrap();
    assert_eq!(result.borrow_mut().take().unwrap().unwrap(), 42);
    let ran_on = worker.lock().unwrap().unwrap();
    assert_ne!(ran_on, main, "f runs on a pool thread");
    assert_eq!(
        reactor.thread_pool_threads(),
        1,
        "started lazily, one at a time"
    );
}

#[test]
fn q6_the_pool_is_bounded_and_every_call_completes() {
    let reactor = Reactor::new().unwrap();
    assert_eq!(reactor.thread_pool_size(), DEFAULT_THREAD_POOL_SIZE);
    reactor.suggest_thread_pool_size(3);
    assert_eq!(reactor.thread_pool_size(), 3);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let results: Vec<_> = (0..20u32)
        .map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            watch(reactor.call_in_thread(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2)); // the work itself
                running.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }))
        })
        .collect();
    reactor
        .run_until(|| results.iter().all(|r| r.borrow().is_some()), DEADLINE)
        .unwrap();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(
            *r.borrow().as_ref().unwrap().as_ref().unwrap(),
            i as u32 * 2
        );
    }
    assert!(peak.load(Ordering::SeqCst) <= 3);
    assert!(reactor.thread_pool_threads() <= 3);
}

#[test]
fn q6_a_panic_becomes_a_failure_and_the_pool_goes_on() {
    let reactor = Reactor::new().unwrap();
    reactor.suggest_thread_pool_size(1);
    let bad = watch(reactor.call_in_thread(|| -> u8 { panic!("worker fails on purpose") }));
    let good = watch(reactor.call_in_thread(|| 7u8));
    reactor
        .run_until(
            || bad.borrow().is_some() && good.borrow().is_some(),
            DEADLINE,
        )
        .unwrap();
    match bad.borrow_mut().take().unwrap() {
        Err(Failure::Panicked(msg)) => assert!(msg.contains("worker fails on purpose"), "{msg}"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    assert_eq!(good.borrow_mut().take().unwrap().unwrap(), 7);
    assert_eq!(reactor.thread_pool_threads(), 1);
}

#[test]
fn q6_shutdown_joins_the_threads() {
    let reactor = Reactor::new().unwrap();
    reactor.set_install_signal_handlers(false);
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let slow = watch(reactor.call_in_thread(move || {
        started_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(100)); // the work itself
        f.store(true, Ordering::SeqCst);
        "done"
    }));
    let r = reactor.clone();
    reactor.call_when_running(move || {
        started_rx.recv_timeout(DEADLINE).unwrap();
        r.stop().unwrap();
    });
    reactor.run().unwrap();
    assert!(
        finished.load(Ordering::SeqCst),
        "run returns only after the pool's threads are joined"
    );
    // The result that came during shutdown was delivered.
    torsion_transport::defer::run_soon();
    assert_eq!(slow.borrow_mut().take().unwrap().unwrap(), "done");
    // After shutdown, calls fail at once.
    let late = watch(reactor.call_in_thread(|| 1));
    torsion_transport::defer::run_soon();
    assert!(matches!(late.borrow().as_ref(), Some(Err(_))));
}

#[test]
fn q6_dropping_the_reactor_joins_the_threads() {
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    {
        let reactor = Reactor::new().unwrap();
        drop(reactor.call_in_thread(move || {
            std::thread::sleep(Duration::from_millis(50)); // the work itself
            f.store(true, Ordering::SeqCst);
        }));
    }
    assert!(finished.load(Ordering::SeqCst));
}

#[test]
fn q7_resolve_a_numeric_address_without_a_thread() {
    let reactor = Reactor::new().unwrap();
    let d = reactor.resolve_addrs("127.0.0.1", 80);
    assert!(d.is_called());
    let v6 = watch(reactor.resolve_addrs("[::1]", 443));
    let v4 = watch(d);
    torsion_transport::defer::run_soon();
    assert_eq!(
        v4.borrow_mut().take().unwrap().unwrap(),
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 80)]
    );
    assert_eq!(
        v6.borrow_mut().take().unwrap().unwrap(),
        vec!["[::1]:443".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(reactor.thread_pool_threads(), 0);
}

#[test]
fn q7_resolve_localhost() {
    let reactor = Reactor::new().unwrap();
    let got = watch(reactor.resolve_addrs("localhost", 8080));
    reactor
        .run_until(|| got.borrow().is_some(), DEADLINE)
        .unwrap();
    let addrs = got.borrow_mut().take().unwrap().unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080),
        "{addrs:?}"
    );
}

#[test]
fn q7_resolve_a_host_gives_its_ip_addresses_once_each() {
    let reactor = Reactor::new().unwrap();
    let got = watch(reactor.resolve("localhost"));
    reactor
        .run_until(|| got.borrow().is_some(), DEADLINE)
        .unwrap();
    let ips = got.borrow_mut().take().unwrap().unwrap();
    assert!(
        !ips.is_empty() && ips.iter().all(IpAddr::is_loopback),
        "{ips:?}"
    );
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ips.len(), "no address twice: {ips:?}");

    let numeric = watch(reactor.resolve("::1"));
    torsion_transport::defer::run_soon();
    assert_eq!(
        numeric.borrow_mut().take().unwrap().unwrap(),
        vec![IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)]
    );
}
