//! B9: line protocol throughput. A line-echo server (LF-ended lines) on 10 connections
//! with 64-byte lines: one line in flight per connection, and 64 lines (4 KiB) in flight
//! per connection; the load client is B4's (`report echo-client --line 64`) in another
//! process.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;
use torsion_toolkit::framing::{Delimiter, LineControl, LineHandler, LineReceiver, MAX_LENGTH};
use torsion_transport::factory_fn;

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::Server;
use crate::twisted::{Twisted, field, parse_result};
use crate::{Config, Report};

/// Connections of the B9 case.
pub const CONNS: usize = 10;
/// Bytes per line, the `\n` included.
pub const LINE: usize = 64;

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Echo each line.
struct Echo;

impl LineHandler for Echo {
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        ctl.send_line(line);
    }
}

/// torsion: `listen_tcp` with `LineReceiver` (LF lines) and `send_line`.
fn torsion_server() -> Result<Server, String> {
    crate::tcp::torsion_server_with(|| {
        factory_fn(|_| Box::new(LineReceiver::new(Echo).with_delimiter(Delimiter::lf())))
    })
}

/// One raw connection: the unfinished line and the unsent output.
struct RawConn {
    stream: TcpStream,
    input: Vec<u8>,
    pending: Vec<u8>,
}

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

fn write_some(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match stream.write(&data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Hand framing: append what arrived to the unfinished line, cut every complete line,
/// queue each one back with its `\n`, and close on a line over the maximum.
fn frame(c: &mut RawConn, data: &[u8], out: &mut Vec<u8>) -> bool {
    c.input.extend_from_slice(data);
    let mut start = 0;
    while let Some(i) = c.input[start..].iter().position(|&b| b == b'\n') {
        let line = &c.input[start..start + i];
        if line.len() > MAX_LENGTH {
            return false;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
        start += i + 1;
    }
    c.input.drain(..start);
    c.input.len() <= MAX_LENGTH
}

/// Serve one readiness event; false when the connection is finished.
fn raw_serve(
    c: &mut RawConn,
    ev: &mio::event::Event,
    buf: &mut [u8],
    out: &mut Vec<u8>,
) -> io::Result<bool> {
    if ev.is_writable() && !c.pending.is_empty() {
        let n = write_some(&mut c.stream, &c.pending)?;
        c.pending.drain(..n);
    }
    if ev.is_readable() || ev.is_read_closed() {
        loop {
            match c.stream.read(buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    out.clear();
                    if !frame(c, &buf[..n], out) {
                        return Ok(false);
                    }
                    if c.pending.is_empty() {
                        let w = write_some(&mut c.stream, out)?;
                        c.pending.extend_from_slice(&out[w..]);
                    } else {
                        c.pending.extend_from_slice(out);
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

/// raw mio: one `Poll`, a slab, a shared read buffer, framing by hand.
fn mio_server() -> Result<Server, String> {
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
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::with_capacity(64 * 1024);
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
                                        input: Vec::new(),
                                        pending: Vec::new(),
                                    });
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(e),
                            }
                        },
                        Token(k) => {
                            let keep = match conns.get_mut(k) {
                                Some(c) => raw_serve(c, ev, &mut buf, &mut out).unwrap_or(false),
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
    Ok(Server::new(
        port,
        Box::new(move || {
            stop.store(true, Ordering::Release);
            let _ = waker.wake();
        }),
        thread,
    ))
}

/// tokio: current-thread runtime, a task per connection, `Framed` with `LinesCodec`
/// (the same 16,384-byte maximum), split, the lines `forward`ed into the sink (which
/// flushes when no more input is ready, so a burst of lines costs one write).
fn tokio_server() -> Result<Server, String> {
    use futures_util::StreamExt;
    use tokio_util::codec::{Framed, LinesCodec};
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
                    tokio::spawn(async move {
                        let lines =
                            Framed::new(stream, LinesCodec::new_with_max_length(MAX_LENGTH));
                        let (sink, source) = lines.split();
                        let _ = source.forward(sink).await;
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

/// Run the load client in line mode against `port`, `depth` lines in flight per
/// connection: lines per second.
fn run_client(port: u16, depth: usize, secs: f64) -> Sample {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args([
            "echo-client",
            "--port",
            &port.to_string(),
            "--conns",
            &CONNS.to_string(),
            "--size",
            &(LINE * depth).to_string(),
            "--secs",
            &secs.to_string(),
            "--warmup",
            "0.1",
            "--line",
            &LINE.to_string(),
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
    Ok(field(&r, "msgs_per_sec")? * depth as f64)
}

fn rust_contender(start: fn() -> Result<Server, String>, depth: usize, secs: f64) -> Sample {
    let server = start()?;
    let result = run_client(server.port, depth, secs);
    server.stop()?;
    result
}

fn twisted_contender(tw: &Twisted, depth: usize, secs: f64) -> Sample {
    let (mut child, port) = tw.start_server("line_echo_server.py", &[])?;
    let result = run_client(port, depth, secs);
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Run B9.
pub fn run(cfg: &Config, report: &mut Report) {
    let secs = if cfg.quick { 0.3 } else { 0.6 };
    for depth in [1usize, 64] {
        let mut contenders = vec![
            Contender::new("torsion", move || {
                rust_contender(torsion_server, depth, secs)
            }),
            Contender::new("raw mio", move || rust_contender(mio_server, depth, secs)),
            Contender::new("tokio", move || rust_contender(tokio_server, depth, secs)),
        ];
        let mut goals = vec![
            Goal::ratio("≥ 0.95× raw mio", "raw mio", Bound::AtLeast(0.95)),
            Goal::ratio("≥ 1.0× tokio", "tokio", Bound::AtLeast(1.0)),
        ];
        if let Some(tw) = &cfg.twisted {
            contenders.push(Contender::new("Twisted", move || {
                twisted_contender(tw, depth, secs)
            }));
            goals.push(Goal::ratio("≥ 5× Twisted", "Twisted", Bound::AtLeast(5.0)));
        }
        report.add(crate::harness::run(
            Comparison {
                bench: "B9".into(),
                case: format!("{CONNS} conn × {LINE} B lines, {depth} in flight"),
                metric: Metric::rate("line/s"),
                subject: "torsion".into(),
                contenders,
                goals,
            },
            cfg.rounds,
            cfg.warmup,
        ));
    }
}
