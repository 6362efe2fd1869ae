//! The `ssl:` server and `tls:` client endpoint strings, over real TCP.
#![cfg(unix)]

// The certificate helpers of torsion-tls's own tests, shared rather than copied.
#[path = "../../tls/tests/common/mod.rs"]
mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use torsion_daemon::endpoints::{self, ClientEndpoint, ServerEndpoint};
use torsion_reactor::Reactor;
use torsion_testing::AccumulatingProtocol;
use torsion_tls::TlsError;
use torsion_transport::defer::Failure;
use torsion_transport::{Transport, factory_fn};

const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn descriptions_are_checked_when_parsed() {
    let ok = ServerEndpoint::parse("ssl:8443:privateKey=key.pem:certKey=cert.pem").unwrap();
    assert!(ok.to_string().starts_with("ssl:"), "{ok}");
    ServerEndpoint::parse("ssl:port=0:privateKey=k.pem:interface=127.0.0.1:backlog=5").unwrap();
    ServerEndpoint::parse("SSL:443:sslmethod=TLSv1_2_METHOD").unwrap();
    let bad = |d: &str| ServerEndpoint::parse(d).unwrap_err().to_string();
    assert!(bad("ssl:port=x").contains("port"), "{}", bad("ssl:port=x"));
    assert!(bad("ssl:privateKey=k.pem").contains("port"));
    assert!(bad("ssl:443:sslmethod=SSLv3_METHOD").contains("sslmethod"));
    assert!(bad("ssl:443:color=blue").contains("color"));
    ClientEndpoint::parse("tls:host=example.org:port=443").unwrap();
    ClientEndpoint::parse("tls:example.org:443:trustRoots=/etc/ssl/certs").unwrap();
    let bad = |d: &str| ClientEndpoint::parse(d).unwrap_err().to_string();
    assert!(bad("tls:port=443").contains("host"));
    assert!(bad("tls:host=a:port=70000").contains("port"));
    assert!(bad("tls:host=a:port=1:privateKey=k.pem").contains("certificate"));
}

struct Files {
    dir: TempDir,
    pki: Pki,
}

fn files() -> Files {
    let pki = Pki::new();
    let dir = TempDir::new("endpoints");
    dir.write("key.pem", &pki.server.key_pem);
    dir.write("cert.pem", &pki.server.cert_pem);
    dir.write("ca.pem", &pki.ca.pem);
    Files { dir, pki }
}

fn listen(reactor: &Reactor, f: &Files) -> u16 {
    let d = format!(
        "ssl:0:privateKey={}:certKey={}:interface=127.0.0.1",
        f.dir.path().join("key.pem").display(),
        f.dir.path().join("cert.pem").display()
    );
    let port = endpoints::listen(reactor, &d, factory_fn(|_| Box::new(Echo(None)))).unwrap();
    port.host().port().unwrap()
}

type Outcome = Rc<RefCell<Option<Result<Rc<dyn Transport>, Failure>>>>;

fn connect(reactor: &Reactor, d: &str) -> (Outcome, torsion_testing::AccumulatingHandle) {
    let (app, got) = AccumulatingProtocol::new();
    let cell = RefCell::new(Some(app));
    let out: Outcome = Rc::default();
    let o = out.clone();
    drop(
        endpoints::connect(
            reactor,
            d,
            factory_fn(move |_| match cell.borrow_mut().take() {
                Some(p) => Box::new(p),
                None => Box::new(Echo(None)),
            }),
        )
        .add_both(move |r| {
            *o.borrow_mut() = Some(r);
            Ok(())
        }),
    );
    reactor
        .run_until(|| out.borrow().is_some(), DEADLINE)
        .unwrap();
    (out, got)
}

#[test]
fn ssl_server_and_tls_client_echo() {
    let reactor = Reactor::new().unwrap();
    let f = files();
    let port = listen(&reactor, &f);
    let (out, got) = connect(
        &reactor,
        &format!(
            "tls:host=127.0.0.1:port={port}:trustRoots={}",
            f.dir.path().join("ca.pem").display()
        ),
    );
    let t = match out.borrow_mut().take().unwrap() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    // The Deferred fired after the handshake, with the TLS transport.
    t.write(b"through the endpoints");
    reactor
        .run_until(|| got.data().len() >= 21, DEADLINE)
        .unwrap();
    assert_eq!(got.data(), b"through the endpoints");
    t.lose_connection();
    reactor.run_until(|| got.closed(), DEADLINE).unwrap();
    assert!(got.reason().unwrap().is_clean());
}

#[test]
fn tls_client_with_a_roots_directory_and_localhost() {
    let reactor = Reactor::new().unwrap();
    let f = files();
    let roots = TempDir::new("roots-dir");
    roots.write("ca.pem", &f.pki.ca.pem);
    let port = listen(&reactor, &f);
    let (out, _got) = connect(
        &reactor,
        &format!("tls:localhost:{port}:trustRoots={}", roots.path().display()),
    );
    assert!(out.borrow().as_ref().unwrap().is_ok());
}

#[test]
fn an_unknown_ca_fails_the_connection_with_the_verification_error() {
    let reactor = Reactor::new().unwrap();
    let f = files();
    let stranger = TempDir::new("stranger");
    stranger.write("ca.pem", &Ca::new("a stranger").pem);
    let port = listen(&reactor, &f);
    let (out, got) = connect(
        &reactor,
        &format!(
            "tls:host=127.0.0.1:port={port}:trustRoots={}",
            stranger.path().join("ca.pem").display()
        ),
    );
    let failure = match out.borrow_mut().take().unwrap() {
        Ok(_) => panic!("connected to a server signed by an unknown CA"),
        Err(f) => f,
    };
    let e = failure.downcast_ref::<TlsError>().expect("a TlsError");
    assert!(
        e.to_string().contains("certificate could not be verified"),
        "{e}"
    );
    reactor.run_until(|| got.closed(), DEADLINE).unwrap();
}

#[test]
fn unreadable_key_files_are_listen_errors_naming_the_file() {
    let reactor = Reactor::new().unwrap();
    let err = endpoints::listen(
        &reactor,
        "ssl:0:privateKey=/nonexistent/key.pem:interface=127.0.0.1",
        factory_fn(|_| Box::new(Echo(None))),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
}

#[test]
fn a_refused_tls_connection_is_the_tcp_error() {
    let reactor = Reactor::new().unwrap();
    let f = files();
    let port = free_port();
    let (out, _got) = connect(
        &reactor,
        &format!(
            "tls:host=127.0.0.1:port={port}:trustRoots={}",
            f.dir.path().join("ca.pem").display()
        ),
    );
    let failure = match out.borrow_mut().take().unwrap() {
        Ok(_) => panic!("connected to nobody"),
        Err(f) => f,
    };
    let e = failure
        .downcast_ref::<endpoints::ConnectError>()
        .unwrap_or_else(|| panic!("not a ConnectError: {failure}"));
    assert!(e.is_refused(), "{e}");
}
