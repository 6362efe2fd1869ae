//! Shared helpers for the reactor's integration tests.
#![allow(dead_code)]

use std::time::Duration;

/// Default deadline for a test waiting on the loop.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Number of open fds of this process (`/proc/self/fd`, or `/dev/fd` elsewhere).
///
/// On Windows, 0: fds are a POSIX notion, and under Wine `/proc/self/fd` would name the
/// Wine host process's own descriptors, which come and go with Wine's internals.
#[cfg(not(unix))]
pub fn open_fds() -> usize {
    0
}

/// Number of open fds of this process (`/proc/self/fd`, or `/dev/fd` elsewhere).
#[cfg(unix)]
pub fn open_fds() -> usize {
    let dir = if std::path::Path::new("/proc/self/fd").exists() {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use torsion_reactor::{Reactor, StreamSocket, StreamTransport};
use torsion_transport::{
    Address, ClientFactory, Factory, HalfCloseableProtocol, Protocol, PullProducer, PushProducer,
    Reason, Transport,
};

/// What a [`Recorder`] saw.
#[derive(Default)]
pub struct Log {
    pub made: usize,
    pub data: Vec<u8>,
    pub chunks: usize,
    pub lost: Vec<Reason>,
    pub read_lost: usize,
    pub write_lost: usize,
    /// `data_received` came after this side called `lose_connection`/`abort_connection`.
    pub data_after_close: bool,
    pub closing: bool,
    pub transport: Option<Rc<dyn Transport>>,
}

pub type Shared = Rc<RefCell<Log>>;

pub fn shared() -> Shared {
    Rc::new(RefCell::new(Log::default()))
}

type Hook = Box<dyn FnMut(&Rc<dyn Transport>, &Shared)>;
type DataHook = Box<dyn FnMut(&Rc<dyn Transport>, &[u8], &Shared)>;

/// A protocol that records every callback into a [`Log`] and runs optional hooks.
pub struct Recorder {
    log: Shared,
    transport: Option<Rc<dyn Transport>>,
    on_made: Option<Hook>,
    on_data: Option<DataHook>,
    on_lost: Option<Hook>,
    on_read_lost: Option<Hook>,
    on_write_lost: Option<Hook>,
    half_close: bool,
    echo: bool,
    keep_data: bool,
}

impl Recorder {
    pub fn new(log: &Shared) -> Self {
        Recorder {
            log: log.clone(),
            transport: None,
            on_made: None,
            on_data: None,
            on_lost: None,
            on_read_lost: None,
            on_write_lost: None,
            half_close: false,
            echo: false,
            keep_data: true,
        }
    }
    pub fn on_made(mut self, f: impl FnMut(&Rc<dyn Transport>, &Shared) + 'static) -> Self {
        self.on_made = Some(Box::new(f));
        self
    }
    pub fn on_data(mut self, f: impl FnMut(&Rc<dyn Transport>, &[u8], &Shared) + 'static) -> Self {
        self.on_data = Some(Box::new(f));
        self
    }
    pub fn on_lost(mut self, f: impl FnMut(&Rc<dyn Transport>, &Shared) + 'static) -> Self {
        self.on_lost = Some(Box::new(f));
        self
    }
    pub fn on_read_lost(mut self, f: impl FnMut(&Rc<dyn Transport>, &Shared) + 'static) -> Self {
        self.on_read_lost = Some(Box::new(f));
        self.half_close = true;
        self
    }
    pub fn on_write_lost(mut self, f: impl FnMut(&Rc<dyn Transport>, &Shared) + 'static) -> Self {
        self.on_write_lost = Some(Box::new(f));
        self.half_close = true;
        self
    }
    pub fn half_closeable(mut self) -> Self {
        self.half_close = true;
        self
    }
    pub fn echo(mut self) -> Self {
        self.echo = true;
        self
    }
    pub fn discard(mut self) -> Self {
        self.keep_data = false;
        self
    }
    pub fn boxed(self) -> Box<dyn Protocol> {
        Box::new(self)
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        {
            let mut log = self.log.borrow_mut();
            log.made += 1;
            log.transport = Some(transport.clone());
        }
        self.transport = Some(transport.clone());
        if let Some(f) = &mut self.on_made {
            f(&transport, &self.log);
        }
    }

    fn data_received(&mut self, data: &[u8]) {
        {
            let mut log = self.log.borrow_mut();
            if log.closing {
                log.data_after_close = true;
            }
            log.chunks += 1;
            if self.keep_data {
                log.data.extend_from_slice(data);
            }
        }
        let Some(t) = self.transport.clone() else {
            return;
        };
        if self.echo {
            t.write(data);
        }
        if let Some(f) = &mut self.on_data {
            f(&t, data, &self.log);
        }
    }

    fn connection_lost(&mut self, reason: Reason) {
        {
            let mut log = self.log.borrow_mut();
            log.lost.push(reason);
            log.transport = None;
        }
        if let (Some(f), Some(t)) = (&mut self.on_lost, self.transport.clone()) {
            f(&t, &self.log);
        }
        self.transport = None;
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        if self.half_close { Some(self) } else { None }
    }
}

impl HalfCloseableProtocol for Recorder {
    fn read_connection_lost(&mut self) {
        self.log.borrow_mut().read_lost += 1;
        if let (Some(f), Some(t)) = (&mut self.on_read_lost, self.transport.clone()) {
            f(&t, &self.log);
        }
    }
    fn write_connection_lost(&mut self) {
        self.log.borrow_mut().write_lost += 1;
        if let (Some(f), Some(t)) = (&mut self.on_write_lost, self.transport.clone()) {
            f(&t, &self.log);
        }
    }
}

/// Mark a log as closing (for `data_after_close`).
pub fn closing(log: &Shared) {
    log.borrow_mut().closing = true;
}

/// A client factory building protocols with `make`, recording what the factory hears.
pub struct Client {
    make: RefCell<Box<dyn FnMut() -> Box<dyn Protocol>>>,
    pub started: Cell<usize>,
    pub built: Cell<usize>,
    pub failed: RefCell<Vec<Reason>>,
    pub lost: RefCell<Vec<Reason>>,
}

impl Client {
    pub fn new(make: impl FnMut() -> Box<dyn Protocol> + 'static) -> Rc<Client> {
        Rc::new(Client {
            make: RefCell::new(Box::new(make)),
            started: Cell::new(0),
            built: Cell::new(0),
            failed: RefCell::new(Vec::new()),
            lost: RefCell::new(Vec::new()),
        })
    }
    pub fn failed_count(&self) -> usize {
        self.failed.borrow().len()
    }
    pub fn first_failure(&self) -> Option<Reason> {
        self.failed.borrow().first().cloned()
    }
}

impl Factory for Client {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        self.built.set(self.built.get() + 1);
        Some((self.make.borrow_mut())())
    }
}

impl ClientFactory for Client {
    fn started_connecting(&self) {
        self.started.set(self.started.get() + 1);
    }
    fn client_connection_failed(&self, reason: Reason) {
        self.failed.borrow_mut().push(reason);
    }
    fn client_connection_lost(&self, reason: Reason) {
        self.lost.borrow_mut().push(reason);
    }
}

/// Both ends of a connected pair, each driving a protocol through the reactor.
pub fn start_pair<S: StreamSocket + 'static>(
    reactor: &Reactor,
    a: S,
    b: S,
    pa: Box<dyn Protocol>,
    pb: Box<dyn Protocol>,
) -> (Rc<StreamTransport<S>>, Rc<StreamTransport<S>>) {
    let ta = StreamTransport::start(reactor, a, pa, None).expect("register a");
    let tb = StreamTransport::start(reactor, b, pb, None).expect("register b");
    (ta, tb)
}

/// A one-way byte channel the test writes and a selectable reads: `mio::unix::pipe` on
/// Unix; on Windows (no anonymous pipes in mio) a loopback TCP pair with the same shape.
#[cfg(unix)]
#[allow(unused_imports)]
pub use mio::unix::pipe;

#[cfg(windows)]
pub mod pipe {
    /// The write end: a blocking std socket.
    pub type Sender = std::net::TcpStream;
    /// The read end: a non-blocking mio socket.
    pub type Receiver = mio::net::TcpStream;

    /// A connected (sender, receiver) pair.
    pub fn new() -> std::io::Result<(Sender, Receiver)> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let tx = std::net::TcpStream::connect(l.local_addr()?)?;
        let (rx, _) = l.accept()?;
        rx.set_nonblocking(true)?;
        Ok((tx, mio::net::TcpStream::from_std(rx)))
    }
}

/// A connected loopback TCP pair (client, server side).
pub fn tcp_sockets() -> (mio::net::TcpStream, mio::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (s, _) = l.accept().expect("accept");
    for x in [&c, &s] {
        x.set_nonblocking(true).expect("nonblocking");
    }
    (
        mio::net::TcpStream::from_std(c),
        mio::net::TcpStream::from_std(s),
    )
}

/// A connected Unix socket pair.
#[cfg(unix)]
pub fn unix_sockets() -> (mio::net::UnixStream, mio::net::UnixStream) {
    mio::net::UnixStream::pair().expect("socketpair")
}

/// A repeating byte pattern: byte `i` of the stream is `i % 251`.
pub struct Pattern(Vec<u8>);

impl Pattern {
    pub fn new(max_chunk: usize) -> Self {
        Pattern((0..251 + max_chunk).map(|i| (i % 251) as u8).collect())
    }
    /// `len` bytes of the stream from `pos`.
    pub fn at(&self, pos: u64, len: usize) -> &[u8] {
        let start = (pos % 251) as usize;
        &self.0[start..start + len]
    }
    /// True if `data` is the stream from `pos`.
    pub fn check(&self, pos: u64, data: &[u8]) -> bool {
        let mut off = 0;
        while off < data.len() {
            let n = (data.len() - off).min(self.0.len() - 251);
            if &data[off..off + n] != self.at(pos + off as u64, n) {
                return false;
            }
            off += n;
        }
        true
    }
}

/// A push producer that writes `total` bytes of the pattern in `chunk`-sized writes
/// whenever it is not paused, counting pauses and resumes and the consumer's largest
/// backlog (through `unsent`).
pub struct PatternProducer {
    pub consumer: RefCell<Option<Rc<dyn Transport>>>,
    pub unsent: RefCell<Option<Box<dyn Fn() -> usize>>>,
    pub pattern: Pattern,
    pub chunk: usize,
    pub total: u64,
    pub sent: Cell<u64>,
    pub paused: Cell<bool>,
    pub pauses: Cell<usize>,
    pub resumes: Cell<usize>,
    pub stops: Cell<usize>,
    pub max_unsent: Cell<usize>,
    pub lose_when_done: bool,
}

impl PatternProducer {
    pub fn new(chunk: usize, total: u64, lose_when_done: bool) -> Rc<Self> {
        Rc::new(PatternProducer {
            consumer: RefCell::new(None),
            unsent: RefCell::new(None),
            pattern: Pattern::new(chunk),
            chunk,
            total,
            sent: Cell::new(0),
            paused: Cell::new(false),
            pauses: Cell::new(0),
            resumes: Cell::new(0),
            stops: Cell::new(0),
            max_unsent: Cell::new(0),
            lose_when_done,
        })
    }

    /// Write until paused or done.
    pub fn produce(&self) {
        let Some(t) = self.consumer.borrow().clone() else {
            return;
        };
        while !self.paused.get() && self.sent.get() < self.total && self.stops.get() == 0 {
            let n = (self.total - self.sent.get()).min(self.chunk as u64) as usize;
            let pos = self.sent.get();
            self.sent.set(pos + n as u64);
            t.write(self.pattern.at(pos, n));
            if let Some(f) = self.unsent.borrow().as_ref() {
                self.max_unsent.set(self.max_unsent.get().max(f()));
            }
        }
        if self.sent.get() >= self.total && self.lose_when_done {
            t.unregister_producer();
            t.lose_connection();
        }
    }
}

impl PushProducer for PatternProducer {
    fn pause_producing(&self) {
        self.pauses.set(self.pauses.get() + 1);
        self.paused.set(true);
    }
    fn resume_producing(&self) {
        self.resumes.set(self.resumes.get() + 1);
        self.paused.set(false);
        self.produce();
    }
    fn stop_producing(&self) {
        self.stops.set(self.stops.get() + 1);
    }
}

/// A pull producer writing `chunks` chunks, one per `resume_producing`, then unregistering.
pub struct PullChunks {
    pub consumer: RefCell<Option<Rc<dyn Transport>>>,
    pub left: Cell<usize>,
    pub resumes: Cell<usize>,
    pub stops: Cell<usize>,
    pub unregister_when_done: bool,
}

impl PullProducer for PullChunks {
    fn resume_producing(&self) {
        self.resumes.set(self.resumes.get() + 1);
        let Some(t) = self.consumer.borrow().clone() else {
            return;
        };
        if self.left.get() == 0 {
            if self.unregister_when_done {
                t.unregister_producer();
            }
            return;
        }
        self.left.set(self.left.get() - 1);
        t.write(&[b'x'; 1000]);
    }
    fn stop_producing(&self) {
        self.stops.set(self.stops.get() + 1);
    }
}

/// Raise the soft fd limit to the hard limit; returns the new soft limit.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let new = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `new` is a valid rlimit; raising the soft limit up to the hard one is
        // always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
            return u64::try_from(new.rlim_cur).unwrap_or(u64::MAX);
        }
    }
    u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX)
}

/// Windows has no per-process socket limit to raise (handles are limited by memory).
#[cfg(windows)]
pub fn raise_fd_limit() -> u64 {
    u64::MAX
}

/// A unique temporary directory for socket files, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("torsion-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
