//! B4 at scale: the echo cells at 1,000 and 10,000 concurrent connections (64-byte
//! messages), and the heap each contender holds per busy connection, sampled by the
//! counting allocator while all connections have a message in flight.
//!
//! One run gives both figures: the client (`report echo-client --announce 1`, another
//! process) prints `CONNECTED N` when every connection is up; half-way through its measured
//! time this process reads the live heap bytes, minus those live before the server
//! accepted anything, over N. The heap comparison replays the samples of the throughput
//! runs, so no run is made twice.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use crate::alloc::allocated;
use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::tcp::{Server, mio_server, tokio_server, torsion_server};
use crate::twisted::{field, parse_result};
use crate::{Config, Report};

/// Message size of the scale cells.
const SIZE: usize = 64;

/// Run the client against `server` with `conns` connections for `secs`: (messages per
/// second, heap bytes per connection).
pub(crate) fn measure(server: &Server, conns: usize, secs: f64) -> Result<(f64, f64), String> {
    let base = allocated().ok_or("the counting allocator is not installed")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            "echo-client",
            "--port",
            &server.port.to_string(),
            "--conns",
            &conns.to_string(),
            "--size",
            &SIZE.to_string(),
            "--secs",
            &secs.to_string(),
            "--warmup",
            "0.1",
            "--announce",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the client: {e}"))?;
    let mut out = BufReader::new(child.stdout.take().ok_or("no client stdout")?);
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    let heap = if line.starts_with("CONNECTED") {
        // Every connection is up and busy; sample half-way through the measured time.
        std::thread::sleep(Duration::from_secs_f64(0.1 + secs / 2.0));
        let now = allocated().ok_or("the counting allocator is not installed")?;
        Some((now - base) as f64 / conns as f64)
    } else {
        None
    };
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let r =
        parse_result(&rest).ok_or_else(|| format!("client failed ({status}): {}", err.trim()))?;
    let rate = field(&r, "msgs_per_sec")?;
    let heap = heap.ok_or_else(|| format!("client did not connect: {line:?} {}", err.trim()))?;
    Ok((rate, heap))
}

type Heaps = Rc<RefCell<VecDeque<Sample>>>;

/// A throughput contender that also records its heap sample for the replay.
fn contender<'a>(
    name: &str,
    start: fn() -> Result<Server, String>,
    conns: usize,
    secs: f64,
    heaps: &Heaps,
) -> Contender<'a> {
    let heaps = heaps.clone();
    Contender::new(name, move || {
        let server = start()?;
        let result = measure(&server, conns, secs);
        let stopped = server.stop();
        let (rate, heap) = match (result, stopped) {
            (Ok(r), Ok(())) => r,
            (Err(e), _) | (Ok(_), Err(e)) => {
                heaps.borrow_mut().push_back(Err(e.clone()));
                return Err(e);
            }
        };
        heaps.borrow_mut().push_back(Ok(heap));
        Ok(rate)
    })
}

/// A contender that hands back recorded samples in order.
fn replay<'a>(name: &str, samples: Heaps) -> Contender<'a> {
    Contender::new(name, move || {
        samples
            .borrow_mut()
            .pop_front()
            .unwrap_or_else(|| Err("no recorded sample".to_owned()))
    })
}

/// Run the scale cells of B4.
pub fn run(cfg: &Config, report: &mut Report) {
    if let Err(e) = crate::rawproc::raise_fd_limit() {
        eprintln!("  cannot raise the fd limit: {e}");
    }
    let secs = cfg.pick(0.3, 0.5, 0.6);
    let counts: &[usize] = cfg.pick(&[1_000], &[1_000], &[1_000, 10_000]);
    for &conns in counts {
        let names = ["torsion", "raw mio", "tokio"];
        let starts: [fn() -> Result<Server, String>; 3] =
            [torsion_server, mio_server, tokio_server];
        let heaps: Vec<Heaps> = names.iter().map(|_| Heaps::default()).collect();
        let contenders = names
            .iter()
            .zip(starts)
            .zip(&heaps)
            .map(|((name, start), h)| contender(name, start, conns, secs, h))
            .collect();
        report.add(crate::harness::run(
            Comparison {
                bench: "B4".into(),
                case: format!("{} conn × {SIZE} B", crate::timers::count(conns)),
                metric: Metric::rate("msg/s"),
                subject: "torsion".into(),
                contenders,
                goals: vec![
                    Goal::ratio("≥ 0.95× raw mio", "raw mio", Bound::AtLeast(0.95)),
                    Goal::ratio("≥ 1.0× tokio", "tokio", Bound::AtLeast(1.0)),
                ],
            },
            cfg.rounds,
            cfg.warmup,
        ));
        // The warm-up round's samples were recorded too: drop them, replay the rest.
        for h in &heaps {
            let mut h = h.borrow_mut();
            for _ in 0..cfg.warmup.min(h.len()) {
                h.pop_front();
            }
        }
        let contenders = names
            .iter()
            .zip(&heaps)
            .map(|(name, h)| replay(name, h.clone()))
            .collect();
        report.add(crate::harness::run(
            Comparison {
                bench: "B8".into(),
                case: format!(
                    "heap per busy TCP connection ({} echoing)",
                    crate::timers::count(conns)
                ),
                metric: Metric::cost("bytes"),
                subject: "torsion".into(),
                contenders,
                goals: vec![Goal::value(
                    "≤ 512 bytes per connection",
                    Bound::AtMost(512.0),
                )],
            },
            cfg.rounds,
            0,
        ));
    }
}
