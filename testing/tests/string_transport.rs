//! CONTRACT O1 (`StringTransport`) and O2 (`StringTransportWithDisconnection`).

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use torsion_testing::contract::ProbeProducer;
use torsion_testing::{
    AccumulatingProtocol, ProducerState, StateError, StringTransport,
    StringTransportWithDisconnection,
};
use torsion_transport::{
    Address, Consumer, Producer, ProducerError, Protocol, PushProducer, Reason, Transport,
};

fn panic_message(f: impl FnOnce()) -> String {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => panic!("expected a panic"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

#[test]
fn o1_starts_connected_and_write_appends() {
    let t = StringTransport::new();
    assert!(t.connected() && !t.disconnecting() && !t.disconnected());
    t.write(b"ab");
    t.write_sequence(&[b"c", b"d"]);
    assert_eq!(t.value(), b"abcd");
    t.clear();
    assert!(t.value().is_empty());
    t.write(b"x");
    assert_eq!(t.take_value(), b"x");
    assert!(t.value().is_empty());
}

#[test]
fn o1_write_after_lose_connection_still_appends() {
    let t = StringTransport::new();
    t.write(b"a");
    t.lose_connection();
    t.write(b"b");
    assert_eq!(t.value(), b"ab");
    assert!(t.disconnecting(), "lose_connection sets disconnecting");
    assert!(!t.disconnected() && t.connected(), "and nothing else");
}

#[test]
fn o1_abort_connection_sets_disconnected() {
    let t = StringTransport::new();
    t.abort_connection();
    assert!(t.disconnected() && t.disconnecting() && !t.connected());
}

#[test]
fn o1_lose_write_connection_is_recorded() {
    let t = StringTransport::new();
    assert!(!t.write_disconnected());
    t.lose_write_connection();
    assert!(t.write_disconnected() && !t.disconnecting());
}

#[test]
fn o1_default_and_given_addresses() {
    let t = StringTransport::new();
    assert_eq!(t.host(), Address::Memory("host".into()));
    assert_eq!(t.peer(), Address::Memory("peer".into()));
    let peer: Address = "10.0.0.1:99"
        .parse::<std::net::SocketAddr>()
        .unwrap()
        .into();
    let t = StringTransport::with_addresses(Address::Unix(None), peer.clone());
    assert_eq!(t.host(), Address::Unix(None));
    assert_eq!(t.peer(), peer);
}

#[test]
fn o1_producer_registration_is_recorded_and_not_called() {
    let t = StringTransport::new();
    assert!(t.producer().is_none() && t.streaming().is_none());
    let p = ProbeProducer::new();
    t.register_producer(Producer::Pull(p.clone())).unwrap();
    assert_eq!(t.streaming(), Some(false));
    assert!(t.producer().unwrap().same_as(&Producer::Pull(p.clone())));
    assert!(
        p.calls().is_empty(),
        "StringTransport never calls the producer"
    );
    t.unregister_producer();
    t.register_producer(Producer::Push(p)).unwrap();
    assert_eq!(t.streaming(), Some(true));
}

#[test]
fn o1_second_producer_is_an_error() {
    let t = StringTransport::new();
    t.register_producer(Producer::Push(ProbeProducer::new()))
        .unwrap();
    assert_eq!(
        t.register_producer(Producer::Push(ProbeProducer::new())),
        Err(ProducerError::AlreadyRegistered)
    );
}

#[test]
fn o1_unregister_with_none_is_an_error() {
    let t = StringTransport::new();
    assert_eq!(
        t.try_unregister_producer(),
        Err(ProducerError::NotRegistered)
    );
    let msg = panic_message(|| t.unregister_producer());
    assert!(msg.contains("no producer is registered"), "{msg}");
    StringTransport::lenient().unregister_producer();
}

#[test]
fn o1_producer_state_producing_paused_stopped() {
    let t = StringTransport::new();
    assert_eq!(t.producer_state(), ProducerState::Producing);
    t.pause_producing();
    assert_eq!(t.producer_state(), ProducerState::Paused);
    t.resume_producing();
    assert_eq!(t.producer_state(), ProducerState::Producing);
    t.stop_producing();
    assert_eq!(t.producer_state(), ProducerState::Stopped);
    assert!(t.disconnecting(), "D8: stop_producing is lose_connection");
}

#[test]
fn o1_pause_after_stop_panics_unless_lenient() {
    let t = StringTransport::new();
    t.stop_producing();
    assert_eq!(t.try_pause_producing(), Err(StateError::Stopped));
    assert_eq!(t.try_resume_producing(), Err(StateError::Stopped));
    let msg = panic_message(|| t.pause_producing());
    assert!(
        msg.contains("pause_producing") && msg.contains("stop_producing"),
        "{msg}"
    );
    assert_eq!(t.producer_state(), ProducerState::Stopped);

    let lenient = StringTransport::lenient();
    lenient.stop_producing();
    lenient.pause_producing();
    lenient.resume_producing();
    assert_eq!(lenient.producer_state(), ProducerState::Stopped);
}

#[test]
fn o1_pause_after_disconnecting_panics_unless_lenient() {
    let t = StringTransport::new();
    t.lose_connection();
    assert_eq!(t.try_resume_producing(), Err(StateError::Disconnecting));
    let msg = panic_message(|| t.resume_producing());
    assert!(msg.contains("lose_connection"), "{msg}");
    let aborted = StringTransport::new();
    aborted.abort_connection();
    assert_eq!(
        aborted.try_pause_producing(),
        Err(StateError::Disconnecting)
    );

    let lenient = StringTransport::lenient();
    lenient.lose_connection();
    lenient.pause_producing();
    assert_eq!(
        lenient.producer_state(),
        ProducerState::Producing,
        "refused, quietly"
    );
}

#[test]
fn o2_lose_connection_calls_connection_lost_once() {
    let (protocol, seen) = AccumulatingProtocol::new();
    let t = Rc::new(StringTransportWithDisconnection::new());
    t.make_connection(Box::new(protocol));
    assert!(seen.made() && t.connected());
    t.lose_connection();
    assert!(!t.connected() && t.disconnecting());
    assert!(matches!(seen.reason(), Some(Reason::ConnectionDone)));
    t.lose_connection();
    assert_eq!(seen.closed_count(), 1, "a no-op when not connected");
}

#[test]
fn o2_lose_connection_when_not_connected_is_a_no_op() {
    let (protocol, seen) = AccumulatingProtocol::new();
    let t = Rc::new(StringTransportWithDisconnection::new());
    t.make_connection(Box::new(protocol));
    t.set_connected(false);
    t.lose_connection();
    assert!(!seen.closed());
}

/// Closes from inside its own callbacks, and records whether a callback was entered
/// while another one was running.
struct CloseInside {
    transport: Option<Rc<dyn Transport>>,
    log: Rc<RefCell<Vec<String>>>,
    busy: bool,
}

impl Protocol for CloseInside {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.busy = true;
        if let Some(t) = &self.transport {
            t.lose_connection();
        }
        self.log
            .borrow_mut()
            .push(format!("data {}", String::from_utf8_lossy(data)));
        self.busy = false;
    }
    fn connection_lost(&mut self, reason: Reason) {
        assert!(!self.busy, "connection_lost inside data_received");
        self.log.borrow_mut().push(format!("lost: {reason}"));
    }
}

#[test]
fn o2_lose_connection_inside_data_received_is_queued() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let t = Rc::new(StringTransportWithDisconnection::new());
    t.make_connection(Box::new(CloseInside {
        transport: None,
        log: log.clone(),
        busy: false,
    }));
    t.data_received(b"bye");
    assert_eq!(
        *log.borrow(),
        vec!["data bye", "lost: connection was closed cleanly"],
        "delivered after data_received returned, no RefCell panic"
    );
    t.data_received(b"after");
    assert_eq!(log.borrow().len(), 2, "no data after connection_lost");
}

#[test]
fn o2_lose_connection_inside_a_test_driven_callback_waits_for_deliver_pending() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let t = Rc::new(StringTransportWithDisconnection::new());
    let shared = t.make_connection(Box::new(CloseInside {
        transport: None,
        log: log.clone(),
        busy: false,
    }));
    shared.borrow_mut().data_received(b"x");
    assert_eq!(
        log.borrow().len(),
        1,
        "queued while the test held the protocol"
    );
    t.deliver_pending();
    assert_eq!(log.borrow().len(), 2);
    assert!(t.connection_lost_delivered());
}

/// D9 on the fake: what the test has not taken counts as unsent; taking it (or clearing)
/// empties the backlog; an abort drops it.
#[test]
fn d9_unsent_bytes_is_what_the_test_has_not_taken() {
    let t = StringTransport::new();
    assert_eq!(t.unsent_bytes(), 0);
    t.write(b"hello");
    t.write(b" world");
    assert_eq!(t.unsent_bytes(), 11);
    assert_eq!(t.take_value(), b"hello world");
    assert_eq!(t.unsent_bytes(), 0);
    t.write(b"again");
    t.clear();
    assert_eq!(t.unsent_bytes(), 0);
    t.write(b"lost");
    t.abort_connection();
    assert_eq!(t.unsent_bytes(), 0, "an abort drops the backlog");
    assert_eq!(
        t.value(),
        b"lost",
        "the test can still see what was written"
    );
}
