//! Interoperability with Debian's `openssl` command: its `s_client` against our server
//! and our client against its `s_server`, for TLS 1.2 and 1.3 (`.ci/run` installs
//! `openssl`).
#![cfg(unix)]

mod common;

use std::cell::RefCell;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::*;
use torsion_reactor::Reactor;
use torsion_testing::AccumulatingProtocol;
use torsion_tls::{TlsClientConfig, TlsClientFactory, TlsError, TlsVersion};
use torsion_transport::{ClientFactory, Protocol, ReactorTcp, Transport, factory_fn};

const DEADLINE: Duration = Duration::from_secs(20);

/// A child killed and reaped on drop.
struct Openssl(Child);

impl Openssl {
    fn spawn(args: &[&str]) -> Openssl {
        let child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl command (Debian package openssl; .ci/run installs it)");
        Openssl(child)
    }

    fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }

    fn output(&mut self) -> (String, String) {
        let (mut out, mut err) = (String::new(), String::new());
        if let Some(o) = self.0.stdout.as_mut() {
            let _ = o.read_to_string(&mut out);
        }
        if let Some(e) = self.0.stderr.as_mut() {
            let _ = e.read_to_string(&mut err);
        }
        (out, err)
    }
}

impl Drop for Openssl {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn version_flag(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::Tls12 => "-tls1_2",
        _ => "-tls1_3",
    }
}

/// Greets with the protocol version once it has a line, then closes.
struct Greeter {
    transport: Option<Rc<dyn Transport>>,
    control: torsion_tls::TlsControl,
    got: Rc<RefCell<Vec<u8>>>,
}

impl Protocol for Greeter {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.got.borrow_mut().extend_from_slice(data);
        if self.got.borrow().ends_with(b"\n")
            && let Some(t) = &self.transport
        {
            t.write(format!("welcome over {:?}\n", self.control.protocol_version()).as_bytes());
            t.lose_connection();
        }
    }
}

fn s_client_against_our_server(version: TlsVersion) {
    let reactor = Reactor::new().unwrap();
    let pki = Pki::new();
    let dir = TempDir::new("s_client");
    let ca = dir.write("ca.pem", &pki.ca.pem);
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let config = pki.server_config(&[]);
    let factory = factory_fn(move |_| {
        let g = g.clone();
        Box::new(torsion_tls::TlsProtocol::new_with(
            torsion_tls::TlsMode::Server(config.clone()),
            move |control| {
                Box::new(Greeter {
                    transport: None,
                    control,
                    got: g,
                })
            },
        ))
    });
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), factory)
        .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let mut child = Openssl::spawn(&[
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        "localhost",
        "-CAfile",
        ca.to_str().unwrap(),
        "-verify_return_error",
        "-quiet",
        version_flag(version),
    ]);
    {
        use std::io::Write;
        let stdin = child.0.stdin.as_mut().unwrap();
        stdin.write_all(b"hello from s_client\n").unwrap();
    }
    let r = reactor.run_until(|| child.exited(), DEADLINE);
    let (out, err) = child.output();
    r.unwrap_or_else(|e| panic!("{e}: s_client said {out} {err}"));
    assert_eq!(&got.borrow()[..], b"hello from s_client\n", "{err}");
    assert!(
        out.contains(&format!("welcome over Some({version:?})")),
        "s_client printed {out:?} ({err})"
    );
    port.stop_listening();
}

#[test]
fn s_client_against_our_server_tls13() {
    s_client_against_our_server(TlsVersion::Tls13);
}

#[test]
fn s_client_against_our_server_tls12() {
    s_client_against_our_server(TlsVersion::Tls12);
}

/// Runs `openssl s_server -rev` (it answers each line reversed) on a free port.
fn s_server(dir: &TempDir, pki: &Pki, version: TlsVersion, extra: &[&str]) -> (Openssl, u16) {
    let cert = dir.write("cert.pem", &pki.server.cert_pem);
    let key = dir.write("key.pem", &pki.server.key_pem);
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_server",
        "-accept",
        &accept,
        "-cert",
        cert.to_str().unwrap(),
        "-key",
        key.to_str().unwrap(),
        "-rev",
        version_flag(version),
    ];
    args.extend_from_slice(extra);
    let child = Openssl::spawn(&args);
    // Wait until it listens.
    let deadline = Instant::now() + DEADLINE;
    while std::net::TcpStream::connect(&accept).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

fn our_client_against_s_server(version: TlsVersion) {
    let reactor = Reactor::new().unwrap();
    let pki = Pki::new();
    let dir = TempDir::new("s_server");
    // -naccept 2: the readiness probe above was the first connection.
    let (mut child, port) = s_server(&dir, &pki, version, &["-naccept", "2"]);
    let (app, got) = AccumulatingProtocol::new();
    let client: Rc<dyn ClientFactory> = Rc::new(TlsClientFactory::new(
        pki.client_config("localhost", &[version]),
        OneClient::new(Box::new(app)),
    ));
    reactor.connect_tcp(
        format!("127.0.0.1:{port}").parse().unwrap(),
        client,
        Some(DEADLINE),
    );
    reactor.run_until(|| got.made(), DEADLINE).unwrap();
    got.transport().unwrap().write(b"hello s_server\n");
    let r = reactor.run_until(
        || got.data().windows(15).any(|w| w == b"revres_s olleh\n") || got.closed(),
        DEADLINE,
    );
    if r.is_err() || got.closed() {
        let _ = child.0.kill();
        let (out, err) = child.output();
        panic!(
            "no reversed line: {:?} {:?} {out} {err}",
            got.data(),
            got.reason()
        );
    }
    got.transport().unwrap().lose_connection();
    reactor.run_until(|| got.closed(), DEADLINE).unwrap();
    assert!(
        !got.reason()
            .map(|r| TlsError::from_reason(&r).is_some())
            .unwrap_or(true)
    );
}

#[test]
fn our_client_against_s_server_tls13() {
    our_client_against_s_server(TlsVersion::Tls13);
}

#[test]
fn our_client_against_s_server_tls12() {
    our_client_against_s_server(TlsVersion::Tls12);
}

#[test]
fn s_server_requiring_a_client_certificate() {
    for present in [true, false] {
        let reactor = Reactor::new().unwrap();
        let pki = Pki::new();
        let dir = TempDir::new("s_server_verify");
        let ca = dir.write("ca.pem", &pki.ca.pem);
        let (_child, port) = s_server(
            &dir,
            &pki,
            TlsVersion::Tls13,
            &[
                "-naccept",
                "2",
                "-Verify",
                "1",
                "-verify_return_error",
                "-CAfile",
                ca.to_str().unwrap(),
            ],
        );
        let mut builder = TlsClientConfig::builder()
            .server_name("localhost")
            .trust_roots(pki.ca.roots());
        if present {
            builder = builder.client_certificate(pki.ca.client("alice").certificate_key());
        }
        let (app, got) = AccumulatingProtocol::new();
        let client: Rc<dyn ClientFactory> = Rc::new(TlsClientFactory::new(
            builder.build().unwrap(),
            OneClient::new(Box::new(app)),
        ));
        reactor.connect_tcp(
            format!("127.0.0.1:{port}").parse().unwrap(),
            client,
            Some(DEADLINE),
        );
        reactor.run_until(|| got.made(), DEADLINE).unwrap();
        got.transport().unwrap().write(b"abc\n");
        reactor
            .run_until(|| got.data().ends_with(b"cba\n") || got.closed(), DEADLINE)
            .unwrap();
        if present {
            assert!(got.data().ends_with(b"cba\n"), "{:?}", got.reason());
            got.transport().unwrap().lose_connection();
            reactor.run_until(|| got.closed(), DEADLINE).unwrap();
        } else {
            let reason = got.reason().expect("closed");
            let err = TlsError::from_reason(&reason)
                .cloned()
                .unwrap_or_else(|| panic!("not a TLS failure: {reason}"));
            assert!(err.alert_received().is_some(), "{err}");
            assert!(got.data().is_empty());
        }
    }
}
