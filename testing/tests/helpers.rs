//! The observation helpers: `AccumulatingProtocol`, `ChunkProducer`,
//! `AccumulatingProcessProtocol`.

use std::rc::Rc;

use torsion_testing::{
    AccumulatingProcessProtocol, AccumulatingProtocol, ChunkProducer, FakeProcessTransport,
    ProcessEvent, StringTransport,
};
use torsion_transport::{
    Consumer, ExitReason, ProcessProtocol, Producer, Protocol, PullProducer, Reason,
};

#[test]
fn accumulating_protocol_records_made_data_and_reason() {
    let (mut p, seen) = AccumulatingProtocol::new();
    assert!(!seen.made());
    p.connection_made(Rc::new(StringTransport::new()));
    p.data_received(b"ab");
    p.data_received(b"c");
    p.connection_lost(Reason::ConnectionDone);
    assert!(seen.made() && seen.transport().is_some());
    assert_eq!(seen.data(), b"abc");
    assert_eq!(seen.data_calls(), 2);
    assert!(seen.closed() && seen.closed_count() == 1);
    assert!(matches!(seen.reason(), Some(Reason::ConnectionDone)));
    assert_eq!(seen.take_data(), b"abc");
    assert!(seen.data().is_empty());
    assert!(p.as_half_closeable().is_none());
    let (mut hc, seen) = AccumulatingProtocol::half_closeable();
    hc.as_half_closeable().unwrap().read_connection_lost();
    assert!(seen.read_closed() && !seen.closed());
}

#[test]
fn chunk_producer_writes_ten_chunks_then_unregisters() {
    let t = Rc::new(StringTransport::new());
    let p = ChunkProducer::new(&t);
    t.register_producer(Producer::Pull(p.clone())).unwrap();
    for _ in 0..12 {
        if let Some(producer) = t.producer() {
            producer.resume_producing();
        }
    }
    assert_eq!(p.written(), 10);
    assert!(p.finished() && t.producer().is_none());
    assert_eq!(t.value(), p.expected_output());
    assert!(t.value().starts_with(b"chunk 0\nchunk 1\n"));
}

#[test]
fn chunk_producer_stops_writing_when_stopped() {
    let t = Rc::new(StringTransport::new());
    let p = ChunkProducer::with_count(&t, 3);
    p.resume_producing();
    p.stop_producing();
    p.resume_producing();
    assert!(p.stopped());
    assert_eq!(t.value(), b"chunk 0\n");
}

#[test]
fn accumulating_process_protocol_records_every_callback_in_order() {
    let (protocol, record) = AccumulatingProcessProtocol::new();
    let child = Rc::new(FakeProcessTransport::new());
    child.make_connection(Box::new(protocol));
    child.child_output(2, b"e");
    child.exit(1);
    child.close_all_child_fds();
    let reason = ExitReason::exited(1);
    assert_eq!(
        record.events(),
        vec![
            ProcessEvent::ConnectionMade { pid: Some(4242) },
            ProcessEvent::ChildDataReceived {
                fd: 2,
                data: b"e".to_vec()
            },
            ProcessEvent::ProcessExited(reason),
            ProcessEvent::ChildConnectionLost(0),
            ProcessEvent::ChildConnectionLost(1),
            ProcessEvent::ChildConnectionLost(2),
            ProcessEvent::ProcessEnded(reason),
        ]
    );
    assert!(record.transport().is_some());
    record.check_order().unwrap();
}

#[test]
fn check_order_rejects_contract_f_violations() {
    let (mut p, record) = AccumulatingProcessProtocol::new();
    p.connection_made(Rc::new(FakeProcessTransport::new()));
    p.child_connection_lost(1);
    p.child_data_received(1, b"late");
    let err = record.check_order().unwrap_err();
    assert!(err.contains("F2"), "{err}");

    let (mut p, record) = AccumulatingProcessProtocol::new();
    p.connection_made(Rc::new(FakeProcessTransport::new()));
    p.process_ended(ExitReason::ProcessDone);
    assert!(record.check_order().unwrap_err().contains("F4"));

    let (mut p, record) = AccumulatingProcessProtocol::new();
    p.connection_made(Rc::new(FakeProcessTransport::new()));
    p.process_exited(ExitReason::ProcessDone);
    p.process_ended(ExitReason::ProcessDone);
    p.child_connection_lost(0);
    assert!(record.check_order().unwrap_err().contains("last"));
}
