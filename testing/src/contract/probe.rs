//! The protocol and producer the contract suite observes transports with.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use torsion_transport::{
    HalfCloseableProtocol, Protocol, PullProducer, PushProducer, Reason, Transport,
};

/// A hook run inside `connection_made`.
pub type MadeHook = Box<dyn FnMut(&Rc<dyn Transport>)>;
/// A hook run inside `data_received`, after the data is recorded.
pub type DataHook = Box<dyn FnMut(&Rc<dyn Transport>, &[u8])>;
/// A hook run inside `connection_lost`, after the reason is recorded.
pub type LostHook = Box<dyn FnMut(&Rc<dyn Transport>, &Reason)>;

#[derive(Default)]
struct Record {
    made: usize,
    transport: Option<Rc<dyn Transport>>,
    data: Vec<u8>,
    read_lost: usize,
    write_lost: usize,
    lost: Vec<Reason>,
    in_callback: bool,
    reentered: bool,
}

struct ProbeProtocol {
    record: Rc<RefCell<Record>>,
    half_closeable: bool,
    on_made: Option<MadeHook>,
    on_data: Option<DataHook>,
    on_lost: Option<LostHook>,
}

impl ProbeProtocol {
    fn enter(&self) {
        let mut r = self.record.borrow_mut();
        if r.in_callback {
            r.reentered = true;
        }
        r.in_callback = true;
    }

    fn leave(&self) {
        self.record.borrow_mut().in_callback = false;
    }
}

impl Protocol for ProbeProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.enter();
        {
            let mut r = self.record.borrow_mut();
            r.made += 1;
            r.transport = Some(transport.clone());
        }
        if let Some(hook) = &mut self.on_made {
            hook(&transport);
        }
        self.leave();
    }

    fn data_received(&mut self, data: &[u8]) {
        self.enter();
        let transport = {
            let mut r = self.record.borrow_mut();
            r.data.extend_from_slice(data);
            r.transport.clone()
        };
        if let (Some(hook), Some(t)) = (&mut self.on_data, transport) {
            hook(&t, data);
        }
        self.leave();
    }

    fn connection_lost(&mut self, reason: Reason) {
        self.enter();
        let transport = {
            let mut r = self.record.borrow_mut();
            r.lost.push(reason.clone());
            r.transport.clone()
        };
        if let (Some(hook), Some(t)) = (&mut self.on_lost, transport) {
            hook(&t, &reason);
        }
        self.leave();
    }

    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        if self.half_closeable {
            Some(self)
        } else {
            None
        }
    }
}

impl HalfCloseableProtocol for ProbeProtocol {
    fn read_connection_lost(&mut self) {
        self.enter();
        self.record.borrow_mut().read_lost += 1;
        self.leave();
    }

    fn write_connection_lost(&mut self) {
        self.enter();
        self.record.borrow_mut().write_lost += 1;
        self.leave();
    }
}

/// The suite's view of the protocol under test: what it received, and whether any
/// callback was entered while another was on the stack (ARCHITECTURE rule 4).
#[derive(Clone)]
pub struct Probe {
    record: Rc<RefCell<Record>>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.record.borrow();
        f.debug_struct("Probe")
            .field("made", &r.made)
            .field("data", &r.data.len())
            .field("read_lost", &r.read_lost)
            .field("write_lost", &r.write_lost)
            .field("lost", &r.lost)
            .field("reentered", &r.reentered)
            .finish()
    }
}

impl Probe {
    /// A plain (not half-closeable) probe protocol and its view.
    pub fn plain() -> (Box<dyn Protocol>, Probe) {
        Self::protocol(false, None, None)
    }

    /// A probe protocol with the given half-close support and hooks, and its view.
    pub fn protocol(
        half_closeable: bool,
        on_made: Option<MadeHook>,
        on_data: Option<DataHook>,
    ) -> (Box<dyn Protocol>, Probe) {
        let record = Rc::new(RefCell::new(Record::default()));
        (
            Box::new(ProbeProtocol {
                record: record.clone(),
                half_closeable,
                on_made,
                on_data,
                on_lost: None,
            }),
            Probe { record },
        )
    }

    /// A plain probe protocol running `on_lost` inside `connection_lost`, and its view.
    pub fn with_lost_hook(on_lost: LostHook) -> (Box<dyn Protocol>, Probe) {
        let record = Rc::new(RefCell::new(Record::default()));
        (
            Box::new(ProbeProtocol {
                record: record.clone(),
                half_closeable: false,
                on_made: None,
                on_data: None,
                on_lost: Some(on_lost),
            }),
            Probe { record },
        )
    }

    /// How many times `connection_made` ran.
    pub fn made(&self) -> usize {
        self.record.borrow().made
    }

    /// The transport from `connection_made`.
    ///
    /// # Panics
    ///
    /// If `connection_made` has not run.
    #[track_caller]
    pub fn transport(&self) -> Rc<dyn Transport> {
        match self.record.borrow().transport.clone() {
            Some(t) => t,
            None => panic!("contract: connection_made has not been called"),
        }
    }

    /// Everything received.
    pub fn data(&self) -> Vec<u8> {
        self.record.borrow().data.clone()
    }

    /// How many times `read_connection_lost` ran.
    pub fn read_lost(&self) -> usize {
        self.record.borrow().read_lost
    }

    /// How many times `write_connection_lost` ran.
    pub fn write_lost(&self) -> usize {
        self.record.borrow().write_lost
    }

    /// How many times `connection_lost` ran.
    pub fn lost_count(&self) -> usize {
        self.record.borrow().lost.len()
    }

    /// The first `connection_lost` reason.
    pub fn lost_reason(&self) -> Option<Reason> {
        self.record.borrow().lost.first().cloned()
    }

    /// True if a callback started while another was on the stack.
    pub fn reentered(&self) -> bool {
        self.record.borrow().reentered
    }
}

/// One call a [`ProbeProducer`] received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProducerCall {
    /// `pause_producing`.
    Pause,
    /// `resume_producing`.
    Resume,
    /// `stop_producing`.
    Stop,
}

/// A hook run inside `resume_producing`, with the number of resumes so far (1 for the
/// first).
pub type ResumeHook = Box<dyn FnMut(usize)>;

/// A producer (push or pull) that records the calls it gets, and can write from
/// `resume_producing` through a hook (CONTRACT E3).
#[derive(Default)]
pub struct ProbeProducer {
    calls: RefCell<Vec<ProducerCall>>,
    in_resume: Cell<bool>,
    paused_inside_resume: Cell<usize>,
    on_resume: RefCell<Option<ResumeHook>>,
}

impl fmt::Debug for ProbeProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeProducer")
            .field("calls", &*self.calls.borrow())
            .field("paused_inside_resume", &self.paused_inside_resume.get())
            .finish()
    }
}

impl ProbeProducer {
    /// A producer that records only.
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// A producer that runs `hook` inside each `resume_producing`.
    pub fn with_resume_hook(hook: ResumeHook) -> Rc<Self> {
        let p = Self::default();
        *p.on_resume.borrow_mut() = Some(hook);
        Rc::new(p)
    }

    /// Every call, in order.
    pub fn calls(&self) -> Vec<ProducerCall> {
        self.calls.borrow().clone()
    }

    fn count(&self, which: ProducerCall) -> usize {
        self.calls.borrow().iter().filter(|c| **c == which).count()
    }

    /// How many `pause_producing` calls.
    pub fn pauses(&self) -> usize {
        self.count(ProducerCall::Pause)
    }

    /// How many `resume_producing` calls.
    pub fn resumes(&self) -> usize {
        self.count(ProducerCall::Resume)
    }

    /// How many `stop_producing` calls.
    pub fn stops(&self) -> usize {
        self.count(ProducerCall::Stop)
    }

    /// How many pauses arrived while `resume_producing` was on the stack (CONTRACT E3).
    pub fn paused_inside_resume(&self) -> usize {
        self.paused_inside_resume.get()
    }

    fn resume(&self) {
        self.calls.borrow_mut().push(ProducerCall::Resume);
        let hook = self.on_resume.borrow_mut().take();
        if let Some(mut hook) = hook {
            self.in_resume.set(true);
            hook(self.resumes());
            self.in_resume.set(false);
            *self.on_resume.borrow_mut() = Some(hook);
        }
    }
}

impl PushProducer for ProbeProducer {
    fn pause_producing(&self) {
        if self.in_resume.get() {
            self.paused_inside_resume
                .set(self.paused_inside_resume.get() + 1);
        }
        self.calls.borrow_mut().push(ProducerCall::Pause);
    }

    fn resume_producing(&self) {
        self.resume();
    }

    fn stop_producing(&self) {
        self.calls.borrow_mut().push(ProducerCall::Stop);
    }
}

impl PullProducer for ProbeProducer {
    fn resume_producing(&self) {
        self.resume();
    }

    fn stop_producing(&self) {
        self.calls.borrow_mut().push(ProducerCall::Stop);
    }
}
