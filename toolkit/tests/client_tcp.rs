//! The client helpers over real TCP on the real reactor, bounded in time, listening
//! sockets closed at the end.

mod util;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_reactor::Reactor;
use torsion_toolkit::client::{
    Backoff, ReconnectingClientFactory, RequestProtocol, connect_protocol, request_with_timeout,
};
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{ListeningPort, Protocol, ReactorTcp, Reason, Transport, factory_fn};
use util::wait;

const DEADLINE: Duration = Duration::from_secs(20);

/// A server that answers each line with "ANSWER\n" when `answer`, and says nothing
/// otherwise; it records how its connections ended.
struct Server {
    t: Option<Rc<dyn Transport>>,
    answer: bool,
    ended: Rc<RefCell<Vec<String>>>,
}

impl Protocol for Server {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.t = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if self.answer && data.contains(&b'\n') {
            if let Some(t) = &self.t {
                t.write(b"ANSWER\n");
            }
        }
    }
    fn connection_lost(&mut self, reason: Reason) {
        self.ended.borrow_mut().push(reason.to_string());
    }
}

fn listen(
    reactor: &Reactor,
    answer: bool,
) -> (Rc<dyn ListeningPort>, SocketAddr, Rc<RefCell<Vec<String>>>) {
    let ended: Rc<RefCell<Vec<String>>> = Rc::default();
    let e = ended.clone();
    let port = reactor
        .listen_tcp(
            ([127, 0, 0, 1], 0).into(),
            factory_fn(move |_| {
                Box::new(Server {
                    t: None,
                    answer,
                    ended: e.clone(),
                })
            }),
        )
        .unwrap();
    let addr = port.host().socket_addr().unwrap();
    (port, addr, ended)
}

struct Ask {
    answer: Deferred<Vec<u8>>,
    buf: Vec<u8>,
    lost: Rc<RefCell<Option<Reason>>>,
}

impl Protocol for Ask {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        t.write(b"QUESTION\n");
    }
    fn data_received(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.ends_with(b"\n") {
            let _ = self.answer.callback(std::mem::take(&mut self.buf));
        }
    }
    fn connection_lost(&mut self, reason: Reason) {
        *self.lost.borrow_mut() = Some(reason.clone());
        let _ = self.answer.errback(reason);
    }
}

impl RequestProtocol for Ask {
    type Output = Vec<u8>;
    fn result(&mut self) -> Deferred<Vec<u8>> {
        self.answer.clone()
    }
}

fn ask() -> Ask {
    Ask {
        answer: Deferred::new(),
        buf: Vec::new(),
        lost: Rc::default(),
    }
}

#[test]
fn p9_a_request_gets_its_answer_and_the_connection_is_closed() {
    let reactor = Reactor::new().unwrap();
    let (port, addr, ended) = listen(&reactor, true);
    let answer = wait(
        &reactor,
        request_with_timeout(&reactor, addr, ask(), Duration::from_secs(10)),
        DEADLINE,
    );
    assert_eq!(answer.unwrap(), b"ANSWER\n");
    let e = ended.clone();
    reactor
        .run_until(|| !e.borrow().is_empty(), DEADLINE)
        .unwrap();
    assert_eq!(ended.borrow()[0], "connection was closed cleanly");
    port.stop_listening();
}

#[test]
fn p9_a_silent_server_times_the_whole_request_out_and_the_connection_is_aborted() {
    let reactor = Reactor::new().unwrap();
    let (port, addr, ended) = listen(&reactor, false);
    let started = Instant::now();
    let client = ask();
    let lost = client.lost.clone();
    let r = wait(
        &reactor,
        request_with_timeout(&reactor, addr, client, Duration::from_millis(200)),
        DEADLINE,
    );
    assert!(matches!(r, Err(Failure::TimedOut(_))), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Our side was aborted; the server sees the connection end rather than hang open.
    let (l, e) = (lost.clone(), ended.clone());
    reactor
        .run_until(|| l.borrow().is_some() && !e.borrow().is_empty(), DEADLINE)
        .unwrap();
    assert!(
        matches!(*lost.borrow(), Some(Reason::ConnectionAborted)),
        "{:?}",
        lost.borrow()
    );
    port.stop_listening();
}

#[test]
fn p9_connecting_to_a_closed_port_fails_with_refused() {
    let reactor = Reactor::new().unwrap();
    let (port, addr, _) = listen(&reactor, true);
    port.stop_listening();
    let r = wait(&reactor, connect_protocol(&reactor, addr, ask()), DEADLINE);
    let f = r.expect_err("refused");
    assert!(
        matches!(f.downcast_ref::<Reason>(), Some(Reason::ConnectionRefused)),
        "{f:?}"
    );
}

#[test]
fn p10_reconnecting_factory_connects_once_the_server_is_up() {
    let reactor = Reactor::new().unwrap();
    // A free port, closed again: the first attempts are refused.
    let (probe, addr, _) = listen(&reactor, true);
    probe.stop_listening();
    let connected = Rc::new(Cell::new(0));
    let c = connected.clone();
    let mut backoff = Backoff::without_jitter();
    backoff.initial_delay = Duration::from_millis(20);
    let factory = ReconnectingClientFactory::new(move |_| {
        c.set(c.get() + 1);
        Box::new(ask())
    })
    .backoff(backoff)
    .connect_tcp(Rc::new(reactor.clone()), addr);
    let f = factory.clone();
    reactor.run_until(|| f.retries() >= 2, DEADLINE).unwrap();
    assert_eq!(connected.get(), 0);
    let port = reactor
        .listen_tcp(
            addr,
            factory_fn(|_| {
                Box::new(Server {
                    t: None,
                    answer: true,
                    ended: Rc::default(),
                })
            }),
        )
        .unwrap();
    let c = connected.clone();
    reactor.run_until(|| c.get() == 1, DEADLINE).unwrap();
    assert_eq!(factory.retries(), 0, "reset on connect");
    factory.stop_trying();
    port.stop_listening();
}

#[test]
fn p10_a_factory_that_gave_up_is_freed_once_dropped() {
    let reactor = Reactor::new().unwrap();
    let (probe, addr, _) = listen(&reactor, true);
    probe.stop_listening();
    let mut backoff = Backoff::without_jitter().max_retries(1);
    backoff.initial_delay = Duration::from_millis(5);
    let factory = ReconnectingClientFactory::new(|_| Box::new(ask()))
        .backoff(backoff)
        .connect_tcp(Rc::new(reactor.clone()), addr);
    let f = factory.clone();
    reactor.run_until(|| f.gave_up(), DEADLINE).unwrap();
    assert_eq!(factory.attempts(), 2);
    let weak = Rc::downgrade(&factory);
    drop((f, factory));
    // Let the reactor drop what it held for the last attempt.
    let _ = reactor.iterate(Duration::ZERO);
    assert!(
        weak.upgrade().is_none(),
        "no reference cycle keeps it alive"
    );
}
