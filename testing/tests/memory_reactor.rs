//! CONTRACT O5: `MemoryReactor`.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use torsion_process::ReactorProcess;
use torsion_testing::{
    AccumulatingProcessProtocol, AccumulatingProtocol, ConnectorState, MemoryReactor, ProcessEvent,
};
use torsion_transport::{
    Address, ClientFactory, Factory, ProcessBuilder, Protocol, ReactorTcp, ReactorTime,
    ReactorUnix, Reason, SpawnError, SpawnStep, Transport, UnixListenOptions, factory_fn,
};

/// A client factory that records what happened to it.
#[derive(Default)]
struct Client {
    log: RefCell<Vec<String>>,
    refuse: bool,
}

impl Factory for Client {
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.log.borrow_mut().push(format!("build {peer}"));
        if self.refuse {
            None
        } else {
            Some(Box::new(AccumulatingProtocol::new().0))
        }
    }
}

impl ClientFactory for Client {
    fn started_connecting(&self) {
        self.log.borrow_mut().push("started".into());
    }
    fn client_connection_failed(&self, reason: Reason) {
        self.log.borrow_mut().push(format!("failed: {reason}"));
    }
}

fn server_factory() -> Rc<dyn Factory> {
    factory_fn(|_| Box::new(AccumulatingProtocol::new().0))
}

#[test]
fn o5_listen_tcp_is_recorded_with_its_arguments() {
    let reactor = MemoryReactor::new();
    let factory = server_factory();
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), factory.clone())
        .unwrap();
    let second = reactor
        .listen_tcp("[::1]:8080".parse().unwrap(), factory.clone())
        .unwrap();
    let listens = reactor.tcp_listens();
    assert_eq!(listens.len(), 2);
    assert_eq!(listens[0].addr, "127.0.0.1:0".parse().unwrap());
    assert!(Rc::ptr_eq(&listens[0].factory, &factory));
    assert_eq!(port.host().port(), Some(torsion_testing::FIRST_FAKE_PORT));
    assert_eq!(second.host().port(), Some(8080));
    port.stop_listening();
    assert!(listens[0].port.stopped() && !listens[1].port.stopped());
}

#[test]
fn o5_listen_unix_is_recorded_with_its_arguments() {
    let reactor = MemoryReactor::new();
    let options = UnixListenOptions::default();
    let port = reactor
        .listen_unix(Path::new("/tmp/t.sock"), server_factory(), options.clone())
        .unwrap();
    let listens = reactor.unix_listens();
    assert_eq!(listens.len(), 1);
    assert_eq!(listens[0].path, PathBuf::from("/tmp/t.sock"));
    assert_eq!(listens[0].options, options);
    assert_eq!(port.host(), Address::Unix(Some("/tmp/t.sock".into())));
    port.stop_listening();
    port.stop_listening();
    assert_eq!(listens[0].port.stop_calls(), 2);
}

#[test]
fn o5_connect_tcp_is_recorded_and_the_test_completes_it() {
    let reactor = MemoryReactor::new();
    let client = Rc::new(Client::default());
    let connector = reactor.connect_tcp(
        "192.0.2.1:25".parse().unwrap(),
        client.clone(),
        Some(Duration::from_secs(7)),
    );
    let connects = reactor.tcp_connects();
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0].timeout, Some(Duration::from_secs(7)));
    assert_eq!(connects[0].addr, "192.0.2.1:25".parse().unwrap());
    assert_eq!(connector.destination().port(), Some(25));
    assert_eq!(*client.log.borrow(), vec!["started"]);

    let transport = connects[0].connector.complete().expect("connected");
    assert_eq!(connects[0].connector.state(), ConnectorState::Connected);
    assert_eq!(transport.peer(), connector.destination());
    assert_eq!(client.log.borrow()[1], "build tcp:192.0.2.1:25");
    assert!(transport.protocol().is_some());
    assert!(connects[0].connector.complete().is_none(), "only once");
}

#[test]
fn o5_connect_failure_reaches_client_connection_failed() {
    let reactor = MemoryReactor::new();
    let client = Rc::new(Client::default());
    reactor.connect_unix("/run/x.sock".into(), client.clone(), None);
    let connects = reactor.unix_connects();
    assert_eq!(connects[0].path, PathBuf::from("/run/x.sock"));
    assert!(connects[0].connector.fail(Reason::ConnectionRefused));
    assert_eq!(connects[0].connector.state(), ConnectorState::Failed);
    assert_eq!(
        client.log.borrow().last().unwrap(),
        "failed: connection was refused by the other side"
    );
    assert!(!connects[0].connector.fail(Reason::TimedOut), "only once");
}

#[test]
fn o5_stop_connecting_fails_with_cancelled_from_the_clock() {
    let reactor = MemoryReactor::new();
    let client = Rc::new(Client::default());
    let connector = reactor.connect_tcp("192.0.2.1:80".parse().unwrap(), client.clone(), None);
    connector.stop_connecting();
    assert_eq!(client.log.borrow().len(), 1, "not inside stop_connecting");
    reactor.clock().advance(Duration::ZERO);
    assert_eq!(
        client.log.borrow().last().unwrap(),
        "failed: connection attempt was cancelled"
    );
    assert_eq!(
        reactor.tcp_connects()[0].connector.state(),
        ConnectorState::Cancelled
    );
}

#[test]
fn o5_refused_protocol_fails_the_completion() {
    let reactor = MemoryReactor::new();
    let client = Rc::new(Client {
        refuse: true,
        ..Client::default()
    });
    reactor.connect_tcp("192.0.2.1:80".parse().unwrap(), client, None);
    let connector = &reactor.tcp_connects()[0].connector;
    assert!(connector.complete().is_none());
    assert_eq!(connector.state(), ConnectorState::Failed);
}

#[test]
fn o5_spawn_process_validates_connects_and_records() {
    let reactor = MemoryReactor::new();
    let builder = ProcessBuilder::new("cat").arg("-u").env("LANG", "C");
    let (protocol, record) = AccumulatingProcessProtocol::new();
    let transport = reactor.spawn_process(&builder, Box::new(protocol)).unwrap();
    assert!(matches!(
        record.events()[0],
        ProcessEvent::ConnectionMade { pid: Some(_) }
    ));
    let spawns = reactor.spawns();
    assert_eq!(spawns.len(), 1);
    assert_eq!(spawns[0].builder, builder);
    transport.write(b"hello");
    assert_eq!(spawns[0].transport.stdin(), b"hello");
    spawns[0].transport.child_output(1, b"hello");
    assert_eq!(record.output(1), b"hello");

    let bad = ProcessBuilder::new("cat").arg("a\0b");
    let err = reactor
        .spawn_process(&bad, Box::new(AccumulatingProcessProtocol::new().0))
        .err()
        .expect("NUL byte refused");
    assert_eq!(err.step, SpawnStep::InvalidInput);
    assert_eq!(reactor.spawns().len(), 1, "a failed spawn is not recorded");
}

#[test]
fn o5_fail_next_spawn() {
    let reactor = MemoryReactor::new();
    reactor.fail_next_spawn(SpawnError::os(
        SpawnStep::Exec,
        "nope",
        std::io::Error::from_raw_os_error(2),
    ));
    let (protocol, record) = AccumulatingProcessProtocol::new();
    let err = reactor
        .spawn_process(&ProcessBuilder::new("nope"), Box::new(protocol))
        .err()
        .expect("queued failure");
    assert_eq!(err.errno(), Some(2));
    assert!(record.events().is_empty(), "no connection_made on failure");
    assert!(
        reactor
            .spawn_process(
                &ProcessBuilder::new("ok"),
                Box::new(AccumulatingProcessProtocol::new().0)
            )
            .is_ok()
    );
}

#[test]
fn o5_run_runs_call_when_running_hooks_in_order() {
    let reactor = Rc::new(MemoryReactor::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..3 {
        let log = log.clone();
        reactor.call_when_running(move || log.borrow_mut().push(i));
    }
    assert_eq!(reactor.pending_when_running(), 3);
    assert!(log.borrow().is_empty());
    reactor.run().unwrap();
    assert!(reactor.is_running() && reactor.has_run());
    assert_eq!(*log.borrow(), vec![0, 1, 2]);
    let l = log.clone();
    reactor.call_when_running(move || l.borrow_mut().push(9));
    assert_eq!(*log.borrow(), vec![0, 1, 2, 9], "at once when running");
}

#[test]
fn o5_stop_and_restart_errors() {
    let reactor = MemoryReactor::new();
    assert_eq!(reactor.stop(), Err(torsion_testing::StateError::NotRunning));
    reactor.run().unwrap();
    assert_eq!(
        reactor.run(),
        Err(torsion_testing::StateError::AlreadyRunning)
    );
    reactor.stop().unwrap();
    assert!(!reactor.is_running() && reactor.has_stopped());
    assert_eq!(
        reactor.run(),
        Err(torsion_testing::StateError::NotRestartable)
    );
}

#[test]
fn o5_time_comes_from_the_inner_clock() {
    let reactor = MemoryReactor::new();
    let fired = Rc::new(RefCell::new(false));
    let f = fired.clone();
    reactor.call_later(Duration::from_secs(2), move || *f.borrow_mut() = true);
    assert_eq!(reactor.delayed_calls().len(), 1);
    reactor.clock().advance(Duration::from_secs(2));
    assert!(*fired.borrow());
    assert_eq!(reactor.seconds(), 2.0);
}

/// Application code generic over the reactor (CONTRACT O5, B3, B4).
fn stop_when_started<R: torsion_transport::ReactorCore + Clone + 'static>(
    reactor: &R,
    log: std::rc::Rc<std::cell::RefCell<Vec<&'static str>>>,
) {
    let r = reactor.clone();
    reactor.call_when_running(move || {
        log.borrow_mut().push("running");
        log.borrow_mut().push(if r.stop().is_ok() {
            "stopped"
        } else {
            "stop failed"
        });
    });
}

#[test]
fn o5_reactor_core_lets_generic_code_run_on_the_memory_reactor() {
    use torsion_transport::ReactorCore;
    let reactor = std::rc::Rc::new(MemoryReactor::new());
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    stop_when_started(&reactor, log.clone());
    assert!(log.borrow().is_empty(), "nothing before run");
    assert!(!ReactorCore::running(&reactor));
    reactor.run().unwrap();
    assert_eq!(*log.borrow(), ["running", "stopped"]);
    assert_eq!(
        ReactorCore::stop(&reactor),
        Err(torsion_transport::ReactorStateError::NotRunning)
    );
}
