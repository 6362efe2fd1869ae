//! B14: tail latency of TCP request/response under a fixed offered load.
//!
//! 100 connections, 64-byte requests echoed by the B4 servers (torsion, raw mio, tokio).
//! First each server's closed-loop maximum is measured (the B4 client, one request in
//! flight per connection); the offered loads are 50% and 90% of the smallest of those, so
//! every server gets the same load and none is past its capacity. Then an **open-loop**
//! client (`report echo-client --rate R`, another process) sends requests at their
//! scheduled times whether or not earlier ones were answered and measures each latency
//! from the scheduled time to the last byte of the echo, so a server that falls behind
//! cannot hide its queueing (no coordinated omission). Requests unanswered at the end count
//! at their age. The p99 comparison runs the servers; p50 and p99.9 replay the same runs.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::rc::Rc;

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::{Server, mio_server, run_client, tokio_server, torsion_server};
use crate::twisted::{field, parse_result};
use crate::{Config, Report};

const CONNS: usize = 100;
const SIZE: usize = 64;

/// (p50, p99, p99.9) in microseconds.
type Tail = (f64, f64, f64);

fn open_loop(port: u16, rate: f64, secs: f64) -> Result<Tail, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args([
            "echo-client",
            "--port",
            &port.to_string(),
            "--conns",
            &CONNS.to_string(),
            "--size",
            &SIZE.to_string(),
            "--secs",
            &secs.to_string(),
            "--warmup",
            "0.2",
            "--rate",
            &format!("{rate:.0}"),
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
    Ok((
        field(&r, "p50_us")?,
        field(&r, "p99_us")?,
        field(&r, "p999_us")?,
    ))
}

type Recorded = Rc<RefCell<VecDeque<Sample>>>;

fn replay<'a>(name: &str, samples: Recorded) -> Contender<'a> {
    Contender::new(name, move || {
        samples
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err("no recorded sample".to_owned()))
    })
}

const NAMES: [&str; 3] = ["torsion", "raw mio", "tokio"];
const STARTS: [fn() -> Result<Server, String>; 3] = [torsion_server, mio_server, tokio_server];

/// Run B14.
pub fn run(cfg: &Config, report: &mut Report) {
    let secs = cfg.pick(0.5, 1.0, 1.0);
    // The closed-loop maximum of each server; the loads are fractions of the smallest.
    let mut maxima = Vec::new();
    for (name, start) in NAMES.iter().zip(STARTS) {
        let m = start().and_then(|server| {
            let r = run_client(server.port, CONNS, SIZE, cfg.pick(0.3, 0.5, 0.5));
            server.stop()?;
            r
        });
        match m {
            Ok(v) => {
                eprintln!("  B14 closed-loop maximum of {name}: {v:.0} req/s");
                maxima.push(v);
            }
            Err(e) => eprintln!("  B14 closed-loop maximum of {name} failed: {e}"),
        }
    }
    let Some(max) = maxima.iter().copied().reduce(f64::min) else {
        report.skip(
            "B14",
            "open-loop request/response",
            "no server could be measured closed-loop",
            "p99 ≤ tokio's",
        );
        return;
    };
    report.note(
        "B14",
        &format!(
            "Closed-loop maxima (100 connections × 64 B, one request in flight each): {}; \
             the offered loads are fractions of the smallest, {max:.0} requests/s.",
            NAMES
                .iter()
                .zip(&maxima)
                .map(|(n, m)| format!("{n} {m:.0}/s"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    for share in [0.5, 0.9] {
        let rate = max * share;
        let recorded: Vec<(Recorded, Recorded)> = NAMES
            .iter()
            .map(|_| (Recorded::default(), Recorded::default()))
            .collect();
        let contenders = NAMES
            .iter()
            .zip(STARTS)
            .zip(&recorded)
            .map(|((name, start), (p50s, p999s))| {
                let (p50s, p999s) = (p50s.clone(), p999s.clone());
                Contender::new(*name, move || {
                    let tail = start().and_then(|server| {
                        let r = open_loop(server.port, rate, secs);
                        server.stop()?;
                        r
                    });
                    match tail {
                        Ok((p50, p99, p999)) => {
                            p50s.borrow_mut().push_back(Ok(p50));
                            p999s.borrow_mut().push_back(Ok(p999));
                            Ok(p99)
                        }
                        Err(e) => {
                            p50s.borrow_mut().push_back(Err(e.clone()));
                            p999s.borrow_mut().push_back(Err(e.clone()));
                            Err(e)
                        }
                    }
                })
            })
            .collect();
        let load = format!("{:.0}% of max ({:.0} req/s)", share * 100.0, rate);
        report.add(crate::harness::run(
            Comparison {
                bench: "B14".into(),
                case: format!("p99 at {load}"),
                metric: Metric::cost("µs"),
                subject: "torsion".into(),
                contenders,
                goals: vec![Goal::ratio("p99 ≤ tokio's", "tokio", Bound::AtMost(1.0))],
            },
            cfg.rounds,
            cfg.warmup,
        ));
        for (label, pick) in [("p50", 0usize), ("p99.9", 1)] {
            let contenders = NAMES
                .iter()
                .zip(&recorded)
                .map(|(name, pair)| {
                    let r = if pick == 0 { &pair.0 } else { &pair.1 };
                    // The warm-up round was recorded too.
                    let warm = cfg.warmup.min(r.borrow().len());
                    r.borrow_mut().drain(..warm);
                    replay(name, r.clone())
                })
                .collect();
            report.add(crate::harness::run(
                Comparison {
                    bench: "B14".into(),
                    case: format!("{label} at {load}"),
                    metric: Metric::cost("µs"),
                    subject: "torsion".into(),
                    contenders,
                    goals: Vec::new(),
                },
                cfg.rounds,
                0,
            ));
        }
    }
}
