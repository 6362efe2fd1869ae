//! Re-entry (ARCHITECTURE, ownership rules 3 and 4; CONTRACT D7, E1–E4): every transport method
//! called from inside every protocol callback and every producer callback. Nothing panics
//! (no `RefCell` borrowed twice, no producer called under the transport's own borrow), the
//! outcome is the method's usual one, and `connection_lost` comes exactly once, from the
//! loop.
//!
//! Each scenario takes a way to make fresh harnesses, since every method needs its own
//! connection; [`contract_suite!`](crate::contract_suite) passes its harness expression.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};

use torsion_transport::{Producer, PullProducer, PushProducer, Reason, Transport};

use super::transport::{
    BULK_STEPS, FILL_CHUNK, FILL_LIMIT, QUIET_STEPS, collect_until_peer_closed, connect, skip,
    wait_lost,
};
use super::{ContractHarness, DEFAULT_MAX_STEPS, Probe, ProbeProducer, run_until};

/// A transport method the re-entry scenarios call from inside a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `write(MARKER)`.
    Write,
    /// `write_sequence` of the marker in two chunks.
    WriteSequence,
    /// `register_producer` of a fresh push [`ProbeProducer`] (refused if one is registered).
    RegisterProducer,
    /// `unregister_producer`.
    UnregisterProducer,
    /// `lose_connection`.
    LoseConnection,
    /// `abort_connection`.
    AbortConnection,
    /// `lose_write_connection`.
    LoseWriteConnection,
    /// The transport's own `pause_producing`.
    PauseProducing,
    /// The transport's own `resume_producing`.
    ResumeProducing,
    /// The transport's own `stop_producing`.
    StopProducing,
    /// `host()` and `peer()`.
    HostPeer,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 11] = [
        Method::Write,
        Method::WriteSequence,
        Method::RegisterProducer,
        Method::UnregisterProducer,
        Method::LoseConnection,
        Method::AbortConnection,
        Method::LoseWriteConnection,
        Method::PauseProducing,
        Method::ResumeProducing,
        Method::StopProducing,
        Method::HostPeer,
    ];

    fn call(self, t: &Rc<dyn Transport>) {
        match self {
            Method::Write => t.write(MARKER),
            Method::WriteSequence => {
                let (a, b) = MARKER.split_at(4);
                t.write_sequence(&[a, b]);
            }
            Method::RegisterProducer => {
                // Refused (AlreadyRegistered) inside a producer's own callback; stopped at
                // once on a lost connection (E1). Either is fine here.
                let _ = t.register_producer(Producer::Push(ProbeProducer::new()));
            }
            Method::UnregisterProducer => t.unregister_producer(),
            Method::LoseConnection => t.lose_connection(),
            Method::AbortConnection => t.abort_connection(),
            Method::LoseWriteConnection => t.lose_write_connection(),
            Method::PauseProducing => t.pause_producing(),
            Method::ResumeProducing => t.resume_producing(),
            Method::StopProducing => t.stop_producing(),
            Method::HostPeer => {
                let _ = (t.host(), t.peer());
            }
        }
    }
}

/// What a re-entrant `write` sends.
pub const MARKER: &[u8] = b"[re-entered]";

/// Where the method is called from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    ConnectionMade,
    DataReceived,
    ConnectionLost,
    PushPause,
    PushResume,
    PushStop,
    PullResume,
    PullRegistration,
    PullStop,
}

impl Site {
    /// The connection is still open when the method runs (so a write is sent and an abort
    /// decides the reason).
    fn while_connected(self) -> bool {
        !matches!(self, Site::ConnectionLost | Site::PushStop | Site::PullStop)
    }
}

/// Calls `method` on the transport, once, catching (and recording) a panic.
#[derive(Clone)]
struct Call {
    method: Method,
    transport: Rc<RefCell<Option<Weak<dyn Transport>>>>,
    calls: Rc<Cell<usize>>,
    panicked: Rc<RefCell<Option<String>>>,
}

impl Call {
    fn new(method: Method) -> Call {
        Call {
            method,
            transport: Rc::new(RefCell::new(None)),
            calls: Rc::new(Cell::new(0)),
            panicked: Rc::new(RefCell::new(None)),
        }
    }

    fn set_transport(&self, t: &Rc<dyn Transport>) {
        *self.transport.borrow_mut() = Some(Rc::downgrade(t));
    }

    /// Call the method on `t` (or the transport set earlier) the first time only.
    fn run(&self, t: Option<&Rc<dyn Transport>>) {
        if self.calls.get() > 0 {
            return;
        }
        let t = match t {
            Some(t) => t.clone(),
            None => match self.transport.borrow().as_ref().and_then(Weak::upgrade) {
                Some(t) => t,
                None => return,
            },
        };
        self.calls.set(1);
        let method = self.method;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| method.call(&t))) {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".to_owned());
            *self.panicked.borrow_mut() = Some(msg);
        }
    }
}

/// A push or pull producer that runs a [`Call`] inside one of its callbacks.
struct Reentrant {
    site: Site,
    call: Call,
    resumes: Cell<usize>,
    pauses: Cell<usize>,
    /// The first pull resume (inside `register_producer`) writes this, so the writer drains
    /// and resumes the producer again from the loop.
    first_write: Option<Weak<dyn Transport>>,
}

impl fmt::Debug for Reentrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reentrant")
            .field("site", &self.site)
            .field("method", &self.call.method)
            .finish()
    }
}

impl PushProducer for Reentrant {
    fn pause_producing(&self) {
        self.pauses.set(self.pauses.get() + 1);
        if self.site == Site::PushPause {
            self.call.run(None);
        }
    }
    fn resume_producing(&self) {
        self.resumes.set(self.resumes.get() + 1);
        if self.site == Site::PushResume {
            self.call.run(None);
        }
    }
    fn stop_producing(&self) {
        if self.site == Site::PushStop {
            self.call.run(None);
        }
    }
}

impl PullProducer for Reentrant {
    fn resume_producing(&self) {
        let n = self.resumes.get() + 1;
        self.resumes.set(n);
        if n == 1 && self.site == Site::PullRegistration {
            self.call.run(None);
        } else if n == 1 {
            if let Some(t) = self.first_write.as_ref().and_then(Weak::upgrade) {
                t.write(b"pull");
            }
        } else if self.site == Site::PullResume {
            self.call.run(None);
        }
    }
    fn stop_producing(&self) {
        if self.site == Site::PullStop {
            self.call.run(None);
        }
    }
}

/// One method at one site on a fresh connection.
#[track_caller]
fn one<H: ContractHarness>(h: &mut H, site: Site, method: Method) {
    let what = format!("{method:?} inside {site:?}");
    let call = Call::new(method);
    let made = match site {
        Site::ConnectionMade => {
            let c = call.clone();
            Probe::protocol(
                false,
                Some(Box::new(move |t: &Rc<dyn Transport>| c.run(Some(t)))),
                None,
            )
        }
        Site::DataReceived => {
            let c = call.clone();
            Probe::protocol(
                false,
                None,
                Some(Box::new(move |t: &Rc<dyn Transport>, _: &[u8]| {
                    c.run(Some(t));
                })),
            )
        }
        Site::ConnectionLost => {
            let c = call.clone();
            Probe::with_lost_hook(Box::new(move |t: &Rc<dyn Transport>, _: &Reason| {
                c.run(Some(t));
            }))
        }
        _ => Probe::plain(),
    };
    let (probe, t) = connect(h, made);
    call.set_transport(&t);

    let producer = Rc::new(Reentrant {
        site,
        call: call.clone(),
        resumes: Cell::new(0),
        pauses: Cell::new(0),
        first_write: Some(Rc::downgrade(&t)),
    });
    match site {
        Site::ConnectionMade | Site::ConnectionLost => {}
        Site::DataReceived => h.peer_write(b"ping"),
        Site::PushPause | Site::PushResume => {
            h.set_peer_reading(false);
            let registered = t.register_producer(Producer::Push(producer.clone()));
            assert!(registered.is_ok(), "{what}: register_producer failed");
            let before = probe.lost_count();
            // Fill until the producer is paused (D4), without `fill_until_paused`'s
            // exactly-one-pause check when the method itself closes the connection.
            if before == 0 {
                fill_until_paused_or_closed(h, &t, &producer);
            }
            h.set_peer_reading(true);
            if site == Site::PushResume {
                run_until(h, &format!("{what}: the resume"), BULK_STEPS, |_| {
                    producer.resumes.get() > 0 || probe.lost_count() > 0
                });
            }
        }
        Site::PushStop => {
            let registered = t.register_producer(Producer::Push(producer.clone()));
            assert!(registered.is_ok(), "{what}: register_producer failed");
        }
        Site::PullResume | Site::PullRegistration | Site::PullStop => {
            let registered = t.register_producer(Producer::Pull(producer.clone()));
            assert!(registered.is_ok(), "{what}: register_producer failed");
            if site == Site::PullResume {
                run_until(
                    h,
                    &format!("{what}: the resume after a drain"),
                    BULK_STEPS,
                    |_| call.calls.get() > 0,
                );
            }
        }
    }
    if site.while_connected() {
        run_until(
            h,
            &format!("{what}: the callback"),
            DEFAULT_MAX_STEPS,
            |_| call.calls.get() > 0,
        );
    }

    // Let the method take effect, then end the connection from the peer's side: whatever
    // the method did, connection_lost must come exactly once.
    let mut got = Vec::new();
    for _ in 0..QUIET_STEPS {
        h.step();
        got.extend(h.peer_received());
    }
    // Whether a registered pull producer holds a half-close, as it holds a lose_connection
    // (E2), the contract leaves open: Twisted holds it, torsion's FileDescriptor does not.
    let held_by_pull = matches!(site, Site::PullResume | Site::PullRegistration);
    if method == Method::LoseWriteConnection
        && site.while_connected()
        && !held_by_pull
        && h.claims().half_close
    {
        // D6: the half-close happens after the flush, without waiting for anything else.
        run_until(
            h,
            &format!("{what}: the peer to see EOF"),
            BULK_STEPS,
            |h| {
                got.extend(h.peer_received());
                h.peer_closed()
            },
        );
    }
    t.resume_producing();
    if !matches!(site, Site::PushStop | Site::PullStop) {
        // A pull producer holds a lose_connection open (E2); the stop sites need theirs
        // registered until connection_lost stops it.
        t.unregister_producer();
    }
    h.set_peer_reading(true);
    h.peer_close();
    got.extend(collect_until_peer_closed(
        h,
        &format!("{what}: the peer to see the close"),
    ));
    let reason = wait_lost(h, &probe, &format!("{what}: connection_lost"));

    assert_eq!(call.calls.get(), 1, "{what}: the callback ran the method");
    if let Some(msg) = call.panicked.borrow().as_ref() {
        panic!("{what}: the transport panicked: {msg}");
    }
    if site.while_connected() && method == Method::AbortConnection {
        assert!(
            matches!(reason, Reason::ConnectionAborted),
            "{what}: abort gives ConnectionAborted, got {reason}"
        );
    } else {
        assert!(reason.is_clean(), "{what}: a clean close, got {reason}");
    }
    let wrote = matches!(method, Method::Write | Method::WriteSequence);
    if wrote && site.while_connected() {
        assert!(
            got.windows(MARKER.len()).any(|w| w == MARKER),
            "{what}: what the callback wrote reaches the peer"
        );
    }
    if wrote && !site.while_connected() {
        assert!(
            !got.windows(MARKER.len()).any(|w| w == MARKER),
            "{what}: a write after connection_lost is dropped"
        );
    }
}

/// Write with the peer not reading until the producer is paused (D4). Unlike the suite's
/// D4 check, the method under test may close the connection from inside the pause.
#[track_caller]
fn fill_until_paused_or_closed<H: ContractHarness>(
    h: &mut H,
    t: &Rc<dyn Transport>,
    producer: &Reentrant,
) {
    let chunk = vec![b'x'; FILL_CHUNK];
    for _ in 0..FILL_LIMIT {
        t.write(&chunk);
        if producer.pauses.get() > 0 {
            return;
        }
        h.step();
    }
    panic!("contract: the producer was never paused (D4)");
}

fn every_method<H, F>(make: &mut F, site: Site)
where
    H: ContractHarness,
    F: FnMut() -> H,
{
    for method in Method::ALL {
        let mut h = make();
        one(&mut h, site, method);
    }
}

/// Every transport method inside `connection_made`.
pub fn d7_every_method_inside_connection_made<H: ContractHarness, F: FnMut() -> H>(make: &mut F) {
    every_method(make, Site::ConnectionMade);
}

/// Every transport method inside `data_received`.
pub fn d7_every_method_inside_data_received<H: ContractHarness, F: FnMut() -> H>(make: &mut F) {
    every_method(make, Site::DataReceived);
}

/// Every transport method inside `connection_lost`: each is a harmless no-op (writes are
/// dropped, a producer is stopped and not registered).
pub fn d7_every_method_inside_connection_lost<H: ContractHarness, F: FnMut() -> H>(make: &mut F) {
    every_method(make, Site::ConnectionLost);
}

/// Every transport method inside a push producer's `pause_producing`, called from the
/// `write` that fills the buffer (D4).
pub fn e3_every_method_inside_push_pause_producing<H: ContractHarness, F: FnMut() -> H>(
    make: &mut F,
) {
    let h = make();
    if !h.claims().flow_control {
        return skip("re-entry from pause_producing", "flow_control");
    }
    drop(h);
    every_method(make, Site::PushPause);
}

/// Every transport method inside a push producer's `resume_producing`, called by the
/// writer after the buffer drained (D4, E3).
pub fn e3_every_method_inside_push_resume_producing<H: ContractHarness, F: FnMut() -> H>(
    make: &mut F,
) {
    let h = make();
    if !h.claims().flow_control {
        return skip("re-entry from resume_producing", "flow_control");
    }
    drop(h);
    every_method(make, Site::PushResume);
}

/// Every transport method inside a push producer's `stop_producing`, called when the
/// connection is lost (D7).
pub fn d7_every_method_inside_push_stop_producing<H: ContractHarness, F: FnMut() -> H>(
    make: &mut F,
) {
    every_method(make, Site::PushStop);
}

/// Every transport method inside a pull producer's `resume_producing`, called by the
/// writer after a drain (E2).
pub fn e2_every_method_inside_pull_resume_producing<H: ContractHarness, F: FnMut() -> H>(
    make: &mut F,
) {
    every_method(make, Site::PullResume);
}

/// Every transport method inside a pull producer's `resume_producing`, called at once by
/// `register_producer` (E1).
pub fn e1_every_method_inside_pull_resume_at_registration<H: ContractHarness, F: FnMut() -> H>(
    make: &mut F,
) {
    every_method(make, Site::PullRegistration);
}

/// Every transport method inside a pull producer's `stop_producing`, called when the
/// connection is lost (D7).
pub fn d7_every_method_inside_pull_stop_producing<H: ContractHarness, F: FnMut() -> H>(
    make: &mut F,
) {
    every_method(make, Site::PullStop);
}
