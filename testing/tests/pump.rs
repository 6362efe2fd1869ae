//! CONTRACT O6: the loopback pump.

use std::rc::Rc;

use torsion_testing::contract::ProbeProducer;
use torsion_testing::{
    AccumulatingProtocol, ChunkProducer, MAX_FLUSH_ROUNDS, Pump, connect,
    connected_server_and_client,
};
use torsion_transport::{Consumer, Producer, Protocol, Reason, Transport, factory_fn};

/// Echoes everything back.
struct Echo(Option<Rc<dyn Transport>>);

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.0 = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
}

/// Sends a greeting when connected.
struct Greeter;

impl Protocol for Greeter {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.write(b"220 hello\r\n");
    }
    fn data_received(&mut self, _data: &[u8]) {}
}

#[test]
fn o6_pump_moves_data_both_ways() {
    let (client, seen) = AccumulatingProtocol::new();
    let pump = Pump::new(Box::new(Echo(None)), Box::new(client));
    pump.client().write(b"ping");
    assert!(seen.data().is_empty(), "nothing moves until pumped");
    assert!(pump.pump(), "client -> server");
    assert!(
        seen.data().is_empty(),
        "the echo is written during the round"
    );
    assert!(pump.pump(), "server -> client");
    assert_eq!(seen.data(), b"ping");
    assert!(!pump.pump(), "quiet");
}

#[test]
fn o6_connect_flushes_the_greeting() {
    let (client, seen) = AccumulatingProtocol::new();
    let _pump = connect(Box::new(Greeter), Box::new(client));
    assert_eq!(seen.data(), b"220 hello\r\n");
}

#[test]
fn o6_connected_server_and_client_builds_from_factories() {
    let server = factory_fn(|_| Box::new(Greeter));
    let client = factory_fn(|_| Box::new(Echo(None)));
    let pump = connected_server_and_client(&*server, &*client).expect("both built");
    assert_eq!(pump.server().peer(), pump.client().host());
}

#[test]
fn o6_lose_connection_reaches_both_sides() {
    let (server, server_seen) = AccumulatingProtocol::new();
    let (client, client_seen) = AccumulatingProtocol::new();
    let pump = connect(Box::new(server), Box::new(client));
    pump.server().write(b"last words");
    pump.server().lose_connection();
    assert!(!server_seen.closed(), "not inside lose_connection");
    pump.flush();
    assert_eq!(client_seen.data(), b"last words");
    assert!(server_seen.closed() && client_seen.closed());
    assert!(matches!(server_seen.reason(), Some(Reason::ConnectionDone)));
    assert!(matches!(client_seen.reason(), Some(Reason::ConnectionDone)));
    assert!(!pump.server().connected() && !pump.client().connected());
}

#[test]
fn o6_abort_resets_the_peer() {
    let (server, server_seen) = AccumulatingProtocol::new();
    let (client, client_seen) = AccumulatingProtocol::new();
    let pump = connect(Box::new(server), Box::new(client));
    pump.client().write(b"dropped");
    pump.client().abort_connection();
    pump.flush();
    assert!(
        server_seen.data().is_empty(),
        "the aborted buffer is dropped"
    );
    assert!(matches!(
        client_seen.reason(),
        Some(Reason::ConnectionAborted)
    ));
    assert!(matches!(
        server_seen.reason(),
        Some(Reason::ConnectionLost(_))
    ));
}

#[test]
fn o6_pump_resumes_pull_producers() {
    let (client, seen) = AccumulatingProtocol::new();
    let pump = connect(Box::new(Echo(None)), Box::new(client));
    let server: Rc<dyn Transport> = pump.server().clone();
    let producer = ChunkProducer::new(&server);
    server
        .register_producer(Producer::Pull(producer.clone()))
        .unwrap();
    pump.flush();
    assert_eq!(seen.data(), producer.expected_output());
    assert!(
        pump.server().producer().is_none(),
        "it unregistered after ten chunks"
    );
    assert_eq!(producer.resumes(), 10);
}

#[test]
fn o6_paused_reader_holds_data_and_pauses_the_writer() {
    let (client, seen) = AccumulatingProtocol::new();
    let pump = connect(Box::new(Echo(None)), Box::new(client));
    pump.server().set_buffer_size(64);
    let producer = ProbeProducer::new();
    pump.server()
        .register_producer(Producer::Push(producer.clone()))
        .unwrap();
    torsion_transport::PushProducer::pause_producing(&**pump.client());
    pump.server().write(&[b'x'; 100]);
    assert_eq!(
        producer.pauses(),
        1,
        "100 unsent bytes are over the 64-byte buffer"
    );
    pump.flush();
    assert!(seen.data().is_empty(), "the client is not reading");
    assert_eq!(pump.server().pending_bytes(), 100);
    assert_eq!(producer.resumes(), 0);
    torsion_transport::PushProducer::resume_producing(&**pump.client());
    pump.flush();
    assert_eq!(seen.data().len(), 100);
    assert_eq!(producer.resumes(), 1, "resumed once the buffer drained");
}

#[test]
fn o6_flush_fails_loudly_when_the_pump_does_not_settle() {
    let (a, b) = (Box::new(Echo(None)), Box::new(Echo(None)));
    let pump = Pump::new(a, b);
    pump.client().write(b"forever");
    let err = pump.try_flush().unwrap_err();
    assert_eq!(err.rounds, MAX_FLUSH_ROUNDS);
    assert!(err.to_string().contains("pump did not settle"));
}

#[test]
#[should_panic(expected = "pump did not settle")]
fn o6_flush_panics_when_the_pump_does_not_settle() {
    let pump = Pump::new(Box::new(Echo(None)), Box::new(Echo(None)));
    pump.server().write(b"ping-pong");
    pump.flush();
}
