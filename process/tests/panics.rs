//! A panic in any `ProcessProtocol` callback is caught, and the cleanup still happens
//! (CONTRACT C5, F4, F7): on pipes and on a PTY, the loop goes on, no fd, selectable or
//! child is left behind, and the closing callbacks still come. Also the reported
//! re-entrancy bug: a producer that closes the child's stdin from inside
//! `resume_producing` (CONTRACT C6).
#![cfg(unix)] // the POSIX back end: pipes, PTYs, /proc/self/fd

mod util;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use torsion_process::{ProcessBuilderExt, ReapMode};
use torsion_reactor::Reactor;
use torsion_transport::{
    ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport, Producer, PtyOptions,
    PullProducer,
};
use util::{DEADLINE, open_fds, reactor};

/// The fd counts are process-wide: the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callback {
    ConnectionMade,
    ChildDataReceived,
    ChildConnectionLost,
    ProcessExited,
    ProcessEnded,
}

const CALLBACKS: [Callback; 5] = [
    Callback::ConnectionMade,
    Callback::ChildDataReceived,
    Callback::ChildConnectionLost,
    Callback::ProcessExited,
    Callback::ProcessEnded,
];

#[derive(Default)]
struct Seen {
    events: Vec<String>,
    ended: Option<ExitReason>,
    dropped: bool,
}

/// Records every callback, then panics in the one it was told to.
struct Panicker {
    at: Callback,
    seen: Rc<RefCell<Seen>>,
    transport: Option<Rc<dyn ProcessTransport>>,
}

impl Panicker {
    fn hit(&self, here: Callback, what: String) {
        self.seen.borrow_mut().events.push(what);
        if here == self.at {
            panic!("test panic in {here:?}");
        }
    }
}

impl Drop for Panicker {
    fn drop(&mut self) {
        self.seen.borrow_mut().dropped = true;
    }
}

impl ProcessProtocol for Panicker {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        self.transport = Some(transport);
        self.hit(Callback::ConnectionMade, "made".into());
    }
    fn child_data_received(&mut self, fd: i32, _data: &[u8]) {
        self.hit(Callback::ChildDataReceived, format!("data {fd}"));
    }
    fn child_connection_lost(&mut self, fd: i32) {
        self.hit(Callback::ChildConnectionLost, format!("lost {fd}"));
    }
    fn process_exited(&mut self, reason: ExitReason) {
        self.hit(Callback::ProcessExited, format!("exited {reason}"));
    }
    fn process_ended(&mut self, reason: ExitReason) {
        self.seen.borrow_mut().ended = Some(reason);
        self.hit(Callback::ProcessEnded, format!("ended {reason}"));
    }
}

fn builder(pty: bool) -> ProcessBuilder {
    // Reads a line so a stdin write path exists; prints so data arrives.
    let b = ProcessBuilder::new("sh").args(["-c", "echo out; echo err >&2; exit 0"]);
    if pty { b.pty(PtyOptions::default()) } else { b }
}

/// Spawn (from inside a loop callback, where the reported leak happened) a child whose
/// protocol panics in `at`; run until it ended; check that nothing leaked.
fn panic_in(at: Callback, pty: bool, mode: ReapMode) {
    let _serial = serial();
    let r = reactor(mode);
    // Warm the reactor's own fds (watcher, signal pipe) so they are not counted as leaks.
    spawn_quiet(&r, pty);
    let fds_before = open_fds();
    let selectables_before = r.selectable_count();

    let seen = Rc::new(RefCell::new(Seen::default()));
    let handle = Rc::new(RefCell::new(None));
    let (s, h, r2) = (seen.clone(), handle.clone(), r.clone());
    r.call_later(Duration::ZERO, move || {
        let p = Panicker {
            at,
            seen: s,
            transport: None,
        };
        // The caller gets its handle even when connection_made panics.
        *h.borrow_mut() = Some(builder(pty).spawn(&r2, Box::new(p)).expect("spawn"));
    });
    let s = seen.clone();
    r.run_until(
        || s.borrow().ended.is_some() && s.borrow().dropped,
        DEADLINE,
    )
    .unwrap_or_else(|e| panic!("{at:?} pty={pty}: {e}; seen {:?}", seen.borrow().events));

    let process = handle.borrow_mut().take().expect("a handle");
    let what = format!("{at:?} pty={pty} {mode:?}: {:?}", seen.borrow().events);
    let ended = seen.borrow().ended;
    if matches!(at, Callback::ConnectionMade | Callback::ChildDataReceived) {
        // A channel was closed under the child (F7): it may die of SIGPIPE or SIGHUP.
        assert!(ended.is_some(), "process_ended still comes: {what}");
    } else {
        assert_eq!(
            ended,
            Some(ExitReason::ProcessDone),
            "process_ended still comes: {what}"
        );
    }
    assert!(seen.borrow().dropped, "the protocol is freed: {what}");
    assert_eq!(process.pid(), None, "the child is reaped: {what}");
    assert!(process.ended(), "{what}");
    drop(process);
    assert_eq!(
        r.selectable_count(),
        selectables_before,
        "no selectable left behind: {what}"
    );
    let fds_after = open_fds();
    assert!(
        fds_after <= fds_before,
        "no fd left behind: {what}: {fds_before} before, {fds_after} after"
    );
    // The loop goes on: another child runs to its end on the same reactor.
    spawn_quiet(&r, pty);
}

struct Quiet(Rc<Cell<bool>>);

impl ProcessProtocol for Quiet {
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.set(true);
    }
}

fn spawn_quiet(r: &Reactor, pty: bool) {
    let ended = Rc::new(Cell::new(false));
    builder(pty)
        .spawn(r, Box::new(Quiet(ended.clone())))
        .expect("spawn");
    r.run_until(|| ended.get(), DEADLINE)
        .expect("a quiet child ends");
}

#[test]
fn c5_panic_in_each_callback_on_pipes_leaks_nothing() {
    for at in CALLBACKS {
        for mode in util::MODES {
            panic_in(at, false, mode);
        }
    }
}

#[test]
fn c5_panic_in_each_callback_on_a_pty_leaks_nothing() {
    for at in CALLBACKS {
        panic_in(at, true, ReapMode::Auto);
    }
}

#[test]
fn c5_panic_in_connection_made_closes_the_channels_so_the_child_sees_eof() {
    let _serial = serial();
    for pty in [false, true] {
        let r = reactor(ReapMode::Auto);
        let seen = Rc::new(RefCell::new(Seen::default()));
        let p = Panicker {
            at: Callback::ConnectionMade,
            seen: seen.clone(),
            transport: None,
        };
        // `cat` ends only when its input does: closing the channels ends it.
        let mut b = ProcessBuilder::new("cat");
        if pty {
            b = b.pty(PtyOptions::default());
        }
        let process = b
            .spawn(&r, Box::new(p))
            .expect("a handle despite the panic");
        let s = seen.clone();
        r.run_until(|| s.borrow().ended.is_some(), DEADLINE)
            .unwrap_or_else(|e| panic!("pty={pty}: {e}"));
        assert_eq!(process.pid(), None);
    }
}

/// A pull producer that writes its chunks, then — from inside `resume_producing` —
/// unregisters itself and closes the child's stdin (the reported bug: the PTY master's
/// write path held a borrow of its file across this call).
struct FeedThenClose {
    transport: Rc<dyn ProcessTransport>,
    chunks: RefCell<Vec<&'static [u8]>>,
}

impl PullProducer for FeedThenClose {
    fn resume_producing(&self) {
        let next = self.chunks.borrow_mut().pop();
        match next {
            Some(chunk) => self.transport.write(chunk),
            None => {
                self.transport.unregister_producer();
                self.transport.close_stdin().expect("close_stdin");
            }
        }
    }
    fn stop_producing(&self) {}
}

struct Feed(Rc<RefCell<Vec<u8>>>, Rc<RefCell<Option<ExitReason>>>);

impl ProcessProtocol for Feed {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        let producer = Rc::new(FeedThenClose {
            transport: transport.clone(),
            chunks: RefCell::new(vec![b"two\n", b"one\n"]),
        });
        transport
            .register_producer(Producer::Pull(producer))
            .expect("register");
    }
    fn child_data_received(&mut self, _fd: i32, data: &[u8]) {
        self.0.borrow_mut().extend_from_slice(data);
    }
    fn process_ended(&mut self, reason: ExitReason) {
        *self.1.borrow_mut() = Some(reason);
    }
}

#[test]
fn c6_producer_closes_stdin_from_resume_producing_and_cat_ends_cleanly() {
    let _serial = serial();
    for pty in [false, true] {
        let r = reactor(ReapMode::Auto);
        let (out, ended) = (
            Rc::new(RefCell::new(Vec::new())),
            Rc::new(RefCell::new(None)),
        );
        let mut b = ProcessBuilder::new("cat");
        if pty {
            // No echo, so the output is exactly what cat wrote back.
            b = b.pty(PtyOptions::default().with_echo(false));
        }
        b.spawn(&r, Box::new(Feed(out.clone(), ended.clone())))
            .expect("spawn");
        let e = ended.clone();
        r.run_until(|| e.borrow().is_some(), DEADLINE)
            .unwrap_or_else(|err| panic!("pty={pty}: {err}"));
        assert_eq!(
            *ended.borrow(),
            Some(ExitReason::ProcessDone),
            "pty={pty}: cat ends with ProcessDone, not SIGHUP"
        );
        let text = String::from_utf8_lossy(&out.borrow()).replace('\r', "");
        assert_eq!(text, "one\ntwo\n", "pty={pty}");
    }
}

// ----- StandardIo ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamCallback {
    ConnectionMade,
    DataReceived,
    ConnectionLost,
}

/// A stream protocol that records `connection_lost` and panics in one callback.
struct StreamPanicker {
    at: StreamCallback,
    lost: Rc<RefCell<Option<torsion_transport::Reason>>>,
    dropped: Rc<Cell<bool>>,
}

impl Drop for StreamPanicker {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

impl torsion_transport::Protocol for StreamPanicker {
    fn connection_made(&mut self, _t: Rc<dyn torsion_transport::Transport>) {
        if self.at == StreamCallback::ConnectionMade {
            panic!("test panic in connection_made");
        }
    }
    fn data_received(&mut self, _data: &[u8]) {
        if self.at == StreamCallback::DataReceived {
            panic!("test panic in data_received");
        }
    }
    fn connection_lost(&mut self, reason: torsion_transport::Reason) {
        *self.lost.borrow_mut() = Some(reason);
        if self.at == StreamCallback::ConnectionLost {
            panic!("test panic in connection_lost");
        }
    }
}

#[test]
fn c5_standard_io_panic_in_each_callback_closes_it_and_leaks_nothing() {
    use std::io::Write;
    use std::os::fd::OwnedFd;
    let _serial = serial();
    for at in [
        StreamCallback::ConnectionMade,
        StreamCallback::DataReceived,
        StreamCallback::ConnectionLost,
    ] {
        let r = Reactor::new().unwrap();
        let fds_before = open_fds();
        let (our_read, peer_write) = std::io::pipe().unwrap();
        let (peer_read, our_write) = std::io::pipe().unwrap();
        let (lost, dropped) = (Rc::new(RefCell::new(None)), Rc::new(Cell::new(false)));
        let protocol = StreamPanicker {
            at,
            lost: lost.clone(),
            dropped: dropped.clone(),
        };
        torsion_process::StandardIo::start(
            &r,
            OwnedFd::from(our_read),
            OwnedFd::from(our_write),
            Box::new(protocol),
        )
        .unwrap();
        let mut peer_write = Some(peer_write);
        if let Some(w) = peer_write.as_mut() {
            let _ = w.write_all(b"data");
        }
        if at == StreamCallback::ConnectionLost {
            peer_write = None; // end of input: the connection ends; connection_lost panics
        }
        let d = dropped.clone();
        r.run_until(|| d.get(), DEADLINE)
            .unwrap_or_else(|e| panic!("{at:?}: {e}"));
        assert!(
            lost.borrow().is_some(),
            "{at:?}: connection_lost still comes"
        );
        assert_eq!(r.selectable_count(), 0, "{at:?}: no selectable left behind");
        drop((peer_read, peer_write));
        assert_eq!(open_fds(), fds_before, "{at:?}: no fd left behind");
    }
}

/// A protocol that does not keep its transport: the reactor keeps the connection alive
/// until it is lost, as for every other transport.
struct Forgetful(
    Rc<RefCell<Vec<u8>>>,
    Rc<RefCell<Option<torsion_transport::Reason>>>,
);

impl torsion_transport::Protocol for Forgetful {
    fn connection_made(&mut self, _t: Rc<dyn torsion_transport::Transport>) {}
    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().extend_from_slice(data);
    }
    fn connection_lost(&mut self, reason: torsion_transport::Reason) {
        *self.1.borrow_mut() = Some(reason);
    }
}

#[test]
fn issue_10_standard_io_lives_while_connected_though_nobody_holds_it() {
    use std::io::Write;
    use std::os::fd::OwnedFd;
    let _serial = serial();
    let r = Reactor::new().unwrap();
    let (our_read, mut peer_write) = std::io::pipe().unwrap();
    let (_peer_read, our_write) = std::io::pipe().unwrap();
    let (data, lost) = (
        Rc::new(RefCell::new(Vec::new())),
        Rc::new(RefCell::new(None)),
    );
    let io = torsion_process::StandardIo::start(
        &r,
        OwnedFd::from(our_read),
        OwnedFd::from(our_write),
        Box::new(Forgetful(data.clone(), lost.clone())),
    )
    .unwrap();
    drop(io);
    peer_write.write_all(b"hello").unwrap();
    drop(peer_write);
    let l = lost.clone();
    r.run_until(|| l.borrow().is_some(), DEADLINE)
        .expect("connection_lost comes");
    assert_eq!(&data.borrow()[..], b"hello");
    assert_eq!(r.selectable_count(), 0);
}
