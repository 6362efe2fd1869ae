//! tour: a walk through torsion on one reactor, in well under a second — a framed TCP
//! echo server (`LineReceiver`), a client streaming 8 MiB under flow control, a half-close, timers, a
//! `LoopingCall`, and `Deferred`s that gather the results and stop the reactor.
//!
//! Run it: `cargo run -p torsion-examples --bin tour` (exits 0, prints what happened and
//! what to read next; any failed check exits non-zero with a message). `--help` says so.
//! The protocols are in `examples/src/tour.rs`.

use std::cell::{Cell, RefCell};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use torsion::defer::gather;
use torsion::prelude::*;
use torsion::reactor::Reactor;
use torsion_examples::tour::{CHUNK, TOTAL, Tour, server};

/// A walk through torsion on one reactor.
///
/// A framed TCP echo server, a client streaming 8 MiB under flow control, a half-close, timers,
/// a LoopingCall, and Deferreds that gather the results and stop the reactor. Takes no
/// arguments; prints each check, then what to read next.
#[derive(Debug, Parser)]
#[command(name = "tour")]
struct Args {}

const READ_NEXT: &str = "\
read next:
  README.md                          the two commands, a protocol in 20 lines, the crate map
  docs/guides/writing-a-protocol.md  framing (LineReceiver and friends), flow control, testing
  docs/guides/getting-results-out.md Deferreds, timeouts, LoopingCall, a child's output
  docs/guides/writing-a-daemon.md    endpoints, systemd activation and readiness, workers
  docs/ARCHITECTURE.md               how torsion is built: crates, the loop, processes
  docs/CONTRACT.md                   what torsion promises, item by item (tests are named after them)
  examples/src/bin/                  chat-server, echo-server, netcat, run, parallel...: real programs
  cargo doc --open -p torsion        the API, each crate opening with a runnable example";

fn tour() -> Result<(), String> {
    let start = Instant::now();
    let reactor = Reactor::new().map_err(|e| format!("cannot create the reactor: {e}"))?;
    let tour = Tour::new();

    // 1. A server on a free port, and a client streaming 8 MiB through it.
    let port = reactor
        .listen_tcp(([127, 0, 0, 1], 0).into(), factory_fn(|_| server()))
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = port.host().socket_addr().ok_or("no TCP address")?;
    reactor.connect_tcp(addr, tour.clone(), Some(Duration::from_secs(1)));

    // 2. Timers: one that fires, one cancelled, one moved earlier with `reset`, which
    //    completes a Deferred when it runs.
    let timers = Rc::new(RefCell::new(Vec::new()));
    let (t1, t2, t3) = (timers.clone(), timers.clone(), timers.clone());
    reactor.call_later(Duration::from_millis(10), move || {
        t1.borrow_mut().push("fired")
    });
    let cancelled = reactor.call_later(Duration::from_millis(5), move || {
        t2.borrow_mut().push("cancelled")
    });
    cancelled.cancel().map_err(|e| e.to_string())?;
    let timers_done = Deferred::new();
    let td = timers_done.clone();
    let moved = reactor.call_later(Duration::from_secs(60), move || {
        t3.borrow_mut().push("reset");
        let _ = td.callback(());
    });
    moved
        .reset(Duration::from_millis(20))
        .map_err(|e| e.to_string())?;

    // 3. A LoopingCall ticking every 2 ms while the stream runs (the first tick at once).
    let ticks = Rc::new(Cell::new(0u32));
    let tk = ticks.clone();
    let ticker = LoopingCall::new(&reactor, move || tk.set(tk.get() + 1));
    let ticking = ticker
        .start(Duration::from_millis(2), true)
        .map_err(|e| e.to_string())?;

    // 4. Results out: the stream's end stops the ticker; the three results are gathered
    //    under one timeout; the last callback stops the reactor. No polling.
    let streamed = tour.done.clone().add_callback(move |()| {
        let _ = ticker.stop();
    });
    let outcome: Rc<RefCell<Option<Result<(), Failure>>>> = Rc::default();
    let (o, r) = (outcome.clone(), reactor.clone());
    drop(
        gather(vec![streamed, ticking, timers_done])
            .add_timeout(&reactor, Duration::from_secs(5))
            .add_both(move |result| {
                *o.borrow_mut() = Some(result.map(drop));
                let _ = r.stop();
                Ok(())
            }),
    );
    reactor.run().map_err(|e| e.to_string())?;
    port.stop_listening();

    match outcome.borrow_mut().take() {
        Some(Ok(())) => {}
        Some(Err(f)) => return Err(format!("the tour did not finish: {f}")),
        None => return Err("the reactor stopped before the results came".into()),
    }
    let tail = String::from_utf8_lossy(&tour.tail.borrow()).into_owned();
    let secs = tour.echo_done.get().unwrap_or_default().as_secs_f64();
    let (timers, p, r) = (timers.borrow(), tour.pauses.get(), tour.resumes.get());
    let checks = [
        (
            tour.sent.get() == TOTAL,
            format!("streamed {TOTAL} bytes in {CHUNK}-byte writes"),
        ),
        (
            p > 0 && p == r,
            format!("flow control: producer paused {p} times, resumed {r}"),
        ),
        (
            tour.echoed.get() == TOTAL && !tour.corrupt.get(),
            format!("echo verified byte for byte in {secs:.3} s"),
        ),
        (
            tour.write_closed.get(),
            "half-close: our write side shut down".into(),
        ),
        (
            tail == format!("|server read {TOTAL} bytes\r\n"),
            format!("framing: a header line, then raw mode; at EOF the line {tail:?}"),
        ),
        (
            true,
            "connection closed cleanly: its Deferred succeeded".into(),
        ),
        (timers.contains(&"fired"), "call_later(10 ms) fired".into()),
        (
            !timers.contains(&"cancelled") && cancelled.cancelled(),
            "cancelled call never ran".into(),
        ),
        (
            timers.contains(&"reset") && moved.called(),
            "call_later(60 s) reset to 20 ms ran".into(),
        ),
        (
            ticks.get() >= 1,
            format!(
                "LoopingCall ticked {} times, stopped when the stream ended",
                ticks.get()
            ),
        ),
        (
            true,
            "gather(..) under a 5 s add_timeout succeeded; its callback stopped the reactor".into(),
        ),
        (
            reactor.selectable_count() == 0,
            "reactor stopped with nothing left registered".into(),
        ),
    ];
    println!("torsion tour: echo server on {}", port.host());
    for (ok, what) in checks {
        if !ok {
            return Err(format!("FAILED: {what}"));
        }
        println!("  OK  {what}");
    }
    let secs = start.elapsed().as_secs_f64();
    println!("done in {secs:.3} s\n\n{READ_NEXT}");
    Ok(())
}

fn main() -> ExitCode {
    Args::parse();
    torsion_examples::exit_code("tour", tour())
}
