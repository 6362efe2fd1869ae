//! Shared helpers for the process transport's tests.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::{ReapMode, set_reap_mode};
use torsion_reactor::Reactor;
use torsion_transport::{ExitReason, ProcessProtocol, ProcessTransport};

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

/// CONTRACT F: per fd, data then exactly one loss; exited once; ended once and last.
pub fn assert_f_order(events: &[Ev]) {
    let ended: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Ev::Ended(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        ended,
        vec![events.len() - 1],
        "ended exactly once and last: {events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| matches!(e, Ev::Exited(_))).count(),
        1,
        "exited exactly once: {events:?}"
    );
    assert_eq!(events.first(), Some(&Ev::Made));
    for (i, e) in events.iter().enumerate() {
        if let Ev::Lost(fd) = e {
            assert!(
                !events[i + 1..]
                    .iter()
                    .any(|x| matches!(x, Ev::Data(f, _) | Ev::Lost(f) if f == fd)),
                "nothing for fd {fd} after its loss: {events:?}"
            );
        }
    }
}
