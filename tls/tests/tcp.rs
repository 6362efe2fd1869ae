//! TLS over real sockets driven by the reactor: TCP through the server and client
//! factories, and a Unix socket.
#![cfg(unix)]

mod common;

use std::rc::Rc;
use std::time::Duration;

use common::*;
use torsion_reactor::Reactor;
use torsion_testing::AccumulatingProtocol;
use torsion_tls::{TlsClientFactory, TlsError, TlsServerFactory, TlsVersion};
use torsion_transport::{ClientFactory, ReactorTcp, ReactorUnix, UnixListenOptions, factory_fn};

const DEADLINE: Duration = Duration::from_secs(20);

fn tcp_echo(version: TlsVersion) {
    let reactor = Reactor::new().unwrap();
    let pki = Pki::new();
    let server = TlsServerFactory::new(
        pki.server_config(&[version]),
        factory_fn(|_| Box::new(Echo(None))),
    );
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), Rc::new(server))
        .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let (app, got) = AccumulatingProtocol::new();
    let one = OneClient::new(Box::new(app));
    let client: Rc<dyn ClientFactory> = Rc::new(TlsClientFactory::new(
        pki.client_config("127.0.0.1", &[version]),
        one.clone(),
    ));
    reactor.connect_tcp(addr, client, Some(DEADLINE));
    reactor.run_until(|| got.made(), DEADLINE).unwrap();
    // 1 MiB through the echo, both ways over real sockets.
    let payload: Vec<u8> = (0..1024 * 1024).map(|i| (i % 249) as u8).collect();
    got.transport().unwrap().write(&payload);
    reactor
        .run_until(|| got.data().len() >= payload.len(), DEADLINE)
        .unwrap();
    assert_eq!(got.data(), payload);
    got.transport().unwrap().lose_connection();
    reactor.run_until(|| got.closed(), DEADLINE).unwrap();
    assert!(got.reason().unwrap().is_clean(), "{:?}", got.reason());
    port.stop_listening();
}

#[test]
fn tcp_echo_tls13() {
    tcp_echo(TlsVersion::Tls13);
}

#[test]
fn tcp_echo_tls12() {
    tcp_echo(TlsVersion::Tls12);
}

#[test]
fn tcp_wrong_name_fails_the_client_only_with_a_reason() {
    let reactor = Reactor::new().unwrap();
    let pki = Pki::new();
    let (sapp, server_h) = AccumulatingProtocol::new();
    let cell = std::cell::RefCell::new(Some(sapp));
    let server = TlsServerFactory::new(
        pki.server_config(&[]),
        factory_fn(move |_| match cell.borrow_mut().take() {
            Some(p) => Box::new(p),
            None => Box::new(Echo(None)),
        }),
    );
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), Rc::new(server))
        .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let (app, got) = AccumulatingProtocol::new();
    let client: Rc<dyn ClientFactory> = Rc::new(TlsClientFactory::new(
        pki.client_config("wrong.example", &[]),
        OneClient::new(Box::new(app)),
    ));
    reactor.connect_tcp(addr, client, Some(DEADLINE));
    reactor
        .run_until(|| got.closed() && server_h.closed(), DEADLINE)
        .unwrap();
    let err = TlsError::from_reason(&got.reason().unwrap())
        .cloned()
        .unwrap();
    assert!(err.to_string().contains("could not be verified"), "{err}");
    assert!(TlsError::from_reason(&server_h.reason().unwrap()).is_some());
    port.stop_listening();
}

#[test]
fn unix_socket_echo() {
    let reactor = Reactor::new().unwrap();
    let pki = Pki::new();
    let dir = TempDir::new("unix");
    let path = dir.path().join("tls.sock");
    let server =
        TlsServerFactory::new(pki.server_config(&[]), factory_fn(|_| Box::new(Echo(None))));
    let port = reactor
        .listen_unix(&path, Rc::new(server), UnixListenOptions::default())
        .unwrap();
    let (app, got) = AccumulatingProtocol::new();
    let client: Rc<dyn ClientFactory> = Rc::new(TlsClientFactory::new(
        pki.client_config("localhost", &[]),
        OneClient::new(Box::new(app)),
    ));
    reactor.connect_unix(path.clone(), client, Some(DEADLINE));
    reactor.run_until(|| got.made(), DEADLINE).unwrap();
    got.transport().unwrap().write(b"over a unix socket");
    reactor
        .run_until(|| got.data().len() >= 18, DEADLINE)
        .unwrap();
    assert_eq!(got.data(), b"over a unix socket");
    got.transport().unwrap().lose_connection();
    reactor.run_until(|| got.closed(), DEADLINE).unwrap();
    assert!(got.reason().unwrap().is_clean());
    port.stop_listening();
}

#[test]
fn eight_mib_each_way_over_tcp_with_a_slow_reader_in_bounded_memory() {
    const TOTAL: usize = 8 * 1024 * 1024;
    let reactor = Reactor::new().unwrap();
    let pki = Pki::new();
    let ss = Rc::new(StreamState::default());
    let s2 = ss.clone();
    let server = TlsServerFactory::new(
        pki.server_config(&[]),
        factory_fn(move |_| {
            Box::new(Streamer {
                total: TOTAL,
                state: s2.clone(),
            })
        }),
    );
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), Rc::new(server))
        .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let cs = Rc::new(StreamState::default());
    let client: Rc<dyn ClientFactory> = Rc::new(TlsClientFactory::new(
        pki.client_config("127.0.0.1", &[]),
        OneClient::new(Box::new(Streamer {
            total: TOTAL,
            state: cs.clone(),
        })),
    ));
    reactor.connect_tcp(addr, client, Some(DEADLINE));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let bound = 160 * 1024;
    let mut max_unsent = 0;
    let mut rounds = 0u64;
    while ss.received.get() < TOTAL || cs.received.get() < TOTAL {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled at {} / {}",
            ss.received.get(),
            cs.received.get()
        );
        reactor.iterate(Duration::from_millis(10)).unwrap();
        rounds += 1;
        // Each side starts streaming once connected (from the loop, as a timer would).
        for s in [&ss, &cs] {
            if s.sent.get() == 0 && s.transport.borrow().is_some() {
                s.pump_out(TOTAL);
            }
        }
        for s in [&ss, &cs] {
            if let Some(t) = s.transport.borrow().as_ref() {
                let unsent = t.unsent_bytes();
                max_unsent = max_unsent.max(unsent);
                assert!(unsent <= bound, "the TLS backlog stays bounded ({unsent})");
            }
        }
        // The slow reader takes its next bite every other iteration.
        if rounds.is_multiple_of(2) {
            for s in [&ss, &cs] {
                if s.read_paused.replace(false)
                    && let Some(t) = s.transport.borrow().as_ref()
                {
                    t.resume_producing();
                }
            }
        }
    }
    assert_eq!(
        ss.checksum.get(),
        cs.checksum.get(),
        "the same stream both ways"
    );
    assert!(max_unsent > 0, "a backlog did build up");
    if let Some(t) = cs.transport.borrow().as_ref() {
        t.lose_connection();
    }
    port.stop_listening();
}
