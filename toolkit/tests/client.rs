//! `connect_protocol`, `request_with_timeout`, `client_factory_fn` and
//! `ReconnectingClientFactory` on the test kit's `MemoryReactor` + `Clock`.

mod util;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use torsion_testing::{ConnectorState, MemoryReactor, StringTransportWithDisconnection};
use torsion_toolkit::client::{
    Backoff, Connection, ReconnectingClientFactory, RequestProtocol, client_factory_fn,
    connect_protocol, request_with_timeout,
};
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{
    Address, ClientFactory, Protocol, ReactorTcp, ReactorTime, Reason, Transport,
};
use util::{Seen, settle, watch};

fn addr() -> SocketAddr {
    "127.0.0.1:7000".parse().unwrap()
}

#[derive(Default)]
struct Chat {
    got: Vec<u8>,
    lost: Option<String>,
}

impl Protocol for Chat {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        t.write(b"HELLO\n");
    }
    fn data_received(&mut self, data: &[u8]) {
        self.got.extend_from_slice(data);
    }
    fn connection_lost(&mut self, reason: Reason) {
        self.lost = Some(reason.to_string());
    }
}

#[test]
fn p9_connect_protocol_gives_the_protocol_and_the_transport() {
    let reactor = MemoryReactor::new();
    let seen = watch(connect_protocol(&reactor, addr(), Chat::default()));
    let record = &reactor.tcp_connects()[0];
    assert_eq!(record.addr, addr());
    settle(&reactor);
    assert!(
        seen.borrow().is_none(),
        "nothing before the connection is made"
    );
    let wire = record.connector.complete().unwrap();
    settle(&reactor);
    let Some(Ok(connection)) = seen.borrow_mut().take() else {
        panic!("no connection");
    };
    let connection: Connection<Chat> = connection;
    assert_eq!(
        wire.value(),
        b"HELLO\n",
        "connection_made ran before the Deferred fired"
    );
    wire.data_received(b"hi there");
    assert_eq!(connection.protocol.borrow().got, b"hi there");
    connection.transport.write(b"more");
    assert_eq!(wire.value(), b"HELLO\nmore");
    connection.transport.lose_connection();
    assert_eq!(
        connection.protocol.borrow().lost.as_deref(),
        Some("connection was closed cleanly")
    );
    assert_eq!(connection.transport.peer(), Address::from(addr()));
}

#[test]
fn p9_connect_protocol_fails_with_the_reason() {
    let reactor = MemoryReactor::new();
    let seen = watch(connect_protocol(&reactor, addr(), Chat::default()));
    reactor.tcp_connects()[0]
        .connector
        .fail(Reason::ConnectionRefused);
    settle(&reactor);
    let failure = seen.borrow_mut().take().unwrap().unwrap_err();
    assert!(matches!(
        failure.downcast_ref::<Reason>(),
        Some(Reason::ConnectionRefused)
    ));
}

#[test]
fn p9_cancelling_connect_protocol_stops_the_attempt() {
    let reactor = MemoryReactor::new();
    let d = connect_protocol(&reactor, addr(), Chat::default());
    let seen = watch(d.clone());
    d.cancel();
    let connector = reactor.tcp_connects()[0].connector.clone();
    assert_eq!(connector.state(), ConnectorState::Cancelled);
    settle(&reactor); // the factory's client_connection_failed(Cancelled) comes now
    assert!(matches!(*seen.borrow(), Some(Err(Failure::Cancelled))));
}

/// Sends a question, completes its Deferred with the first line of the answer.
struct Ask {
    answer: Deferred<String>,
    buf: Vec<u8>,
}

impl Ask {
    fn new() -> Self {
        Ask {
            answer: Deferred::new(),
            buf: Vec::new(),
        }
    }
}

impl Protocol for Ask {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        t.write(b"QUESTION\n");
    }
    fn data_received(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if let Some(n) = self.buf.iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.buf[..n]).into_owned();
            let _ = self.answer.callback(line);
        }
    }
    fn connection_lost(&mut self, reason: Reason) {
        let _ = self.answer.errback(reason);
    }
}

impl RequestProtocol for Ask {
    type Output = String;
    fn result(&mut self) -> Deferred<String> {
        self.answer.clone()
    }
}

/// `request_with_timeout` of an [`Ask`] to `addr()` with a 5 s timeout, watched.
fn ask_within_5s(reactor: &MemoryReactor) -> Seen<String> {
    watch(request_with_timeout(
        reactor,
        addr(),
        Ask::new(),
        Duration::from_secs(5),
    ))
}

#[test]
fn p9_request_in_time_gives_the_answer_and_closes_the_connection() {
    let reactor = MemoryReactor::new();
    let seen = ask_within_5s(&reactor);
    reactor.clock().advance(Duration::from_secs(2));
    let wire = reactor.tcp_connects()[0].connector.complete().unwrap();
    reactor.clock().advance(Duration::from_secs(2));
    assert_eq!(wire.value(), b"QUESTION\n");
    wire.data_received(b"42\n");
    settle(&reactor);
    assert!(matches!(&*seen.borrow(), Some(Ok(a)) if a == "42"));
    assert!(wire.disconnecting(), "closed cleanly after the answer");
    assert!(!wire.disconnected(), "not aborted");
    assert!(
        reactor.delayed_calls().is_empty(),
        "the timeout timer is cancelled"
    );
}

#[test]
fn p9_request_timeout_covers_the_connect() {
    let reactor = MemoryReactor::new();
    let seen = ask_within_5s(&reactor);
    reactor.clock().advance(Duration::from_secs(5));
    assert_eq!(
        reactor.tcp_connects()[0].connector.state(),
        ConnectorState::Cancelled
    );
    settle(&reactor);
    assert!(matches!(
        *seen.borrow(),
        Some(Err(Failure::TimedOut(d))) if d == Duration::from_secs(5)
    ));
}

#[test]
fn p9_request_timeout_covers_waiting_for_the_answer_and_aborts_the_connection() {
    let reactor = MemoryReactor::new();
    let seen = ask_within_5s(&reactor);
    reactor.clock().advance(Duration::from_secs(1));
    let wire = reactor.tcp_connects()[0].connector.complete().unwrap();
    settle(&reactor);
    wire.data_received(b"thinking...");
    reactor.clock().advance(Duration::from_secs(3));
    assert!(seen.borrow().is_none(), "4 s in: still waiting");
    reactor.clock().advance(Duration::from_secs(1));
    assert!(matches!(*seen.borrow(), Some(Err(Failure::TimedOut(_)))));
    assert!(wire.disconnected(), "aborted at the timeout");
}

#[test]
fn p9_request_connection_failure_is_the_reason() {
    let reactor = MemoryReactor::new();
    let seen = ask_within_5s(&reactor);
    reactor.tcp_connects()[0]
        .connector
        .fail(Reason::ConnectionRefused);
    settle(&reactor);
    let failure = seen.borrow_mut().take().unwrap().unwrap_err();
    assert!(matches!(
        failure.downcast_ref::<Reason>(),
        Some(Reason::ConnectionRefused)
    ));
    assert!(reactor.delayed_calls().is_empty());
}

#[test]
fn client_factory_fn_calls_each_closure() {
    let log = Rc::new(RefCell::new(Vec::<String>::new()));
    let (a, b, c) = (log.clone(), log.clone(), log.clone());
    let factory = client_factory_fn(|_| Box::new(Chat::default()))
        .on_started_connecting(move || a.borrow_mut().push("started".into()))
        .on_connection_failed(move |r| b.borrow_mut().push(format!("failed: {r}")))
        .on_connection_lost(move |r| c.borrow_mut().push(format!("lost: {r}")))
        .into_rc();
    let reactor = MemoryReactor::new();
    reactor.connect_tcp(addr(), factory.clone(), None);
    reactor.tcp_connects()[0].connector.fail(Reason::TimedOut);
    let wire = reactor.connect_tcp(addr(), factory.clone(), None);
    let _ = wire;
    let t = reactor.tcp_connects()[1].connector.complete().unwrap();
    assert_eq!(t.value(), b"HELLO\n", "the closure built the protocol");
    factory.client_connection_lost(Reason::ConnectionDone);
    assert_eq!(
        *log.borrow(),
        [
            "started",
            "failed: connection attempt timed out",
            "started",
            "lost: connection was closed cleanly"
        ]
    );
}

fn reconnecting(
    reactor: &Rc<MemoryReactor>,
    backoff: Backoff,
    seed: u64,
) -> Rc<ReconnectingClientFactory> {
    ReconnectingClientFactory::new(|_| Box::new(Chat::default()))
        .backoff(backoff)
        .jitter_seed(seed)
        .connect_tcp(reactor.clone(), addr())
}

/// Fail the latest attempt and return the delay the factory chose.
fn fail_latest(reactor: &MemoryReactor, factory: &ReconnectingClientFactory) -> Duration {
    let last = reactor.tcp_connects().last().unwrap().connector.clone();
    assert!(last.fail(Reason::ConnectionRefused));
    factory.delay()
}

/// The latest connection attempt succeeds: its transport.
fn complete_latest(reactor: &MemoryReactor) -> Rc<StringTransportWithDisconnection> {
    reactor
        .tcp_connects()
        .last()
        .unwrap()
        .connector
        .complete()
        .unwrap()
}

#[test]
fn p10_backoff_grows_by_e_up_to_the_maximum_without_jitter() {
    let reactor = Rc::new(MemoryReactor::new());
    let factory = reconnecting(&reactor, Backoff::without_jitter(), 1);
    assert_eq!(reactor.tcp_connects().len(), 1, "connects at once");
    let mut expected = 1.0_f64;
    for attempt in 1..=12 {
        let delay = fail_latest(&reactor, &factory);
        expected = (expected * std::f64::consts::E).min(3600.0);
        assert!(
            (delay.as_secs_f64() - expected).abs() < 1e-6,
            "retry {attempt}: {delay:?} vs {expected}"
        );
        // Not a moment before the delay, then exactly one new attempt.
        reactor.clock().advance(delay - Duration::from_millis(1));
        assert_eq!(reactor.tcp_connects().len(), attempt);
        reactor.clock().advance(Duration::from_millis(1));
        assert_eq!(reactor.tcp_connects().len(), attempt + 1);
    }
    assert_eq!(
        factory.delay(),
        Duration::from_secs(3600),
        "capped at max_delay"
    );
    assert_eq!(factory.retries(), 12);
}

#[test]
fn p10_jitter_is_seeded_centred_and_bounded() {
    let delays = |seed| {
        let reactor = Rc::new(MemoryReactor::new());
        let factory = reconnecting(&reactor, Backoff::default(), seed);
        let mut out = Vec::new();
        for _ in 0..8 {
            let d = fail_latest(&reactor, &factory);
            out.push(d);
            reactor.clock().advance(d);
        }
        factory.stop_trying();
        out
    };
    assert_eq!(delays(42), delays(42), "same seed, same delays");
    assert_ne!(delays(42), delays(43));
    // The first delay is e × N(1, 0.1196): over many seeds its mean is e and its spread
    // about 0.1196 e.
    let firsts: Vec<f64> = (0..400).map(|s| delays(s)[0].as_secs_f64()).collect();
    let mean = firsts.iter().sum::<f64>() / firsts.len() as f64;
    let sd = (firsts.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / firsts.len() as f64).sqrt();
    let e = std::f64::consts::E;
    assert!((mean - e).abs() < 0.05, "mean {mean}");
    assert!(
        (sd / e - 0.119626565582).abs() < 0.02,
        "relative spread {}",
        sd / e
    );
}

#[test]
fn p10_max_retries_gives_up() {
    let reactor = Rc::new(MemoryReactor::new());
    let factory = reconnecting(&reactor, Backoff::without_jitter().max_retries(2), 1);
    for _ in 0..2 {
        let d = fail_latest(&reactor, &factory);
        reactor.clock().advance(d);
    }
    assert_eq!(reactor.tcp_connects().len(), 3);
    fail_latest(&reactor, &factory);
    assert!(factory.gave_up());
    assert!(!factory.retry_pending());
    reactor.clock().advance(Duration::from_secs(100_000));
    assert_eq!(
        reactor.tcp_connects().len(),
        3,
        "no attempt after giving up"
    );
}

#[test]
fn p10_stop_trying_cancels_the_pending_attempt_and_a_connecting_one() {
    let reactor = Rc::new(MemoryReactor::new());
    let factory = reconnecting(&reactor, Backoff::without_jitter(), 1);
    fail_latest(&reactor, &factory);
    assert!(factory.retry_pending());
    factory.stop_trying();
    assert!(!factory.retry_pending());
    assert!(reactor.delayed_calls().is_empty());
    reactor.clock().advance(Duration::from_secs(100));
    assert_eq!(reactor.tcp_connects().len(), 1);
    assert!(!factory.continue_trying());

    // While connecting: the attempt is stopped, and its failure starts nothing.
    let factory = reconnecting(&reactor, Backoff::without_jitter(), 1);
    let connector = reactor.tcp_connects().last().unwrap().connector.clone();
    factory.stop_trying();
    assert_eq!(connector.state(), ConnectorState::Cancelled);
    reactor.clock().advance(Duration::from_secs(100));
    assert_eq!(reactor.tcp_connects().len(), 2);
}

#[test]
fn p10_a_lost_connection_reconnects_and_a_success_resets_the_delay() {
    let reactor = Rc::new(MemoryReactor::new());
    let factory = reconnecting(&reactor, Backoff::without_jitter(), 1);
    let first = fail_latest(&reactor, &factory);
    reactor.clock().advance(first);
    let second = fail_latest(&reactor, &factory);
    assert!(second > first);
    reactor.clock().advance(second);
    // The third attempt connects: the delay is back to the initial one.
    let wire = complete_latest(&reactor);
    assert_eq!(factory.retries(), 0);
    assert_eq!(factory.delay(), Duration::from_secs(1));
    // The connection ends (the reactor tells the factory): a retry after e seconds.
    wire.lose_connection();
    factory.client_connection_lost(Reason::ConnectionDone);
    assert!((factory.delay().as_secs_f64() - std::f64::consts::E).abs() < 1e-6);
    reactor.clock().advance(factory.delay());
    assert_eq!(reactor.tcp_connects().len(), 4);
}

#[test]
fn p10_reset_delay_by_hand_when_reset_on_connect_is_off() {
    let reactor = Rc::new(MemoryReactor::new());
    let mut backoff = Backoff::without_jitter();
    backoff.reset_on_connect = false;
    let factory = reconnecting(&reactor, backoff, 1);
    let d = fail_latest(&reactor, &factory);
    reactor.clock().advance(d);
    let _wire = complete_latest(&reactor);
    assert_eq!(
        factory.retries(),
        1,
        "Twisted's rule: the protocol resets it"
    );
    factory.reset_delay();
    assert_eq!(
        (factory.retries(), factory.delay()),
        (0, Duration::from_secs(1))
    );
    // reset_delay also undoes stop_trying (Twisted's resetDelay sets continueTrying).
    factory.stop_trying();
    factory.reset_delay();
    assert!(factory.continue_trying());
}

#[test]
fn p10_each_connection_gets_a_fresh_protocol() {
    let built = Rc::new(Cell::new(0));
    let b = built.clone();
    let reactor = Rc::new(MemoryReactor::new());
    let factory = ReconnectingClientFactory::new(move |_| {
        b.set(b.get() + 1);
        Box::new(Chat::default())
    })
    .backoff(Backoff::without_jitter())
    .connect_tcp(reactor.clone(), addr());
    reactor.tcp_connects()[0].connector.complete().unwrap();
    factory.client_connection_lost(Reason::ConnectionDone);
    reactor.clock().advance(factory.delay());
    reactor.tcp_connects()[1].connector.complete().unwrap();
    assert_eq!(built.get(), 2);
    factory.stop_trying();
}
