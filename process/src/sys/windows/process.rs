//! The Windows process transport (CONTRACT M): three pipes driven by threads that post
//! through the reactor's `call_from_thread`, and a waiter thread on the process handle —
//! Twisted's `_dumbwin32proc` design, without its polling timer (CONTRACT M6).
//!
//! - One **reader thread** per child-output pipe does blocking `ReadFile`s and posts each
//!   chunk to the loop. At most [`IN_FLIGHT`] chunks are posted and not yet delivered, so a
//!   slow or paused protocol stops the thread (and the child then blocks on a full pipe).
//! - One **writer thread** for stdin takes what the stdin [`FileDescriptor`] hands it (at
//!   most [`WRITE_WINDOW`] bytes queued) and does blocking `WriteFile`s. When the window
//!   opens again it posts a wake-up, which re-arms the descriptor: producers, flush and
//!   close work as on every other transport.
//! - One **waiter thread** waits on the process handle and posts the exit code.
//!
//! An idle child costs no wake-ups: every thread blocks in the kernel. The loop finds the
//! process a post is for through a per-thread table keyed by a process id of our own
//! (the posts are `Send`; the process is not).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

use mio::{Registry, Token};
use torsion_reactor::{
    FileDescriptor, IoStatus, Reactor, Selectable, ThreadHandle, WeakReactor, WriteOutcome,
    WriteSink,
};
use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessBuilder, ProcessError, ProcessProtocol, ProcessTransport,
    Producer, ProducerError, PushProducer, Reason, Signal, SpawnError, SpawnStep,
};
use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, INFINITE, TerminateProcess, WaitForSingleObject,
};

use super::create::{self, ParentEnd};
use crate::core::{ExitInfo, ProcessCore};

/// Bytes per `ReadFile`.
const READ_CHUNK: usize = 64 * 1024;
/// Chunks a reader thread may have posted and not yet delivered.
const IN_FLIGHT: usize = 4;
/// Bytes the stdin writer thread may have queued.
const WRITE_WINDOW: usize = 256 * 1024;

/// A reactor's live processes, until their `process_ended` (a reactor extension). The
/// threads' posts are `Send` closures and cannot hold the (`!Send`) process, so the loop
/// finds it here by a number of our own; the protocol delivery itself is the process core's.
#[derive(Default)]
struct Live(RefCell<HashMap<u64, Rc<Process>>>);

impl Live {
    fn of(reactor: &Reactor) -> Rc<Live> {
        reactor.extension(Live::default)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Run `f` on the reactor thread with the process `id`, if it is still live.
fn post(handle: &ThreadHandle, id: u64, f: impl FnOnce(&Process) + Send + 'static) -> bool {
    handle
        .call_from_thread_with(move |reactor| {
            let p = Live::of(reactor).0.borrow().get(&id).cloned();
            if let Some(p) = p {
                f(&p);
            }
        })
        .is_ok()
}

// ----- reader threads ----------------------------------------------------------------------

/// What a reader thread and the loop share.
#[derive(Default)]
struct ReaderShared {
    /// Chunks posted and not yet delivered (or held while paused).
    in_flight: Mutex<usize>,
    cv: Condvar,
    /// The loop closed this pipe: read and discard until EOF, post nothing.
    closed: AtomicBool,
}

struct Reader {
    shared: Arc<ReaderShared>,
    /// Chunks that arrived while paused (CONTRACT I6).
    held: VecDeque<Vec<u8>>,
}

fn spawn_reader(handle: ThreadHandle, id: u64, fd: i32, mut file: File, shared: Arc<ReaderShared>) {
    let run = move || {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            {
                let mut n = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                while *n >= IN_FLIGHT && !shared.closed.load(Ordering::Acquire) {
                    n = shared.cv.wait(n).unwrap_or_else(|p| p.into_inner());
                }
            }
            // std maps ERROR_BROKEN_PIPE (every writer closed) to Ok(0).
            let got = match file.read(&mut buf) {
                Ok(0) => Err(Reason::ConnectionDone),
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(Reason::lost(e)),
            };
            if shared.closed.load(Ordering::Acquire) {
                if got.is_err() {
                    return;
                }
                continue;
            }
            match got {
                Ok(data) => {
                    *shared.in_flight.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                    if !post(&handle, id, move |p| p.on_data(fd, data)) {
                        return;
                    }
                }
                Err(reason) => {
                    post(&handle, id, move |p| p.on_pipe_lost(fd, reason));
                    return;
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name(format!("torsion-read-{fd}"))
        .spawn(run)
    {
        log::warn!("cannot start the reader thread for child fd {fd}: {e}");
    }
}

// ----- the stdin writer --------------------------------------------------------------------

enum ToWriter {
    Data(Vec<u8>),
    /// Write what is queued, then close the pipe.
    Close,
    /// Close now, dropping what is queued.
    Abort,
}

#[derive(Default)]
struct WriterShared {
    queued: AtomicUsize,
    /// The sink said `WouldBlock`: post a wake-up when the window opens.
    blocked: AtomicBool,
    /// The error that ended writing (a child that closed its stdin: `BrokenPipe`).
    failed: Mutex<Option<io::Error>>,
}

/// The parent's end of the child's stdin, as a selectable with no OS source: the reactor
/// drives its [`FileDescriptor`]; the writer thread does the I/O.
pub struct StdinWriter {
    fd: FileDescriptor,
    tx: RefCell<Option<mpsc::Sender<ToWriter>>>,
    shared: Arc<WriterShared>,
}

impl fmt::Debug for StdinWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdinWriter").field("fd", &self.fd).finish()
    }
}

impl StdinWriter {
    /// The write side: buffer, producer, closing.
    pub fn file_descriptor(&self) -> &FileDescriptor {
        &self.fd
    }
}

struct ThreadSink<'a>(&'a StdinWriter);

impl WriteSink for ThreadSink<'_> {
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let w = self.0;
        if let Some(e) = w
            .shared
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        if w.shared.queued.load(Ordering::Acquire) >= WRITE_WINDOW {
            w.shared.blocked.store(true, Ordering::Release);
            // Re-check: the thread may have drained between the load and the store.
            if w.shared.queued.load(Ordering::Acquire) >= WRITE_WINDOW {
                return Err(io::Error::from(io::ErrorKind::WouldBlock));
            }
        }
        let room = WRITE_WINDOW
            .saturating_sub(w.shared.queued.load(Ordering::Acquire))
            .max(1);
        let mut data = Vec::with_capacity(room.min(bufs.iter().map(|b| b.len()).sum()));
        for b in bufs {
            let take = b.len().min(room - data.len());
            data.extend_from_slice(&b[..take]);
            if data.len() == room {
                break;
            }
        }
        let n = data.len();
        w.shared.queued.fetch_add(n, Ordering::AcqRel);
        match w.tx.borrow().as_ref() {
            Some(tx) if tx.send(ToWriter::Data(data)).is_ok() => Ok(n),
            _ => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Selectable for StdinWriter {
    fn register(&self, _registry: &Registry, _token: Token) -> io::Result<()> {
        Ok(())
    }

    fn deregister(&self, _registry: &Registry) -> io::Result<()> {
        Ok(())
    }

    fn do_read(&self) -> Result<IoStatus, Reason> {
        Ok(IoStatus::Blocked)
    }

    fn do_write(&self) -> Result<IoStatus, Reason> {
        let step = self.fd.do_write(&mut ThreadSink(self));
        Ok(match self.fd.finish_write(step)? {
            WriteOutcome::More => IoStatus::More,
            _ => IoStatus::Blocked,
        })
    }

    fn connection_lost(&self, reason: Reason) {
        if !self.fd.connection_lost() {
            return;
        }
        // The thread closes the pipe (after writing what is queued, for a clean close) and
        // then tells the process, so `child_connection_lost(0)` means the child saw EOF.
        let msg = if reason.is_clean() {
            ToWriter::Close
        } else {
            ToWriter::Abort
        };
        if let Some(tx) = self.tx.borrow_mut().take() {
            let _ = tx.send(msg);
        }
    }

    fn describe(&self) -> String {
        "process stdin writer".into()
    }
}

fn spawn_writer(
    handle: ThreadHandle,
    id: u64,
    mut file: File,
    rx: mpsc::Receiver<ToWriter>,
    shared: Arc<WriterShared>,
) {
    let run = move || {
        let mut failed = false;
        let mut reason = Reason::ConnectionDone;
        while let Ok(msg) = rx.recv() {
            match msg {
                ToWriter::Data(data) => {
                    let mut just_failed = false;
                    if !failed {
                        if let Err(e) = file.write_all(&data) {
                            failed = true;
                            just_failed = true;
                            *shared.failed.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(io::Error::new(e.kind(), e.to_string()));
                            reason = Reason::lost(e);
                        }
                    }
                    let left = shared.queued.fetch_sub(data.len(), Ordering::AcqRel) - data.len();
                    if left < WRITE_WINDOW / 2
                        && shared.blocked.swap(false, Ordering::AcqRel)
                        && !post(&handle, id, |p| p.on_stdin_writable())
                    {
                        return;
                    }
                    // The writer learns of a child that closed its stdin only by writing:
                    // disconnect now, not at the next write (CONTRACT I1 as far as Windows
                    // allows).
                    if just_failed && !post(&handle, id, |p| p.on_stdin_failed()) {
                        return;
                    }
                }
                ToWriter::Close => break,
                ToWriter::Abort => {
                    if !failed {
                        reason = Reason::ConnectionAborted;
                    }
                    break;
                }
            }
        }
        drop(file);
        post(&handle, id, move |p| p.on_pipe_lost(0, reason));
    };
    if let Err(e) = std::thread::Builder::new()
        .name("torsion-write-0".into())
        .spawn(run)
    {
        log::warn!("cannot start the stdin writer thread: {e}");
    }
}

// ----- the waiter --------------------------------------------------------------------------

fn spawn_waiter(handle: ThreadHandle, id: u64, process: Arc<OwnedHandle>) {
    let run = move || {
        let h = process.as_raw_handle() as HANDLE;
        // SAFETY: `h` stays open while `process` (an Arc this thread holds) lives.
        let waited = unsafe { WaitForSingleObject(h, INFINITE) };
        let mut code: u32 = 0;
        // SAFETY: as above; `code` is a live local the call writes.
        let ok = waited == WAIT_OBJECT_0 && unsafe { GetExitCodeProcess(h, &mut code) } != 0;
        let reason = if ok {
            exit_reason(code)
        } else {
            log::warn!("waiting for a child failed: {}", io::Error::last_os_error());
            ExitReason::Unknown
        };
        let code = ok.then_some(code as i32);
        post(&handle, id, move |p| p.on_exit(reason, code));
    };
    if let Err(e) = std::thread::Builder::new()
        .name("torsion-wait".into())
        .spawn(run)
    {
        log::warn!("cannot start the waiter thread: {e}");
    }
}

/// Exit code 0 is `ProcessDone`; anything else `ProcessTerminated` with that code (the
/// raw status is the exit code itself on Windows).
fn exit_reason(code: u32) -> ExitReason {
    let code = code as i32;
    if code == 0 {
        ExitReason::ProcessDone
    } else {
        ExitReason::ProcessTerminated {
            exit_code: Some(code),
            signal: None,
            core_dumped: false,
            status: code,
        }
    }
}

// ----- the transport -----------------------------------------------------------------------

/// A running (or finished) child on Windows: the same role, callbacks and public surface as
/// the POSIX `Process` (CONTRACT F, M).
///
/// Given to the protocol as `Rc<dyn ProcessTransport>` in `connection_made`. The protocol
/// is dropped after `process_ended` returns.
pub struct Process {
    reactor: WeakReactor,
    id: u64,
    core: ProcessCore,
    handle: Arc<OwnedHandle>,
    readers: RefCell<BTreeMap<i32, Reader>>,
    stdin: RefCell<Option<(Rc<StdinWriter>, Token)>>,
    /// Child fds mapped `ChildFd::Write` at spawn (closed ones included).
    writable: BTreeSet<i32>,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("core", &self.core)
            .field("readers", &self.readers.borrow().keys().collect::<Vec<_>>())
            .field("stdin", &self.stdin.borrow().is_some())
            .finish()
    }
}

impl Process {
    /// The pid this child had, even after it exited.
    pub fn original_pid(&self) -> u32 {
        self.core.original_pid()
    }

    /// Why the child ended, once it exited.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.core.exit_reason()
    }

    /// The exit code, once it exited.
    pub fn wait_status(&self) -> Option<i32> {
        self.core.wait_status()
    }

    /// True once `process_ended` was delivered.
    pub fn ended(&self) -> bool {
        self.core.ended()
    }

    /// False: a Windows child runs on pipes (CONTRACT M1).
    pub fn is_pty(&self) -> bool {
        false
    }

    /// The writer for child fd 0, if it is open (for buffer size and state).
    pub fn stdin(&self) -> Option<Rc<StdinWriter>> {
        self.stdin.borrow().as_ref().map(|(w, _)| w.clone())
    }

    fn on_data(&self, fd: i32, data: Vec<u8>) {
        let deliver_now = {
            let mut readers = self.readers.borrow_mut();
            let Some(r) = readers.get_mut(&fd) else {
                return;
            };
            if self.core.paused() {
                r.held.push_back(data);
                return;
            }
            release(&r.shared);
            data
        };
        self.data_received(fd, deliver_now);
    }

    fn data_received(&self, fd: i32, data: Vec<u8>) {
        // CONTRACT F7: a panic in child_data_received closes that pipe.
        if !self.core.data_received(fd, &data) {
            log::warn!("child fd {fd}: closing the pipe after a panic");
            let _ = self.close_child_fd(fd);
        }
    }

    fn on_pipe_lost(&self, fd: i32, reason: Reason) {
        let known = if fd == 0 {
            self.stdin.borrow_mut().take().is_some()
        } else {
            match self.readers.borrow_mut().remove(&fd) {
                Some(r) => {
                    r.shared.closed.store(true, Ordering::Release);
                    r.shared.cv.notify_all();
                    true
                }
                None => false,
            }
        };
        if !known {
            return;
        }
        log::debug!(
            "process {} child fd {fd} closed: {reason}",
            self.original_pid()
        );
        self.core.channel_lost(fd);
        self.maybe_ended();
    }

    fn on_stdin_writable(&self) {
        if let (Some(r), Some((w, t))) = (self.reactor.upgrade(), self.stdin.borrow().as_ref()) {
            if w.fd.unsent() > 0 {
                r.add_writer(*t);
            }
        }
    }

    fn on_stdin_failed(&self) {
        let err = self
            .stdin
            .borrow()
            .as_ref()
            .and_then(|(w, _)| w.shared.failed.lock().ok()?.take());
        if let (Some(r), Some((_, t)), Some(e)) =
            (self.reactor.upgrade(), self.stdin.borrow().as_ref(), err)
        {
            r.disconnect_later(*t, Reason::lost(e));
        }
    }

    fn on_exit(&self, reason: ExitReason, code: Option<i32>) {
        if self.core.exit().is_some() {
            return;
        }
        log::debug!("process {} exited: {reason}", self.original_pid());
        // Nobody will read the child's stdin any more, and Windows cannot tell an idle
        // writer that (POSIX reports HUP on the pipe, CONTRACT I1): close it now, dropping
        // what is unsent, so `process_ended` can come (M5). The loss is reported from the
        // writer thread, through the loop.
        if let (Some(r), Some((_, t))) = (self.reactor.upgrade(), self.stdin.borrow().as_ref()) {
            r.disconnect_later(*t, Reason::lost_because("the child exited"));
        }
        // CONTRACT F7: a panic in process_exited is logged; process_ended still comes.
        self.core.reaped(ExitInfo {
            reason,
            status: code,
        });
        self.maybe_ended();
    }

    /// Close every pipe now, dropping what stdin had not written.
    fn close_all_pipes(&self) {
        if let (Some(r), Some((_, t))) = (self.reactor.upgrade(), self.stdin.borrow().as_ref()) {
            r.disconnect_later(*t, Reason::lost_because("connection_made panicked"));
        }
        let fds: Vec<i32> = self.readers.borrow().keys().copied().collect();
        for fd in fds {
            let _ = self.close_child_fd(fd);
        }
    }

    /// CONTRACT M5: `process_ended` after the exit and every pipe closed.
    fn maybe_ended(&self) {
        let closed = self.readers.borrow().is_empty() && self.stdin.borrow().is_none();
        self.core.end_if(closed);
        if self.core.ended() {
            if let Some(r) = self.reactor.upgrade() {
                let gone = Live::of(&r).0.borrow_mut().remove(&self.id);
                drop(gone); // outside the borrow: this may be the last handle
            }
        }
    }
}

/// One chunk was delivered: let the reader thread read another.
fn release(shared: &ReaderShared) {
    let mut n = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    *n = n.saturating_sub(1);
    shared.cv.notify_all();
}

impl Consumer for Process {
    /// Writes go to the child's stdin (CONTRACT I5); without a stdin pipe they are dropped
    /// with a `warn!`.
    fn write(&self, data: &[u8]) {
        if let Err(e) = self.write_to_child(0, data) {
            log::warn!("process {}: write dropped: {e}", self.original_pid());
        }
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        match self.stdin() {
            Some(w) => w.fd.write_sequence(data),
            None => log::warn!(
                "process {}: write dropped: no stdin pipe",
                self.original_pid()
            ),
        }
    }

    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        match self.stdin() {
            Some(w) => w.fd.register_producer(producer),
            None => {
                torsion_reactor::catch_panic("stop_producing", || producer.stop_producing());
                Ok(())
            }
        }
    }

    fn unregister_producer(&self) {
        if let Some(w) = self.stdin() {
            w.fd.unregister_producer();
        }
    }
}

impl PushProducer for Process {
    /// Stop delivering output; the reader threads stop after [`IN_FLIGHT`] chunks
    /// (CONTRACT I6).
    fn pause_producing(&self) {
        self.core.set_paused(true);
    }

    /// Deliver what was held, then let the reader threads go on (CONTRACT I6).
    fn resume_producing(&self) {
        self.core.set_paused(false);
        let fds: Vec<i32> = self.readers.borrow().keys().copied().collect();
        for fd in fds {
            loop {
                if self.core.paused() {
                    return;
                }
                let next = {
                    let mut readers = self.readers.borrow_mut();
                    let Some(r) = readers.get_mut(&fd) else { break };
                    let chunk = r.held.pop_front();
                    if chunk.is_some() {
                        release(&r.shared);
                    }
                    chunk
                };
                match next {
                    Some(data) => self.data_received(fd, data),
                    None => break,
                }
            }
        }
    }

    fn stop_producing(&self) {
        ProcessTransport::lose_connection(self);
    }
}

impl ProcessTransport for Process {
    fn pid(&self) -> Option<u32> {
        self.core.pid()
    }

    /// CONTRACT M4: only fd 0 is writable.
    fn write_to_child(&self, fd: i32, data: &[u8]) -> Result<(), ProcessError> {
        if !self.writable.contains(&fd) {
            return Err(ProcessError::NotWritable { fd });
        }
        if let Some(w) = self.stdin() {
            w.fd.write(data);
        }
        Ok(())
    }

    /// CONTRACT M4, I3: stdin flushes then closes; an output pipe stops now (its reader
    /// thread drains and discards until the child closes it, so the child never blocks on
    /// it). The loss is reported from the loop. Other fds are a no-op, as closing twice.
    fn close_child_fd(&self, fd: i32) -> Result<(), ProcessError> {
        if fd == 0 {
            if let Some(w) = self.stdin() {
                w.fd.lose_connection();
            }
            return Ok(());
        }
        let lost = self.readers.borrow().get(&fd).map(|r| {
            r.shared.closed.store(true, Ordering::Release);
            r.shared.cv.notify_all();
        });
        if lost.is_some() {
            if let Some(r) = self.reactor.upgrade() {
                let id = self.id;
                let handle = r.thread_handle();
                post(&handle, id, move |p| {
                    p.on_pipe_lost(fd, Reason::ConnectionDone)
                });
            }
        }
        Ok(())
    }

    /// CONTRACT M3: INT, TERM and KILL end the child with `TerminateProcess` (exit code 1);
    /// other signals are [`ProcessError::UnsupportedSignal`]. A child that has exited but
    /// whose exit the loop has not seen yet accepts the signal, as a zombie does (J1).
    fn signal_process(&self, signal: Signal) -> Result<(), ProcessError> {
        if self.core.pid().is_none() {
            return Err(ProcessError::ExitedAlready);
        }
        if !matches!(signal, Signal::Int | Signal::Term | Signal::Kill) {
            return Err(ProcessError::UnsupportedSignal(signal));
        }
        let h = self.handle.as_raw_handle() as HANDLE;
        // SAFETY: `h` is open while `self.handle` lives; a zero timeout only polls.
        if unsafe { WaitForSingleObject(h, 0) } == WAIT_OBJECT_0 {
            return Ok(());
        }
        // SAFETY: as above; the handle has PROCESS_TERMINATE (CreateProcessW gives all
        // access to the creator).
        if unsafe { TerminateProcess(h, 1) } == 0 {
            let e = io::Error::last_os_error();
            // SAFETY: as above.
            if unsafe { WaitForSingleObject(h, 0) } == WAIT_OBJECT_0 {
                return Ok(());
            }
            return Err(ProcessError::Os(e));
        }
        Ok(())
    }

    /// CONTRACT I4: stdin closed after flushing, stderr and stdout closed; never kills.
    fn lose_connection(&self) {
        let _ = self.close_child_fd(0);
        let _ = self.close_child_fd(2);
        let _ = self.close_child_fd(1);
    }
}

/// Spawn the child `builder` describes on `reactor`, driven by `protocol` (Windows).
///
/// `connection_made` runs before this returns (CONTRACT F1); every other callback comes
/// from the loop (F6).
///
/// # Errors
///
/// [`SpawnError`] naming the step (CONTRACT G8, M1): `Unsupported` for uid/gid, a PTY, or
/// child fds beyond 0–2; `Exec` when the program is not found or cannot start.
pub fn spawn(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Rc<Process>, SpawnError> {
    create::check(builder)?;
    let created = create::create(builder)?;
    log::debug!("spawned {:?} as pid {}", builder.get_program(), created.pid);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let handle = Arc::new(created.process);
    let process = Rc::new(Process {
        reactor: reactor.downgrade(),
        id,
        core: ProcessCore::new(created.pid, protocol),
        handle: handle.clone(),
        readers: RefCell::new(BTreeMap::new()),
        stdin: RefCell::new(None),
        writable: builder
            .get_child_fds()
            .iter()
            .filter(|(_, w)| **w == ChildFd::Write)
            .map(|(k, _)| *k)
            .collect(),
    });
    Live::of(reactor).0.borrow_mut().insert(id, process.clone());
    let th = reactor.thread_handle();
    for (fd, end) in created.pipes {
        match end {
            ParentEnd::Read(file) => {
                let shared = Arc::new(ReaderShared::default());
                process.readers.borrow_mut().insert(
                    fd,
                    Reader {
                        shared: shared.clone(),
                        held: VecDeque::new(),
                    },
                );
                spawn_reader(th.clone(), id, fd, file, shared);
            }
            ParentEnd::Write(file) => {
                // CONTRACT M4: check() allows `Write` on fd 0 only.
                let (tx, rx) = mpsc::channel();
                let shared = Arc::new(WriterShared::default());
                let w = Rc::new(StdinWriter {
                    fd: FileDescriptor::new(reactor),
                    tx: RefCell::new(Some(tx)),
                    shared: shared.clone(),
                });
                let token = match reactor.register(w.clone()) {
                    Ok(t) => t,
                    Err(e) => {
                        // Do not leave the child running unwatched.
                        let _ = process.signal_process(Signal::Kill);
                        Live::of(reactor).0.borrow_mut().remove(&id);
                        return Err(SpawnError::os(
                            SpawnStep::Register,
                            builder.get_program(),
                            e,
                        ));
                    }
                };
                w.fd.set_token(token);
                *process.stdin.borrow_mut() = Some((w, token));
                spawn_writer(th.clone(), id, file, rx, shared);
            }
        }
    }
    spawn_waiter(th, id, handle);
    let t: Rc<dyn ProcessTransport> = process.clone();
    if !process.core.connection_made(t) {
        // CONTRACT C5: a panic in connection_made closes the pipes; the exit and the end
        // still come, and the caller gets its handle.
        process.close_all_pipes();
    }
    Ok(process)
}
