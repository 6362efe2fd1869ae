//! Test certificates, made at test time with rcgen (dates under the test's control), and
//! small protocols to observe TLS connections with.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use torsion_tls::{CertificateKey, TlsClientConfig, TlsServerConfig, TlsVersion, TrustRoots};
use torsion_transport::{Producer, Protocol, PushProducer, Reason, Transport};

/// A certificate authority that signs leaf certificates.
pub struct Ca {
    pub pem: String,
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate and its key, as PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn certificate_key(&self) -> CertificateKey {
        CertificateKey::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
            .expect("the leaf parses")
    }
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        Ca {
            pem: cert.pem(),
            cert,
            key,
        }
    }

    fn sign(&self, names: &[&str], client: bool, expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        } else {
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2090, 1, 1);
        }
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.sign(names, false, false)
    }

    /// A server certificate for `names` that expired in 2021.
    pub fn expired_server(&self, names: &[&str]) -> Leaf {
        self.sign(names, false, true)
    }

    /// A client certificate.
    pub fn client(&self, name: &str) -> Leaf {
        self.sign(&[name], true, false)
    }

    pub fn roots(&self) -> TrustRoots {
        TrustRoots::from_pem(self.pem.as_bytes()).expect("roots")
    }
}

/// The usual pair: a CA, a server certificate for localhost and 127.0.0.1, and configs.
pub struct Pki {
    pub ca: Ca,
    pub server: Leaf,
}

impl Pki {
    pub fn new() -> Pki {
        let ca = Ca::new("torsion test CA");
        let server = ca.server(&["localhost", "127.0.0.1"]);
        Pki { ca, server }
    }

    pub fn server_config(&self, versions: &[TlsVersion]) -> TlsServerConfig {
        TlsServerConfig::builder()
            .certificate(self.server.certificate_key())
            .versions(versions)
            .build()
            .expect("server config")
    }

    pub fn client_config(&self, name: &str, versions: &[TlsVersion]) -> TlsClientConfig {
        TlsClientConfig::builder()
            .server_name(name)
            .trust_roots(self.ca.roots())
            .versions(versions)
            .build()
            .expect("client config")
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "torsion-tls-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Echoes what it receives.
pub struct Echo(pub Option<Rc<dyn Transport>>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
}

/// The text of a reason, for assertions.
pub fn reason_text(r: &Option<Reason>) -> String {
    r.as_ref().map(|r| r.to_string()).unwrap_or_default()
}

/// Shared record of one protocol's events.
#[derive(Default)]
pub struct Log {
    pub data: Vec<u8>,
    pub lost: Option<Reason>,
}

pub type SharedLog = Rc<RefCell<Log>>;

/// A client factory building one protocol, recording a failed attempt.
pub struct OneClient {
    pub protocol: RefCell<Option<Box<dyn Protocol>>>,
    pub failed: Rc<RefCell<Option<Reason>>>,
}

impl OneClient {
    pub fn new(p: Box<dyn Protocol>) -> Rc<OneClient> {
        Rc::new(OneClient {
            protocol: RefCell::new(Some(p)),
            failed: Rc::default(),
        })
    }
}

impl torsion_transport::Factory for OneClient {
    fn build_protocol(&self, _peer: &torsion_transport::Address) -> Option<Box<dyn Protocol>> {
        self.protocol.borrow_mut().take()
    }
}

impl torsion_transport::ClientFactory for OneClient {
    fn client_connection_failed(&self, reason: Reason) {
        *self.failed.borrow_mut() = Some(reason);
    }
}

/// A free loopback TCP port (bound, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Streams `total` bytes through its transport with a push producer, and reads slowly:
/// it pauses reading after every delivery until the test resumes it.
pub struct Streamer {
    pub total: usize,
    pub state: Rc<StreamState>,
}

#[derive(Default)]
pub struct StreamState {
    pub transport: RefCell<Option<Rc<dyn Transport>>>,
    pub sent: Cell<usize>,
    pub paused: Cell<bool>,
    pub received: Cell<usize>,
    pub checksum: Cell<u64>,
    pub read_paused: Cell<bool>,
}

impl StreamState {
    pub fn pump_out(&self, total: usize) {
        let Some(t) = self.transport.borrow().clone() else {
            return;
        };
        while !self.paused.get() && self.sent.get() < total {
            let n = (total - self.sent.get()).min(16 * 1024);
            let at = self.sent.get();
            let chunk: Vec<u8> = (at..at + n).map(|i| (i % 253) as u8).collect();
            self.sent.set(at + n);
            t.write(&chunk);
        }
    }
}

struct StreamProducer(Rc<StreamState>, usize);

impl PushProducer for StreamProducer {
    fn pause_producing(&self) {
        self.0.paused.set(true);
    }
    fn resume_producing(&self) {
        self.0.paused.set(false);
        self.0.pump_out(self.1);
    }
    fn stop_producing(&self) {}
}

impl Protocol for Streamer {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        *self.state.transport.borrow_mut() = Some(t.clone());
        t.register_producer(Producer::Push(Rc::new(StreamProducer(
            self.state.clone(),
            self.total,
        ))))
        .unwrap();
    }
    fn data_received(&mut self, data: &[u8]) {
        let s = &self.state;
        let mut sum = s.checksum.get();
        for (k, &b) in data.iter().enumerate() {
            let i = s.received.get() + k;
            assert_eq!(b, (i % 253) as u8, "byte {i} arrived intact and in order");
            sum = sum.wrapping_mul(31).wrapping_add(u64::from(b));
        }
        s.checksum.set(sum);
        s.received.set(s.received.get() + data.len());
        // A slow reader: stop reading until the test says go on.
        s.read_paused.set(true);
        if let Some(t) = s.transport.borrow().as_ref() {
            t.pause_producing();
        }
    }
}
