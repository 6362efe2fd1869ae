//! The two halves every async stream is made of, on top of a reactor transport:
//! [`Inbound`] (bytes the transport delivered, waiting for a reader; the transport paused
//! while too many wait) and [`Outbound`] (a push producer registered with the transport, so
//! a writer waits while the transport's buffer is over its size). CONTRACT P6.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use torsion_transport::{PushProducer, Reason};

use crate::error::{NetError, io_from_reason};

/// Bytes buffered for a reader before the transport is paused (and resumed once below half).
pub const READ_HIGH_WATER: usize = 64 * 1024;
/// The most one `poll_write` hands the transport at once: a `write_all` of a big buffer goes
/// in chunks, each waiting for the transport's buffer to drain below its size.
pub const WRITE_CHUNK: usize = 64 * 1024;

/// The waker of the task waiting on one side. It is kept after a wake, so a task that
/// waits again (each message of a stream) is not cloned again ([`Waker::will_wake`]);
/// `armed` says whether a task waits, so a wake nobody waits for is not passed on.
#[derive(Default)]
struct WakerSlot {
    waker: RefCell<Option<Waker>>,
    armed: Cell<bool>,
}

impl WakerSlot {
    fn register(&self, waker: &Waker) {
        self.armed.set(true);
        let mut slot = self.waker.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn wake(&self) {
        if self.armed.replace(false) {
            // Cloned out (a cheap count bump) so no borrow is held while it runs.
            let w = self.waker.borrow().clone();
            if let Some(w) = w {
                w.wake();
            }
        }
    }
}

/// The read side: fed by a protocol callback, drained by `poll_read`.
#[derive(Default)]
pub(crate) struct Inbound {
    buf: RefCell<Vec<u8>>,
    pos: Cell<usize>,
    eof: Cell<bool>,
    error: RefCell<Option<Reason>>,
    waker: WakerSlot,
    /// What to pause when the reader falls behind (the transport, or the process).
    source: RefCell<Option<Rc<dyn PushProducer>>>,
    paused: Cell<bool>,
    /// No reader any more: data is dropped, never buffered.
    discard: Cell<bool>,
    /// Never pause the source (a reader that takes everything at the end, like `output()`).
    unbounded: Cell<bool>,
}

impl Inbound {
    pub(crate) fn set_source(&self, source: Rc<dyn PushProducer>) {
        *self.source.borrow_mut() = Some(source);
    }

    /// Buffer everything, never pausing the source.
    pub(crate) fn set_unbounded(&self) {
        self.unbounded.set(true);
        self.resume();
    }

    fn source(&self) -> Option<Rc<dyn PushProducer>> {
        self.source.borrow().clone()
    }

    pub(crate) fn buffered(&self) -> usize {
        self.buf.borrow().len() - self.pos.get()
    }

    /// From the protocol's `data_received`: buffer, pause the source if over the mark.
    pub(crate) fn push(&self, data: &[u8]) {
        if self.discard.get() {
            return;
        }
        self.buf.borrow_mut().extend_from_slice(data);
        if self.buffered() >= READ_HIGH_WATER && !self.unbounded.get() && !self.paused.replace(true)
        {
            log::trace!(
                "reader behind by {} bytes: pausing the transport",
                self.buffered()
            );
            if let Some(s) = self.source() {
                s.pause_producing();
            }
        }
        self.waker.wake();
    }

    /// The end of the read side: EOF (`None`) or an error.
    pub(crate) fn finish(&self, error: Option<Reason>) {
        self.eof.set(true);
        if let Some(r) = error {
            if !r.is_clean() {
                *self.error.borrow_mut() = Some(r);
            }
        }
        // Nothing more comes: the source is no longer ours to pause or resume.
        self.source.borrow_mut().take();
        self.waker.wake();
    }

    /// The reader is gone: drop what is buffered and what comes; resume a paused source
    /// (the stream's owner decides whether to close it).
    pub(crate) fn abandon(&self) {
        self.discard.set(true);
        self.buf.borrow_mut().clear();
        self.pos.set(0);
        self.resume();
    }

    fn resume(&self) {
        if self.paused.replace(false) {
            if let Some(s) = self.source() {
                s.resume_producing();
            }
        }
    }

    fn consume(&self, n: usize) {
        let pos = self.pos.get() + n;
        if pos >= self.buf.borrow().len() {
            self.buf.borrow_mut().clear();
            self.pos.set(0);
        } else {
            self.pos.set(pos);
        }
        if self.paused.get() && self.buffered() <= READ_HIGH_WATER / 2 {
            log::trace!("reader caught up: resuming the transport");
            self.resume();
        }
    }

    fn ready<R>(&self, cx: &mut Context<'_>, f: impl FnOnce(&[u8]) -> R) -> Poll<io::Result<R>> {
        {
            let buf = self.buf.borrow();
            let avail = &buf[self.pos.get()..];
            if !avail.is_empty() || self.eof.get() {
                if avail.is_empty() {
                    if let Some(r) = &*self.error.borrow() {
                        return Poll::Ready(Err(io_from_reason(r)));
                    }
                }
                return Poll::Ready(Ok(f(avail)));
            }
        }
        self.waker.register(cx.waker());
        Poll::Pending
    }

    /// Copy buffered bytes into `out`; `Ok(0)` at EOF (or for an empty `out`).
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let r = self.ready(cx, |avail| {
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        });
        if let Poll::Ready(Ok(n)) = r {
            self.consume(n);
        }
        r
    }

    /// Scan the buffered bytes with `find` (which returns how many to consume and a
    /// result), waiting for more while it returns `None` and the stream is not at EOF.
    /// At EOF `find` gets the rest with `at_eof = true`.
    pub(crate) fn poll_scan<R>(
        &self,
        cx: &mut Context<'_>,
        mut find: impl FnMut(&[u8], bool) -> Option<(usize, R)>,
    ) -> Poll<io::Result<R>> {
        let eof = self.eof.get();
        match self.ready(cx, |avail| find(avail, eof)) {
            Poll::Ready(Ok(Some((n, v)))) => {
                self.consume(n);
                Poll::Ready(Ok(v))
            }
            Poll::Ready(Ok(None)) if eof => Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into())),
            Poll::Ready(Ok(None)) => {
                // Not enough yet: wait for more. A scan (a long line) must go on up to the
                // caller's limit even past the high-water mark, so the source resumes.
                self.waker.register(cx.waker());
                self.resume();
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Take everything buffered.
    pub(crate) fn take_all(&self) -> Vec<u8> {
        let mut buf = self.buf.borrow_mut();
        let out = buf.split_off(self.pos.get());
        buf.clear();
        self.pos.set(0);
        drop(buf);
        self.resume();
        out
    }
}

/// The write side: a push producer the transport pauses when its buffer goes over its size
/// and resumes once drained (CONTRACT D3, D4, P6).
#[derive(Default)]
pub(crate) struct Outbound {
    paused: Cell<bool>,
    closed: Cell<bool>,
    shut: Cell<bool>,
    waker: WakerSlot,
    shut_waker: WakerSlot,
}

impl Outbound {
    /// Wait until a write may go: `Ok(())`, or the typed error once closed.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.closed.get() {
            return Poll::Ready(Err(NetError::WriteClosed.into_io(io::ErrorKind::BrokenPipe)));
        }
        if self.paused.get() {
            self.waker.register(cx.waker());
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    /// No more writes: the write side was shut down or the connection closed.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.waker.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// The write side is shut down (FIN sent, or the connection is gone).
    pub(crate) fn set_shut(&self) {
        self.closed.set(true);
        self.shut.set(true);
        self.waker.wake();
        self.shut_waker.wake();
    }

    pub(crate) fn poll_shut(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shut.get() {
            return Poll::Ready(());
        }
        self.shut_waker.register(cx.waker());
        Poll::Pending
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.paused.get()
    }
}

/// The producer registered with the transport, pointing at an [`Outbound`].
pub(crate) struct Gate(pub(crate) std::rc::Weak<Outbound>);

impl PushProducer for Gate {
    fn pause_producing(&self) {
        if let Some(o) = self.0.upgrade() {
            o.paused.set(true);
        }
    }

    fn resume_producing(&self) {
        if let Some(o) = self.0.upgrade() {
            o.paused.set(false);
            o.waker.wake();
        }
    }

    fn stop_producing(&self) {
        if let Some(o) = self.0.upgrade() {
            o.close();
        }
    }
}
