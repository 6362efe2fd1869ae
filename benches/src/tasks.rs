//! B10: async/await on the reactor. Task ping-pong through a oneshot channel, 100k tasks
//! each sleeping a random 0–100 ms, against tokio's `LocalSet` on a current-thread
//! runtime; and a TCP echo server written with `torsion::net` streams against tokio
//! streams and B4's callback echo (10 connections, 16 KiB).

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use torsion_net::TcpListener;
use torsion_reactor::Reactor;

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::{Server, run_client, tokio_server, torsion_server};
use crate::{Config, Report};

/// A single-threaded oneshot channel, the same for both runtimes (so the ping-pong
/// measures the executors, not two channel implementations).
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

fn oneshot<T>() -> (impl FnOnce(T), impl Future<Output = T>) {
    let slot = Rc::new(RefCell::new(Slot {
        value: None,
        waker: None,
    }));
    let tx = slot.clone();
    let send = move |v: T| {
        let mut s = tx.borrow_mut();
        s.value = Some(v);
        if let Some(w) = s.waker.take() {
            drop(s);
            w.wake();
        }
    };
    let recv = poll_fn(move |cx| {
        let mut s = slot.borrow_mut();
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    });
    (send, recv)
}

/// `n` round trips between two tasks: the pinger sends a oneshot sender to the ponger
/// through a oneshot and waits for the answer on another.
async fn ping_pong<S, J>(n: u64, spawn: S) -> u64
where
    S: Fn(std::pin::Pin<Box<dyn Future<Output = u64>>>) -> J,
    J: Future<Output = u64>,
{
    let mut total = 0;
    for i in 0..n {
        let (to_ponger, ponger_rx) = oneshot::<(u64, Box<dyn FnOnce(u64)>)>();
        let ponger = spawn(Box::pin(async move {
            let (v, reply) = ponger_rx.await;
            reply(v + 1);
            v
        }));
        let (reply, answer) = oneshot::<u64>();
        to_ponger((i, Box::new(reply)));
        total += answer.await;
        let _ = ponger.await;
    }
    total
}

fn torsion_ping_pong(n: u64) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let r = reactor.clone();
    let t0 = Instant::now();
    let total = reactor
        .block_on(ping_pong(n, move |f| {
            let h = r.spawn_local(f);
            async move { h.await.unwrap_or(0) }
        }))
        .map_err(|e| e.to_string())?;
    check_total(n, total)?;
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

fn tokio_ping_pong(n: u64) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let t0 = Instant::now();
    let total = local.block_on(
        &rt,
        ping_pong(n, |f| {
            let h = tokio::task::spawn_local(f);
            async move { h.await.unwrap_or(0) }
        }),
    );
    check_total(n, total)?;
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

fn check_total(n: u64, total: u64) -> Result<(), String> {
    // Each round trip answers i + 1.
    if total == n * (n + 1) / 2 {
        Ok(())
    } else {
        Err(format!("wrong total {total}"))
    }
}

/// The same pseudo-random sleeps (0–100 ms) for every contender.
fn sleeps(n: usize) -> Vec<Duration> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(x % 100_001)
        })
        .collect()
}

fn torsion_sleepers(n: usize) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let handles: Vec<_> = sleeps(n)
        .into_iter()
        .map(|d| {
            let r = reactor.clone();
            reactor.spawn_local(async move { r.sleep(d).await })
        })
        .collect();
    let done = reactor
        .block_on(async move {
            let mut done = 0usize;
            for h in handles {
                done += usize::from(h.await.is_ok());
            }
            done
        })
        .map_err(|e| e.to_string())?;
    if done != n {
        return Err(format!("{done} of {n} tasks finished"));
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

fn tokio_sleepers(n: usize) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let t0 = Instant::now();
    let done = local.block_on(&rt, async move {
        let handles: Vec<_> = sleeps(n)
            .into_iter()
            .map(|d| tokio::task::spawn_local(tokio::time::sleep(d)))
            .collect();
        let mut done = 0usize;
        for h in handles {
            done += usize::from(h.await.is_ok());
        }
        done
    });
    if done != n {
        return Err(format!("{done} of {n} tasks finished"));
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// torsion::net: an accept loop task and a task per connection (read, `write_all`).
pub fn net_server() -> Result<Server, String> {
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::spawn(move || -> Result<(), String> {
        let reactor = Reactor::new().map_err(|e| e.to_string())?;
        let listener = match TcpListener::bind(&reactor, "127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let _ = tx.send(Ok((port, reactor.thread_handle())));
        let r = reactor.clone();
        let _accept = reactor.spawn_local(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                drop(r.spawn_local(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if conn.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    io::Result::Ok(())
                }));
            }
        });
        while !stop2.load(Ordering::Acquire) {
            reactor
                .iterate(Duration::from_millis(100))
                .map_err(|e| e.to_string())?;
        }
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

fn echo(start: fn() -> Result<Server, String>, secs: f64) -> Sample {
    let server = start()?;
    let result = run_client(server.port, 10, 16 * 1024, secs);
    server.stop()?;
    result
}

/// Run B10.
pub fn run(cfg: &Config, report: &mut Report) {
    let n: u64 = if cfg.quick { 20_000 } else { 100_000 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B10".into(),
            case: format!("task ping-pong through a oneshot, {n} round trips"),
            metric: Metric::rate("round trips/s"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", move || torsion_ping_pong(n)),
                Contender::new("tokio LocalSet", move || tokio_ping_pong(n)),
            ],
            goals: vec![Goal::ratio(
                "≥ 1.0× tokio",
                "tokio LocalSet",
                Bound::AtLeast(1.0),
            )],
        },
        cfg.rounds,
        cfg.warmup,
    ));
    let tasks = if cfg.quick { 20_000 } else { 100_000 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B10".into(),
            case: format!("{tasks} tasks each sleeping a random 0–100 ms"),
            metric: Metric::rate("tasks/s"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", move || torsion_sleepers(tasks)),
                Contender::new("tokio LocalSet", move || tokio_sleepers(tasks)),
            ],
            goals: vec![Goal::ratio(
                "≥ 1.0× tokio",
                "tokio LocalSet",
                Bound::AtLeast(1.0),
            )],
        },
        cfg.rounds,
        cfg.warmup,
    ));
    let secs = if cfg.quick { 0.3 } else { 0.6 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B10".into(),
            case: "TCP echo, async streams, 10 conn × 16 KiB".into(),
            metric: Metric::rate("msg/s"),
            subject: "torsion::net".into(),
            contenders: vec![
                Contender::new("torsion::net", move || echo(net_server, secs)),
                Contender::new("tokio", move || echo(tokio_server, secs)),
                Contender::new("callback echo (B4)", move || echo(torsion_server, secs)),
            ],
            goals: vec![
                Goal::ratio("≥ 1.0× tokio", "tokio", Bound::AtLeast(1.0)),
                Goal::ratio(
                    "≥ 0.9× the callback echo",
                    "callback echo (B4)",
                    Bound::AtLeast(0.9),
                ),
            ],
        },
        cfg.rounds,
        cfg.warmup,
    ));
}
