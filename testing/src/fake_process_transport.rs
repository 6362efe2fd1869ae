//! [`FakeProcessTransport`]: a scripted child process (CONTRACT O3).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::rc::Rc;

use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessBuilder, ProcessError, ProcessProtocol, ProcessTransport,
    Producer, ProducerError, PushProducer, Signal,
};

/// A process protocol shared between a [`FakeProcessTransport`] and the test.
pub type SharedProcessProtocol = Rc<RefCell<Box<dyn ProcessProtocol>>>;

/// The pid a fake process gets unless [`FakeProcessTransport::set_pid`] says otherwise.
pub const DEFAULT_FAKE_PID: u32 = 4242;

enum Event {
    Data(i32, Vec<u8>),
    Lost(i32),
    Exited(ExitReason),
    Ended(ExitReason),
}

/// A [`ProcessTransport`] for tests: it records what the protocol asks of the child, and
/// the test scripts what the child does (CONTRACT O3).
///
/// **Recorded:** writes per child fd ([`written`](Self::written); `write` and
/// `write_sequence` go to fd 0), `close_child_fd` calls ([`closed_fds`](Self::closed_fds)),
/// signals ([`signals`](Self::signals)), `lose_connection` calls, the registered producer
/// and the paused state.
///
/// **Scripted:** [`child_output`](Self::child_output) → `child_data_received`;
/// [`close_child`](Self::close_child) → `child_connection_lost`; [`exit`](Self::exit) /
/// [`kill`](Self::kill) → `process_exited`, then `process_ended` once every pipe of the fd
/// map is closed. The order rules of CONTRACT F hold: `process_ended` exactly once and
/// last, nothing for an fd after its loss (F2), `pid()` is `None` after the exit (F3).
/// Breaking them in a script is a test bug and panics with a message that says so.
///
/// **The fd map** comes from a [`ProcessBuilder`] ([`from_builder`](Self::from_builder);
/// a PTY child has one channel: writes go to fd 0, output comes on fd 1, and only fd 1 is a
/// pipe to close) or is the default `{0: Write, 1: Read, 2: Read}` ([`new`](Self::new)).
/// Only `Read` and `Write` entries are pipes that must be closed before `process_ended`.
///
/// **Re-entrancy:** transport methods never call the protocol. Scripting methods do; one
/// called from inside a protocol callback is queued and delivered after that callback
/// returns, in order.
pub struct FakeProcessTransport {
    protocol: RefCell<Option<SharedProcessProtocol>>,
    fds: BTreeMap<i32, ChildFd>,
    pty: bool,
    open: RefCell<BTreeSet<i32>>,
    written: RefCell<BTreeMap<i32, Vec<u8>>>,
    closed_fds: RefCell<Vec<i32>>,
    signals: RefCell<Vec<Signal>>,
    lose_connection_calls: Cell<usize>,
    pid: Cell<Option<u32>>,
    exit_reason: Cell<Option<ExitReason>>,
    ended: Cell<bool>,
    producer: RefCell<Option<Producer>>,
    paused: Cell<bool>,
    queue: RefCell<VecDeque<Event>>,
    delivering: Cell<bool>,
}

impl fmt::Debug for FakeProcessTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeProcessTransport")
            .field("pid", &self.pid.get())
            .field("fds", &self.fds)
            .field("pty", &self.pty)
            .field("open", &*self.open.borrow())
            .field("closed_fds", &*self.closed_fds.borrow())
            .field("signals", &*self.signals.borrow())
            .field("exit_reason", &self.exit_reason.get())
            .field("ended", &self.ended.get())
            .finish()
    }
}

impl Default for FakeProcessTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeProcessTransport {
    /// A running fake child with the default fd map `{0: Write, 1: Read, 2: Read}` and pid
    /// [`DEFAULT_FAKE_PID`].
    pub fn new() -> Self {
        Self::with_child_fds(ProcessBuilder::new("fake").get_child_fds())
    }

    /// A running fake child with the fd map `fds`.
    pub fn with_child_fds(fds: BTreeMap<i32, ChildFd>) -> Self {
        Self::build(fds, false)
    }

    /// A running fake child with the fd map `builder` describes (a PTY child: `{0: Write,
    /// 1: Read}` on one channel).
    pub fn from_builder(builder: &ProcessBuilder) -> Self {
        if builder.get_pty().is_some() {
            Self::build(
                BTreeMap::from([(0, ChildFd::Write), (1, ChildFd::Read)]),
                true,
            )
        } else {
            Self::build(builder.get_child_fds(), false)
        }
    }

    fn build(fds: BTreeMap<i32, ChildFd>, pty: bool) -> Self {
        let open: BTreeSet<i32> = fds
            .iter()
            .filter(|(fd, what)| {
                matches!(what, ChildFd::Read)
                    || (matches!(what, ChildFd::Write) && !(pty && **fd == 0))
            })
            .map(|(fd, _)| *fd)
            .collect();
        FakeProcessTransport {
            protocol: RefCell::new(None),
            fds,
            pty,
            open: RefCell::new(open),
            written: RefCell::new(BTreeMap::new()),
            closed_fds: RefCell::new(Vec::new()),
            signals: RefCell::new(Vec::new()),
            lose_connection_calls: Cell::new(0),
            pid: Cell::new(Some(DEFAULT_FAKE_PID)),
            exit_reason: Cell::new(None),
            ended: Cell::new(false),
            producer: RefCell::new(None),
            paused: Cell::new(false),
            queue: RefCell::new(VecDeque::new()),
            delivering: Cell::new(false),
        }
    }

    /// Set the pid `pid()` reports until the child exits.
    pub fn set_pid(&self, pid: Option<u32>) {
        self.pid.set(pid);
    }

    /// The child fd map.
    pub fn child_fds(&self) -> &BTreeMap<i32, ChildFd> {
        &self.fds
    }

    /// True for a PTY child.
    pub fn is_pty(&self) -> bool {
        self.pty
    }

    /// Set (or replace) the protocol the scripted events go to.
    pub fn set_protocol(&self, protocol: SharedProcessProtocol) {
        *self.protocol.borrow_mut() = Some(protocol);
    }

    /// The protocol, if set.
    pub fn protocol(&self) -> Option<SharedProcessProtocol> {
        self.protocol.borrow().clone()
    }

    /// Take `protocol` and call its `connection_made` with this transport (CONTRACT F1).
    pub fn make_connection(
        self: &Rc<Self>,
        protocol: Box<dyn ProcessProtocol>,
    ) -> SharedProcessProtocol {
        let shared: SharedProcessProtocol = Rc::new(RefCell::new(protocol));
        self.set_protocol(shared.clone());
        let transport: Rc<dyn ProcessTransport> = self.clone();
        match shared.try_borrow_mut() {
            Ok(mut p) => p.connection_made(transport),
            Err(_) => log::warn!("FakeProcessTransport: protocol busy in make_connection"),
        }
        self.deliver();
        shared
    }

    /// What the protocol wrote to child fd `fd` so far.
    pub fn written(&self, fd: i32) -> Vec<u8> {
        self.written.borrow().get(&fd).cloned().unwrap_or_default()
    }

    /// What the protocol wrote to the child's stdin so far.
    pub fn stdin(&self) -> Vec<u8> {
        self.written(0)
    }

    /// The fds passed to `close_child_fd` (and `close_stdin`/...), in call order, each once.
    pub fn closed_fds(&self) -> Vec<i32> {
        self.closed_fds.borrow().clone()
    }

    /// The signals sent with `signal_process`, in order.
    pub fn signals(&self) -> Vec<Signal> {
        self.signals.borrow().clone()
    }

    /// How many times `lose_connection` was called.
    pub fn lose_connection_calls(&self) -> usize {
        self.lose_connection_calls.get()
    }

    /// The registered producer, if any.
    pub fn producer(&self) -> Option<Producer> {
        self.producer.borrow().clone()
    }

    /// True between `pause_producing` and `resume_producing` (recorded only: scripted
    /// output is delivered regardless).
    pub fn is_paused(&self) -> bool {
        self.paused.get()
    }

    /// The pipe fds not yet closed by the script.
    pub fn open_fds(&self) -> Vec<i32> {
        self.open.borrow().iter().copied().collect()
    }

    /// The exit reason, once the script made the child exit.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        self.exit_reason.get()
    }

    /// True once `process_ended` was delivered.
    pub fn has_ended(&self) -> bool {
        self.ended.get()
    }

    /// The child writes `data` on its fd `fd`: the protocol gets
    /// `child_data_received(fd, data)`.
    ///
    /// # Panics
    ///
    /// If `fd` is not an open `Read` pipe of the fd map (CONTRACT F2).
    #[track_caller]
    pub fn child_output(&self, fd: i32, data: &[u8]) {
        if self.fds.get(&fd) != Some(&ChildFd::Read) {
            panic!(
                "FakeProcessTransport: child fd {fd} is not a pipe the parent reads (fd map {:?})",
                self.fds
            );
        }
        if !self.open.borrow().contains(&fd) {
            panic!(
                "FakeProcessTransport: output on child fd {fd} after its connection was lost (CONTRACT F2)"
            );
        }
        self.queue
            .borrow_mut()
            .push_back(Event::Data(fd, data.to_vec()));
        self.deliver();
    }

    /// The pipe for child fd `fd` closes: the protocol gets `child_connection_lost(fd)`,
    /// then `process_ended` if the child has exited and this was the last open pipe.
    ///
    /// # Panics
    ///
    /// If `fd` is not an open pipe of the fd map (CONTRACT F2: exactly one loss per pipe).
    #[track_caller]
    pub fn close_child(&self, fd: i32) {
        if !self.open.borrow_mut().remove(&fd) {
            panic!(
                "FakeProcessTransport: child fd {fd} is not an open pipe (open: {:?})",
                self.open.borrow()
            );
        }
        self.queue.borrow_mut().push_back(Event::Lost(fd));
        self.maybe_end();
        self.deliver();
    }

    /// Close every pipe still open, in fd order.
    pub fn close_all_child_fds(&self) {
        for fd in self.open_fds() {
            self.close_child(fd);
        }
    }

    /// The child exits with `code`: see [`end_with`](Self::end_with).
    #[track_caller]
    pub fn exit(&self, code: i32) {
        self.end_with(ExitReason::exited(code));
    }

    /// The child is killed by `signal`: see [`end_with`](Self::end_with).
    #[track_caller]
    pub fn kill(&self, signal: Signal) {
        self.end_with(ExitReason::killed(signal, false));
    }

    /// The child is reaped with `reason`: `pid()` becomes `None`, later `signal_process`
    /// calls fail with `ExitedAlready`, the protocol gets `process_exited(reason)`, and
    /// `process_ended(reason)` follows at once if no pipe is open, else when the last one
    /// is closed (CONTRACT F3, F4).
    ///
    /// # Panics
    ///
    /// If the child already exited (F3: exactly once).
    #[track_caller]
    pub fn end_with(&self, reason: ExitReason) {
        if self.exit_reason.get().is_some() {
            panic!(
                "FakeProcessTransport: the child already exited (CONTRACT F3: process_exited exactly once)"
            );
        }
        self.exit_reason.set(Some(reason));
        self.pid.set(None);
        self.queue.borrow_mut().push_back(Event::Exited(reason));
        self.maybe_end();
        self.deliver();
    }

    fn maybe_end(&self) {
        if let Some(reason) = self.exit_reason.get() {
            if self.open.borrow().is_empty() && !self.ended.replace(true) {
                self.queue.borrow_mut().push_back(Event::Ended(reason));
            }
        }
    }

    fn deliver(&self) {
        if self.delivering.get() {
            return;
        }
        let Some(protocol) = self.protocol() else {
            log::warn!("FakeProcessTransport: scripted event with no protocol; queued");
            return;
        };
        let Ok(mut p) = protocol.try_borrow_mut() else {
            // The protocol is on the stack (its connection_made, or the test's own call);
            // whoever borrowed it delivers the queue afterwards.
            return;
        };
        self.delivering.set(true);
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                None => break,
                Some(Event::Data(fd, data)) => p.child_data_received(fd, &data),
                Some(Event::Lost(fd)) => p.child_connection_lost(fd),
                Some(Event::Exited(r)) => p.process_exited(r),
                Some(Event::Ended(r)) => p.process_ended(r),
            }
        }
        self.delivering.set(false);
    }

    /// Deliver events queued while the protocol was on the stack. Needed only when the
    /// test calls the protocol itself and a script method ran inside that call.
    pub fn deliver_pending(&self) {
        self.deliver();
    }

    fn record_write(&self, fd: i32, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.written
            .borrow_mut()
            .entry(fd)
            .or_default()
            .extend_from_slice(data);
    }
}

impl Consumer for FakeProcessTransport {
    /// Records `data` as written to child fd 0 (CONTRACT I5); without a `Write` pipe on
    /// fd 0 it is dropped with a `warn!`.
    fn write(&self, data: &[u8]) {
        if self.fds.get(&0) == Some(&ChildFd::Write) {
            self.record_write(0, data);
        } else {
            log::warn!("FakeProcessTransport: write with no stdin pipe; dropped");
        }
    }

    /// Records `producer` (CONTRACT E1, I5).
    ///
    /// # Errors
    ///
    /// [`ProducerError::AlreadyRegistered`] if a producer is registered.
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError> {
        let mut slot = self.producer.borrow_mut();
        if slot.is_some() {
            return Err(ProducerError::AlreadyRegistered);
        }
        *slot = Some(producer);
        Ok(())
    }

    /// Forgets the producer; a no-op with none (CONTRACT E4).
    fn unregister_producer(&self) {
        self.producer.borrow_mut().take();
    }
}

impl PushProducer for FakeProcessTransport {
    /// Records the pause (CONTRACT I6).
    fn pause_producing(&self) {
        self.paused.set(true);
    }

    /// Records the resume (CONTRACT I6).
    fn resume_producing(&self) {
        self.paused.set(false);
    }

    /// `lose_connection` (CONTRACT D8, I4).
    fn stop_producing(&self) {
        ProcessTransport::lose_connection(self);
    }
}

impl ProcessTransport for FakeProcessTransport {
    /// The pid until the script makes the child exit, then `None` (CONTRACT F3).
    fn pid(&self) -> Option<u32> {
        self.pid.get()
    }

    /// Records `data` for `fd` (CONTRACT I5).
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotWritable`] if `fd` is not a `Write` entry of the fd map;
    /// [`ProcessError::Unsupported`] on a PTY for any fd but 0 (L7).
    fn write_to_child(&self, fd: i32, data: &[u8]) -> Result<(), ProcessError> {
        if self.pty && fd != 0 {
            return Err(ProcessError::Unsupported(
                "a PTY child has one channel: write_to_child takes fd 0 only",
            ));
        }
        if self.fds.get(&fd) != Some(&ChildFd::Write) {
            return Err(ProcessError::NotWritable { fd });
        }
        self.record_write(fd, data);
        Ok(())
    }

    /// Records the close in [`closed_fds`](FakeProcessTransport::closed_fds) (CONTRACT I3).
    /// The loss is not reported: the script decides when with
    /// [`close_child`](FakeProcessTransport::close_child).
    ///
    /// # Errors
    ///
    /// [`ProcessError::Unsupported`] on a PTY (CONTRACT L7).
    fn close_child_fd(&self, fd: i32) -> Result<(), ProcessError> {
        if self.pty {
            return Err(ProcessError::Unsupported(
                "a PTY child has one channel: close_child_fd is not available, use lose_connection",
            ));
        }
        let mut closed = self.closed_fds.borrow_mut();
        if !closed.contains(&fd) {
            closed.push(fd);
        }
        Ok(())
    }

    /// Records `signal` (CONTRACT J1, O3). The child does not die: script that with
    /// [`kill`](FakeProcessTransport::kill).
    ///
    /// # Errors
    ///
    /// [`ProcessError::ExitedAlready`] once the script made the child exit.
    fn signal_process(&self, signal: Signal) -> Result<(), ProcessError> {
        if self.exit_reason.get().is_some() {
            return Err(ProcessError::ExitedAlready);
        }
        self.signals.borrow_mut().push(signal);
        Ok(())
    }

    /// Counts the call (CONTRACT I4); nothing is delivered.
    fn lose_connection(&self) {
        self.lose_connection_calls
            .set(self.lose_connection_calls.get() + 1);
    }
}
