//! The shared contract suite (CONTRACT D, E, C6) against a real child's pipes: the
//! protocol under test talks through the child's stdin and stdout pipes
//! ([`ProcessWriter`](torsion_process::pipes::ProcessWriter) and
//! [`ProcessReader`](torsion_process::pipes::ProcessReader), the process transport's own
//! selectables), and the child relays them to a socket whose other end is the test's peer:
//!
//! ```text
//! protocol ⇄ Process (stdin, stdout pipes) ⇄ sh: two `cat`s ⇄ socket ⇄ peer
//! ```
//!
//! A small adapter turns the `ProcessTransport` into a `Transport`, as a process endpoint
//! does: the end of the child's stdout (the peer's EOF) ends the connection as EOF on a
//! socket does; a close we asked for ends with `process_ended`.

// Unix only: `sh`, `cat` and socket pairs.
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::ProcessBuilderExt;
use torsion_reactor::Reactor;
use torsion_testing::contract::peer::FdPeer;
use torsion_testing::contract::{Claims, ContractHarness};
use torsion_transport::{
    Address, ChildFd, Consumer, ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport,
    Producer, ProducerError, Protocol, PushProducer, Reason, Transport,
};

/// What the stream and its adapter share.
#[derive(Default)]
struct State {
    /// `connection_lost` was delivered (or is being): writes are dropped.
    lost: Cell<bool>,
    /// We asked for the close: the end of stdout is then not the peer's EOF.
    closing: Cell<bool>,
    aborted: Cell<bool>,
    producer: RefCell<Option<Producer>>,
    /// The spawned child, once `spawn` returned: its stdin backlog is our unsent bytes
    /// (weak: the child owns the adapter that owns this state).
    process: RefCell<std::rc::Weak<torsion_process::Process>>,
}

/// A child's stdin and stdout as a byte-stream transport, as a process endpoint gives it:
/// the end of the child's stdout (the peer's EOF) ends the connection, like EOF on a socket.
struct ChildStream(Rc<dyn ProcessTransport>, Rc<State>);

impl Consumer for ChildStream {
    fn write(&self, data: &[u8]) {
        if !self.1.lost.get() {
            self.0.write(data);
        }
    }
    fn write_sequence(&self, data: &[&[u8]]) {
        if !self.1.lost.get() {
            self.0.write_sequence(data);
        }
    }
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        if self.1.producer.borrow().is_some() {
            return Err(ProducerError::AlreadyRegistered);
        }
        if self.1.lost.get() {
            producer.stop_producing();
            return Ok(());
        }
        *self.1.producer.borrow_mut() = Some(producer.clone());
        let registered = self.0.register_producer(producer);
        if registered.is_err() {
            self.1.producer.borrow_mut().take();
        }
        registered
    }
    fn unregister_producer(&self) {
        self.1.producer.borrow_mut().take();
        self.0.unregister_producer();
    }
}

impl PushProducer for ChildStream {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }
    fn resume_producing(&self) {
        self.0.resume_producing();
    }
    fn stop_producing(&self) {
        self.lose_connection();
    }
}

impl Transport for ChildStream {
    fn lose_connection(&self) {
        if !self.1.lost.get() {
            self.1.closing.set(true);
            self.0.lose_connection();
        }
    }
    /// Kill the relay's whole process group (it leads its own session), so every copy of
    /// the socket closes at once.
    fn abort_connection(&self) {
        if self.1.lost.get() {
            return;
        }
        self.1.aborted.set(true);
        self.1.closing.set(true);
        if let Some(pid) = self.0.pid().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) takes plain integers; a negative pid names the process group
            // the relay leads (new_session), which holds only the relay and its two cats.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        self.0.lose_connection();
    }
    fn lose_write_connection(&self) {
        let _ = self.0.close_stdin();
    }
    fn host(&self) -> Address {
        Address::Process
    }
    fn peer(&self) -> Address {
        Address::Process
    }
    /// The child's stdin backlog (the relay's input), as a process endpoint reports it.
    fn unsent_bytes(&self) -> usize {
        self.1.process.borrow().upgrade().map_or(0, |p| p.unsent())
    }
}

/// The process protocol that drives a stream protocol over [`ChildStream`].
struct Adapter {
    protocol: Rc<RefCell<Box<dyn Protocol>>>,
    transport: Option<Rc<dyn ProcessTransport>>,
    state: Rc<State>,
}

impl Adapter {
    fn lost(&mut self, reason: Reason) {
        if self.state.lost.replace(true) {
            return;
        }
        let producer = self.state.producer.borrow_mut().take();
        if let Some(t) = &self.transport {
            t.unregister_producer();
        }
        if let Some(p) = producer {
            p.stop_producing();
        }
        self.protocol.borrow_mut().connection_lost(reason);
    }
}

impl ProcessProtocol for Adapter {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        self.transport = Some(transport.clone());
        let stream: Rc<dyn Transport> = Rc::new(ChildStream(transport, self.state.clone()));
        self.protocol.borrow_mut().connection_made(stream);
    }
    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        if fd == 1 && !self.state.lost.get() {
            self.protocol.borrow_mut().data_received(data);
        }
    }
    fn child_connection_lost(&mut self, fd: i32) {
        if fd == 1 && !self.state.closing.get() {
            // The peer's EOF: the connection is over, as on a socket. Close the child's
            // stdin so the relay ends and the peer sees the close too.
            if let Some(t) = &self.transport {
                let _ = t.close_stdin();
            }
            self.lost(Reason::ConnectionDone);
        }
    }
    fn process_ended(&mut self, reason: ExitReason) {
        let reason = match reason {
            _ if self.state.aborted.get() => Reason::ConnectionAborted,
            ExitReason::ProcessDone => Reason::ConnectionDone,
            other => Reason::lost_because(&other.to_string()),
        };
        self.lost(reason);
        self.transport = None;
    }
}

/// Socket → stdout and stdin → socket. Only the first relay holds stdout (so its end is the
/// end of the socket's data); when stdin ends, that relay is stopped and every copy of the
/// socket closed, so the peer sees the close.
const RELAY: &str = "exec 4>&1 >/dev/null; cat <&3 >&4 & r=$!; exec 4>&-; \
                     cat >&3; exec 3>&-; kill $r 2>/dev/null; wait; exit 0";

struct ChildHarness {
    reactor: Reactor,
    peer: Option<FdPeer<UnixStream, UnixStream>>,
}

impl ChildHarness {
    fn new() -> Self {
        ChildHarness {
            reactor: Reactor::new().unwrap(),
            peer: None,
        }
    }

    fn peer(&mut self) -> &mut FdPeer<UnixStream, UnixStream> {
        self.peer.as_mut().expect("connected")
    }
}

impl ContractHarness for ChildHarness {
    fn claims(&self) -> Claims {
        // Flow control through two relays and three kernel buffers works, but filling them
        // all takes more steps than the suite's budget; a half-close of stdin does not reach
        // the peer while the other relay holds the socket.
        Claims::none()
    }

    fn connect(&mut self, protocol: Box<dyn Protocol>) {
        let (ours, peer) = UnixStream::pair().unwrap();
        peer.set_nonblocking(true).unwrap();
        let builder = ProcessBuilder::new("sh")
            .args(["-c", RELAY])
            .child_fd(0, ChildFd::Write)
            .child_fd(1, ChildFd::Read)
            .child_fd(2, ChildFd::Inherit(2))
            .child_fd(3, ChildFd::Inherit(ours.as_raw_fd()))
            .new_session(true);
        let state = Rc::new(State::default());
        let adapter = Adapter {
            protocol: Rc::new(RefCell::new(protocol)),
            transport: None,
            state: state.clone(),
        };
        let process = builder.spawn(&self.reactor, Box::new(adapter)).unwrap();
        *state.process.borrow_mut() = Rc::downgrade(&process);
        drop(ours); // the child has its own copy
        let writer = peer.try_clone().unwrap();
        self.peer = Some(FdPeer::new(peer, writer));
    }

    fn step(&mut self) {
        self.reactor.iterate(Duration::from_millis(1)).unwrap();
        self.peer().poll();
    }

    fn peer_received(&mut self) -> Vec<u8> {
        self.peer().take_received()
    }

    fn peer_write(&mut self, data: &[u8]) {
        let r = &self.reactor;
        if let Some(p) = self.peer.as_mut() {
            p.write(data, || r.iterate(Duration::from_millis(1)).unwrap());
        }
    }

    fn peer_close(&mut self) {
        if let Some(s) = &self.peer().writer {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
    }

    fn peer_closed(&mut self) -> bool {
        self.peer().closed()
    }

    fn set_peer_reading(&mut self, reading: bool) {
        self.peer().set_reading(reading);
    }
}

torsion_testing::contract_suite!(ChildHarness::new(), unclaimed: {
    flow_control: "filling two relays and three kernel buffers takes more than the suite's step budget",
    half_close: "closing the child's stdin does not reach the peer while the other relay holds the socket",
});
