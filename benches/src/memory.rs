//! B8: heap bytes per idle TCP connection and per live child, from the counting global
//! allocator the report binary installs ([`crate::alloc`]).

use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_reactor::{Reactor, TcpOptions};
use torsion_transport::{
    Address, ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport, Protocol, factory_fn,
};

use crate::alloc::allocated;
use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::{Config, Report};

fn live() -> Result<isize, String> {
    allocated().ok_or_else(|| "the counting allocator is not installed".to_owned())
}

/// Start `report echo-client --idle n`; the caller accepts, then calls [`ready`].
fn idle_client(port: u16, n: usize) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    Command::new(exe)
        .args([
            "echo-client",
            "--port",
            &port.to_string(),
            "--idle",
            &n.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| e.to_string())
}

/// Wait for the client's `READY` line (all its connections are accepted by now).
fn ready(mut child: Child) -> Result<Child, String> {
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if !line.starts_with("READY") {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("idle client did not connect: {line:?}"));
    }
    Ok(child)
}

fn finish(mut child: Child) {
    drop(child.stdin.take());
    let _ = child.wait();
}

struct Idle;

impl Protocol for Idle {
    fn data_received(&mut self, _data: &[u8]) {}
}

fn iterate_until(reactor: &Reactor, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() > deadline {
            return Err("timed out".to_owned());
        }
        reactor
            .iterate(Duration::from_millis(50))
            .map_err(|e| e.to_string())?;
    }
    for _ in 0..3 {
        reactor.iterate(Duration::ZERO).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// torsion: bytes per accepted idle connection.
fn torsion_connections(n: usize) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let accepted = Rc::new(Cell::new(0usize));
    let a = accepted.clone();
    let port = torsion_reactor::tcp::listen_tcp(
        &reactor,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        factory_fn(move |_| {
            a.set(a.get() + 1);
            Box::new(Idle)
        }),
        &TcpOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let number = match torsion_transport::ListeningPort::host(&*port) {
        Address::Ipv4(a) => a.port(),
        other => return Err(format!("unexpected address {other}")),
    };
    // Warm-up: the first connections create the shared read buffer and grow the slab a bit.
    let warm = idle_client(number, 16)?;
    iterate_until(&reactor, || accepted.get() >= 16)?;
    let warm = ready(warm)?;
    let before = live()?;
    let client = idle_client(number, n)?;
    iterate_until(&reactor, || accepted.get() >= 16 + n)?;
    let client = ready(client)?;
    let after = live()?;
    finish(client);
    finish(warm);
    let r = reactor.clone();
    iterate_until(&reactor, || r.selectable_count() <= 1)?;
    Ok((after - before) as f64 / n as f64)
}

/// raw mio: a slab of `TcpStream`s (the floor: what any program must keep).
fn mio_connections(n: usize) -> Sample {
    use mio::net::TcpListener;
    use mio::{Events, Interest, Poll, Token};
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut listener =
        TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).map_err(|e| e.to_string())?;
    poll.registry()
        .register(&mut listener, Token(usize::MAX), Interest::READABLE)
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut events = Events::with_capacity(1024);
    let mut conns = slab::Slab::new();
    let mut accept = |conns: &mut slab::Slab<mio::net::TcpStream>,
                      poll: &mut Poll,
                      want: usize|
     -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while conns.len() < want {
            if Instant::now() > deadline {
                return Err("timed out".to_owned());
            }
            poll.poll(&mut events, Some(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
            while let Ok((mut s, _)) = listener.accept() {
                let e = conns.vacant_entry();
                poll.registry()
                    .register(&mut s, Token(e.key()), Interest::READABLE)
                    .map_err(|e| e.to_string())?;
                e.insert(s);
            }
        }
        Ok(())
    };
    let warm = idle_client(port, 16)?;
    accept(&mut conns, &mut poll, 16)?;
    let warm = ready(warm)?;
    let before = live()?;
    let client = idle_client(port, n)?;
    accept(&mut conns, &mut poll, 16 + n)?;
    let client = ready(client)?;
    let after = live()?;
    finish(client);
    finish(warm);
    Ok((after - before) as f64 / n as f64)
}

/// tokio: a task per connection waiting for readability, no buffer.
fn tokio_connections(n: usize) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let accepted = Rc::new(Cell::new(0usize));
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let a = accepted.clone();
                tokio::task::spawn_local(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        a.set(a.get() + 1);
                        tokio::task::spawn_local(async move {
                            loop {
                                if stream.readable().await.is_err() {
                                    break;
                                }
                                let mut b = [0u8; 1];
                                match stream.try_read(&mut b) {
                                    Ok(0) => break,
                                    Ok(_) => {}
                                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                    Err(_) => break,
                                }
                            }
                        });
                    }
                });
                let wait_for = |want: usize| {
                    let a = accepted.clone();
                    async move {
                        let deadline = Instant::now() + Duration::from_secs(20);
                        while a.get() < want && Instant::now() < deadline {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        for _ in 0..10 {
                            tokio::task::yield_now().await;
                        }
                    }
                };
                let warm = idle_client(port, 16)?;
                wait_for(16).await;
                let warm = ready(warm)?;
                let before = live()?;
                let client = idle_client(port, n)?;
                wait_for(16 + n).await;
                let client = ready(client)?;
                let after = live()?;
                finish(client);
                finish(warm);
                Ok((after - before) as f64 / n as f64)
            })
            .await
    })
}

struct Quiet(Rc<Cell<usize>>);

impl ProcessProtocol for Quiet {
    fn connection_made(&mut self, _transport: Rc<dyn ProcessTransport>) {}
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.set(self.0.get() + 1);
    }
}

fn spawn_on(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Rc<dyn ProcessTransport>, String> {
    torsion_process::ProcessBuilderExt::spawn(builder, reactor, protocol)
        .map(|p| p as Rc<dyn ProcessTransport>)
        .map_err(|e| e.to_string())
}

/// torsion: bytes per live `cat` child with three pipes (held open until measured).
fn torsion_children(n: usize) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let builder = ProcessBuilder::new("cat");
    let ended = Rc::new(Cell::new(0usize));
    // Warm-up child: the first spawn sets up the reaper and the shared buffers.
    let warm = spawn_on(&reactor, &builder, Box::new(Quiet(ended.clone())))?;
    let _ = warm.close_stdin();
    iterate_until(&reactor, || ended.get() >= 1)?;
    let before = live()?;
    let mut children = Vec::with_capacity(n);
    for _ in 0..n {
        children.push(spawn_on(
            &reactor,
            &builder,
            Box::new(Quiet(ended.clone())),
        )?);
    }
    for _ in 0..3 {
        reactor
            .iterate(Duration::from_millis(1))
            .map_err(|e| e.to_string())?;
    }
    // The handles the benchmark keeps are the caller's, not the framework's.
    let handles = (children.capacity() * std::mem::size_of::<Rc<dyn ProcessTransport>>()) as isize;
    let after = live()? - handles;
    for c in &children {
        let _ = c.close_stdin();
    }
    drop(children);
    iterate_until(&reactor, || ended.get() > n)?;
    Ok((after - before) as f64 / n as f64)
}

/// Run B8.
pub fn run(cfg: &Config, report: &mut Report) {
    let conns = if cfg.quick { 200 } else { 1000 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B8".into(),
            case: format!("heap per idle TCP connection ({conns} held)"),
            metric: Metric::cost("bytes"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", || torsion_connections(conns)),
                Contender::new("raw mio", || mio_connections(conns)),
                Contender::new("tokio", || tokio_connections(conns)),
            ],
            goals: vec![Goal::value(
                "≤ 512 bytes per connection",
                Bound::AtMost(512.0),
            )],
        },
        cfg.rounds.min(3),
        cfg.warmup,
    ));
    let children = if cfg.quick { 50 } else { 200 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B8".into(),
            case: format!("heap per live child, 3 pipes ({children} `cat`s)"),
            metric: Metric::cost("bytes"),
            subject: "torsion".into(),
            contenders: vec![Contender::new("torsion", || torsion_children(children))],
            goals: vec![Goal::value("≤ 1 KiB per child", Bound::AtMost(1024.0))],
        },
        cfg.rounds.min(3),
        cfg.warmup,
    ));
}
