//! tour: a two-second walk through torsion on one reactor — a TCP echo server, a client
//! streaming 8 MiB under flow control, timers, a half-close, and a clean stop.
//!
//! Run it: `cargo run -p torsion-examples --bin tour` (exits 0, prints what happened and
//! what to read next; any failed check exits non-zero with a message). `--help` says so.

use std::cell::{Cell, RefCell};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use torsion::prelude::*;
use torsion::reactor::Reactor;

/// A two-second walk through torsion on one reactor.
///
/// A TCP echo server, a client streaming 8 MiB under flow control, timers, a half-close
/// and a clean stop. Takes no arguments; prints each check, then what to read next.
#[derive(Debug, Parser)]
#[command(name = "tour")]
struct Args {}

const TOTAL: usize = 8 << 20;
const CHUNK: usize = 64 * 1024;

fn pattern(pos: usize, len: usize) -> Vec<u8> {
    (pos..pos + len).map(|i| (i % 251) as u8).collect()
}

/// Echoes with flow control; when the client half-closes, reports and closes.
#[derive(Default)]
struct Server {
    t: Option<Rc<dyn Transport>>,
    bytes: usize,
}
impl Protocol for Server {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        let me: Rc<dyn PushProducer> = t.clone();
        let _ = t.register_producer(Producer::Push(me));
        self.t = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.bytes += data.len();
        if let Some(t) = &self.t {
            t.write(data);
        }
    }
    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}
impl HalfCloseableProtocol for Server {
    fn read_connection_lost(&mut self) {
        if let Some(t) = &self.t {
            t.unregister_producer();
            t.write(format!("|server read {} bytes", self.bytes).as_bytes());
            t.lose_connection();
        }
    }
}

/// Everything the tour observes.
#[derive(Default)]
struct Tour {
    t: RefCell<Option<Rc<dyn Transport>>>,
    sent: Cell<usize>,
    paused: Cell<bool>,
    pauses: Cell<usize>,
    resumes: Cell<usize>,
    echoed: Cell<usize>,
    corrupt: Cell<bool>,
    tail: RefCell<Vec<u8>>,
    write_closed: Cell<bool>,
    lost: RefCell<Option<Reason>>,
    timers: RefCell<Vec<&'static str>>,
    echo_done: Cell<Option<Duration>>,
    start: Cell<Option<Instant>>,
    failure: RefCell<Option<String>>,
    me: RefCell<std::rc::Weak<Tour>>,
}

impl PushProducer for Tour {
    fn pause_producing(&self) {
        self.pauses.set(self.pauses.get() + 1);
        self.paused.set(true);
    }
    fn resume_producing(&self) {
        self.resumes.set(self.resumes.get() + 1);
        self.paused.set(false);
        self.produce();
    }
    fn stop_producing(&self) {}
}

impl Tour {
    fn produce(&self) {
        let Some(t) = self.t.borrow().clone() else {
            return;
        };
        while !self.paused.get() && self.sent.get() < TOTAL {
            let n = CHUNK.min(TOTAL - self.sent.get());
            let chunk = pattern(self.sent.get(), n);
            self.sent.set(self.sent.get() + n);
            t.write(&chunk); // may pause us, synchronously (CONTRACT D4)
        }
    }
}

struct Client(Rc<Tour>);
impl Protocol for Client {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        *self.0.t.borrow_mut() = Some(t.clone());
        let me: Rc<dyn PushProducer> = self.0.clone();
        let _ = t.register_producer(Producer::Push(me));
        self.0.produce();
    }
    fn data_received(&mut self, data: &[u8]) {
        let tour = &self.0;
        let (pos, take) = (tour.echoed.get(), data.len().min(TOTAL - tour.echoed.get()));
        tour.corrupt
            .set(tour.corrupt.get() || data[..take] != pattern(pos, take)[..]);
        tour.echoed.set(pos + take);
        tour.tail.borrow_mut().extend_from_slice(&data[take..]);
        if pos < TOTAL && pos + take == TOTAL {
            tour.echo_done.set(tour.start.get().map(|s| s.elapsed()));
            if let Some(t) = tour.t.borrow().as_ref() {
                t.unregister_producer();
                t.lose_write_connection(); // half-close: the server still writes to us
            }
        }
    }
    fn connection_lost(&mut self, reason: Reason) {
        *self.0.lost.borrow_mut() = Some(reason);
        self.0.t.borrow_mut().take();
    }
    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}
impl HalfCloseableProtocol for Client {
    fn read_connection_lost(&mut self) {}
    fn write_connection_lost(&mut self) {
        self.0.write_closed.set(true);
    }
}

impl Factory for Tour {
    fn build_protocol(&self, _: &Address) -> Option<Box<dyn Protocol>> {
        self.me
            .borrow()
            .upgrade()
            .map(|t| Box::new(Client(t)) as Box<dyn Protocol>)
    }
}
impl ClientFactory for Tour {
    fn client_connection_failed(&self, reason: Reason) {
        *self.failure.borrow_mut() = Some(format!("connecting failed: {reason}"));
    }
}

/// Stop the reactor once the connection is closed and the timers ran (checked every ms).
fn watch(r: Reactor, t: Rc<Tour>) {
    if (t.lost.borrow().is_some() && t.timers.borrow().len() == 2) || t.failure.borrow().is_some() {
        let _ = r.stop();
    } else {
        let r2 = r.clone();
        r.call_later(Duration::from_millis(1), move || watch(r2, t));
    }
}

const READ_NEXT: &str = "\
read next:
  README.md                     the two commands, a protocol in 20 lines, the crate map
  docs/ARCHITECTURE.md          how torsion is built: crates, the loop, processes, re-entrancy
  docs/CONTRACT.md              what torsion promises, item by item (tests are named after them)
  examples/src/bin/echo-server.rs, inetd.rs, run/   real programs (each takes --help)
  cargo doc --open -p torsion   the API, each crate opening with a runnable example";

fn tour() -> Result<(), String> {
    let start = Instant::now();
    let reactor = Reactor::new().map_err(|e| format!("cannot create the reactor: {e}"))?;
    let tour = Rc::new(Tour::default());
    tour.start.set(Some(start));
    *tour.me.borrow_mut() = Rc::downgrade(&tour);

    // 1. A server on a free port, and a client streaming 8 MiB through it.
    let port = reactor
        .listen_tcp(
            ([127, 0, 0, 1], 0).into(),
            factory_fn(|_| Box::<Server>::default()),
        )
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = port.host().socket_addr().ok_or("no TCP address")?;
    reactor.connect_tcp(addr, tour.clone(), Some(Duration::from_secs(1)));

    // 2. Timers: one that fires, one cancelled, one moved earlier with `reset`.
    let (t1, t2, t3) = (tour.clone(), tour.clone(), tour.clone());
    reactor.call_later(Duration::from_millis(10), move || {
        t1.timers.borrow_mut().push("fired")
    });
    let cancelled = reactor.call_later(Duration::from_millis(5), move || {
        t2.timers.borrow_mut().push("cancelled")
    });
    cancelled.cancel().map_err(|e| e.to_string())?;
    let moved = reactor.call_later(Duration::from_secs(60), move || {
        t3.timers.borrow_mut().push("reset")
    });
    moved
        .reset(Duration::from_millis(20))
        .map_err(|e| e.to_string())?;

    // 3. Stop once everything happened; a global deadline makes hanging impossible.
    let (r, t) = (reactor.clone(), tour.clone());
    reactor.call_later(Duration::from_secs(5), move || {
        *t.failure.borrow_mut() = Some("the tour did not finish within 5 s".into());
        let _ = r.stop();
    });
    watch(reactor.clone(), tour.clone());
    reactor.run().map_err(|e| e.to_string())?;
    port.stop_listening();

    if let Some(msg) = tour.failure.borrow().as_ref() {
        return Err(msg.clone());
    }
    let tail = String::from_utf8_lossy(&tour.tail.borrow()).into_owned();
    let secs = tour.echo_done.get().unwrap_or_default().as_secs_f64();
    let (timers, p, r) = (tour.timers.borrow(), tour.pauses.get(), tour.resumes.get());
    let sent = tour.sent.get() == TOTAL;
    let flowed = p > 0 && p == r;
    let echoed = tour.echoed.get() == TOTAL && !tour.corrupt.get();
    let half_closed = tour.write_closed.get();
    let answered = tail == format!("|server read {TOTAL} bytes");
    let closed = tour.lost.borrow().as_ref().is_some_and(Reason::is_clean);
    let fired = timers.contains(&"fired");
    let never_ran = !timers.contains(&"cancelled") && cancelled.cancelled();
    let was_reset = timers.contains(&"reset") && moved.called();
    let empty = reactor.selectable_count() == 0;
    let streamed = format!("streamed {TOTAL} bytes in {CHUNK}-byte writes");
    let flow = format!("flow control: producer paused {p} times, resumed {r}");
    let verified = format!("echo verified byte for byte in {secs:.3} s");
    let answer = format!("server saw EOF, then answered {tail:?}");
    println!("torsion tour: echo server on {}", port.host());
    for (ok, what) in [
        (sent, streamed.as_str()),
        (flowed, &flow),
        (echoed, &verified),
        (half_closed, "half-close: our write side shut down"),
        (answered, &answer),
        (closed, "connection closed cleanly (ConnectionDone)"),
        (fired, "call_later(10 ms) fired"),
        (never_ran, "cancelled call never ran"),
        (was_reset, "call_later(60 s) reset to 20 ms ran"),
        (empty, "reactor stopped with nothing left registered"),
    ] {
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
    match tour() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tour: error: {e}");
            ExitCode::FAILURE
        }
    }
}
