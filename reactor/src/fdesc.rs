//! `FileDescriptor`: the write side every stream transport shares (CONTRACT D, E).
//!
//! Twisted's `abstract.FileDescriptor` as a struct that TCP, Unix sockets, process pipes and
//! the PTY master embed. It owns the write buffer, the producer, and the closing state; the
//! embedding selectable owns the fd and the protocol, and passes the fd in as a
//! [`WriteSink`] when the reactor says it is writable.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};

use mio::Token;
use torsion_transport::{Producer, ProducerError, Reason};

use crate::reactor::{Reactor, WeakReactor};

/// Default [`FileDescriptor::buffer_size`]: 64 KiB (CONTRACT D4).
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;
/// Writes up to this size are coalesced into the previous chunk; larger ones keep their
/// own allocation.
const COALESCE: usize = 4096;
/// Most iovecs per `writev`.
const MAX_IOV: usize = 64;

/// Where a [`FileDescriptor`] writes: the embedding transport's fd.
pub trait WriteSink {
    /// `writev(2)`.
    ///
    /// # Errors
    ///
    /// The OS error; `WouldBlock` when the kernel buffer is full.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Shut the write side down (`shutdown(SHUT_WR)`, or close a pipe's write end).
    ///
    /// # Errors
    ///
    /// The OS error.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

/// What a flush achieved, for the embedding transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The kernel is full; wait for writability.
    Blocked,
    /// Data remains (a producer wrote more while being resumed): write again soon.
    More,
    /// Everything was written; nothing else to do.
    Drained,
    /// Everything was written and the write side was shut down, as
    /// [`lose_write_connection`](FileDescriptor::lose_write_connection) asked: tell the
    /// protocol `write_connection_lost`.
    WriteShutdown,
}

#[derive(Default)]
struct WriteBuffer {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the first chunk already sent.
    offset: usize,
    /// Bytes not yet sent.
    unsent: usize,
}

impl WriteBuffer {
    fn push(&mut self, data: &[u8]) {
        self.unsent += data.len();
        if data.len() <= COALESCE {
            if let Some(last) = self.chunks.back_mut() {
                if last.len() + data.len() <= COALESCE * 4 {
                    last.extend_from_slice(data);
                    return;
                }
            }
        }
        self.chunks.push_back(data.to_vec());
    }

    fn push_vec(&mut self, data: Vec<u8>) {
        self.unsent += data.len();
        self.chunks.push_back(data);
    }

    fn slices(&self) -> Vec<IoSlice<'_>> {
        let mut out = Vec::with_capacity(self.chunks.len().min(MAX_IOV));
        for (i, c) in self.chunks.iter().take(MAX_IOV).enumerate() {
            let s = if i == 0 { &c[self.offset..] } else { &c[..] };
            if !s.is_empty() {
                out.push(IoSlice::new(s));
            }
        }
        out
    }

    fn consume(&mut self, mut n: usize) {
        self.unsent -= n.min(self.unsent);
        while n > 0 {
            let Some(first) = self.chunks.front() else {
                break;
            };
            let left = first.len() - self.offset;
            if n >= left {
                n -= left;
                self.chunks.pop_front();
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.offset = 0;
        self.unsent = 0;
    }
}

struct State {
    buf: WriteBuffer,
    producer: Option<Producer>,
    producer_paused: bool,
    connected: bool,
    disconnecting: bool,
    disconnected: bool,
    write_shutdown_requested: bool,
    write_shut: bool,
    aborted: bool,
    /// A direct write ([`FileDescriptor::write_through`]) failed: the error waits for the
    /// loop's `do_write`, which reports it; later writes are dropped.
    write_error: Option<io::Error>,
    buffer_size: usize,
    low_water: usize,
}

/// The write buffer, producer and close state of one connection (CONTRACT D1–D8, E1–E4).
///
/// Methods never call the protocol. They do call the registered producer (pause inside
/// `write`, resume after a drain, stop on disconnect), always with no borrow held, so the
/// producer may write again from inside those calls (CONTRACT E3).
pub struct FileDescriptor {
    reactor: WeakReactor,
    token: Cell<Option<Token>>,
    st: RefCell<State>,
}

impl fmt::Debug for FileDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.st.borrow();
        f.debug_struct("FileDescriptor")
            .field("token", &self.token.get())
            .field("unsent", &st.buf.unsent)
            .field("connected", &st.connected)
            .field("disconnecting", &st.disconnecting)
            .field("disconnected", &st.disconnected)
            .finish()
    }
}

impl FileDescriptor {
    /// A connected descriptor with an empty buffer. Call [`set_token`](Self::set_token)
    /// once the embedding selectable is registered.
    pub fn new(reactor: &Reactor) -> Self {
        FileDescriptor {
            reactor: reactor.downgrade(),
            token: Cell::new(None),
            st: RefCell::new(State {
                buf: WriteBuffer::default(),
                producer: None,
                producer_paused: false,
                connected: true,
                disconnecting: false,
                disconnected: false,
                write_shutdown_requested: false,
                write_shut: false,
                aborted: false,
                write_error: None,
                buffer_size: DEFAULT_BUFFER_SIZE,
                low_water: 0,
            }),
        }
    }

    /// Record the reactor token of the embedding selectable.
    pub fn set_token(&self, token: Token) {
        self.token.set(Some(token));
    }

    /// The reactor token, once registered.
    pub fn token(&self) -> Option<Token> {
        self.token.get()
    }

    fn with_reactor(&self, f: impl FnOnce(&Reactor, Token)) {
        if let (Some(r), Some(t)) = (self.reactor.upgrade(), self.token.get()) {
            f(&r, t);
        }
    }

    /// Ask the reactor to call `do_read` (Twisted's `startReading`).
    #[doc(alias = "startReading")]
    pub fn start_reading(&self) {
        self.with_reactor(|r, t| r.add_reader(t));
    }

    /// Stop reading (Twisted's `stopReading`).
    #[doc(alias = "stopReading")]
    pub fn stop_reading(&self) {
        self.with_reactor(|r, t| r.remove_reader(t));
    }

    /// True if the reactor is reading this descriptor.
    pub fn is_reading(&self) -> bool {
        match (self.reactor.upgrade(), self.token.get()) {
            (Some(r), Some(t)) => r.is_reading(t),
            _ => false,
        }
    }

    fn start_writing(&self) {
        self.with_reactor(|r, t| r.add_writer(t));
    }

    /// The buffer limit over which a streaming producer is paused (CONTRACT D4).
    pub fn buffer_size(&self) -> usize {
        self.st.borrow().buffer_size
    }

    /// Set the buffer limit.
    pub fn set_buffer_size(&self, size: usize) {
        self.st.borrow_mut().buffer_size = size;
    }

    /// Set the low-water mark at or under which a paused streaming producer is resumed
    /// (default 0: resumed when the buffer is empty; **\[deliberate\]**, CONTRACT D4).
    pub fn set_low_water_mark(&self, bytes: usize) {
        self.st.borrow_mut().low_water = bytes;
    }

    /// Bytes written but not yet sent.
    pub fn unsent(&self) -> usize {
        self.st.borrow().buf.unsent
    }

    /// True until the connection is lost.
    pub fn connected(&self) -> bool {
        self.st.borrow().connected
    }

    /// True once `lose_connection` or `abort_connection` was called.
    pub fn disconnecting(&self) -> bool {
        self.st.borrow().disconnecting
    }

    /// True once the connection is lost.
    pub fn disconnected(&self) -> bool {
        self.st.borrow().disconnected
    }

    /// True once the write side was shut down (after `lose_write_connection` flushed).
    pub fn write_shut(&self) -> bool {
        self.st.borrow().write_shut
    }

    /// True if the producer is a pull producer.
    fn has_pull_producer(st: &State) -> bool {
        matches!(st.producer, Some(Producer::Pull(_)))
    }

    fn append(&self, f: impl FnOnce(&mut WriteBuffer)) {
        self.append_then(f, false);
    }

    /// Append to the buffer; `blocked`: the caller just saw `WouldBlock`, so the writer
    /// waits for the next writable event instead of trying at once.
    fn append_then(&self, f: impl FnOnce(&mut WriteBuffer), blocked: bool) {
        let (start, pause) = {
            let mut st = self.st.borrow_mut();
            if !Self::accepts_writes(&st) {
                return;
            }
            let was_empty = st.buf.unsent == 0;
            f(&mut st.buf);
            if st.buf.unsent == 0 {
                return;
            }
            let pause = match &st.producer {
                Some(Producer::Push(p))
                    if !st.producer_paused && st.buf.unsent > st.buffer_size =>
                {
                    Some(p.clone())
                }
                _ => None,
            };
            if pause.is_some() {
                st.producer_paused = true;
            }
            (was_empty, pause)
        };
        if start {
            if blocked {
                self.with_reactor(|r, t| r.add_blocked_writer(t));
            } else {
                self.start_writing();
            }
        }
        if let Some(p) = pause {
            p.pause_producing();
        }
    }

    /// D1: writes are taken while connected, before a half-close, abort or write error.
    fn accepts_writes(st: &State) -> bool {
        st.connected
            && !st.disconnected
            && !st.aborted
            && !st.write_shutdown_requested
            && st.write_error.is_none()
    }

    /// True if a write may go straight to the fd: nothing is buffered (so order is kept),
    /// no pull producer waits for a drain (CONTRACT E2), and the reactor last saw the fd
    /// writable.
    fn may_write_now(&self) -> bool {
        {
            let st = self.st.borrow();
            if st.buf.unsent != 0 || !Self::accepts_writes(&st) || Self::has_pull_producer(&st) {
                return false;
            }
        }
        match (self.reactor.upgrade(), self.token.get()) {
            (Some(r), Some(t)) => r.is_writable(t),
            _ => false,
        }
    }

    /// [`write`](Self::write), trying the fd first: when nothing is buffered and the fd
    /// was last seen writable, `data` is handed to `send` (one `write(2)` each call) at
    /// once and only what the kernel does not take is buffered (CONTRACT D1, D4: a
    /// streaming producer is still paused inside this call if the unsent rest goes over
    /// `buffer_size`). Saves the copy into the buffer and a dispatch for the common case
    /// of a reply written from `data_received`.
    ///
    /// `send` returns `None` when the fd cannot be used now (it is borrowed further up the
    /// stack, or closed); the data is then buffered. A write error is not reported here:
    /// reading stops, later writes are dropped, and the loop's next `do_write` returns the
    /// error, so `connection_lost` comes from the loop (DESIGN rule 4).
    pub fn write_through(
        &self,
        data: &[u8],
        mut send: impl FnMut(&[u8]) -> Option<io::Result<usize>>,
    ) {
        if data.is_empty() {
            return;
        }
        if !self.may_write_now() {
            return self.write(data);
        }
        let mut done = 0;
        let mut blocked = false;
        while done < data.len() {
            match send(&data[done..]) {
                None => break,
                Some(Ok(0)) => return self.fail_write(io::ErrorKind::WriteZero.into()),
                Some(Ok(n)) => done += n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => return self.fail_write(e),
            }
        }
        if done < data.len() {
            let rest = &data[done..];
            self.append_then(|b| b.push(rest), blocked);
        }
    }

    /// A direct write failed: keep the error for the loop's `do_write` (never a callback
    /// from here), stop reading, and start the writer so the loop finds it.
    fn fail_write(&self, error: io::Error) {
        self.st.borrow_mut().write_error = Some(error);
        self.stop_reading();
        self.start_writing();
    }

    /// Buffer `data` and start the writer (CONTRACT D1, D4).
    pub fn write(&self, data: &[u8]) {
        if !data.is_empty() {
            self.append(|b| b.push(data));
        }
    }

    /// Buffer an owned buffer without copying it.
    pub fn write_vec(&self, data: Vec<u8>) {
        if !data.is_empty() {
            self.append(|b| b.push_vec(data));
        }
    }

    /// Buffer several chunks as one write (CONTRACT D2); sent with vectored I/O.
    pub fn write_sequence(&self, chunks: &[&[u8]]) {
        self.append(|b| {
            for c in chunks.iter().filter(|c| !c.is_empty()) {
                b.push(c);
            }
        });
    }

    /// Register a producer (CONTRACT E1).
    ///
    /// # Errors
    ///
    /// [`ProducerError::AlreadyRegistered`] if one is registered.
    pub fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        let resume = {
            let mut st = self.st.borrow_mut();
            if st.producer.is_some() {
                return Err(ProducerError::AlreadyRegistered);
            }
            if st.disconnected || !st.connected || st.aborted {
                drop(st);
                producer.stop_producing();
                return Ok(());
            }
            st.producer = Some(producer.clone());
            st.producer_paused = false;
            !producer.is_streaming()
        };
        if resume {
            producer.resume_producing();
        }
        Ok(())
    }

    /// Forget the producer (CONTRACT E4); a pending `lose_connection` then completes.
    pub fn unregister_producer(&self) {
        let kick = {
            let mut st = self.st.borrow_mut();
            st.producer = None;
            st.producer_paused = false;
            st.disconnecting && !st.disconnected && st.buf.unsent == 0
        };
        if kick {
            self.start_writing();
        }
    }

    /// The registered producer.
    pub fn producer(&self) -> Option<Producer> {
        self.st.borrow().producer.clone()
    }

    /// Close after flushing (CONTRACT D5): reading stops now.
    pub fn lose_connection(&self) {
        {
            let mut st = self.st.borrow_mut();
            if !st.connected || st.disconnecting || st.disconnected {
                return;
            }
            st.disconnecting = true;
        }
        self.stop_reading();
        self.start_writing();
    }

    /// Close now, dropping unsent data (CONTRACT D5); `connection_lost` comes from the loop
    /// with [`Reason::ConnectionAborted`].
    pub fn abort_connection(&self) {
        {
            let mut st = self.st.borrow_mut();
            if st.disconnected || st.aborted {
                return;
            }
            st.aborted = true;
            st.disconnecting = true;
            st.buf.clear();
        }
        self.with_reactor(|r, t| r.disconnect_later(t, Reason::ConnectionAborted));
    }

    /// Half-close after flushing (CONTRACT D6); later writes are dropped.
    pub fn lose_write_connection(&self) {
        {
            let mut st = self.st.borrow_mut();
            if !st.connected || st.disconnecting || st.write_shutdown_requested {
                return;
            }
            st.write_shutdown_requested = true;
        }
        self.start_writing();
    }

    /// As a producer (CONTRACT D8): stop reading.
    pub fn pause_producing(&self) {
        self.stop_reading();
    }

    /// As a producer (CONTRACT D8): start reading if connected and not disconnecting.
    pub fn resume_producing(&self) {
        let ok = {
            let st = self.st.borrow();
            st.connected && !st.disconnecting && !st.disconnected && st.write_error.is_none()
        };
        if ok {
            self.start_reading();
        }
    }

    /// As a producer (CONTRACT D8): `lose_connection`.
    pub fn stop_producing(&self) {
        self.lose_connection();
    }

    fn resume_if_low(&self) {
        let p = {
            let mut st = self.st.borrow_mut();
            match &st.producer {
                Some(Producer::Push(p)) if st.producer_paused && st.buf.unsent <= st.low_water => {
                    let p = p.clone();
                    st.producer_paused = false;
                    Some(p)
                }
                _ => None,
            }
        };
        if let Some(p) = p {
            p.resume_producing();
        }
    }

    /// Write buffered data to `sink` until the kernel blocks or the buffer is empty; then
    /// resume producers, complete a pending close or half-close (CONTRACT D3).
    ///
    /// # Errors
    ///
    /// [`Reason::ConnectionDone`] when a `lose_connection` completes; a
    /// [`Reason::ConnectionLost`] for a write error.
    pub fn do_write(&self, sink: &mut dyn WriteSink) -> Result<WriteOutcome, Reason> {
        if let Some(e) = self.st.borrow_mut().write_error.take() {
            return Err(Reason::lost(e));
        }
        loop {
            let res = {
                let st = self.st.borrow();
                if st.buf.unsent == 0 {
                    break;
                }
                let slices = st.buf.slices();
                sink.write_vectored(&slices)
            };
            match res {
                Ok(0) => return Err(Reason::lost(io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => {
                    self.st.borrow_mut().buf.consume(n);
                    self.resume_if_low();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(WriteOutcome::Blocked);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Reason::lost(e)),
            }
        }
        // Fully drained (CONTRACT D3).
        self.with_reactor(|r, t| r.remove_writer(t));
        let pull = {
            let st = self.st.borrow();
            match &st.producer {
                Some(Producer::Pull(p)) if !st.disconnected => Some(p.clone()),
                _ => None,
            }
        };
        if let Some(p) = pull {
            p.resume_producing();
        }
        let mut st = self.st.borrow_mut();
        if st.buf.unsent > 0 {
            drop(st);
            self.start_writing();
            return Ok(WriteOutcome::More);
        }
        if st.disconnecting && !Self::has_pull_producer(&st) {
            return Err(Reason::ConnectionDone);
        }
        if st.write_shutdown_requested && !st.write_shut {
            st.write_shut = true;
            drop(st);
            sink.shutdown_write().map_err(Reason::lost)?;
            return Ok(WriteOutcome::WriteShutdown);
        }
        Ok(WriteOutcome::Drained)
    }

    /// The connection is gone (CONTRACT D7): mark it, drop the buffer, stop and forget the
    /// producer. Returns `false` if this already happened (so `connection_lost` is
    /// delivered exactly once).
    pub fn connection_lost(&self) -> bool {
        let producer = {
            let mut st = self.st.borrow_mut();
            if st.disconnected {
                return false;
            }
            st.disconnected = true;
            st.connected = false;
            st.buf.clear();
            st.producer_paused = false;
            st.producer.take()
        };
        if let Some(p) = producer {
            p.stop_producing();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_buffer_coalesces_small_and_keeps_large() {
        let mut b = WriteBuffer::default();
        b.push(b"ab");
        b.push(b"cd");
        assert_eq!(b.chunks.len(), 1);
        b.push(&vec![1u8; 100_000]);
        assert_eq!(b.chunks.len(), 2);
        assert_eq!(b.unsent, 100_004);
        b.consume(3);
        assert_eq!(b.offset, 3);
        assert_eq!(b.slices()[0].len(), 1);
        b.consume(1);
        assert_eq!(b.chunks.len(), 1);
        b.consume(100_000);
        assert_eq!(b.unsent, 0);
        assert!(b.chunks.is_empty());
    }

    #[test]
    fn write_buffer_appends_after_a_partly_sent_chunk() {
        let mut b = WriteBuffer::default();
        b.push(b"hello");
        b.consume(2);
        b.push(b"!");
        let joined: Vec<u8> = b.slices().iter().flat_map(|s| s.to_vec()).collect();
        assert_eq!(joined, b"llo!");
    }
}
