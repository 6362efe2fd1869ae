//! ARCHITECTURE, ownership rule 4: transport methods called from inside protocol callbacks mark
//! state and never call back into the protocol synchronously; nothing panics, no RefCell is
//! borrowed twice, `connection_lost` comes exactly once, from the loop.

mod util;

use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::{Reactor, TcpTransport};
use torsion_transport::{Consumer, Producer, Reason, Transport};
use util::*;

#[derive(Clone, Copy, Debug)]
enum Action {
    Lose,
    Write,
    RegisterProducer,
    Abort,
}

const PRODUCED: u64 = 256 * 1024;

thread_local! {
    /// Set by `act` when `connection_lost` came inside the action; checked by every test.
    static SYNCHRONOUS_LOSS: std::cell::Cell<Option<Action>> = const { std::cell::Cell::new(None) };
}

#[track_caller]
fn assert_never_synchronous() {
    if let Some(action) = SYNCHRONOUS_LOSS.with(|f| f.take()) {
        panic!("{action:?}: connection_lost was called synchronously, inside the action");
    }
}

fn act(t: &Rc<dyn Transport>, action: Action, log: &Shared) {
    let lost_before = log.borrow().lost.len();
    match action {
        Action::Lose => {
            closing(log);
            t.lose_connection();
            t.lose_connection();
        }
        Action::Write => t.write(b"[written]"),
        Action::RegisterProducer => {
            let p = PatternProducer::new(32 * 1024, PRODUCED, true);
            *p.consumer.borrow_mut() = Some(t.clone());
            let first = t.register_producer(Producer::Push(p.clone()));
            log.borrow_mut().data_after_close |= first.is_err();
            p.produce();
        }
        Action::Abort => {
            closing(log);
            t.abort_connection();
            t.abort_connection();
        }
    }
    // ARCHITECTURE rule 4: connection_lost never comes from inside the transport method. (A
    // panic here would be caught by the funnel around the callback; record it instead.)
    if log.borrow().lost.len() != lost_before {
        SYNCHRONOUS_LOSS.with(|f| f.set(Some(action)));
    }
}

fn pair(r: &Reactor, a: Recorder, b: Recorder) -> (Rc<TcpTransport>, Rc<TcpTransport>) {
    let (c, s) = tcp_sockets();
    start_pair(r, c, s, a.boxed(), b.boxed())
}

fn settle(r: &Reactor) {
    for _ in 0..5 {
        r.iterate(Duration::from_millis(1)).unwrap();
    }
}

fn assert_clean_loss(log: &Shared, action: Action) {
    let log = log.borrow();
    assert_eq!(log.lost.len(), 1, "connection_lost exactly once");
    match action {
        Action::Abort => assert!(matches!(log.lost[0], Reason::ConnectionAborted)),
        _ => assert!(log.lost[0].is_clean(), "{}", log.lost[0]),
    }
    assert!(!log.data_after_close, "no data after lose_connection");
}

/// `action` from inside `data_received` of the server; the client sends "ping" and then
/// closes when it has seen what it expects.
fn inside_data_received(action: Action) {
    let r = Reactor::new().unwrap();
    let (client, server) = (shared(), shared());
    let (ct, _st) = pair(
        &r,
        Recorder::new(&client),
        Recorder::new(&server).on_data(move |t, _, log| act(t, action, log)),
    );
    ct.write(b"ping");
    let expect_peer = match action {
        Action::Write => b"[written]".len() as u64,
        Action::RegisterProducer => PRODUCED,
        _ => 0,
    };
    r.run_until(
        || {
            client.borrow().data.len() as u64 >= expect_peer && !server.borrow().lost.is_empty()
                || matches!(action, Action::Write)
                    && client.borrow().data.len() as u64 >= expect_peer
        },
        DEADLINE,
    )
    .unwrap();
    if matches!(action, Action::Write) {
        assert_eq!(client.borrow().data, b"[written]");
        ct.lose_connection();
        r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
            .unwrap();
    }
    if matches!(action, Action::RegisterProducer) {
        assert!(Pattern::new(PRODUCED as usize).check(0, &client.borrow().data));
    }
    r.run_until(|| !client.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    settle(&r);
    assert_eq!(server.borrow().data, b"ping");
    assert_clean_loss(&server, action);
    assert_eq!(client.borrow().lost.len(), 1);
    assert_never_synchronous();
}

/// `action` from inside `connection_made` of the server.
fn inside_connection_made(action: Action) {
    let r = Reactor::new().unwrap();
    let (client, server) = (shared(), shared());
    let (ct, _st) = pair(
        &r,
        Recorder::new(&client),
        Recorder::new(&server).on_made(move |t, log| act(t, action, log)),
    );
    assert!(
        server.borrow().lost.is_empty(),
        "not from inside connection_made"
    );
    let expect_peer: &[u8] = match action {
        Action::Write => b"[written]",
        _ => b"",
    };
    match action {
        Action::Write => {
            r.run_until(|| client.borrow().data == expect_peer, DEADLINE)
                .unwrap();
            ct.lose_connection();
        }
        Action::RegisterProducer => {
            r.run_until(|| client.borrow().data.len() as u64 == PRODUCED, DEADLINE)
                .unwrap();
            assert!(Pattern::new(PRODUCED as usize).check(0, &client.borrow().data));
        }
        _ => {}
    }
    r.run_until(
        || !client.borrow().lost.is_empty() && !server.borrow().lost.is_empty(),
        DEADLINE,
    )
    .unwrap();
    settle(&r);
    assert_clean_loss(&server, action);
    assert_eq!(client.borrow().lost.len(), 1);
    assert_eq!(server.borrow().made, 1);
    assert_never_synchronous();
}

/// `action` from inside `connection_lost` of the server: a harmless no-op.
fn inside_connection_lost(action: Action) {
    let r = Reactor::new().unwrap();
    let (client, server) = (shared(), shared());
    let stopped = Rc::new(std::cell::Cell::new(0usize));
    let s2 = stopped.clone();
    let (ct, st) = pair(
        &r,
        Recorder::new(&client),
        Recorder::new(&server).on_lost(move |t, log| {
            match action {
                Action::RegisterProducer => {
                    let p = PatternProducer::new(1024, 1024, false);
                    *p.consumer.borrow_mut() = Some(t.clone());
                    // E1: on a disconnected transport, stop_producing and not registered.
                    assert!(t.register_producer(Producer::Push(p.clone())).is_ok());
                    s2.set(p.stops.get());
                    p.produce();
                }
                _ => act(t, action, log),
            }
        }),
    );
    ct.write(b"bye");
    ct.lose_connection();
    r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    r.run_until(|| !client.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    settle(&r);
    let log = server.borrow();
    assert_eq!(log.lost.len(), 1, "connection_lost exactly once");
    assert!(log.lost[0].is_clean(), "{}", log.lost[0]);
    assert_eq!(log.data, b"bye");
    assert!(
        client.borrow().data.is_empty(),
        "nothing written after the loss"
    );
    assert_eq!(st.file_descriptor().unsent(), 0);
    assert!(st.file_descriptor().producer().is_none());
    if matches!(action, Action::RegisterProducer) {
        assert_eq!(stopped.get(), 1);
    }
    assert_never_synchronous();
}

#[test]
fn lose_connection_inside_data_received() {
    inside_data_received(Action::Lose);
}

#[test]
fn write_inside_data_received() {
    inside_data_received(Action::Write);
}

#[test]
fn register_producer_inside_data_received() {
    inside_data_received(Action::RegisterProducer);
}

#[test]
fn abort_connection_inside_data_received() {
    inside_data_received(Action::Abort);
}

#[test]
fn lose_connection_inside_connection_made() {
    inside_connection_made(Action::Lose);
}

#[test]
fn write_inside_connection_made() {
    inside_connection_made(Action::Write);
}

#[test]
fn register_producer_inside_connection_made() {
    inside_connection_made(Action::RegisterProducer);
}

#[test]
fn abort_connection_inside_connection_made() {
    inside_connection_made(Action::Abort);
}

#[test]
fn lose_connection_inside_connection_lost() {
    inside_connection_lost(Action::Lose);
}

#[test]
fn write_inside_connection_lost() {
    inside_connection_lost(Action::Write);
}

#[test]
fn register_producer_inside_connection_lost() {
    inside_connection_lost(Action::RegisterProducer);
}

#[test]
fn abort_connection_inside_connection_lost() {
    inside_connection_lost(Action::Abort);
}

/// A panic in `connection_made` closes only that connection (the fix in `stream.rs`).
#[test]
fn panic_inside_connection_made_closes_only_that_connection() {
    let r = Reactor::new().unwrap();
    let (client, server) = (shared(), shared());
    let (_ct, _st) = pair(
        &r,
        Recorder::new(&client),
        Recorder::new(&server).on_made(|_, _| panic!("deliberate")),
    );
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(server.borrow().lost.len(), 1);
}
