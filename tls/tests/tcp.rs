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
