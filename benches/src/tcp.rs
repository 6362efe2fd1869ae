//! B4: TCP echo over loopback. The server runs on a thread of this process, the load
//! client (`report echo-client`, raw mio) in another process.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use torsion_reactor::{Reactor, TcpOptions};
use torsion_transport::{Address, Factory, Protocol, Transport, factory_fn};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::twisted::{Twisted, field, parse_result};
use crate::{Config, Report};

/// A server running on its own thread.
pub struct Server {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    stop: Box<dyn FnOnce() + Send>,
    thread: JoinHandle<Result<(), String>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("port", &self.port).finish()
    }
}

impl Server {
    /// A server on `port`, stopped by `stop`, running on `thread`.
    pub fn new(
        port: u16,
        stop: Box<dyn FnOnce() + Send>,
        thread: JoinHandle<Result<(), String>>,
    ) -> Server {
        Server { port, stop, thread }
    }

    /// Stop the server and wait for its thread.
    ///
    /// # Errors
    ///
    /// The server failed while running.
    pub fn stop(self) -> Result<(), String> {
        (self.stop)();
        self.thread
            .join()
            .map_err(|_| "server thread panicked".to_owned())?
    }
}

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// The echo protocol: write back what arrives.
struct Echo {
    transport: Option<Rc<dyn Transport>>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, _reason: torsion_transport::Reason) {
        self.transport = None;
    }
}

/// torsion: `listen_tcp` with the echo protocol; the thread iterates until stopped.
pub fn torsion_server() -> Result<Server, String> {
    torsion_server_with(|| factory_fn(|_| Box::new(Echo { transport: None })))
}

/// A torsion TCP server on its own thread, listening with the factory `make` builds there
/// (factories are not `Send`); the thread iterates until the server is stopped. B4, B9
/// and B13 differ only in the factory.
pub fn torsion_server_with(
    make: impl FnOnce() -> Rc<dyn Factory> + Send + 'static,
) -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let setup = || -> io::Result<_> {
            let reactor = Reactor::new()?;
            let port = torsion_reactor::tcp::listen_tcp(
                &reactor,
                local(),
                make(),
                &TcpOptions::new().with_nodelay(true),
            )?;
            Ok((reactor, port))
        };
        let (reactor, port) = match setup() {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
        };
        let number = match torsion_transport::ListeningPort::host(&*port) {
            Address::Ipv4(a) => a.port(),
            other => return Err(format!("unexpected address {other}")),
        };
        let _ = tx.send(Ok((number, reactor.thread_handle())));
        while !stop2.load(Ordering::Acquire) {
            reactor
                .iterate(Duration::from_millis(100))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let (port, handle) = rx.recv().map_err(|e| e.to_string())??;
    Ok(Server {
        port,
        stop: Box::new(move || {
            stop.store(true, Ordering::Release);
            handle.wake();
        }),
        thread,
    })
}

struct RawConn {
    stream: TcpStream,
    pending: Vec<u8>,
}

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

fn write_some(c: &mut RawConn, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match c.stream.write(&data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Serve one readiness event of a connection; false when it is finished.
fn raw_serve(c: &mut RawConn, ev: &mio::event::Event, buf: &mut [u8]) -> io::Result<bool> {
    if ev.is_writable() && !c.pending.is_empty() {
        let pending = std::mem::take(&mut c.pending);
        let n = write_some(c, &pending)?;
        c.pending = pending;
        c.pending.drain(..n);
    }
    if ev.is_readable() || ev.is_read_closed() {
        loop {
            match c.stream.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    if c.pending.is_empty() {
                        let w = write_some(c, &buf[..n])?;
                        c.pending.extend_from_slice(&buf[w..n]);
                    } else {
                        c.pending.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(true)
}

/// raw mio: the same echo with one `Poll`, a slab and a shared read buffer.
pub fn mio_server() -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let setup = || -> io::Result<_> {
            let poll = Poll::new()?;
            let mut listener = TcpListener::bind(local())?;
            crate::rawproc::set_backlog(
                std::os::fd::AsRawFd::as_raw_fd(&listener),
                torsion_reactor::port::DEFAULT_BACKLOG,
            )?;
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
        let mut buf = vec![0u8; 64 * 1024];
        let mut run = || -> io::Result<()> {
            while !stop.load(Ordering::Acquire) {
                poll.poll(&mut events, Some(Duration::from_millis(100)))?;
                for ev in events.iter() {
                    match ev.token() {
                        WAKER => {}
                        LISTENER => loop {
                            match listener.accept() {
                                Ok((mut stream, _)) => {
                                    stream.set_nodelay(true)?;
                                    let entry = conns.vacant_entry();
                                    poll.registry().register(
                                        &mut stream,
                                        Token(entry.key()),
                                        Interest::READABLE | Interest::WRITABLE,
                                    )?;
                                    entry.insert(RawConn {
                                        stream,
                                        pending: Vec::new(),
                                    });
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(e),
                            }
                        },
                        Token(k) => {
                            let keep = match conns.get_mut(k) {
                                Some(c) => raw_serve(c, ev, &mut buf).unwrap_or(false),
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
        };
        run().map_err(|e| e.to_string())
    });
    let (port, waker, stop) = rx.recv().map_err(|e| e.to_string())??;
    Ok(Server {
        port,
        stop: Box::new(move || {
            stop.store(true, Ordering::Release);
            let _ = waker.wake();
        }),
        thread,
    })
}

/// tokio: current-thread runtime, a task per connection.
pub fn tokio_server() -> Result<Server, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
            // The same backlog as torsion's and the raw server's (see rawproc::set_backlog).
            if let Err(e) = crate::rawproc::set_backlog(
                std::os::fd::AsRawFd::as_raw_fd(&listener),
                torsion_reactor::port::DEFAULT_BACKLOG,
            ) {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            let _ = tx.send(Ok(port));
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
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
    Ok(Server {
        port,
        stop: Box::new(move || {
            let _ = stop_tx.send(());
        }),
        thread,
    })
}

/// Run the load client against `port` and return messages per second.
///
/// # Errors
///
/// The client failed or printed no result.
pub fn run_client(port: u16, conns: usize, size: usize, secs: f64) -> Sample {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args([
            "echo-client",
            "--port",
            &port.to_string(),
            "--conns",
            &conns.to_string(),
            "--size",
            &size.to_string(),
            "--secs",
            &secs.to_string(),
            "--warmup",
            "0.1",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting the client: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r = parse_result(&stdout).ok_or_else(|| {
        format!(
            "client failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
    })?;
    field(&r, "msgs_per_sec")
}

pub(crate) fn rust_contender(
    start: fn() -> Result<Server, String>,
    conns: usize,
    size: usize,
    secs: f64,
) -> Sample {
    let server = start()?;
    let result = run_client(server.port, conns, size, secs);
    server.stop()?;
    result
}

fn twisted_contender(tw: &Twisted, conns: usize, size: usize, secs: f64) -> Sample {
    let (mut child, port) = tw.start_server("echo_server.py", &[])?;
    let result = run_client(port, conns, size, secs);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Run B4.
pub fn run(cfg: &Config, report: &mut Report) {
    let secs = if cfg.quick { 0.3 } else { 0.6 };
    for &size in &[16 * 1024, 64] {
        for &conns in &[1usize, 10, 100] {
            let mut contenders = vec![
                Contender::new("torsion", move || {
                    rust_contender(torsion_server, conns, size, secs)
                }),
                Contender::new("raw mio", move || {
                    rust_contender(mio_server, conns, size, secs)
                }),
                Contender::new("tokio", move || {
                    rust_contender(tokio_server, conns, size, secs)
                }),
            ];
            let mut goals = vec![
                Goal::ratio("≥ 0.95× raw mio", "raw mio", Bound::AtLeast(0.95)),
                Goal::ratio("≥ 1.0× tokio", "tokio", Bound::AtLeast(1.0)),
            ];
            if let Some(tw) = &cfg.twisted {
                contenders.push(Contender::new("Twisted", move || {
                    twisted_contender(tw, conns, size, secs)
                }));
                goals.push(Goal::ratio("≥ 2× Twisted", "Twisted", Bound::AtLeast(2.0)));
            }
            let size_text = if size >= 1024 {
                format!("{} KiB", size / 1024)
            } else {
                format!("{size} B")
            };
            report.add(crate::harness::run(
                Comparison {
                    bench: "B4".into(),
                    case: format!("{conns} conn × {size_text}"),
                    metric: Metric::rate("msg/s"),
                    subject: "torsion".into(),
                    contenders,
                    goals,
                },
                cfg.rounds,
                cfg.warmup,
            ));
        }
    }
}
