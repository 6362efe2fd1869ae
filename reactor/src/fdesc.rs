//! `FileDescriptor`: the write side every stream transport shares (CONTRACT D, E).
//!
//! Twisted's `abstract.FileDescriptor` as a struct that TCP, Unix sockets, process pipes and
//! the PTY master embed. It owns the write buffer, the producer, and the closing state; the
//! embedding selectable owns the fd and the protocol, and lends the fd as a [`WriteSink`]
//! for the system calls of [`FileDescriptor::do_write`] only. See [`FileDescriptor`] for
//! the rule that keeps user code from running under the embedder's borrows.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, IoSlice};

use mio::Token;
use torsion_transport::{Producer, ProducerError, Reason, SharedBytes};

use crate::callback::{catch_panic, guard};
use crate::reactor::{Reactor, WeakReactor};
use crate::write_buffer::{Chunk, WriteBuffer};

/// Default [`FileDescriptor::buffer_size`]: 64 KiB (CONTRACT D4).
pub const DEFAULT_BUFFER_SIZE: usize = 64 * 1024;

/// Where a [`FileDescriptor`] writes: the embedding transport's fd.
pub trait WriteSink {
    /// `writev(2)`.
    ///
    /// # Errors
    ///
    /// The OS error; `WouldBlock` when the kernel buffer is full.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Write `data`, which lives and stays unchanged for the rest of the program: a sink
    /// may hand the kernel references to its pages instead of copying them (a pipe's
    /// `vmsplice(2)`, CONTRACT D11). The default is an ordinary
    /// [`write_vectored`](Self::write_vectored).
    ///
    /// # Errors
    ///
    /// As `write_vectored`.
    fn write_static(&mut self, data: &'static [u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(data)])
    }

    /// Shut the write side down (`shutdown(SHUT_WR)`, or close a pipe's write end).
    ///
    /// # Errors
    ///
    /// The OS error.
    fn shutdown_write(&mut self) -> io::Result<()>;
}

/// What a flush achieved, for the embedding transport: the result of
/// [`FileDescriptor::finish_write`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The kernel is full; wait for writability.
    Blocked,
    /// Data remains (a producer wrote more while being resumed): write again soon
    /// (return [`IoStatus::More`](crate::IoStatus::More)).
    More,
    /// Everything was written; nothing else to do.
    Drained,
    /// Everything was written and the write side was shut down, as
    /// [`lose_write_connection`](FileDescriptor::lose_write_connection) asked: tell the
    /// protocol `write_connection_lost`.
    WriteShutdown,
}

/// The system calls of one [`FileDescriptor::do_write`] are done; what is left may call user
/// code (a producer's `resume_producing`). Release every borrow you hold, then pass it to
/// [`FileDescriptor::finish_write`].
#[must_use = "pass it to FileDescriptor::finish_write once no borrow is held"]
#[derive(Debug)]
pub struct WriteStep(Step);

#[derive(Debug)]
enum Step {
    /// Nothing left to call.
    Done(Result<WriteOutcome, Reason>),
    /// Resume `producer`; `drained`: the buffer was empty (else the kernel blocked with
    /// the buffer at or under the low-water mark).
    Resume { producer: Producer, drained: bool },
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
/// # Calling user code
///
/// Methods never call the protocol. Some call the registered producer, which is user code
/// and may call any transport method back (write, unregister itself, close, set a socket
/// option): so they must be called **with no borrow of the embedder's own held** (no
/// `RefCell` borrow of the socket, file or protocol). They release their own borrows
/// before the call and go through the reactor's funnel
/// ([`catch_panic`]):
///
/// | method | producer call |
/// |---|---|
/// | [`write`](Self::write), [`write_vec`](Self::write_vec), [`write_sequence`](Self::write_sequence), [`write_through`](Self::write_through) | `pause_producing`, when the buffer goes over [`buffer_size`](Self::buffer_size) (D4) |
/// | [`register_producer`](Self::register_producer) | a pull producer's `resume_producing`; `stop_producing` when disconnected (E1) |
/// | [`finish_write`](Self::finish_write) | `resume_producing` after a drain (D3, E2) |
/// | [`connection_lost`](Self::connection_lost) | `stop_producing` (D7) |
///
/// A panic in `pause_producing` or in a registration's `resume_producing` closes the
/// connection from the loop with a [`Reason::ConnectionLost`] naming the panic; one in
/// `finish_write`'s resume is returned as that reason; one in `stop_producing` is logged.
///
/// [`do_write`](Self::do_write) is the one method that takes the embedder's fd, as a
/// [`WriteSink`], and it calls no user code: it makes the system calls and returns a
/// [`WriteStep`]. The embedder's `Selectable::do_write` therefore reads:
///
/// ```text
/// fn do_write(&self) -> Result<IoStatus, Reason> {
///     let step = {
///         let mut file = self.file.borrow_mut();          // the embedder's borrow...
///         let Some(f) = file.as_mut() else { return Ok(IoStatus::Blocked) };
///         self.fd.do_write(&mut MySink(f))                // ...for the system calls only
///     };                                                  // released here
///     match self.fd.finish_write(step)? {                 // may run the producer
///         WriteOutcome::More => Ok(IoStatus::More),
///         WriteOutcome::WriteShutdown => { /* tell the protocol, through catch_panic */ }
///         WriteOutcome::Blocked | WriteOutcome::Drained => Ok(IoStatus::Blocked),
///     }
/// }
/// ```
pub struct FileDescriptor {
    reactor: WeakReactor,
    token: Cell<Option<Token>>,
    /// Inside `finish_write`'s resume: writes are buffered, not tried on the fd, so the
    /// writer sends them in order and a streaming producer is paused within the same drain
    /// (CONTRACT E3), as in Twisted, whose writes always buffer.
    resuming: Cell<bool>,
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
            resuming: Cell::new(false),
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

    /// True if the reactor saw the peer close its side (or an error) on this fd, or the
    /// fd is not registered: see [`Reactor::read_closed_seen`].
    pub fn read_closed_seen(&self) -> bool {
        match (self.reactor.upgrade(), self.token.get()) {
            (Some(r), Some(t)) => r.read_closed_seen(t),
            _ => true,
        }
    }

    fn is_writing(&self) -> bool {
        match (self.reactor.upgrade(), self.token.get()) {
            (Some(r), Some(t)) => r.is_writing(t),
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
            if let Err(panicked) = guard("pause_producing", || p.pause_producing()) {
                self.abort_with(panicked.reason());
            }
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

    /// True if a write may go straight to the fd: not from a producer the writer is
    /// resuming, nothing is buffered (so order is kept), no pull producer waits for a drain
    /// (CONTRACT E2), and the reactor last saw the fd writable.
    fn may_write_now(&self) -> bool {
        if self.resuming.get() {
            return false;
        }
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
    /// error, so `connection_lost` comes from the loop (ARCHITECTURE rule 4).
    pub fn write_through(&self, data: &[u8], send: impl FnMut(&[u8]) -> Option<io::Result<usize>>) {
        if data.is_empty() {
            return;
        }
        if !self.may_write_now() {
            return self.write(data);
        }
        if let Some((done, blocked)) = self.send_now(data, send) {
            if done < data.len() {
                let rest = &data[done..];
                self.append_then(|b| b.push(rest), blocked);
            }
        }
    }

    /// [`write_through`](Self::write_through) of an owned buffer: what the kernel does
    /// not take is queued without copying (CONTRACT D10).
    pub fn write_through_vec(
        &self,
        data: Vec<u8>,
        send: impl FnMut(&[u8]) -> Option<io::Result<usize>>,
    ) {
        self.write_through_chunk(Chunk::Owned(data), send);
    }

    /// [`write_through`](Self::write_through) of a shared buffer: what the kernel does
    /// not take is queued as a reference (CONTRACT D10).
    pub fn write_through_shared(
        &self,
        data: SharedBytes,
        send: impl FnMut(&[u8]) -> Option<io::Result<usize>>,
    ) {
        self.write_through_chunk(Chunk::Shared(data), send);
    }

    fn write_through_chunk(
        &self,
        chunk: Chunk,
        send: impl FnMut(&[u8]) -> Option<io::Result<usize>>,
    ) {
        if chunk.bytes().is_empty() {
            return;
        }
        let (done, blocked) = if self.may_write_now() {
            match self.send_now(chunk.bytes(), send) {
                Some(r) => r,
                None => return,
            }
        } else {
            (0, false)
        };
        self.append_then(|b| b.push_chunk(chunk, done), blocked);
    }

    /// Hand `data` to `send` until it is all taken, the kernel blocks or the fd is busy:
    /// `(bytes taken, blocked)`, or `None` after a write error (then recorded).
    fn send_now(
        &self,
        data: &[u8],
        mut send: impl FnMut(&[u8]) -> Option<io::Result<usize>>,
    ) -> Option<(usize, bool)> {
        let mut done = 0;
        let mut blocked = false;
        while done < data.len() {
            match send(&data[done..]) {
                None => break,
                Some(Ok(0)) => {
                    self.fail_write(io::ErrorKind::WriteZero.into());
                    return None;
                }
                Some(Ok(n)) => done += n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    blocked = true;
                    break;
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => {
                    self.fail_write(e);
                    return None;
                }
            }
        }
        Some((done, blocked))
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

    /// Buffer an owned buffer without copying it (CONTRACT D10).
    pub fn write_vec(&self, data: Vec<u8>) {
        if !data.is_empty() {
            self.append(|b| b.push_chunk(Chunk::Owned(data), 0));
        }
    }

    /// Buffer a shared buffer without copying it: a reference is kept until its bytes are
    /// sent (CONTRACT D10).
    pub fn write_shared(&self, data: SharedBytes) {
        if !data.is_empty() {
            self.append(|b| b.push_chunk(Chunk::Shared(data), 0));
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

    /// Buffer `data`, which lives and stays unchanged for the rest of the program, without
    /// copying it; when it is written the sink may hand the kernel references to its pages
    /// (a pipe's `vmsplice(2)`: [`WriteSink::write_static`], CONTRACT D11). Same rules as
    /// [`write`](Self::write) otherwise.
    #[doc(alias = "vmsplice")]
    pub fn write_static(&self, data: &'static [u8]) {
        if !data.is_empty() {
            self.append(|b| b.push_chunk(Chunk::Static(data), 0));
        }
    }

    /// Register a producer (CONTRACT E1): a pull producer is resumed at once; on a
    /// disconnected descriptor the producer is stopped and not registered. Calls the
    /// producer: hold no borrow (see [`FileDescriptor`]).
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
                catch_panic("stop_producing", || producer.stop_producing());
                return Ok(());
            }
            st.producer = Some(producer.clone());
            st.producer_paused = false;
            !producer.is_streaming()
        };
        if resume {
            if let Err(panicked) = guard("resume_producing", || producer.resume_producing()) {
                self.abort_with(panicked.reason());
            }
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
        self.abort_with(Reason::ConnectionAborted);
    }

    /// [`abort_connection`](Self::abort_connection) with another reason: drop what is
    /// buffered, take no more writes, and have the loop disconnect with `reason` (never
    /// from inside this call; ARCHITECTURE rule 4). For an embedder whose user code panicked
    /// outside the loop's `do_read`/`do_write` (`Panicked::reason` names the panic).
    /// A no-op once aborted or disconnected.
    pub fn abort_with(&self, reason: Reason) {
        {
            let mut st = self.st.borrow_mut();
            if st.disconnected || st.aborted {
                return;
            }
            st.aborted = true;
            st.disconnecting = true;
            st.buf.clear();
        }
        self.with_reactor(|r, t| r.disconnect_later(t, reason));
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

    /// Write buffered data to `sink` until the kernel blocks or the buffer is empty, and
    /// complete a pending half-close (CONTRACT D3, D6). Makes system calls only and calls no
    /// user code, so it is the one method to call while the embedder's fd is borrowed; pass
    /// the result to [`finish_write`](Self::finish_write) after releasing that borrow.
    ///
    /// After [`lose_write_connection`](Self::lose_write_connection) the write side is shut
    /// down at the drain and the producer is not resumed (what it wrote would be dropped).
    pub fn do_write(&self, sink: &mut dyn WriteSink) -> WriteStep {
        WriteStep(self.write_syscalls(sink))
    }

    fn write_syscalls(&self, sink: &mut dyn WriteSink) -> Step {
        {
            let mut st = self.st.borrow_mut();
            if let Some(e) = st.write_error.take() {
                return Step::Done(Err(Reason::lost(e)));
            }
            if st.aborted || st.disconnected {
                return Step::Done(Ok(WriteOutcome::Drained));
            }
        }
        loop {
            let res = {
                let st = self.st.borrow();
                if st.buf.unsent == 0 {
                    break;
                }
                match st.buf.front_static() {
                    Some(data) => sink.write_static(data),
                    None => sink.write_vectored(&st.buf.slices()),
                }
            };
            match res {
                Ok(0) => {
                    return Step::Done(Err(Reason::lost(io::Error::from(
                        io::ErrorKind::WriteZero,
                    ))));
                }
                Ok(n) => self.st.borrow_mut().buf.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // D4: a low-water mark above zero resumes before the buffer is empty.
                    let mut st = self.st.borrow_mut();
                    return match &st.producer {
                        Some(Producer::Push(p))
                            if st.producer_paused && st.buf.unsent <= st.low_water =>
                        {
                            let producer = Producer::Push(p.clone());
                            st.producer_paused = false;
                            Step::Resume {
                                producer,
                                drained: false,
                            }
                        }
                        _ => Step::Done(Ok(WriteOutcome::Blocked)),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Step::Done(Err(Reason::lost(e))),
            }
        }
        // Fully drained (CONTRACT D3).
        self.with_reactor(|r, t| r.remove_writer(t));
        let mut st = self.st.borrow_mut();
        if st.write_shutdown_requested && !st.write_shut && !st.disconnecting {
            st.write_shut = true;
            drop(st);
            return Step::Done(match sink.shutdown_write() {
                Ok(()) => Ok(WriteOutcome::WriteShutdown),
                Err(e) => Err(Reason::lost(e)),
            });
        }
        let due = match &st.producer {
            Some(Producer::Pull(p)) => Some(Producer::Pull(p.clone())),
            Some(Producer::Push(p)) if st.producer_paused => Some(Producer::Push(p.clone())),
            _ => None,
        };
        if let Some(producer) = due {
            st.producer_paused = false;
            return Step::Resume {
                producer,
                drained: true,
            };
        }
        if st.disconnecting {
            return Step::Done(Err(Reason::ConnectionDone));
        }
        Step::Done(Ok(WriteOutcome::Drained))
    }

    /// Finish what [`do_write`](Self::do_write) started: resume the producer it found due
    /// (CONTRACT D3, D4, E2, E3), then complete a pending `lose_connection`. Calls user code:
    /// hold no borrow (see [`FileDescriptor`]).
    ///
    /// # Errors
    ///
    /// [`Reason::ConnectionDone`] when a `lose_connection` completes; a
    /// [`Reason::ConnectionLost`] for a write error, or naming the panic when the producer
    /// panicked. Either way the embedder returns it, and the loop disconnects.
    pub fn finish_write(&self, step: WriteStep) -> Result<WriteOutcome, Reason> {
        let (producer, drained) = match step.0 {
            Step::Done(result) => return result,
            Step::Resume { producer, drained } => (producer, drained),
        };
        let was_resuming = self.resuming.replace(true);
        let resumed = guard("resume_producing", || producer.resume_producing());
        self.resuming.set(was_resuming);
        resumed.map_err(|p| p.reason())?;
        if !drained {
            return Ok(WriteOutcome::Blocked);
        }
        let st = self.st.borrow();
        if st.aborted || st.disconnected {
            // abort_connection from inside resume_producing: the loop reports it.
            return Ok(WriteOutcome::Drained);
        }
        if st.buf.unsent > 0 {
            // The producer wrote: its write started the writer; go on next pass.
            return Ok(WriteOutcome::More);
        }
        if st.disconnecting && !Self::has_pull_producer(&st) {
            return Err(Reason::ConnectionDone);
        }
        drop(st);
        if self.is_writing() {
            // The producer asked for the writer without writing (lose_write_connection,
            // unregister_producer): go round again rather than wait for a writable edge
            // that will not come.
            return Ok(WriteOutcome::More);
        }
        Ok(WriteOutcome::Drained)
    }

    /// The connection is gone (CONTRACT D7): mark it, drop the buffer, stop and forget the
    /// producer (a panic in its `stop_producing` is logged). Returns `false` if this
    /// already happened (so `connection_lost` is delivered exactly once). Calls the
    /// producer: hold no borrow (see [`FileDescriptor`]).
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
            catch_panic("stop_producing", || p.stop_producing());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use torsion_transport::PullProducer;

    /// A sink that takes everything, and says whether a producer ran while it was lent.
    struct Sink<'a> {
        lent: &'a Cell<bool>,
        taken: usize,
    }

    impl WriteSink for Sink<'_> {
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let n = bufs.iter().map(|b| b.len()).sum();
            self.taken += n;
            Ok(n)
        }
        fn shutdown_write(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Counting {
        resumes: Cell<usize>,
        lent: Rc<Cell<bool>>,
        resumed_while_lent: Cell<bool>,
    }

    impl PullProducer for Counting {
        fn resume_producing(&self) {
            self.resumes.set(self.resumes.get() + 1);
            self.resumed_while_lent
                .set(self.resumed_while_lent.get() | self.lent.get());
        }
        fn stop_producing(&self) {}
    }

    #[test]
    fn d3_do_write_calls_no_producer_finish_write_resumes_it() {
        let reactor = Reactor::new().unwrap();
        let fd = FileDescriptor::new(&reactor);
        let lent = Rc::new(Cell::new(false));
        let p = Rc::new(Counting {
            resumes: Cell::new(0),
            lent: lent.clone(),
            resumed_while_lent: Cell::new(false),
        });
        fd.register_producer(Producer::Pull(p.clone())).unwrap();
        assert_eq!(p.resumes.get(), 1, "E1: resumed at registration");
        fd.write(b"hello");
        lent.set(true);
        let mut sink = Sink {
            lent: &lent,
            taken: 0,
        };
        let step = fd.do_write(&mut sink);
        assert!(sink.lent.get());
        lent.set(false);
        assert_eq!(sink.taken, 5);
        assert_eq!(p.resumes.get(), 1, "do_write calls no user code");
        assert!(matches!(fd.finish_write(step), Ok(WriteOutcome::Drained)));
        assert_eq!(
            p.resumes.get(),
            2,
            "E2: resumed after the drain, by finish_write"
        );
        assert!(!p.resumed_while_lent.get());
    }
}
