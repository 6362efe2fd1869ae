//! B11: UDP echo over loopback, in datagrams echoed per second, at 64 B and 1,200 B. The
//! server runs on a thread of this process; the client is a blocking std socket on
//! another thread that keeps a window of datagrams in flight (a lost one is re-sent after
//! a timeout, so a drop costs time, never a hang).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};
use torsion_reactor::Reactor;
use torsion_transport::{Address, DatagramProtocol, DatagramTransport};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::Server;
use crate::{Config, Report};

/// Datagrams the client keeps in flight.
pub const WINDOW: usize = 16;

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Echo(Option<Rc<dyn DatagramTransport>>);

impl DatagramProtocol for Echo {
    fn start_protocol(&mut self, transport: Rc<dyn DatagramTransport>) {
        self.0 = Some(transport);
    }
    fn datagram_received(&mut self, data: &[u8], from: Address) {
        if let Some(t) = &self.0 {
            let _ = t.write(data, &from);
        }
    }
}

/// torsion: `listen_udp` with the echo protocol; the thread iterates until stopped.
pub fn torsion_server() -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let setup = || -> io::Result<_> {
            let reactor = Reactor::new()?;
            let port = reactor.listen_udp(local(), Box::new(Echo(None)))?;
            Ok((reactor, port))
        };
        let (reactor, port) = match setup() {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
        };
        let number = port.host().port().unwrap_or(0);
        let _ = tx.send(Ok((number, reactor.thread_handle())));
        while !stop2.load(Ordering::Acquire) {
            reactor
                .iterate(Duration::from_millis(100))
                .map_err(|e| e.to_string())?;
        }
        port.stop_listening();
        Ok(())
    });
    let (port, handle) = rx.recv().map_err(|e| e.to_string())??;
    Ok(Server::new(
        port,
        Box::new(move || {
            stop.store(true, Ordering::Release);
            handle.wake();
        }),
        thread,
    ))
}

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);

/// raw mio: one `Poll`, receive until `WouldBlock`, send each datagram back.
pub fn mio_server() -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let setup = || -> io::Result<_> {
            let poll = Poll::new()?;
            let mut sock = mio::net::UdpSocket::bind(local())?;
            poll.registry()
                .register(&mut sock, SOCKET, Interest::READABLE)?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            Ok((poll, sock, waker))
        };
        let (mut poll, sock, waker) = match setup() {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
        };
        let port = sock.local_addr().map_err(|e| e.to_string())?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let _ = tx.send(Ok((port, waker, stop.clone())));
        let mut events = Events::with_capacity(64);
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Acquire) {
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .map_err(|e| e.to_string())?;
            loop {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let _ = sock.send_to(&buf[..n], from);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e.to_string()),
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

/// tokio: current-thread runtime, one task doing `recv_from`/`send_to`.
pub fn tokio_server() -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let sock = match tokio::net::UdpSocket::bind(local()).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let port = sock.local_addr().map(|a| a.port()).unwrap_or(0);
            let _ = tx.send(Ok(port));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                    let _ = sock.send_to(&buf[..n], from).await;
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

/// Keep [`WINDOW`] datagrams of `size` bytes in flight to `port` for `secs`; returns the
/// datagrams echoed per second.
///
/// # Errors
///
/// A socket error, or no echo at all.
pub fn run_client(port: u16, size: usize, secs: f64) -> Sample {
    let err = |e: io::Error| e.to_string();
    let sock = UdpSocket::bind(local()).map_err(err)?;
    sock.connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .map_err(err)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(err)?;
    let payload = vec![0x5au8; size];
    let mut buf = vec![0u8; size + 1];
    let send_window = |sock: &UdpSocket| -> Result<(), String> {
        for _ in 0..WINDOW {
            sock.send(&payload).map_err(err)?;
        }
        Ok(())
    };
    // Warm up: one full window echoed.
    send_window(&sock)?;
    let mut warm = 0;
    while warm < WINDOW {
        match sock.recv(&mut buf) {
            Ok(_) => warm += 1,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err("no echo during the warm-up".into());
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    send_window(&sock)?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut echoed = 0u64;
    while Instant::now() < deadline {
        match sock.recv(&mut buf) {
            Ok(n) if n == size => {
                echoed += 1;
                sock.send(&payload).map_err(err)?;
            }
            Ok(n) => return Err(format!("a {n}-byte echo of a {size}-byte datagram")),
            // A datagram was lost: refill the window.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                send_window(&sock)?;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if echoed == 0 {
        return Err("no echo".into());
    }
    Ok(echoed as f64 / elapsed)
}

fn contender(start: fn() -> Result<Server, String>, size: usize, secs: f64) -> Sample {
    let server = start()?;
    let result = run_client(server.port, size, secs);
    server.stop()?;
    result
}

/// Run B11.
pub fn run(cfg: &Config, report: &mut Report) {
    let secs = if cfg.quick { 0.3 } else { 0.6 };
    for &size in &[64usize, 1200] {
        let contenders = vec![
            Contender::new("torsion", move || contender(torsion_server, size, secs)),
            Contender::new("raw mio", move || contender(mio_server, size, secs)),
            Contender::new("tokio", move || contender(tokio_server, size, secs)),
        ];
        let goals = vec![
            Goal::ratio("≥ 0.95× raw mio", "raw mio", Bound::AtLeast(0.95)),
            Goal::ratio("≥ 1.0× tokio", "tokio", Bound::AtLeast(1.0)),
        ];
        report.add(crate::harness::run(
            Comparison {
                bench: "B11".into(),
                case: format!("UDP echo, {size} B, {WINDOW} in flight"),
                metric: Metric::rate("datagram/s"),
                subject: "torsion".into(),
                contenders,
                goals,
            },
            cfg.rounds,
            cfg.warmup,
        ));
    }
}
