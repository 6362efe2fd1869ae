//! B6: waking the loop. Cross-thread ping-pong, idle iteration rate and same-thread
//! wake + iterate, against a raw mio `Waker`, tokio and calloop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};
use torsion_reactor::Reactor;

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::{Config, Report};

/// The answer side every contender shares: the loop stores the sequence number it
/// received and unparks the pinging thread.
#[derive(Clone)]
struct Ack {
    seq: Arc<AtomicU64>,
    thread: thread::Thread,
}

impl Ack {
    fn answer(&self, i: u64) {
        self.seq.store(i, Ordering::Release);
        self.thread.unpark();
    }
}

/// Run `n` round trips from a new thread: `send(i)` hands the loop call `i`, then the
/// thread parks until the loop answered. `serve` runs the loop on this thread until `done`.
/// Returns round trips per second measured on the pinging thread.
fn ping_pong<S, L>(n: u64, make_sender: S, serve: L) -> Sample
where
    S: FnOnce(Ack) -> Box<dyn FnMut(u64) + Send>,
    L: FnOnce(&AtomicBool) -> Result<(), String>,
{
    let done = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel::<Ack>();
    let (sender_tx, sender_rx) = std::sync::mpsc::channel::<Box<dyn FnMut(u64) + Send>>();
    let seq = Arc::new(AtomicU64::new(0));
    let seq2 = seq.clone();
    let done2 = done.clone();
    let pinger = thread::spawn(move || -> Result<f64, String> {
        let _ = tx.send(Ack {
            seq: seq2.clone(),
            thread: thread::current(),
        });
        let mut send = sender_rx.recv().map_err(|e| e.to_string())?;
        let t0 = Instant::now();
        for i in 1..=n {
            send(i);
            while seq2.load(Ordering::Acquire) < i {
                thread::park_timeout(Duration::from_secs(1));
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        done2.store(true, Ordering::Release);
        send(u64::MAX);
        Ok(n as f64 / secs)
    });
    let ack = rx.recv().map_err(|e| e.to_string())?;
    sender_tx
        .send(make_sender(ack))
        .map_err(|e| e.to_string())?;
    serve(&done)?;
    let _ = seq;
    pinger.join().map_err(|_| "pinger panicked".to_owned())?
}

fn torsion_ping_pong(n: u64) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let handle = reactor.thread_handle();
    ping_pong(
        n,
        move |ack| {
            Box::new(move |i| {
                let ack = ack.clone();
                let _ = handle.call_from_thread(move || ack.answer(i));
            })
        },
        |done| {
            while !done.load(Ordering::Acquire) {
                reactor
                    .iterate(Duration::from_secs(1))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        },
    )
}

fn mio_ping_pong(n: u64) -> Sample {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let waker = Arc::new(Waker::new(poll.registry(), Token(0)).map_err(|e| e.to_string())?);
    let request = Arc::new(AtomicU64::new(0));
    let (w, r) = (waker.clone(), request.clone());
    let mut events = Events::with_capacity(16);
    let answered = std::cell::Cell::new(0u64);
    let ack_slot: std::cell::RefCell<Option<Ack>> = std::cell::RefCell::new(None);
    let ack_tx = std::sync::Mutex::new(None::<Ack>);
    let ack_tx = Arc::new(ack_tx);
    let ack_tx2 = ack_tx.clone();
    ping_pong(
        n,
        move |ack| {
            *ack_tx2.lock().unwrap_or_else(|p| p.into_inner()) = Some(ack);
            Box::new(move |i| {
                r.store(i, Ordering::Release);
                let _ = w.wake();
            })
        },
        |done| {
            *ack_slot.borrow_mut() = ack_tx.lock().unwrap_or_else(|p| p.into_inner()).take();
            let ack = ack_slot.borrow().clone().ok_or("no ack")?;
            while !done.load(Ordering::Acquire) {
                poll.poll(&mut events, Some(Duration::from_secs(1)))
                    .map_err(|e| e.to_string())?;
                for ev in events.iter() {
                    if ev.token() == Token(0) {
                        let i = request.load(Ordering::Acquire);
                        if i > answered.get() && i != u64::MAX {
                            answered.set(i);
                            ack.answer(i);
                        }
                    }
                }
            }
            Ok(())
        },
    )
}

fn tokio_ping_pong(n: u64) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let ack_cell = Arc::new(std::sync::Mutex::new(None::<Ack>));
    let ack_cell2 = ack_cell.clone();
    ping_pong(
        n,
        move |ack| {
            *ack_cell2.lock().unwrap_or_else(|p| p.into_inner()) = Some(ack);
            Box::new(move |i| {
                let _ = tx.send(i);
            })
        },
        |_done| {
            let ack = ack_cell
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .ok_or("no ack")?;
            rt.block_on(async {
                while let Some(i) = rx.recv().await {
                    if i == u64::MAX {
                        break;
                    }
                    ack.answer(i);
                }
            });
            Ok(())
        },
    )
}

fn calloop_ping_pong(n: u64) -> Sample {
    let mut event_loop: calloop::EventLoop<'_, Option<Ack>> =
        calloop::EventLoop::try_new().map_err(|e| e.to_string())?;
    let (tx, channel) = calloop::channel::channel::<u64>();
    event_loop
        .handle()
        .insert_source(channel, |event, _, ack: &mut Option<Ack>| {
            if let (calloop::channel::Event::Msg(i), Some(ack)) = (event, ack.as_ref()) {
                if i != u64::MAX {
                    ack.answer(i);
                }
            }
        })
        .map_err(|e| e.to_string())?;
    let ack_cell = Arc::new(std::sync::Mutex::new(None::<Ack>));
    let ack_cell2 = ack_cell.clone();
    ping_pong(
        n,
        move |ack| {
            *ack_cell2.lock().unwrap_or_else(|p| p.into_inner()) = Some(ack);
            Box::new(move |i| {
                let _ = tx.send(i);
            })
        },
        |done| {
            let mut ack = ack_cell.lock().unwrap_or_else(|p| p.into_inner()).take();
            while !done.load(Ordering::Acquire) {
                event_loop
                    .dispatch(Some(Duration::from_secs(1)), &mut ack)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        },
    )
}

fn rate(n: u64, t0: Instant) -> Sample {
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

pub(crate) fn torsion_idle(n: u64) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    for _ in 0..n {
        reactor.iterate(Duration::ZERO).map_err(|e| e.to_string())?;
    }
    rate(n, t0)
}

pub(crate) fn mio_idle(n: u64) -> Sample {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let _waker = Waker::new(poll.registry(), Token(0)).map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let t0 = Instant::now();
    for _ in 0..n {
        poll.poll(&mut events, Some(Duration::ZERO))
            .map_err(|e| e.to_string())?;
    }
    rate(n, t0)
}

fn tokio_idle(n: u64) -> Sample {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    rt.block_on(async {
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
    });
    rate(n, t0)
}

fn calloop_idle(n: u64) -> Sample {
    let mut event_loop: calloop::EventLoop<'_, ()> =
        calloop::EventLoop::try_new().map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    for _ in 0..n {
        event_loop
            .dispatch(Some(Duration::ZERO), &mut ())
            .map_err(|e| e.to_string())?;
    }
    rate(n, t0)
}

fn torsion_self_wake(n: u64) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let handle = reactor.thread_handle();
    let count = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    for _ in 0..n {
        let c = count.clone();
        handle
            .call_from_thread(move || {
                c.fetch_add(1, Ordering::Relaxed);
            })
            .map_err(|e| e.to_string())?;
        reactor.iterate(Duration::ZERO).map_err(|e| e.to_string())?;
    }
    if count.load(Ordering::Relaxed) != n {
        return Err("calls lost".to_owned());
    }
    rate(n, t0)
}

type Call = Box<dyn FnOnce() + Send>;

fn mio_self_wake(n: u64) -> Sample {
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let waker = Waker::new(poll.registry(), Token(0)).map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(1024);
    let queue: std::sync::Mutex<Vec<Call>> = std::sync::Mutex::new(Vec::new());
    let count = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    for _ in 0..n {
        let c = count.clone();
        queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
            }));
        waker.wake().map_err(|e| e.to_string())?;
        poll.poll(&mut events, Some(Duration::ZERO))
            .map_err(|e| e.to_string())?;
        let batch = std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()));
        for f in batch {
            f();
        }
    }
    if count.load(Ordering::Relaxed) != n {
        return Err("calls lost".to_owned());
    }
    rate(n, t0)
}

/// Run B6.
pub fn run(cfg: &Config, report: &mut Report) {
    let trips = if cfg.quick { 5_000 } else { 30_000 };
    let iters = if cfg.quick { 200_000 } else { 1_000_000 };
    let goal = || {
        vec![Goal::ratio(
            "≥ 0.9× raw mio Waker",
            "raw mio",
            Bound::AtLeast(0.9),
        )]
    };
    report.add(crate::harness::run(
        Comparison {
            bench: "B6".into(),
            case: "call_from_thread ping-pong".into(),
            metric: Metric::rate("round trips/s"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", || torsion_ping_pong(trips)),
                Contender::new("raw mio", || mio_ping_pong(trips)),
                Contender::new("tokio", || tokio_ping_pong(trips)),
                Contender::new("calloop", || calloop_ping_pong(trips)),
            ],
            goals: goal(),
        },
        cfg.rounds,
        cfg.warmup,
    ));
    report.add(crate::harness::run(
        Comparison {
            bench: "B6".into(),
            case: "idle iteration".into(),
            metric: Metric::rate("iterations/s"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", || torsion_idle(iters)),
                Contender::new("raw mio", || mio_idle(iters)),
                Contender::new("tokio", || tokio_idle(iters)),
                Contender::new("calloop", || calloop_idle(iters)),
            ],
            goals: goal(),
        },
        cfg.rounds,
        cfg.warmup,
    ));
    report.add(crate::harness::run(
        Comparison {
            bench: "B6".into(),
            case: "self-wake: queue a call + iterate".into(),
            metric: Metric::rate("wakes/s"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", || torsion_self_wake(iters)),
                Contender::new("raw mio", || mio_self_wake(iters)),
            ],
            goals: Vec::new(),
        },
        cfg.rounds,
        cfg.warmup,
    ));
}
