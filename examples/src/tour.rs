//! The tour's protocols: a framed echo server (a header line, then raw mode) with flow
//! control that answers a half-close with a line, and a client that streams a pattern
//! through it and checks the echo byte for byte. The
//! client's end completes a [`Deferred`], which is how the tour learns it is over.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use torsion::framing::{LineControl, LineHandler, LineReceiver};
use torsion::prelude::*;

/// How much the client streams.
pub const TOTAL: usize = 8 << 20;
/// The size of each write.
pub const CHUNK: usize = 64 * 1024;

/// `len` bytes of the stream starting at `pos`.
pub fn pattern(pos: usize, len: usize) -> Vec<u8> {
    (pos..pos + len).map(|i| (i % 251) as u8).collect()
}

/// The header the client sends before its stream (a line, then raw bytes).
pub const HEADER: &[u8] = b"STREAM";

/// A framed echo server ([`LineReceiver`]): it reads one header line, switches to raw
/// mode in the middle of the chunk that carried it (the rest of the chunk arrives raw),
/// echoes with flow control, and when the client half-closes, answers with a line and
/// closes.
pub fn server() -> Box<dyn Protocol> {
    Box::new(LineReceiver::new(Server::default()))
}

#[derive(Debug, Default)]
struct Server {
    bytes: usize,
}

impl LineHandler for Server {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        // The transport is its own producer: a full write buffer pauses our reading.
        let t = ctl.transport();
        let _ = t.register_producer(Producer::Push(t.clone()));
    }
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        if line == HEADER {
            ctl.set_raw_mode();
        } else {
            ctl.send_line(b"unknown header");
            ctl.lose_connection();
        }
    }
    fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        self.bytes += data.len();
        ctl.write(data);
    }
    fn half_closeable(&self) -> bool {
        true
    }
    fn read_connection_lost(&mut self, ctl: &mut LineControl<'_>) {
        ctl.transport().unregister_producer();
        ctl.send_line(format!("|server read {} bytes", self.bytes).as_bytes());
        ctl.lose_connection();
    }
}

impl fmt::Debug for Tour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tour")
            .field("sent", &self.sent.get())
            .field("echoed", &self.echoed.get())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Everything the client side observes; also its factory and its producer.
#[derive(Default)]
pub struct Tour {
    t: RefCell<Option<Rc<dyn Transport>>>,
    /// Bytes written.
    pub sent: Cell<usize>,
    paused: Cell<bool>,
    /// `pause_producing` calls.
    pub pauses: Cell<usize>,
    /// `resume_producing` calls.
    pub resumes: Cell<usize>,
    /// Bytes of the echo received (and checked).
    pub echoed: Cell<usize>,
    /// The echo differed from what was sent.
    pub corrupt: Cell<bool>,
    /// What came after the echo: the server's report.
    pub tail: RefCell<Vec<u8>>,
    /// Our write side was shut down.
    pub write_closed: Cell<bool>,
    /// How long the echo took.
    pub echo_done: Cell<Option<Duration>>,
    /// When the stream began.
    pub start: Cell<Option<Instant>>,
    /// Succeeds when the connection closes cleanly, fails with why it did not.
    pub done: Deferred<()>,
    me: RefCell<Weak<Tour>>,
}

impl Tour {
    /// A tour whose factory builds its client.
    pub fn new() -> Rc<Tour> {
        let tour = Rc::new(Tour::default());
        *tour.me.borrow_mut() = Rc::downgrade(&tour);
        tour
    }

    fn produce(&self) {
        let Some(t) = self.t.borrow().clone() else {
            return;
        };
        if self.sent.get() == 0 && !self.paused.get() {
            // The header and the first chunk go out in one write: the server switches
            // to raw mode in the middle of what it receives.
            let mut first = [HEADER, b"\r\n"].concat();
            let n = CHUNK.min(TOTAL);
            first.extend_from_slice(&pattern(0, n));
            self.sent.set(n);
            t.write(&first);
        }
        while !self.paused.get() && self.sent.get() < TOTAL {
            let n = CHUNK.min(TOTAL - self.sent.get());
            let chunk = pattern(self.sent.get(), n);
            self.sent.set(self.sent.get() + n);
            t.write(&chunk); // may pause us, synchronously (CONTRACT D4)
        }
    }
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

struct Client(Rc<Tour>);

impl Protocol for Client {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.0.start.set(Some(Instant::now()));
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
        self.0.t.borrow_mut().take();
        // The result goes out through the Deferred; its callbacks run from the loop.
        let _ = match reason {
            Reason::ConnectionDone => self.0.done.callback(()),
            other => self.0.done.errback(other),
        };
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
        let _ = self.done.errback(reason);
    }
}
