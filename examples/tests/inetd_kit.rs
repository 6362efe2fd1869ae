//! inetd's per-connection proxy tested with the test kit: no socket, no process, no sleep.

use std::rc::Rc;

use torsion::prelude::*;
use torsion::testing::{MemoryReactor, StringTransport};
use torsion::transport::SpawnStep;
use torsion_examples::inetd::Connection;

fn setup() -> (
    Rc<MemoryReactor>,
    Rc<StringTransport>,
    Connection<MemoryReactor>,
) {
    let reactor = Rc::new(MemoryReactor::new());
    let builder = Rc::new(ProcessBuilder::new("tr").args(["a-z", "A-Z"]));
    let mut conn = Connection::new(reactor.clone(), builder);
    let tcp = Rc::new(StringTransport::new());
    conn.connection_made(tcp.clone() as Rc<dyn Transport>);
    (reactor, tcp, conn)
}

#[test]
fn each_connection_spawns_the_service_with_the_builder_as_given() {
    let (reactor, _tcp, _conn) = setup();
    let spawns = reactor.spawns();
    assert_eq!(spawns.len(), 1);
    assert_eq!(spawns[0].builder.get_argv(), ["tr", "a-z", "A-Z"]);
}

#[test]
fn bytes_flow_both_ways_and_producers_are_registered_both_ways() {
    let (reactor, tcp, mut conn) = setup();
    let child = reactor.spawns()[0].transport.clone();
    conn.data_received(b"hello");
    assert_eq!(child.stdin(), b"hello", "socket -> child stdin");
    child.child_output(1, b"HELLO");
    assert_eq!(tcp.value(), b"HELLO", "child stdout -> socket");
    assert_eq!(
        tcp.streaming(),
        Some(true),
        "the child is the socket's push producer"
    );
    assert!(
        child.producer().is_some(),
        "the socket is the child's producer"
    );
}

#[test]
fn client_eof_closes_the_childs_stdin_and_the_childs_end_closes_the_connection() {
    let (reactor, tcp, mut conn) = setup();
    let child = reactor.spawns()[0].transport.clone();
    conn.as_half_closeable().unwrap().read_connection_lost();
    assert!(child.closed_fds().contains(&0));
    assert!(!tcp.disconnecting());
    child.close_all_child_fds();
    child.exit(0);
    assert!(tcp.disconnecting(), "process_ended closed the connection");
}

#[test]
fn a_client_that_goes_away_closes_the_childs_pipes() {
    let (reactor, _tcp, mut conn) = setup();
    let child = reactor.spawns()[0].transport.clone();
    conn.connection_lost(Reason::ConnectionDone);
    assert_eq!(child.lose_connection_calls(), 1);
}

#[test]
fn a_spawn_failure_is_reported_to_the_client_and_closes_the_connection() {
    let reactor = Rc::new(MemoryReactor::new());
    reactor.fail_next_spawn(SpawnError::os(
        SpawnStep::Exec,
        "tr",
        std::io::Error::from_raw_os_error(2),
    ));
    let mut conn = Connection::new(reactor.clone(), Rc::new(ProcessBuilder::new("tr")));
    let tcp = Rc::new(StringTransport::new());
    conn.connection_made(tcp.clone() as Rc<dyn Transport>);
    assert!(String::from_utf8_lossy(&tcp.value()).contains("cannot start"));
    assert!(tcp.disconnecting());
}
