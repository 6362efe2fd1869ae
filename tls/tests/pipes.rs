//! TLS over a child's pipes. This binary runs itself as the child: a TLS echo server on
//! its stdin/stdout (`StandardIo`). The parent spawns it and speaks TLS over the pipes
//! through a small adapter that presents the child's `ProcessTransport` as a `Transport`.

mod common;

#[cfg(unix)]
mod unix {
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    use super::common::*;
    use torsion_process::{ProcessBuilderExt, StandardIo};
    use torsion_reactor::Reactor;
    use torsion_testing::AccumulatingProtocol;
    use torsion_tls::{CertificateKey, TlsClientConfig, TlsProtocol, TlsServerConfig, TrustRoots};
    use torsion_transport::{
        Address, Consumer, ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport, Producer,
        ProducerError, Protocol, PushProducer, Reason, Transport,
    };

    const CHILD: &str = "TORSION_TLS_PIPE_CHILD";

    /// The child: a TLS echo server on stdin/stdout, with the certificate the parent made.
    pub fn child() {
        let dir = std::env::var(CHILD).unwrap_or_default();
        let dir = std::path::Path::new(&dir);
        let key = CertificateKey::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))
            .expect("the parent's certificate");
        let config = TlsServerConfig::builder().certificate(key).build().unwrap();
        let reactor = Reactor::new().unwrap();
        let done_tx = Rc::new(RefCell::new(false));
        struct EchoUntilClosed(Option<Rc<dyn Transport>>, Rc<RefCell<bool>>);
        impl Protocol for EchoUntilClosed {
            fn connection_made(&mut self, t: Rc<dyn Transport>) {
                self.0 = Some(t);
            }
            fn data_received(&mut self, data: &[u8]) {
                if let Some(t) = &self.0 {
                    t.write(data);
                }
            }
            fn connection_lost(&mut self, _reason: Reason) {
                *self.1.borrow_mut() = true;
            }
        }
        let _stdio = StandardIo::stdio(
            &reactor,
            Box::new(TlsProtocol::server(
                config,
                Box::new(EchoUntilClosed(None, done_tx.clone())),
            )),
        )
        .unwrap();
        let _ = reactor.run_until(|| *done_tx.borrow(), Duration::from_secs(30));
    }

    /// The parent's view of the child's pipes as a `Transport`: writes go to its stdin,
    /// its stdout is what arrives, the close is closing stdin.
    struct PipeTransport(Rc<dyn ProcessTransport>);

    impl Consumer for PipeTransport {
        fn write(&self, data: &[u8]) {
            self.0.write(data);
        }
        fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
            self.0.register_producer(producer)
        }
        fn unregister_producer(&self) {
            self.0.unregister_producer();
        }
    }

    impl PushProducer for PipeTransport {
        fn pause_producing(&self) {
            self.0.pause_producing();
        }
        fn resume_producing(&self) {
            self.0.resume_producing();
        }
        fn stop_producing(&self) {
            self.0.stop_producing();
        }
    }

    impl Transport for PipeTransport {
        fn lose_connection(&self) {
            let _ = self.0.close_stdin();
        }
        fn abort_connection(&self) {
            self.0.lose_connection();
        }
        fn lose_write_connection(&self) {
            let _ = self.0.close_stdin();
        }
        fn unsent_bytes(&self) -> usize {
            // ProcessTransport does not report its stdin backlog; not needed here.
            0
        }
        fn host(&self) -> Address {
            Address::Memory("parent".into())
        }
        fn peer(&self) -> Address {
            Address::Memory("child".into())
        }
    }

    /// Runs a `Protocol` over the child's stdin/stdout.
    struct OverPipes(Box<dyn Protocol>);

    impl ProcessProtocol for OverPipes {
        fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
            self.0.connection_made(Rc::new(PipeTransport(transport)));
        }
        fn out_received(&mut self, data: &[u8]) {
            self.0.data_received(data);
        }
        fn process_ended(&mut self, reason: ExitReason) {
            let r = if reason.is_success() {
                Reason::ConnectionDone
            } else {
                Reason::lost_because(&reason.to_string())
            };
            self.0.connection_lost(r);
        }
    }

    pub fn tls_over_a_childs_pipes() {
        let pki = Pki::new();
        let dir = TempDir::new("pipes");
        dir.write("cert.pem", &pki.server.cert_pem);
        dir.write("key.pem", &pki.server.key_pem);
        let reactor = Reactor::new().unwrap();
        let client = TlsClientConfig::builder()
            .server_name("localhost")
            .trust_roots(TrustRoots::from_pem(pki.ca.pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let (app, got) = AccumulatingProtocol::new();
        let control_slot = RefCell::new(None);
        let tls = TlsProtocol::new_with(torsion_tls::TlsMode::Client(client), |c| {
            *control_slot.borrow_mut() = Some(c);
            Box::new(app)
        });
        let control = control_slot.into_inner().unwrap();
        let exe = std::env::current_exe().unwrap();
        ProcessBuilder::new(exe)
            .env(CHILD, dir.path())
            .spawn(&reactor, Box::new(OverPipes(Box::new(tls))))
            .unwrap();
        let payload: Vec<u8> = (0..256 * 1024).map(|i| (i % 241) as u8).collect();
        reactor
            .run_until(|| got.made(), Duration::from_secs(20))
            .unwrap();
        got.transport().unwrap().write(&payload);
        reactor
            .run_until(
                || got.data().len() >= payload.len() || got.closed(),
                Duration::from_secs(20),
            )
            .unwrap();
        assert!(control.handshake_done());
        assert_eq!(got.data(), payload, "{:?}", got.reason());
        got.transport().unwrap().lose_connection();
        reactor
            .run_until(|| got.closed(), Duration::from_secs(20))
            .unwrap();
        assert!(got.reason().unwrap().is_clean(), "{:?}", got.reason());
    }

    pub fn is_child() -> bool {
        std::env::var_os(CHILD).is_some()
    }
}

#[cfg(unix)]
fn main() {
    if unix::is_child() {
        unix::child();
        return;
    }
    let name = "tls_over_a_childs_pipes";
    match std::panic::catch_unwind(unix::tls_over_a_childs_pipes) {
        Ok(()) => {
            println!("test {name} ... ok");
            println!("\ntest result: ok. 1 passed; 0 failed");
        }
        Err(_) => {
            println!("test {name} ... FAILED");
            println!("\ntest result: FAILED. 0 passed; 1 failed");
            std::process::exit(1);
        }
    }
}

#[cfg(not(unix))]
fn main() {
    println!("SKIPPED: pipes (StandardIo and the child's pipes are POSIX here)");
}
