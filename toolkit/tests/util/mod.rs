//! Helpers shared by the framing tests: drive a protocol over a `StringTransport` in
//! chunks, and record what a handler saw.

#![allow(dead_code)] // each test file uses a different subset

use std::cell::RefCell;
use std::rc::Rc;

use torsion_testing::StringTransport;
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
