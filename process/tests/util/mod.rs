//! Shared helpers for the process transport's tests, on pipes and on a PTY.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::{Process, ProcessBuilderExt, ReapMode, set_reap_mode};
use torsion_reactor::Reactor;
use torsion_testing::{ProcessEvent, check_f_order};
use torsion_transport::{ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport};

/// Every wait in these tests is bounded by this.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// One callback, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Made,
    Data(i32, Vec<u8>),
    Lost(i32),
    Exited(ExitReason),
    Ended(ExitReason),
}

pub type Hook = Box<dyn FnMut(&Ev, &Rc<dyn ProcessTransport>)>;

#[derive(Default)]
pub struct Shared {
    pub events: Vec<Ev>,
    pub transport: Option<Rc<dyn ProcessTransport>>,
    pub hook: Option<Hook>,
}

/// A protocol that records every callback and can react to each through a hook.
pub struct Recorder(pub Rc<RefCell<Shared>>);

impl Recorder {
    pub fn new() -> (Box<Recorder>, Rc<RefCell<Shared>>) {
        let s = Rc::new(RefCell::new(Shared::default()));
        (Box::new(Recorder(s.clone())), s)
    }

    pub fn with_hook(hook: Hook) -> (Box<Recorder>, Rc<RefCell<Shared>>) {
        let (r, s) = Recorder::new();
        s.borrow_mut().hook = Some(hook);
        (r, s)
    }

    fn record(&mut self, ev: Ev) {
        let (hook, t) = {
            let mut s = self.0.borrow_mut();
            s.events.push(ev.clone());
            (s.hook.take(), s.transport.clone())
        };
        if let (Some(mut hook), Some(t)) = (hook, t) {
            hook(&ev, &t);
            self.0.borrow_mut().hook = Some(hook);
        }
    }
}

impl ProcessProtocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        self.0.borrow_mut().transport = Some(transport);
        self.record(Ev::Made);
    }
    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        self.record(Ev::Data(fd, data.to_vec()));
    }
    fn child_connection_lost(&mut self, fd: i32) {
        self.record(Ev::Lost(fd));
    }
    fn process_exited(&mut self, reason: ExitReason) {
        self.record(Ev::Exited(reason));
    }
    fn process_ended(&mut self, reason: ExitReason) {
        self.record(Ev::Ended(reason));
    }
}

impl Shared {
    pub fn ended(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Ev::Ended(_)))
    }
    pub fn exited(&self) -> bool {
        self.events.iter().any(|e| matches!(e, Ev::Exited(_)))
    }
    pub fn output(&self, fd: i32) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Data(f, d) if *f == fd => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
    /// Everything the child wrote, whatever the fd (on a PTY all of it is fd 1, L3).
    pub fn all_output(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Data(_, d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.all_output()).into_owned()
    }
    pub fn end_reason(&self) -> Option<ExitReason> {
        self.events.iter().find_map(|e| match e {
            Ev::Ended(r) => Some(*r),
            _ => None,
        })
    }
    /// Everything but data, in order.
    pub fn lifecycle(&self) -> Vec<Ev> {
        self.events
            .iter()
            .filter(|e| !matches!(e, Ev::Data(..)))
            .cloned()
            .collect()
    }
}

/// A reactor reaping with `mode`.
pub fn reactor(mode: ReapMode) -> Reactor {
    let r = Reactor::new().unwrap();
    set_reap_mode(&r, mode);
    r
}

pub const MODES: [ReapMode; 2] = [ReapMode::Auto, ReapMode::Sigchld];

/// Number of open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// CONTRACT F, checked by the test kit's one checker (`check_f_order`), and complete:
/// exited once, ended once and last.
pub fn assert_f_order(events: &[Ev]) {
    let kit: Vec<ProcessEvent> = events
        .iter()
        .map(|e| match e {
            Ev::Made => ProcessEvent::ConnectionMade { pid: None },
            Ev::Data(fd, data) => ProcessEvent::ChildDataReceived {
                fd: *fd,
                data: data.clone(),
            },
            Ev::Lost(fd) => ProcessEvent::ChildConnectionLost(*fd),
            Ev::Exited(r) => ProcessEvent::ProcessExited(*r),
            Ev::Ended(r) => ProcessEvent::ProcessEnded(*r),
        })
        .collect();
    if let Err(e) = check_f_order(&kit) {
        panic!("{e}: {events:?}");
    }
    assert!(
        matches!(events.last(), Some(Ev::Ended(_))),
        "ended, last: {events:?}"
    );
    let exited = events.iter().filter(|e| matches!(e, Ev::Exited(_))).count();
    assert_eq!(exited, 1, "exited exactly once: {events:?}");
}

/// [`assert_f_order`] for the one channel of a PTY: data only as fd 1, and one loss of it.
pub fn assert_pty_f_order(events: &[Ev]) {
    assert_f_order(events);
    assert!(
        events.iter().all(|e| match e {
            Ev::Data(fd, _) | Ev::Lost(fd) => *fd == 1,
            _ => true,
        }),
        "a PTY reports only fd 1: {events:?}"
    );
    let lost = events.iter().filter(|e| matches!(e, Ev::Lost(_))).count();
    assert_eq!(lost, 1, "one loss of the one channel: {events:?}");
}

/// Spawn `builder` (on pipes or a PTY, as it says) with a fresh recorder.
pub fn spawn(r: &Reactor, builder: &ProcessBuilder) -> (Rc<Process>, Rc<RefCell<Shared>>) {
    let (p, s) = Recorder::new();
    let t = builder.spawn(r, p).unwrap_or_else(|e| panic!("spawn: {e}"));
    (t, s)
}

/// Run `r` until `s` ended (bounded by [`DEADLINE`]).
pub fn run_until_ended(r: &Reactor, s: &Rc<RefCell<Shared>>) {
    if r.run_until(|| s.borrow().ended(), DEADLINE).is_err() {
        panic!(
            "process_ended did not come within {DEADLINE:?}; events: {:?}, output: {:?}",
            s.borrow().lifecycle(),
            s.borrow().text()
        );
    }
}

/// Run `r` until the output contains `needle` (bounded by [`DEADLINE`]).
pub fn run_until_output(r: &Reactor, s: &Rc<RefCell<Shared>>, needle: &str) {
    if r.run_until(|| s.borrow().text().contains(needle), DEADLINE)
        .is_err()
    {
        panic!(
            "{needle:?} did not arrive within {DEADLINE:?}; output: {:?}",
            s.borrow().text()
        );
    }
}

/// The pids of this process's children (zombies included), from `/proc/*/stat`.
pub fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<u32>().ok()
                })
                == Some(me)
        })
        .collect()
}
