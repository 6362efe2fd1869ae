//! The machinery every receiver shares: the buffer, the delivery loop, the transport a
//! handler sees ([`FramedTransport`]) and the `Protocol` adapter ([`Receiver`]).
//!
//! Delivery follows Twisted's `LineReceiver.dataReceived` with `_PauseableMixin`: frames
//! are cut from the buffered bytes one at a time, and the loop stops as soon as the
//! handler pauses the transport or closes it; whatever is left waits in the buffer, and a
//! later `resume_producing` delivers it even if no new byte arrives.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};

use torsion_transport::{
    Address, Consumer, HalfCloseableProtocol, Producer, ProducerError, Protocol, PushProducer,
    Reason, Transport,
};

/// One kind of framing: cuts frames out of bytes and calls its handler.
pub(crate) trait Machine: 'static {
    /// Deliver the frames in `input[*pos..]`, advancing `*pos` past each one before the
    /// handler sees it. Return when more bytes are needed or `link.stopped()`; leave
    /// `*pos` at the first byte not consumed. `carry` is the receiver's buffer, empty on
    /// entry unless the handler queued bytes; bytes put there are delivered after `input`.
    fn run(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        carry: &mut Vec<u8>,
        link: &Rc<FramedTransport>,
    );

    /// The connection is up.
    fn made(&mut self, link: &Rc<FramedTransport>, carry: &mut Vec<u8>);

    /// The connection is gone.
    fn lost(&mut self, reason: Reason);

    /// Whether the handler wants half-close notifications.
    fn half_closeable(&self) -> bool;

    /// The peer shut down its write side.
    fn read_lost(&mut self, link: &Rc<FramedTransport>, carry: &mut Vec<u8>);

    /// Our write side is shut down.
    fn write_lost(&mut self);
}

/// Resumes delivery from a [`FramedTransport`]'s `resume_producing`.
pub(crate) trait Redeliver {
    /// Deliver what is buffered, unless delivery is already on the stack (then the running
    /// loop sees the transport resumed and goes on by itself).
    fn redeliver(&self);
}

/// The buffer and the machine of one connection.
pub(crate) struct Core<M> {
    pub(crate) machine: M,
    pub(crate) buffer: Vec<u8>,
    pub(crate) link: Option<Rc<FramedTransport>>,
}

impl<M: Machine> Core<M> {
    /// Buffer `data` and deliver every complete frame, as Twisted's `dataReceived`; what
    /// the handler writes meanwhile goes out in one write when it returns.
    pub(crate) fn receive(&mut self, data: &[u8], link: &Rc<FramedTransport>) {
        let _delivery = link.deliver();
        self.deliver(data, link);
    }

    fn deliver(&mut self, data: &[u8], link: &Rc<FramedTransport>) {
        if link.closing.get() {
            // CONTRACT D5: nothing is delivered after lose_connection.
            if !data.is_empty() {
                log::trace!("framing: {} bytes after the close ignored", data.len());
            }
            return;
        }
        let mut owned: Option<Vec<u8>> = None;
        if !self.buffer.is_empty() {
            self.buffer.extend_from_slice(data);
            owned = Some(std::mem::take(&mut self.buffer));
        }
        loop {
            let (pos, len) = {
                let input: &[u8] = owned.as_deref().unwrap_or(data);
                let mut pos = 0;
                if !link.stopped() {
                    self.machine.run(input, &mut pos, &mut self.buffer, link);
                }
                (pos, input.len())
            };
            if pos < len {
                // Stopped or incomplete: keep the rest ahead of what the handler queued.
                match owned.take() {
                    Some(mut rest) => {
                        rest.drain(..pos);
                        rest.extend_from_slice(&self.buffer);
                        self.buffer = rest;
                    }
                    None if self.buffer.is_empty() => {
                        // Reuses the buffer's allocation from earlier chunks.
                        self.buffer.extend_from_slice(&data[pos..]);
                    }
                    None => {
                        let queued = std::mem::take(&mut self.buffer);
                        self.buffer.reserve(len - pos + queued.len());
                        self.buffer.extend_from_slice(&data[pos..]);
                        self.buffer.extend_from_slice(&queued);
                    }
                }
                return;
            }
            if self.buffer.is_empty() || link.stopped() {
                if let Some(mut spent) = owned.take() {
                    if self.buffer.is_empty() {
                        // Everything was delivered: keep the allocation for the next chunk.
                        spent.clear();
                        self.buffer = spent;
                    }
                }
                return;
            }
            // The handler queued bytes (`set_line_mode_with`): deliver them now.
            owned = Some(std::mem::take(&mut self.buffer));
        }
    }

    fn deliver_queued(&mut self, link: &Rc<FramedTransport>) {
        if !self.buffer.is_empty() {
            self.receive(&[], link);
        }
    }
}

impl<M: Machine> Redeliver for RefCell<Core<M>> {
    fn redeliver(&self) {
        let Ok(mut core) = self.try_borrow_mut() else {
            return;
        };
        if let Some(link) = core.link.clone() {
            core.receive(&[], &link);
        }
    }
}

/// The transport a framed handler talks to: the connection's transport, plus the
/// receiver's own pause and close state (Twisted's `_PauseableMixin`).
///
/// Everything is passed to the real transport. In addition:
///
/// - `pause_producing` also stops delivery: no frame reaches the handler while the
///   transport is paused, not even one already buffered; `resume_producing` delivers the
///   buffered frames at once (from inside the call, unless the handler is already on the
///   stack) and restarts reading. So register *this* transport (not the raw one) as the
///   producer of another consumer to proxy frames with flow control.
/// - `lose_connection`, `abort_connection` and `stop_producing` also stop delivery at once,
///   as CONTRACT D5 says for `data_received`.
/// - Writes made while a handler callback runs are gathered and written in one piece
///   when it returns, before a close, or every 64 KiB (so a producer is still paused
///   inside the write that fills the buffer, CONTRACT D4); `unsent_bytes` counts them.
///   `abort_connection` drops them with the rest of the unsent data. Outside callbacks
///   (a `LineSender` used from a timer or another connection) writes go straight through.
///
/// Handlers get it from their control (`ctl.transport()`), as an `Rc<dyn Transport>`.
pub struct FramedTransport {
    inner: Rc<dyn Transport>,
    paused: Cell<bool>,
    closing: Cell<bool>,
    receiver: Weak<dyn Redeliver>,
    /// A handler callback is running: writes are gathered in `out`.
    delivering: Cell<bool>,
    /// Writes gathered during the current callback, written when it returns.
    out: RefCell<Vec<u8>>,
}

/// Gathered writes are flushed once they reach this size, even mid-callback, so memory
/// stays bounded and a producer is still paused inside the write that fills the buffer
/// (CONTRACT D4).
const GATHER_LIMIT: usize = 64 * 1024;

/// Ends a delivery: flushes what the handler wrote (dropped, with a log line, if the
/// handler panicked: the transport closes the connection then).
pub(crate) struct Delivery<'a>(&'a FramedTransport);

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        self.0.delivering.set(false);
        if std::thread::panicking() {
            let dropped = std::mem::take(&mut *self.0.out.borrow_mut());
            if !dropped.is_empty() {
                log::debug!(
                    "framing: {} bytes written by a panicking handler dropped",
                    dropped.len()
                );
            }
        } else {
            self.0.flush();
        }
    }
}

impl fmt::Debug for FramedTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramedTransport")
            .field("host", &self.inner.host())
            .field("peer", &self.inner.peer())
            .field("paused", &self.paused.get())
            .field("closing", &self.closing.get())
            .field("gathered", &self.out.borrow().len())
            .finish()
    }
}

impl FramedTransport {
    pub(crate) fn new(inner: Rc<dyn Transport>, receiver: Weak<dyn Redeliver>) -> Self {
        FramedTransport {
            inner,
            paused: Cell::new(false),
            closing: Cell::new(false),
            receiver,
            delivering: Cell::new(false),
            out: RefCell::new(Vec::new()),
        }
    }

    /// Gather writes until the returned guard drops (nested calls leave the outer one in
    /// charge).
    pub(crate) fn deliver(&self) -> Option<Delivery<'_>> {
        if self.delivering.replace(true) {
            None
        } else {
            Some(Delivery(self))
        }
    }

    /// Write what was gathered. The buffer is taken out first, so a producer paused from
    /// inside the write may write again (it is gathered, and written by the next round).
    fn flush(&self) {
        loop {
            let data = std::mem::take(&mut *self.out.borrow_mut());
            if data.is_empty() {
                return;
            }
            self.inner.write(&data);
            let mut out = self.out.borrow_mut();
            if out.is_empty() {
                // Keep the allocation for the next callback.
                let mut data = data;
                data.clear();
                *out = data;
                return;
            }
        }
    }

    /// Write `line` then `delimiter` as one write: gathered inside a callback (no copy
    /// through a temporary), else through [`write_line`](super::line::write_line).
    pub(crate) fn write_line(&self, line: &[u8], delimiter: &[u8]) {
        if !self.gather(&[line, delimiter]) {
            super::line::write_line(&*self.inner, line, delimiter);
        }
    }

    fn gather(&self, chunks: &[&[u8]]) -> bool {
        if !self.delivering.get() {
            return false;
        }
        let full = {
            let mut out = self.out.borrow_mut();
            for c in chunks {
                out.extend_from_slice(c);
            }
            out.len() >= GATHER_LIMIT
        };
        if full {
            self.flush();
        }
        true
    }

    /// The connection's own transport. Writes made on it directly from a handler
    /// callback go out before what the callback wrote through this `FramedTransport`
    /// (which is gathered until the callback returns): write through one or the other.
    pub fn inner(&self) -> &Rc<dyn Transport> {
        &self.inner
    }

    /// True while paused: no frame is delivered.
    pub fn is_paused(&self) -> bool {
        self.paused.get()
    }

    /// True once the connection is closing or closed: no frame is delivered any more.
    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    pub(crate) fn stopped(&self) -> bool {
        self.paused.get() || self.closing.get()
    }

    pub(crate) fn mark_closing(&self) {
        self.closing.set(true);
    }
}

impl Consumer for FramedTransport {
    /// The transport's `write`; inside a handler callback, gathered and written in one
    /// piece when the callback returns (Twisted also writes at the end of the iteration).
    fn write(&self, data: &[u8]) {
        if !data.is_empty() && !self.gather(&[data]) {
            self.inner.write(data);
        }
    }
    fn write_sequence(&self, data: &[&[u8]]) {
        if !self.gather(data) {
            self.inner.write_sequence(data);
        }
    }
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        self.flush();
        self.inner.register_producer(producer)
    }
    fn unregister_producer(&self) {
        self.flush();
        self.inner.unregister_producer();
    }
}

impl PushProducer for FramedTransport {
    /// Stop delivering frames and stop reading (Twisted's `_PauseableMixin`). Once
    /// closing, only the flag changes (the transport reads no more anyway, D5).
    fn pause_producing(&self) {
        self.paused.set(true);
        if !self.closing.get() {
            self.inner.pause_producing();
        }
    }

    /// Start reading again and deliver the buffered frames now. Once closing, only the
    /// flag changes: nothing is read or delivered after `lose_connection` (D5, D8).
    fn resume_producing(&self) {
        self.paused.set(false);
        if self.closing.get() {
            return;
        }
        self.inner.resume_producing();
        if let Some(r) = self.receiver.upgrade() {
            r.redeliver();
        }
    }

    /// Stop delivering for good; the transport's `stop_producing` (`lose_connection`).
    fn stop_producing(&self) {
        self.paused.set(true);
        self.closing.set(true);
        self.flush();
        self.inner.stop_producing();
    }
}

impl Transport for FramedTransport {
    /// Stop delivering frames at once, then the transport's `lose_connection`.
    fn lose_connection(&self) {
        self.closing.set(true);
        self.flush();
        self.inner.lose_connection();
    }
    /// Stop delivering frames at once, then the transport's `abort_connection` (gathered
    /// writes are dropped with the rest of the unsent data).
    fn abort_connection(&self) {
        self.closing.set(true);
        self.out.borrow_mut().clear();
        self.inner.abort_connection();
    }
    fn lose_write_connection(&self) {
        self.flush();
        self.inner.lose_write_connection();
    }
    fn host(&self) -> Address {
        self.inner.host()
    }
    fn peer(&self) -> Address {
        self.inner.peer()
    }
    /// The transport's unsent bytes, plus what the running callback wrote so far.
    fn unsent_bytes(&self) -> usize {
        self.inner.unsent_bytes() + self.out.borrow().len()
    }
    /// The connection's Unix-socket extras, after flushing what the running callback
    /// wrote (descriptors then follow those bytes, in order).
    #[cfg(unix)]
    fn as_unix_socket(&self) -> Option<&dyn torsion_transport::UnixSocketTransport> {
        self.flush();
        self.inner.as_unix_socket()
    }
}

/// A machine as a [`Protocol`]: owns the buffer, wraps the transport.
pub(crate) struct Receiver<M> {
    pub(crate) core: Rc<RefCell<Core<M>>>,
}

impl<M: Machine> Receiver<M> {
    pub(crate) fn new(machine: M) -> Self {
        Receiver {
            core: Rc::new(RefCell::new(Core {
                machine,
                buffer: Vec::new(),
                link: None,
            })),
        }
    }

    /// Run `f` on the machine, unless it is busy delivering (then `None`).
    pub(crate) fn with_machine<R>(&self, f: impl FnOnce(&M) -> R) -> Option<R> {
        self.core.try_borrow().ok().map(|c| f(&c.machine))
    }

    /// As [`with_machine`](Self::with_machine), mutably.
    pub(crate) fn with_machine_mut<R>(&self, f: impl FnOnce(&mut M) -> R) -> Option<R> {
        self.core
            .try_borrow_mut()
            .ok()
            .map(|mut c| f(&mut c.machine))
    }

    /// The bytes received and not yet delivered.
    pub(crate) fn buffered(&self) -> usize {
        self.core.try_borrow().map_or(0, |c| c.buffer.len())
    }

    fn busy(&self, what: &str) {
        // Unreachable through a transport (they never re-enter a protocol, ARCHITECTURE
        // rule 4); a caller driving the protocol by hand from inside its own handler gets
        // a log line and a closed connection instead of a panic or a silent drop.
        log::error!("framing: {what} while the handler is on the stack; closing");
        if let Ok(core) = self.core.try_borrow() {
            if let Some(link) = &core.link {
                link.lose_connection();
            }
        }
    }
}

impl<M: Machine> Protocol for Receiver<M> {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let weak: Weak<RefCell<Core<M>>> = Rc::downgrade(&self.core);
        let link = Rc::new(FramedTransport::new(transport, weak));
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return self.busy("connection_made");
        };
        core.link = Some(link.clone());
        let _delivery = link.deliver();
        let core = &mut *core;
        core.machine.made(&link, &mut core.buffer);
        core.deliver_queued(&link);
    }

    fn data_received(&mut self, data: &[u8]) {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return self.busy("data_received");
        };
        match core.link.clone() {
            Some(link) => core.receive(data, &link),
            None => log::warn!(
                "framing: {} bytes before connection_made ignored",
                data.len()
            ),
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return self.busy("connection_lost");
        };
        if let Some(link) = &core.link {
            link.mark_closing();
        }
        if !core.buffer.is_empty() {
            log::debug!(
                "framing: connection lost with {} bytes of an unfinished frame",
                core.buffer.len()
            );
        }
        core.machine.lost(reason);
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        let wanted = self.with_machine(|m| m.half_closeable()).unwrap_or(false);
        if wanted { Some(self) } else { None }
    }
}

impl<M: Machine> HalfCloseableProtocol for Receiver<M> {
    fn read_connection_lost(&mut self) {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return self.busy("read_connection_lost");
        };
        let Some(link) = core.link.clone() else {
            return;
        };
        let _delivery = link.deliver();
        let core = &mut *core;
        core.machine.read_lost(&link, &mut core.buffer);
        core.deliver_queued(&link);
    }

    fn write_connection_lost(&mut self) {
        match self.core.try_borrow_mut() {
            Ok(mut core) => core.machine.write_lost(),
            Err(_) => self.busy("write_connection_lost"),
        }
    }
}

/// Implements `Protocol` and `HalfCloseableProtocol` for a public receiver newtype by
/// forwarding to its `rx: Receiver<_>`.
macro_rules! forward_protocol {
    ($ty:ident < $($g:ident : $b:path),+ >) => {
        impl<$($g: $b),+> torsion_transport::Protocol for $ty<$($g),+> {
            fn connection_made(&mut self, transport: std::rc::Rc<dyn torsion_transport::Transport>) {
                self.rx.connection_made(transport);
            }
            fn data_received(&mut self, data: &[u8]) {
                self.rx.data_received(data);
            }
            fn connection_lost(&mut self, reason: torsion_transport::Reason) {
                self.rx.connection_lost(reason);
            }
            fn as_half_closeable(
                &mut self,
            ) -> Option<&mut dyn torsion_transport::HalfCloseableProtocol> {
                self.rx.as_half_closeable()
            }
        }
    };
}
pub(crate) use forward_protocol;
