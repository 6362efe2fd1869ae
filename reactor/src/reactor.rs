//! The loop: the `Reactor` type, registering selectables, one iteration and its dispatch,
//! timers (CONTRACT A, C). Running, stopping, shutdown, system events and signals are in
//! [`crate::run`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token};
use slab::Slab;

use torsion_transport::{DelayedCall, ReactorTime, Reason, TimerQueue, defer};

use crate::callback::catch_panic;
use crate::events::Triggers;
use crate::selectable::{IoStatus, Selectable};
use crate::signals::Signals;
use crate::thread::{ThreadHandle, ThreadShared};

/// Token of the cross-thread waker.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);
/// Token of the signal self-pipe.
pub(crate) const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
/// Reads a selectable may do per dispatch before yielding (CONTRACT C4).
pub const READ_BUDGET: usize = 16;

struct Entry {
    sel: Rc<dyn Selectable>,
    generation: u32,
    reading: bool,
    writing: bool,
    readable: bool,
    writable: bool,
    queued: bool,
    /// An event said the peer closed its write side (or the fd is in error): a short read
    /// no longer proves that a later byte brings a new edge.
    read_closed: bool,
}

/// One readiness event, copied out of mio's `Events`.
#[derive(Clone, Copy)]
struct Arrived {
    token: Token,
    readable: bool,
    writable: bool,
    read_closed: bool,
    write_closed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Never run, or crashed: `run` may be called.
    Idle,
    Running,
    /// `stop` was called; shutdown is in progress.
    Stopping,
    /// Shut down; cannot run again.
    Stopped,
}

pub(crate) struct Inner {
    poll: RefCell<Poll>,
    pub(crate) registry: Registry,
    events: RefCell<Events>,
    slab: RefCell<Slab<Entry>>,
    generation: Cell<u32>,
    pending: RefCell<Vec<Token>>,
    /// An empty `Vec` with capacity, swapped with `pending` each dispatch pass so a busy
    /// loop does not allocate per iteration.
    spare: RefCell<Vec<Token>>,
    /// The events of one poll, copied out so no borrow of `events` is held while user code
    /// runs; kept between iterations for its capacity.
    arrived: RefCell<Vec<Arrived>>,
    pub(crate) deferred: RefCell<Vec<(Token, Reason)>>,
    pub(crate) timers: TimerQueue,
    origin: Instant,
    pub(crate) thread: std::sync::Arc<ThreadShared>,
    pub(crate) state: Cell<RunState>,
    pub(crate) stop_requested: Cell<bool>,
    pub(crate) crash_requested: Cell<bool>,
    pub(crate) in_iteration: Cell<bool>,
    pub(crate) triggers: RefCell<Triggers>,
    pub(crate) signals: Signals,
    pub(crate) install_signal_handlers: Cell<bool>,
    pub(crate) shutdown_grace: Cell<Duration>,
    pub(crate) holds: Rc<Cell<usize>>,
    extensions: RefCell<Vec<Rc<dyn Any>>>,
    /// Tasks of `spawn_local` (the async issue; `crate::executor`).
    pub(crate) executor: Rc<crate::executor::Executor>,
}

/// A single-threaded, Twisted-style reactor on mio.
///
/// `Reactor` is a cheap handle (`Rc`): clone it into protocols and callbacks. Every method
/// takes `&self` and may be called from inside any callback; changes asked for during a
/// dispatch take effect after the callback returns (ARCHITECTURE, ownership rule 5). It is
/// `!Send`: other threads use a [`ThreadHandle`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use torsion_reactor::Reactor;
/// use torsion_transport::ReactorTime;
///
/// let reactor = Reactor::new()?;
/// let r = reactor.clone();
/// reactor.call_later(Duration::from_millis(5), move || r.stop().unwrap());
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Reactor {
    pub(crate) inner: Rc<Inner>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("state", &self.inner.state.get())
            .field("selectables", &self.inner.slab.borrow().len())
            .field("timers", &self.inner.timers)
            .finish()
    }
}

/// A weak handle on a reactor, for objects the reactor itself keeps alive.
#[derive(Clone)]
pub struct WeakReactor(Weak<Inner>);

impl WeakReactor {
    /// The reactor, if it still exists.
    pub fn upgrade(&self) -> Option<Reactor> {
        self.0.upgrade().map(|inner| Reactor { inner })
    }
}

impl fmt::Debug for WeakReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakReactor(..)")
    }
}

fn token_of(index: usize, generation: u32) -> Token {
    Token(((generation as usize) << 32) | index)
}

fn split_token(token: Token) -> (usize, u32) {
    (token.0 & 0xffff_ffff, (token.0 >> 32) as u32)
}

fn round_up_to_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

impl Reactor {
    /// A new reactor with its own poller and waker. On Unix, SIGPIPE is ignored if it was at
    /// its default (so `EPIPE` is an error, not a death; CONTRACT I1).
    ///
    /// # Errors
    ///
    /// The OS error from creating the poller or the waker (fd exhaustion, usually).
    pub fn new() -> io::Result<Reactor> {
        crate::sys::signal::ignore_sigpipe_if_default();
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let thread = ThreadShared::new(&registry, WAKER_TOKEN)?;
        let origin = Instant::now();
        let timers = TimerQueue::new(Rc::new(move || origin.elapsed()));
        let holds = Rc::new(Cell::new(0));
        let executor = Rc::new(crate::executor::Executor::new(Some(thread.clone())));
        Ok(Reactor {
            inner: Rc::new(Inner {
                poll: RefCell::new(poll),
                registry,
                events: RefCell::new(Events::with_capacity(1024)),
                slab: RefCell::new(Slab::new()),
                generation: Cell::new(0),
                pending: RefCell::new(Vec::new()),
                spare: RefCell::new(Vec::new()),
                arrived: RefCell::new(Vec::new()),
                deferred: RefCell::new(Vec::new()),
                timers,
                origin,
                thread,
                state: Cell::new(RunState::Idle),
                stop_requested: Cell::new(false),
                crash_requested: Cell::new(false),
                in_iteration: Cell::new(false),
                triggers: RefCell::new(Triggers::default()),
                signals: Signals::default(),
                install_signal_handlers: Cell::new(true),
                shutdown_grace: Cell::new(Duration::from_secs(5)),
                holds,
                extensions: RefCell::new(Vec::new()),
                executor,
            }),
        })
    }

    /// A weak handle, for selectables and callbacks the reactor keeps alive itself.
    pub fn downgrade(&self) -> WeakReactor {
        WeakReactor(Rc::downgrade(&self.inner))
    }

    /// The mio registry, for selectables registering themselves.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// This reactor's instance of `T`, created with `init` on first use. Lets crates built
    /// on the reactor keep per-reactor state (the process crate's child watcher) without
    /// globals.
    pub fn extension<T: 'static>(&self, init: impl FnOnce() -> T) -> Rc<T> {
        if let Some(found) = self
            .inner
            .extensions
            .borrow()
            .iter()
            .find_map(|e| e.clone().downcast::<T>().ok())
        {
            return found;
        }
        let made = Rc::new(init());
        self.inner.extensions.borrow_mut().push(made.clone());
        made
    }

    // ----- selectables ---------------------------------------------------------------

    /// Add `sel` to the reactor and register its source; it is neither reading nor writing
    /// until [`add_reader`](Self::add_reader)/[`add_writer`](Self::add_writer).
    ///
    /// # Errors
    ///
    /// The OS error from registration; the selectable is not kept.
    pub fn register(&self, sel: Rc<dyn Selectable>) -> io::Result<Token> {
        let generation = self.inner.generation.get().wrapping_add(1);
        self.inner.generation.set(generation);
        let index = self.inner.slab.borrow_mut().insert(Entry {
            sel: sel.clone(),
            generation,
            reading: false,
            writing: false,
            readable: false,
            writable: false,
            queued: false,
            read_closed: false,
        });
        if index >= 0xffff_fff0 {
            self.inner.slab.borrow_mut().remove(index);
            return Err(io::Error::other("too many selectables"));
        }
        let token = token_of(index, generation);
        if let Err(e) = sel.register(&self.inner.registry, token) {
            self.inner.slab.borrow_mut().remove(index);
            return Err(e);
        }
        log::trace!("registered {} as {:?}", sel.describe(), token);
        Ok(token)
    }

    fn with_entry<R>(&self, token: Token, f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let (index, generation) = split_token(token);
        let mut slab = self.inner.slab.borrow_mut();
        match slab.get_mut(index) {
            Some(e) if e.generation == generation => Some(f(e)),
            _ => None,
        }
    }

    fn enqueue(&self, token: Token) {
        let first = self.with_entry(token, |e| !std::mem::replace(&mut e.queued, true));
        if first == Some(true) {
            self.inner.pending.borrow_mut().push(token);
        }
    }

    /// Start reading `token` (idempotent, CONTRACT C1). The fd is tried once even without a
    /// new readiness event.
    #[doc(alias = "addReader")]
    pub fn add_reader(&self, token: Token) {
        if self
            .with_entry(token, |e| {
                e.reading = true;
                e.readable = true;
            })
            .is_some()
        {
            self.enqueue(token);
        }
    }

    /// Start writing `token` (idempotent, CONTRACT C1).
    #[doc(alias = "addWriter")]
    pub fn add_writer(&self, token: Token) {
        if self
            .with_entry(token, |e| {
                e.writing = true;
                e.writable = true;
            })
            .is_some()
        {
            self.enqueue(token);
        }
    }

    /// Start writing `token` after the caller saw the fd's kernel buffer full (`WouldBlock`):
    /// unlike [`add_writer`](Self::add_writer) it does not try the write again before the
    /// next writable event. For [`FileDescriptor`](crate::FileDescriptor)'s direct writes.
    pub(crate) fn add_blocked_writer(&self, token: Token) {
        self.with_entry(token, |e| {
            e.writing = true;
            e.writable = false;
        });
    }

    /// True if `token` is registered and the reactor last saw its fd writable (no
    /// `WouldBlock` since the last writable event): a write may be tried at once.
    pub fn is_writable(&self, token: Token) -> bool {
        self.with_entry(token, |e| e.writable).unwrap_or(false)
    }

    /// Stop reading `token`; a no-op if it is not reading or not registered (CONTRACT C1).
    #[doc(alias = "removeReader")]
    pub fn remove_reader(&self, token: Token) {
        self.with_entry(token, |e| e.reading = false);
    }

    /// Stop writing `token`; a no-op if it is not writing or not registered (CONTRACT C1).
    #[doc(alias = "removeWriter")]
    pub fn remove_writer(&self, token: Token) {
        self.with_entry(token, |e| e.writing = false);
    }

    /// True if `token` is registered and reading.
    pub fn is_reading(&self, token: Token) -> bool {
        self.with_entry(token, |e| e.reading).unwrap_or(false)
    }

    /// True if an event for `token` said its peer closed the read direction (or the fd is
    /// in error). Until then a read shorter than the buffer emptied the kernel's queue and
    /// the next byte brings a new edge, so a reader may stop without the read that would
    /// only say `WouldBlock` (issue 15, B4); after it, it must read on to the EOF.
    pub fn read_closed_seen(&self, token: Token) -> bool {
        self.with_entry(token, |e| e.read_closed).unwrap_or(true)
    }

    /// True if `token` is registered and writing.
    pub fn is_writing(&self, token: Token) -> bool {
        self.with_entry(token, |e| e.writing).unwrap_or(false)
    }

    /// True if `token` is registered.
    pub fn contains(&self, token: Token) -> bool {
        self.with_entry(token, |_| ()).is_some()
    }

    /// Deregister `token` and forget it; returns the selectable. No `connection_lost` is
    /// called. A no-op returning `None` for an unknown token.
    pub fn remove(&self, token: Token) -> Option<Rc<dyn Selectable>> {
        let (index, generation) = split_token(token);
        let entry = {
            let mut slab = self.inner.slab.borrow_mut();
            match slab.get(index) {
                Some(e) if e.generation == generation => slab.remove(index),
                _ => return None,
            }
        };
        if let Err(e) = entry.sel.deregister(&self.inner.registry) {
            log::warn!("deregistering {}: {e}", entry.sel.describe());
        }
        log::trace!("removed {:?}", token);
        Some(entry.sel)
    }

    /// Deregister and forget every selectable; returns them (Twisted's `removeAll`).
    #[doc(alias = "removeAll")]
    pub fn remove_all(&self) -> Vec<Rc<dyn Selectable>> {
        let entries: Vec<Entry> = self.inner.slab.borrow_mut().drain().collect();
        entries
            .into_iter()
            .map(|e| {
                if let Err(err) = e.sel.deregister(&self.inner.registry) {
                    log::warn!("deregistering {}: {err}", e.sel.describe());
                }
                e.sel
            })
            .collect()
    }

    /// Number of registered selectables.
    pub fn selectable_count(&self) -> usize {
        self.inner.slab.borrow().len()
    }

    /// Number of selectables currently reading.
    pub fn reader_count(&self) -> usize {
        self.inner
            .slab
            .borrow()
            .iter()
            .filter(|(_, e)| e.reading)
            .count()
    }

    /// Number of selectables currently writing.
    pub fn writer_count(&self) -> usize {
        self.inner
            .slab
            .borrow()
            .iter()
            .filter(|(_, e)| e.writing)
            .count()
    }

    /// Disconnect `token` from the loop with `reason`: on a later pass of the loop, never
    /// inside this call (used by `abort_connection` and friends; ARCHITECTURE rule 4).
    pub fn disconnect_later(&self, token: Token, reason: Reason) {
        if self.contains(token) {
            self.remove_reader(token);
            self.remove_writer(token);
            self.inner.deferred.borrow_mut().push((token, reason));
        }
    }

    /// CONTRACT C2: reader removed first; a clean EOF on a half-closeable selectable only
    /// ends the read side; otherwise the selectable is removed and gets `connection_lost`.
    fn disconnect(&self, token: Token, sel: &Rc<dyn Selectable>, reason: Reason, from_read: bool) {
        if !self.contains(token) {
            return;
        }
        self.remove_reader(token);
        if from_read
            && reason.is_clean()
            && catch_panic("read_connection_lost", || sel.read_connection_lost()).unwrap_or(false)
        {
            return;
        }
        self.remove(token);
        log::debug!("{} lost: {reason}", sel.describe());
        catch_panic("connection_lost", || sel.connection_lost(reason));
    }

    /// The poller says the peer of `token`'s write side is gone (CONTRACT I1).
    fn write_closed(&self, token: Token) {
        let Some(sel) = self.with_entry(token, |e| e.sel.clone()) else {
            return;
        };
        if let Some(Some(reason)) = catch_panic("on_write_closed", || sel.on_write_closed()) {
            self.disconnect(token, &sel, reason, false);
        }
    }

    fn dispatch(&self, token: Token) {
        let Some((sel, read)) = self.with_entry(token, |e| {
            e.queued = false;
            (e.sel.clone(), e.reading && e.readable)
        }) else {
            return;
        };
        log::trace!("dispatch {:?}", token);
        if read {
            match catch_panic("do_read", || sel.do_read()) {
                Some(Ok(IoStatus::Blocked)) => {
                    self.with_entry(token, |e| e.readable = false);
                }
                Some(Ok(IoStatus::More)) => self.enqueue(token),
                Some(Err(reason)) => {
                    // A half-closeable selectable survives a clean EOF; its pending write
                    // (if any) must still run in this dispatch: its writable edge may
                    // already be consumed.
                    self.disconnect(token, &sel, reason, true);
                    if !self.contains(token) {
                        return;
                    }
                }
                None => {
                    return self.disconnect(
                        token,
                        &sel,
                        Reason::lost_because("do_read panicked"),
                        false,
                    );
                }
            }
        }
        let write = self
            .with_entry(token, |e| e.writing && e.writable)
            .unwrap_or(false);
        if write {
            match catch_panic("do_write", || sel.do_write()) {
                Some(Ok(IoStatus::Blocked)) => {
                    self.with_entry(token, |e| {
                        if e.writing {
                            e.writable = false;
                        }
                    });
                }
                Some(Ok(IoStatus::More)) => self.enqueue(token),
                Some(Err(reason)) => self.disconnect(token, &sel, reason, false),
                None => self.disconnect(
                    token,
                    &sel,
                    Reason::lost_because("do_write panicked"),
                    false,
                ),
            }
        }
    }

    // ----- timers --------------------------------------------------------------------

    /// Run `f` once, `delay` from now (CONTRACT A1). See [`DelayedCall`].
    #[doc(alias = "callLater")]
    pub fn call_later<F: FnOnce() + 'static>(&self, delay: Duration, f: F) -> DelayedCall {
        self.inner.timers.call_later(delay, Box::new(f))
    }

    /// Time since this reactor was created, on the monotonic clock (CONTRACT A2).
    pub fn now(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    /// Run the due timers; `false` if none was scheduled (then none is now either: no user
    /// code ran).
    fn run_timers(&self) -> bool {
        let timers = &self.inner.timers;
        if timers.is_empty() {
            // No clock read when nothing is scheduled: it is most of an idle iteration.
            return false;
        }
        let now = timers.now();
        let cutoff = timers.next_seq();
        while let Some((_, f)) = timers.pop_due(now, Some(cutoff)) {
            catch_panic("a delayed call", f);
        }
        true
    }

    // ----- threads -------------------------------------------------------------------

    /// A `Send` handle other threads use to run code on this reactor's thread (CONTRACT A13).
    pub fn thread_handle(&self) -> ThreadHandle {
        ThreadHandle::new(&self.inner.thread)
    }

    /// One iteration (CONTRACT A4).
    pub(crate) fn iteration(&self, max_timeout: Option<Duration>) {
        self.inner.in_iteration.set(true);
        self.inner.thread.run_queued(self);
        let mut timers_scheduled = self.run_timers();
        // Deferred continuations (CONTRACT P1): those queued now; what they queue waits for
        // the next iteration, which then does not block.
        if defer::run_soon_batch() > 0 {
            // A continuation may have scheduled the first timer: the poll must not block
            // past it.
            timers_scheduled = !self.inner.timers.is_empty();
        }

        let immediate = self.has_immediate_work()
            || self.inner.stop_requested.get()
            || self.inner.crash_requested.get();
        let timeout = if immediate {
            Some(Duration::ZERO)
        } else if !timers_scheduled {
            max_timeout
        } else {
            let to_timer = self
                .inner
                .timers
                .next_deadline()
                .map(|d| round_up_to_ms(d.saturating_sub(self.now())));
            match (to_timer, max_timeout) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        };

        {
            let mut events = self.inner.events.borrow_mut();
            let polled = self.inner.poll.borrow_mut().poll(&mut events, timeout);
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => log::warn!("poll failed: {e}"),
            }
            if events.is_empty() && !immediate {
                // Idle fast path: nothing arrived and nothing was pending or deferred when
                // the timeout was chosen (and the poll ran no user code), so there is
                // nothing to dispatch.
                drop(events);
                self.inner.in_iteration.set(false);
                return;
            }
        }
        self.handle_events();
    }

    /// The rest of an iteration that found events or pending work: readiness into the
    /// slab, signals, two dispatch passes, deferred disconnections. Kept out of line so
    /// the idle path of [`iteration`](Self::iteration) stays small (issue 15, B6).
    #[inline(never)]
    fn handle_events(&self) {
        let mut signal_ready = false;
        let mut arrived;
        {
            let events = self.inner.events.borrow();
            arrived = std::mem::take(&mut *self.inner.arrived.borrow_mut());
            for ev in events.iter() {
                match ev.token() {
                    WAKER_TOKEN => {}
                    SIGNAL_TOKEN => signal_ready = true,
                    token => {
                        let err = ev.is_error();
                        arrived.push(Arrived {
                            token,
                            readable: ev.is_readable() || ev.is_read_closed() || err,
                            writable: ev.is_writable() || ev.is_write_closed() || err,
                            read_closed: ev.is_read_closed() || err,
                            write_closed: ev.is_write_closed(),
                        });
                    }
                }
            }
        }
        for a in arrived.drain(..) {
            if a.write_closed {
                self.write_closed(a.token);
            }
            let wanted = self.with_entry(a.token, |e| {
                e.readable |= a.readable;
                e.read_closed |= a.read_closed;
                e.writable |= a.writable;
                (e.reading && e.readable) || (e.writing && e.writable)
            });
            match wanted {
                Some(true) => self.enqueue(a.token),
                Some(false) => {}
                None => log::trace!("event for stale token {:?} dropped", a.token),
            }
        }
        // A nested iteration cannot run here (iterate refuses), so no one else put a
        // buffer back meanwhile.
        *self.inner.arrived.borrow_mut() = arrived;
        if signal_ready {
            self.dispatch_signals();
        }

        // Dispatch what was ready, then once more what the first pass started (a write
        // issued from data_received that did not go out at once, goes out in the same
        // iteration). The batch is swapped with a kept spare: no allocation per pass.
        for _ in 0..2 {
            let mut batch = {
                let mut spare = self.inner.spare.borrow_mut();
                let mut pending = self.inner.pending.borrow_mut();
                if pending.is_empty() {
                    break;
                }
                std::mem::swap(&mut *spare, &mut *pending);
                std::mem::take(&mut *spare)
            };
            for &token in &batch {
                self.dispatch(token);
            }
            batch.clear();
            let mut spare = self.inner.spare.borrow_mut();
            if spare.capacity() < batch.capacity() {
                *spare = batch;
            }
        }

        let deferred = std::mem::take(&mut *self.inner.deferred.borrow_mut());
        for (token, reason) in deferred {
            if let Some(sel) = self.with_entry(token, |e| e.sel.clone()) {
                self.disconnect(token, &sel, reason, false);
            }
        }
        // Tasks woken so far (by I/O, timers, threads, continuations) run here, once per
        // iteration, under their budget (CONTRACT P4).
        self.run_tasks();
        // What this iteration's callbacks completed continues now, not after a poll.
        defer::run_soon_batch();
        self.inner.in_iteration.set(false);
    }

    /// Work is waiting that no poll event announces: the loop (or a host loop, through
    /// `next_timeout`) must not block.
    pub(crate) fn has_immediate_work(&self) -> bool {
        defer::has_soon()
            || self.inner.executor.has_ready()
            || !self.inner.pending.borrow().is_empty()
            || !self.inner.deferred.borrow().is_empty()
            || self.inner.thread.has_queued()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.thread.close();
        self.timers.clear();
        self.signals.release(&self.registry);
        let entries: Vec<Entry> = self.slab.get_mut().drain().collect();
        for e in entries {
            let _ = e.sel.deregister(&self.registry);
        }
    }
}

impl ReactorTime for Reactor {
    fn seconds(&self) -> f64 {
        self.now().as_secs_f64()
    }

    fn call_later_boxed(&self, delay: Duration, f: Box<dyn FnOnce()>) -> DelayedCall {
        self.inner.timers.call_later(delay, f)
    }

    fn delayed_calls(&self) -> Vec<DelayedCall> {
        self.inner.timers.delayed_calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_with_generation() {
        let t = token_of(7, 3);
        assert_eq!(split_token(t), (7, 3));
        assert_ne!(token_of(7, 4), t);
    }

    #[test]
    fn a4_timeout_rounds_up_to_a_millisecond() {
        assert_eq!(
            round_up_to_ms(Duration::from_micros(1)),
            Duration::from_millis(1)
        );
        assert_eq!(
            round_up_to_ms(Duration::from_micros(1001)),
            Duration::from_millis(2)
        );
        assert_eq!(round_up_to_ms(Duration::ZERO), Duration::ZERO);
    }
}
