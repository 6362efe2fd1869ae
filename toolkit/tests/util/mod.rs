//! Helpers shared by the toolkit's tests: drive a protocol over a `StringTransport` in
//! chunks, record what a handler saw, and catch a `Deferred`'s result.

#![allow(dead_code)] // each test file uses a different subset

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::Reactor;
use torsion_testing::{MemoryReactor, StringTransport};
use torsion_toolkit::framing::{LineControl, LineHandler};
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{Protocol, Reason};

/// What a recording handler saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Line(Vec<u8>),
    Raw(Vec<u8>),
    Exceeded(Vec<u8>),
    String(Vec<u8>),
    LimitExceeded(usize),
    Error(String),
    Lost(bool),
}

pub type Log = Rc<RefCell<Vec<Event>>>;

pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// The lines in `log`.
pub fn lines(log: &Log) -> Vec<Vec<u8>> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Event::Line(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

/// Connect `p` to a fresh lenient `StringTransport`.
pub fn connect(p: &mut dyn Protocol) -> Rc<StringTransport> {
    let t = Rc::new(StringTransport::lenient());
    p.connection_made(t.clone());
    t
}

/// Feed `data` to `p` in chunks of `size` bytes (Twisted's `packet_size` loops).
pub fn feed_in(p: &mut dyn Protocol, data: &[u8], size: usize) {
    for chunk in data.chunks(size.max(1)) {
        p.data_received(chunk);
    }
}

/// Feed `data` cut at `cuts` (sorted offsets).
pub fn feed_cut(p: &mut dyn Protocol, data: &[u8], cuts: &[usize]) {
    let mut start = 0;
    for &c in cuts {
        let c = c.clamp(start, data.len());
        p.data_received(&data[start..c]);
        start = c;
    }
    p.data_received(&data[start..]);
}

/// `connection_lost(ConnectionDone)` was recorded as `Event::Lost(true)`.
pub fn clean(reason: &Reason) -> bool {
    reason.is_clean()
}

/// Where a `Deferred`'s result lands.
pub type Seen<T> = Rc<RefCell<Option<Result<T, Failure>>>>;

/// Where `d`'s result lands once it fires (for the fakes: once the soon queue ran).
pub fn watch<T: 'static>(d: Deferred<T>) -> Seen<T> {
    let seen: Seen<T> = Rc::default();
    let s = seen.clone();
    drop(d.add_both(move |r| {
        *s.borrow_mut() = Some(r);
        Ok(())
    }));
    seen
}

/// Run the memory reactor's soon queue (advance its clock by zero).
pub fn settle(reactor: &MemoryReactor) {
    reactor.clock().advance(Duration::ZERO);
}

/// Run the real `reactor` until `d` has its result; past `deadline` the test fails.
pub fn wait<T: 'static>(
    reactor: &Reactor,
    d: Deferred<T>,
    deadline: Duration,
) -> Result<T, Failure> {
    let seen = watch(d);
    let s = seen.clone();
    reactor
        .run_until(|| s.borrow().is_some(), deadline)
        .expect("the result within the deadline");
    seen.borrow_mut().take().expect("a result")
}

/// A line server that sends each line back.
pub struct LineEcho;

impl LineHandler for LineEcho {
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        ctl.send_line(line);
    }
}

/// A line client that sends its lines once connected and logs the lines it gets back.
pub struct LineClient(pub Log, pub Vec<Vec<u8>>);

impl LineHandler for LineClient {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        for l in &self.1 {
            ctl.send_line(l);
        }
    }
    fn line_received(&mut self, line: &[u8], _: &mut LineControl<'_>) {
        self.0.borrow_mut().push(Event::Line(line.to_vec()));
    }
}
