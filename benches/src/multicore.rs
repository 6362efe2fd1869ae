//! B12: TCP echo on two cores. torsion scales out by running one reactor per core: two
//! prefork worker processes sharing one listening socket (`torsion::prefork`), or two
//! reactor threads each with its own `SO_REUSEPORT` listener on the same port. The peer is
//! a tokio multi-thread runtime with two workers. The load client is B4's (`echo-client`,
//! raw mio, one thread, another process).

use std::io;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use torsion_daemon::endpoints::{BindOptions, ServerEndpoint};
use torsion_daemon::prefork::{PreforkOptions, Supervisor, Worker};
use torsion_reactor::Reactor;
use torsion_transport::{Address, ListenOptions, ProcessBuilder, Protocol, Transport, factory_fn};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::{Server, run_client};
use crate::{Config, Report};

/// The subcommand of the report binary that runs a prefork worker.
pub const WORKER_COMMAND: &str = "prefork-worker";

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
}

fn echo() -> Rc<dyn torsion_transport::Factory> {
    factory_fn(|_| Box::new(Echo(None)))
}

/// `report prefork-worker`: serve the sockets the parent passed until SIGTERM.
pub fn worker_main() -> i32 {
    let run = || -> Result<(), String> {
        let worker = Worker::from_env()
            .map_err(|e| e.to_string())?
            .ok_or("not started by a prefork parent")?;
        let reactor = Reactor::new().map_err(|e| e.to_string())?;
        worker
            .listen(&reactor, 0, echo())
            .map_err(|e| e.to_string())?;
        reactor.run().map_err(|e| e.to_string())
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("prefork-worker: {e}");
            1
        }
    }
}

fn port_of(a: &Address) -> Result<u16, String> {
    a.port().ok_or_else(|| format!("unexpected address {a}"))
}

/// torsion, prefork: a parent thread binds and supervises 2 worker processes.
pub fn prefork_server() -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let setup = || -> Result<_, String> {
            let reactor = Reactor::new().map_err(|e| e.to_string())?;
            let bound = ServerEndpoint::parse("tcp:0:interface=127.0.0.1")
                .and_then(|e| e.bind(&BindOptions::new()))
                .map_err(|e| e.to_string())?;
            let port = port_of(&bound.local_address())?;
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let fd = bound
                .fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| e.to_string())?;
            let sup = Supervisor::start(
                &reactor,
                ProcessBuilder::new(exe).arg(WORKER_COMMAND),
                vec![fd],
                PreforkOptions::new(2).with_grace(Duration::from_secs(2)),
            )
            .map_err(|e| e.to_string())?;
            Ok((reactor, bound, sup, port))
        };
        let (reactor, _bound, _sup, port) = match setup() {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Err(e));
                return Ok(());
            }
        };
        let _ = tx.send(Ok((port, reactor.thread_handle())));
        // `run` so that the shutdown terminates and reaps the workers.
        reactor.run().map_err(|e| e.to_string())
    });
    let (port, handle) = rx.recv().map_err(|e| e.to_string())??;
    // Let the workers start (they listen on the parent's socket: connections queue until
    // they accept, so this only keeps their start-up out of the measurement).
    std::thread::sleep(Duration::from_millis(200));
    Ok(Server::new(
        port,
        Box::new(move || {
            let _ = handle.call_from_thread_with(|r| {
                let _ = torsion_transport::ReactorCore::stop(r);
            });
        }),
        thread,
    ))
}

/// torsion, 2 reactor threads, each with a `SO_REUSEPORT` listener on the same port (the
/// second binds the port the first one got).
pub fn reuseport_server() -> Result<Server, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Result<(u16, torsion_reactor::ThreadHandle), String>>();
    let mut threads = Vec::new();
    let mut port = 0;
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (tx, stop) = (tx.clone(), stop.clone());
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let setup = || -> io::Result<_> {
                let reactor = Reactor::new()?;
                let listening = reactor.listen_tcp_with(
                    ([127, 0, 0, 1], port).into(),
                    ListenOptions::new().with_reuse_port(true),
                    echo(),
                )?;
                Ok((reactor, listening))
            };
            let (reactor, listening) = match setup() {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Ok(());
                }
            };
            let number = port_of(&torsion_transport::ListeningPort::host(&*listening))?;
            let _ = tx.send(Ok((number, reactor.thread_handle())));
            while !stop.load(Ordering::Acquire) {
                reactor
                    .iterate(Duration::from_millis(100))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        }));
        let (p, h) = rx.recv().map_err(|e| e.to_string())??;
        port = p;
        handles.push(h);
    }
    let joined = std::thread::spawn(move || -> Result<(), String> {
        for t in threads {
            t.join()
                .map_err(|_| "a reactor thread panicked".to_owned())??;
        }
        Ok(())
    });
    Ok(Server::new(
        port,
        Box::new(move || {
            stop.store(true, Ordering::Release);
            for h in handles {
                h.wake();
            }
        }),
        joined,
    ))
}

/// tokio: a multi-thread runtime with 2 workers, a task per connection.
pub fn tokio_mt_server() -> Result<Server, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
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
    Ok(Server::new(
        port,
        Box::new(move || {
            let _ = stop_tx.send(());
        }),
        thread,
    ))
}

fn contender(
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

/// Starts a server on a thread.
type StartServer = fn() -> Result<Server, String>;

/// Run B12: per message size, prefork and `SO_REUSEPORT` each against tokio.
pub fn run(cfg: &Config, report: &mut Report) {
    let secs = if cfg.quick { 0.3 } else { 0.6 };
    let conns = 100;
    for &size in &[64usize, 16 * 1024] {
        let size_text = if size >= 1024 {
            format!("{} KiB", size / 1024)
        } else {
            format!("{size} B")
        };
        let cases: [(&str, StartServer); 2] = [
            ("torsion prefork ×2", prefork_server),
            ("torsion SO_REUSEPORT ×2", reuseport_server),
        ];
        for (subject, start) in cases {
            report.add(crate::harness::run(
                Comparison {
                    bench: "B12".into(),
                    case: format!("{subject}, {conns} conn × {size_text}"),
                    metric: Metric::rate("msg/s"),
                    subject: subject.into(),
                    contenders: vec![
                        Contender::new(subject, move || contender(start, conns, size, secs)),
                        Contender::new("tokio multi-thread ×2", move || {
                            contender(tokio_mt_server, conns, size, secs)
                        }),
                    ],
                    goals: vec![Goal::ratio(
                        "≥ 1.0× tokio",
                        "tokio multi-thread ×2",
                        Bound::AtLeast(1.0),
                    )],
                },
                cfg.rounds,
                cfg.warmup,
            ));
        }
    }
}
