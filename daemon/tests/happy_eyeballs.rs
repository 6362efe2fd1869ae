//! Happy Eyeballs (RFC 8305) on the test kit's MemoryReactor and Clock (no sleeping), and
//! for real with `localhost`.
#![cfg(unix)]

mod util;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use torsion_daemon::endpoints::{CONNECTION_ATTEMPT_DELAY, ConnectError, HostnameEndpoint};
use torsion_testing::{ConnectorState, MemoryReactor};
use torsion_transport::{Reason, factory_fn};
use util::{Outcome, Quiet, assert_refused, connect, listen_quiet};

fn start(reactor: &Rc<MemoryReactor>, addrs: &[&str]) -> Outcome {
    let addrs: Vec<SocketAddr> = addrs.iter().map(|a| a.parse().unwrap()).collect();
    let out: Outcome = Rc::new(RefCell::new(None));
    let o = out.clone();
    HostnameEndpoint::new("example.test", 80)
        .connect_addresses(reactor.clone(), addrs, factory_fn(|_| Box::new(Quiet)))
        .add_both(move |r| {
            *o.borrow_mut() = Some(r);
            Ok(())
        });
    out
}

fn attempted(reactor: &Rc<MemoryReactor>) -> Vec<String> {
    reactor
        .tcp_connects()
        .iter()
        .map(|c| c.addr.to_string())
        .collect()
}

#[test]
fn attempts_are_staggered_and_interleaved() {
    let reactor = Rc::new(MemoryReactor::new());
    let clock = reactor.clock().clone();
    let out = start(&reactor, &["[::1]:80", "[::2]:80", "10.0.0.1:80"]);
    assert_eq!(
        attempted(&reactor),
        vec!["[::1]:80"],
        "one attempt at first"
    );
    clock.advance(CONNECTION_ATTEMPT_DELAY - Duration::from_millis(1));
    assert_eq!(attempted(&reactor).len(), 1, "not before the delay");
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        attempted(&reactor),
        vec!["[::1]:80", "10.0.0.1:80"],
        "the other family second"
    );
    clock.advance(CONNECTION_ATTEMPT_DELAY);
    assert_eq!(
        attempted(&reactor),
        vec!["[::1]:80", "10.0.0.1:80", "[::2]:80"]
    );
    assert!(out.borrow().is_none());
    // The second attempt wins: the others are cancelled.
    let connects = reactor.tcp_connects();
    assert!(connects[1].connector.complete().is_some());
    clock.advance(Duration::ZERO);
    assert!(matches!(&*out.borrow(), Some(Ok(_))));
    assert_eq!(connects[0].connector.state(), ConnectorState::Cancelled);
    assert_eq!(connects[2].connector.state(), ConnectorState::Cancelled);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        reactor.tcp_connects().len(),
        3,
        "no attempt after the winner"
    );
}

#[test]
fn a_failure_starts_the_next_attempt_at_once() {
    let reactor = Rc::new(MemoryReactor::new());
    let out = start(&reactor, &["10.0.0.1:80", "10.0.0.2:80"]);
    assert_eq!(attempted(&reactor).len(), 1);
    reactor.tcp_connects()[0]
        .connector
        .fail(Reason::ConnectionRefused);
    assert_eq!(
        attempted(&reactor),
        vec!["10.0.0.1:80", "10.0.0.2:80"],
        "no waiting for the delay"
    );
    assert!(out.borrow().is_none());
}

#[test]
fn all_failing_lists_every_attempt() {
    let reactor = Rc::new(MemoryReactor::new());
    let clock = reactor.clock().clone();
    let out = start(&reactor, &["10.0.0.1:80", "[::1]:80"]);
    clock.advance(CONNECTION_ATTEMPT_DELAY);
    let c = reactor.tcp_connects();
    c[1].connector.fail(Reason::TimedOut);
    c[0].connector.fail(Reason::ConnectionRefused);
    clock.advance(Duration::ZERO);
    let failure = match out.borrow_mut().take() {
        Some(Err(f)) => f,
        other => panic!("expected a failure, got {}", other.is_some()),
    };
    let e = failure
        .downcast_ref::<ConnectError>()
        .expect("a ConnectError");
    let ConnectError::Failed { attempts, .. } = e else {
        panic!("{e}")
    };
    let tried: Vec<&str> = attempts.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        tried,
        vec!["[::1]:80", "10.0.0.1:80"],
        "in the order they failed"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("cannot connect to example.test port 80: "),
        "{text}"
    );
    assert!(
        text.contains("[::1]:80: ") && text.contains("10.0.0.1:80: "),
        "{text}"
    );
}

#[test]
fn cancelling_stops_every_attempt() {
    let reactor = Rc::new(MemoryReactor::new());
    let clock = reactor.clock().clone();
    let addrs: Vec<SocketAddr> = vec![
        "10.0.0.1:80".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    ];
    let d = HostnameEndpoint::new("h", 80).connect_addresses(
        reactor.clone(),
        addrs,
        factory_fn(|_| Box::new(Quiet)),
    );
    clock.advance(CONNECTION_ATTEMPT_DELAY);
    d.cancel();
    clock.advance(CONNECTION_ATTEMPT_DELAY * 4);
    let c = reactor.tcp_connects();
    assert_eq!(c.len(), 2);
    assert!(
        c.iter()
            .all(|c| c.connector.state() == ConnectorState::Cancelled)
    );
}

#[test]
fn no_addresses_is_an_error() {
    let reactor = Rc::new(MemoryReactor::new());
    let out = start(&reactor, &[]);
    reactor.clock().advance(Duration::ZERO);
    let Some(Err(f)) = out.borrow_mut().take() else {
        panic!("expected a failure")
    };
    assert!(matches!(
        f.downcast_ref::<ConnectError>(),
        Some(ConnectError::NoAddresses { .. })
    ));
}

#[test]
fn localhost_for_real() {
    let reactor = torsion_reactor::Reactor::new().unwrap();
    let port = listen_quiet(&reactor, "tcp:0:interface=127.0.0.1");
    let n = port.host().port().unwrap();
    let t = connect(&reactor, &format!("tcp:host=localhost:port={n}"))
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(t.peer().port(), Some(n));
    t.lose_connection();
    port.stop_listening();
    assert_refused(&reactor, &format!("tcp:host=127.0.0.1:port={n}"));
    let f = connect(&reactor, "tcp:host=127.0.0.1")
        .err()
        .expect("a parse error");
    assert_eq!(
        f.to_string(),
        r#"endpoint "tcp:host=127.0.0.1": port: missing"#
    );
}

#[test]
fn bind_address_connects_from_it() {
    let reactor = torsion_reactor::Reactor::new().unwrap();
    let port = listen_quiet(&reactor, "tcp:0:interface=127.0.0.1");
    let n = port.host().port().unwrap();
    let t = connect(
        &reactor,
        &format!("tcp:host=127.0.0.1:port={n}:bindAddress=127.0.0.2"),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(
        t.host().socket_addr().map(|a| a.ip()),
        Some([127, 0, 0, 2].into())
    );
    t.lose_connection();
    port.stop_listening();
}
