//! B13: TLS echo. The same rustls configuration (ring, TLS 1.3,
//! TLS13_AES_128_GCM_SHA256, X25519, no session resumption) serves through torsion
//! (`TlsServerFactory` over `listen_tcp`), tokio + tokio-rustls on a current-thread
//! runtime, and rustls driven by hand over raw mio (the floor). The load client is one
//! raw mio + rustls client on a thread of this process, the same for every contender.
//!
//! - throughput: 10 connections, each sending a 16 KiB message and waiting for its echo;
//!   messages per second;
//! - handshakes: 10 connections at a time, each a full handshake, one byte echoed and a
//!   close; handshakes per second.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use slab::Slab;
use torsion_transport::{Protocol, Transport, factory_fn};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::Server;
use crate::{Config, Report};

/// The configurations every contender shares.
#[derive(Clone)]
struct Tls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    p.kx_groups = vec![rustls::crypto::ring::kx_group::X25519];
    Arc::new(p)
}

fn configs() -> Result<Tls, String> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .map_err(|e| e.to_string())?;
    let der = CertificateDer::from(cert.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .map_err(|e| e.to_string())?;
    // Every handshake full: no tickets, no session cache.
    server.send_tls13_tickets = 0;
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).map_err(|e| e.to_string())?;
    let mut client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    Ok(Tls {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}

/// A server on its own thread.
fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Echo(Option<Rc<dyn Transport>>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, _reason: torsion_transport::Reason) {
        self.0 = None;
    }
}

fn torsion_server(tls: &Tls) -> Result<Server, String> {
    let config = tls.server.clone();
    crate::tcp::torsion_server_with(move || {
        Rc::new(torsion_tls::TlsServerFactory::new(
            torsion_tls::TlsServerConfig::from_rustls(config),
            factory_fn(|_| Box::new(Echo(None))),
        ))
    })
}

fn tokio_server(tls: &Tls) -> Result<Server, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::bind(local()).await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            let _ = tx.send(Ok(port));
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err()
                                        || stream.flush().await.is_err()
                                    {
                                        break;
                                    }
                                }
                            }
                        }
                    });
                }
            });
            let _ = stop_rx.await;
        });
        Ok(())
    });
    let port = rx.recv().map_err(|e| e.to_string())??;
    Ok(Server::new(
        port,
        Box::new(move || {
            let _ = stop_tx.send(());
        }),
        thread,
    ))
}

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

struct RawConn {
    stream: TcpStream,
    tls: ServerConnection,
}

/// Move ciphertext out until the socket would block; false on a fatal error.
fn flush_tls(stream: &mut TcpStream, tls: &mut impl TlsIo) -> bool {
    while tls.want_write() {
        match tls.write_out(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Read ciphertext until the socket would block, process it, and hand the plaintext to
/// `take`. False when the connection is finished.
fn read_tls(
    stream: &mut TcpStream,
    tls: &mut impl TlsIo,
    plain: &mut [u8],
    mut take: impl FnMut(&mut dyn TlsIo, &[u8]),
) -> bool {
    loop {
        match tls.read_in(stream) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        if tls.process().is_err() {
            return false;
        }
        loop {
            match tls.read_plain(plain) {
                Ok(0) => return false,
                Ok(n) => take(tls, &plain[..n]),
                Err(_) => break,
            }
        }
    }
}

/// What the hand-driven server and client need of a rustls connection.
trait TlsIo {
    fn want_write(&self) -> bool;
    fn write_out(&mut self, w: &mut dyn Write) -> io::Result<usize>;
    fn read_in(&mut self, r: &mut dyn Read) -> io::Result<usize>;
    fn process(&mut self) -> Result<(), rustls::Error>;
    fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_plain(&mut self, data: &[u8]);
    fn handshaking(&self) -> bool;
}

macro_rules! tls_io {
    ($t:ty) => {
        impl TlsIo for $t {
            fn want_write(&self) -> bool {
                self.wants_write()
            }
            fn write_out(&mut self, w: &mut dyn Write) -> io::Result<usize> {
                self.write_tls(w)
            }
            fn read_in(&mut self, r: &mut dyn Read) -> io::Result<usize> {
                self.read_tls(r)
            }
            fn process(&mut self) -> Result<(), rustls::Error> {
                self.process_new_packets().map(|_| ())
            }
            fn read_plain(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.reader().read(buf)
            }
            fn write_plain(&mut self, data: &[u8]) {
                let _ = self.writer().write_all(data);
            }
            fn handshaking(&self) -> bool {
                self.is_handshaking()
            }
        }
    };
}

tls_io!(ServerConnection);
tls_io!(ClientConnection);

fn raw_server(tls: &Tls) -> Result<Server, String> {
    let config = tls.server.clone();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let setup = || -> io::Result<_> {
            let poll = Poll::new()?;
            let mut listener = TcpListener::bind(local())?;
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            Ok((poll, listener, waker))
        };
        let (mut poll, listener, waker) = match setup() {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
        };
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let _ = tx.send(Ok((port, waker, stop.clone())));
        let mut events = Events::with_capacity(1024);
        let mut conns: Slab<RawConn> = Slab::new();
        let mut plain = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Acquire) {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {}
                    LISTENER => loop {
                        match listener.accept() {
                            Ok((mut stream, _)) => {
                                let _ = stream.set_nodelay(true);
                                let Ok(tls) = ServerConnection::new(config.clone()) else {
                                    continue;
                                };
                                let entry = conns.vacant_entry();
                                poll.registry()
                                    .register(
                                        &mut stream,
                                        Token(entry.key()),
                                        Interest::READABLE | Interest::WRITABLE,
                                    )
                                    .map_err(|e| e.to_string())?;
                                entry.insert(RawConn { stream, tls });
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e.to_string()),
                        }
                    },
                    Token(k) => {
                        let keep = match conns.get_mut(k) {
                            Some(c) => {
                                let RawConn { stream, tls } = c;
                                let alive = read_tls(stream, tls, &mut plain, |t, data| {
                                    t.write_plain(data)
                                });
                                flush_tls(stream, tls) && alive
                            }
                            None => true,
                        };
                        if !keep {
                            let mut c = conns.remove(k);
                            let _ = poll.registry().deregister(&mut c.stream);
                        }
                    }
                }
            }
        }
        Ok(())
    });
    let (port, waker, stop) = rx.recv().map_err(|e| e.to_string())??;
    Ok(Server::new(
        port,
        Box::new(move || {
            stop.store(true, Ordering::Release);
            let _ = waker.wake();
        }),
        thread,
    ))
}

/// What the load client measures.
#[derive(Clone, Copy)]
enum Load {
    /// Echo `size`-byte messages on each connection; messages per second.
    Throughput(usize),
    /// Connect, handshake, echo one byte, close, again; handshakes per second.
    Handshakes,
}

struct ClientConn {
    stream: TcpStream,
    tls: ClientConnection,
    received: usize,
}

fn open(poll: &Poll, port: u16, tls: &Tls, key: usize) -> io::Result<ClientConn> {
    let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    stream.set_nodelay(true)?;
    poll.registry().register(
        &mut stream,
        Token(key),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = ClientConnection::new(tls.client.clone(), name).map_err(io::Error::other)?;
    Ok(ClientConn {
        stream,
        tls: conn,
        received: 0,
    })
}

/// The load client: `conns` connections to `port`, for `secs` after a short warm-up.
fn load(port: u16, tls: &Tls, conns: usize, load: Load, secs: f64) -> Sample {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let message = match load {
        Load::Throughput(size) => vec![0x5a; size],
        Load::Handshakes => vec![1],
    };
    let mut slots: Vec<ClientConn> = Vec::with_capacity(conns);
    for k in 0..conns {
        let mut c = open(&poll, port, tls, k).map_err(|e| e.to_string())?;
        c.tls.write_plain(&message);
        slots.push(c);
    }
    let warmup = Duration::from_millis(100);
    let start = Instant::now();
    let end = start + warmup + Duration::from_secs_f64(secs);
    let mut counted = 0u64;
    let mut plain = vec![0u8; 64 * 1024];
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let measuring = Instant::now() >= start + warmup;
        for ev in events.iter() {
            let k = ev.token().0;
            let Some(c) = slots.get_mut(k) else { continue };
            let size = message.len();
            let mut done = 0u64;
            let ClientConn {
                stream,
                tls: conn,
                received,
            } = c;
            let alive = read_tls(stream, conn, &mut plain, |t, data| {
                *received += data.len();
                while *received >= size {
                    *received -= size;
                    done += 1;
                    if matches!(load, Load::Throughput(_)) {
                        t.write_plain(&message);
                    }
                }
            });
            let flushed = flush_tls(stream, conn);
            if measuring {
                counted += done;
            }
            let finished = matches!(load, Load::Handshakes) && done > 0;
            if finished || !alive || !flushed {
                if !finished && matches!(load, Load::Throughput(_)) {
                    return Err("a connection closed during the throughput run".to_owned());
                }
                if finished && conn.handshaking() {
                    return Err("echo before the handshake completed".to_owned());
                }
                let _ = poll.registry().deregister(stream);
                let mut fresh = open(&poll, port, tls, k).map_err(|e| e.to_string())?;
                fresh.tls.write_plain(&message);
                *c = fresh;
            }
        }
    }
    Ok(counted as f64 / secs)
}

fn contender(
    start: fn(&Tls) -> Result<Server, String>,
    tls: &Tls,
    conns: usize,
    l: Load,
    secs: f64,
) -> Sample {
    let server = start(tls)?;
    let result = load(server.port, tls, conns, l, secs);
    server.stop()?;
    result
}

/// Run B13.
pub fn run(cfg: &Config, report: &mut Report) {
    let secs = if cfg.quick { 0.3 } else { 0.6 };
    let tls = match configs() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("B13: no test certificate: {e}");
            return;
        }
    };
    let cases = [
        (
            "10 conn × 16 KiB",
            Load::Throughput(16 * 1024),
            Metric::rate("msg/s"),
        ),
        (
            "full handshakes, 10 at a time",
            Load::Handshakes,
            Metric::rate("handshakes/s"),
        ),
    ];
    for (case, l, metric) in cases {
        let t = &tls;
        let contenders = vec![
            Contender::new("torsion", move || contender(torsion_server, t, 10, l, secs)),
            Contender::new("raw mio + rustls", move || {
                contender(raw_server, t, 10, l, secs)
            }),
            Contender::new("tokio + tokio-rustls", move || {
                contender(tokio_server, t, 10, l, secs)
            }),
        ];
        let goals = vec![
            Goal::ratio("≥ 1.0× tokio", "tokio + tokio-rustls", Bound::AtLeast(1.0)),
            Goal::ratio(
                "within 5% of raw mio + rustls",
                "raw mio + rustls",
                Bound::AtLeast(0.95),
            ),
        ];
        report.add(crate::harness::run(
            Comparison {
                bench: "B13".into(),
                case: case.into(),
                metric,
                subject: "torsion".into(),
                contenders,
                goals,
            },
            cfg.rounds,
            cfg.warmup,
        ));
    }
}
