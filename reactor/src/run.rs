//! Running the loop: `run`, `stop`, `crash`, `iterate`, graceful shutdown, system event
//! triggers and signals (CONTRACT A12, B1–B7). The loop's one iteration and its dispatch
//! live in [`crate::reactor`].

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_transport::{ReactorCore, ReactorStateError, Reason, Signal};

use crate::callback::catch_panic;
use crate::error::ReactorError;
use crate::events::{Event, Phase, TriggerId};
use crate::reactor::{Reactor, RunState, SIGNAL_TOKEN};
use crate::signals::{SignalId, SignalRole};

/// Keeps the shutdown flush phase going while alive (see [`Reactor::hold_shutdown`]).
#[derive(Debug)]
pub struct ShutdownHold(Rc<Cell<usize>>);

impl Drop for ShutdownHold {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

impl Reactor {
    // ----- system events -------------------------------------------------------------

    /// Run `f` once when `event` fires, in `phase` (CONTRACT B1).
    #[doc(alias = "addSystemEventTrigger")]
    pub fn add_system_event_trigger<F: FnOnce() + 'static>(
        &self,
        phase: Phase,
        event: Event,
        f: F,
    ) -> TriggerId {
        self.inner
            .triggers
            .borrow_mut()
            .add(phase, event, Box::new(f))
    }

    /// Remove a trigger that has not run (CONTRACT B1).
    ///
    /// # Errors
    ///
    /// [`ReactorError::UnknownTrigger`] if it is unknown or already ran.
    #[doc(alias = "removeSystemEventTrigger")]
    pub fn remove_system_event_trigger(&self, id: TriggerId) -> Result<(), ReactorError> {
        if self.inner.triggers.borrow_mut().remove(id) {
            Ok(())
        } else {
            Err(ReactorError::UnknownTrigger)
        }
    }

    /// Fire `event`: `before` triggers FIFO (including ones added meanwhile), then `during`,
    /// then `after` (CONTRACT B2). A panicking trigger is logged; firing continues.
    #[doc(alias = "fireSystemEvent")]
    pub fn fire_system_event(&self, event: Event) {
        for phase in [Phase::Before, Phase::During, Phase::After] {
            loop {
                let next = self.inner.triggers.borrow_mut().pop(phase, event);
                match next {
                    Some(f) => {
                        catch_panic("a system event trigger", f);
                    }
                    None => break,
                }
            }
        }
    }

    /// Run `f` when the reactor is running: at once if it is, else after `startup`, in
    /// registration order, before any timer (CONTRACT B3).
    #[doc(alias = "callWhenRunning")]
    pub fn call_when_running<F: FnOnce() + 'static>(&self, f: F) {
        if self.inner.state.get() == RunState::Running {
            catch_panic("call_when_running", f);
        } else {
            self.add_system_event_trigger(Phase::After, Event::Startup, f);
        }
    }

    // ----- running -------------------------------------------------------------------

    /// Whether `run` should install SIGINT/SIGTERM handlers that stop the reactor
    /// (default `true`; CONTRACT B7).
    pub fn set_install_signal_handlers(&self, yes: bool) {
        self.inner.install_signal_handlers.set(yes);
    }

    /// How long shutdown waits for transports to flush and for [`ShutdownHold`]s to be
    /// released before disconnecting everything (default 5 s; CONTRACT B5).
    pub fn set_shutdown_grace(&self, grace: Duration) {
        self.inner.shutdown_grace.set(grace);
    }

    /// Keep the shutdown flush phase going (up to the grace period) until the returned
    /// hold is dropped: for work that must finish at shutdown, such as terminating children.
    pub fn hold_shutdown(&self) -> ShutdownHold {
        self.inner.holds.set(self.inner.holds.get() + 1);
        ShutdownHold(self.inner.holds.clone())
    }

    /// True between `run` starting and shutdown beginning.
    pub fn running(&self) -> bool {
        self.inner.state.get() == RunState::Running
    }

    /// True once `stop` was called and shutdown is in progress or done.
    pub fn stopping(&self) -> bool {
        matches!(
            self.inner.state.get(),
            RunState::Stopping | RunState::Stopped
        )
    }

    /// Ask the loop to stop (CONTRACT B4): only sets a flag; `shutdown` fires at the end of
    /// the current iteration.
    ///
    /// # Errors
    ///
    /// [`ReactorError::NotRunning`] if the reactor is not running or already stopping.
    pub fn stop(&self) -> Result<(), ReactorError> {
        if self.inner.state.get() != RunState::Running || self.inner.stop_requested.get() {
            return Err(ReactorError::NotRunning);
        }
        self.inner.stop_requested.set(true);
        self.inner.thread.wake();
        Ok(())
    }

    /// Stop the loop at the end of this iteration without shutdown triggers or
    /// disconnecting anything; `run` may be called again (CONTRACT B6).
    pub fn crash(&self) {
        self.inner.crash_requested.set(true);
        self.inner.thread.wake();
    }

    /// Run the loop until `stop` (with graceful shutdown) or `crash` (CONTRACT B3–B6).
    ///
    /// # Signals
    ///
    /// Unless [`set_install_signal_handlers(false)`](Self::set_install_signal_handlers),
    /// SIGINT and SIGTERM stop the reactor while `run` runs (CONTRACT B7; on Windows, the
    /// console's Ctrl-C/Ctrl-Break and close events). That default stop is replaced, for one
    /// signal, by any callback registered for it with [`on_signal`](Self::on_signal) (a
    /// supervisor that forwards SIGTERM to its child and stops once the child has gone), and
    /// comes back when the last such callback is removed. As in Twisted, a SIGINT that the
    /// process inherited as ignored (`SIG_IGN`: a background job of a non-interactive
    /// shell) stays ignored: `run` installs no SIGINT handler then.
    ///
    /// # Errors
    ///
    /// [`ReactorError::NotRestartable`] after a stop; [`ReactorError::AlreadyRunning`] from
    /// inside the loop.
    pub fn run(&self) -> Result<(), ReactorError> {
        match self.inner.state.get() {
            RunState::Idle if !self.inner.in_iteration.get() => {}
            RunState::Stopped => return Err(ReactorError::NotRestartable),
            _ => return Err(ReactorError::AlreadyRunning),
        }
        self.inner.state.set(RunState::Running);
        self.inner.crash_requested.set(false);
        let stop_ids = if self.inner.install_signal_handlers.get() {
            self.install_stop_signals()
        } else {
            Vec::new()
        };
        self.fire_system_event(Event::Startup);
        loop {
            if self.inner.crash_requested.replace(false) {
                self.inner.state.set(RunState::Idle);
                break;
            }
            if self.inner.stop_requested.get() {
                self.shutdown();
                break;
            }
            self.iteration(None);
        }
        for id in stop_ids {
            self.remove_signal_handler(id);
        }
        Ok(())
    }

    /// The default stop for SIGINT and SIGTERM, overridden by user callbacks (see `run`).
    fn install_stop_signals(&self) -> Vec<SignalId> {
        let mut ids = Vec::new();
        for sig in [Signal::Int, Signal::Term] {
            if sig == Signal::Int && crate::sys::signal::inherited_as_ignored(sig) {
                log::debug!("{sig} was ignored when the reactor started; leaving it ignored");
                continue;
            }
            let weak = self.downgrade();
            let stop = Box::new(move || {
                if let Some(r) = weak.upgrade() {
                    log::debug!("{sig} received: stopping the reactor");
                    let _ = r.stop();
                }
            });
            match self.inner.signals.add(
                &self.inner.registry,
                SIGNAL_TOKEN,
                sig,
                stop,
                SignalRole::Default,
            ) {
                Ok(id) => ids.push(id),
                Err(e) => log::warn!("cannot install a {sig} handler: {e}"),
            }
        }
        ids
    }

    pub(crate) fn shutdown(&self) {
        self.inner.state.set(RunState::Stopping);
        self.fire_system_event_phase(Event::Shutdown, Phase::Before);
        let deadline = self.now() + self.inner.shutdown_grace.get();
        while (self.writer_count() > 0 || self.inner.holds.get() > 0)
            && !self.inner.crash_requested.get()
        {
            let now = self.now();
            if now >= deadline {
                log::warn!(
                    "shutdown grace period over with {} writers and {} holds left",
                    self.writer_count(),
                    self.inner.holds.get()
                );
                break;
            }
            self.iteration(Some(deadline - now));
        }
        self.inner.deferred.borrow_mut().clear();
        // Pending tasks are dropped (their destructors run) before the transports go.
        self.drop_tasks();
        for sel in self.remove_all() {
            catch_panic("connection_lost at shutdown", || {
                sel.connection_lost(Reason::lost_because("the reactor shut down"))
            });
        }
        self.fire_system_event_phase(Event::Shutdown, Phase::During);
        self.fire_system_event_phase(Event::Shutdown, Phase::After);
        self.inner.state.set(RunState::Stopped);
    }

    fn fire_system_event_phase(&self, event: Event, phase: Phase) {
        loop {
            let next = self.inner.triggers.borrow_mut().pop(phase, event);
            match next {
                Some(f) => {
                    catch_panic("a system event trigger", f);
                }
                None => break,
            }
        }
    }

    /// Run one iteration without `run` (CONTRACT A12): thread calls, due timers, one poll
    /// waiting at most `timeout` (less if a timer is due sooner), dispatch. Does not fire
    /// `startup`. Nested calls from inside a callback are refused.
    ///
    /// # Errors
    ///
    /// [`ReactorError::AlreadyRunning`] from inside the loop.
    pub fn iterate(&self, timeout: Duration) -> Result<(), ReactorError> {
        if self.inner.in_iteration.get() {
            return Err(ReactorError::AlreadyRunning);
        }
        self.iteration(Some(timeout));
        Ok(())
    }

    /// Iterate until `condition()` holds or `timeout` passes; for tests and embedding.
    ///
    /// # Errors
    ///
    /// [`ReactorError::TimedOut`] if the deadline passed first;
    /// [`ReactorError::AlreadyRunning`] from inside the loop.
    pub fn run_until(
        &self,
        mut condition: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<(), ReactorError> {
        let deadline = Instant::now() + timeout;
        loop {
            if condition() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReactorError::TimedOut);
            }
            self.iterate((deadline - now).min(Duration::from_millis(100)))?;
        }
    }

    // ----- signals -------------------------------------------------------------------

    /// Call `f` from the loop each time `signal` arrives (SIGHUP reload, SIGUSR1 ...). The
    /// handler only writes to a self-pipe and chains to the previous handler (CONTRACT B7).
    ///
    /// For SIGINT and SIGTERM, a callback *replaces* the stop that [`run`](Self::run)
    /// installs for that signal: the reactor is not stopped when the signal arrives, `f`
    /// decides (call [`stop`](Self::stop) when ready). Removing the last callback for the
    /// signal with [`remove_signal_handler`](Self::remove_signal_handler) restores the
    /// default stop. Several callbacks for one signal all run, in registration order.
    ///
    /// # Examples
    ///
    /// A supervisor that forwards SIGTERM and stops only once its work is done:
    ///
    /// ```
    /// use torsion_reactor::Reactor;
    /// use torsion_transport::Signal;
    ///
    /// let reactor = Reactor::new()?;
    /// let r = reactor.clone();
    /// let id = reactor.on_signal(Signal::Term, move || {
    ///     // ... forward the signal, wait for the child's last output, then:
    ///     let _ = r.stop();
    /// })?;
    /// reactor.remove_signal_handler(id); // SIGTERM stops `run` at once again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `InvalidInput` for SIGKILL, SIGSTOP or a signal this system lacks; the OS error if
    /// the handler or pipe cannot be set up.
    pub fn on_signal<F: FnMut() + 'static>(&self, signal: Signal, f: F) -> io::Result<SignalId> {
        self.inner.signals.add(
            &self.inner.registry,
            SIGNAL_TOKEN,
            signal,
            Box::new(f),
            SignalRole::User,
        )
    }

    /// Stop calling the callback registered as `id`. A no-op for an unknown id.
    pub fn remove_signal_handler(&self, id: SignalId) {
        self.inner.signals.remove(id);
    }

    pub(crate) fn dispatch_signals(&self) {
        for (signal, cb) in self.inner.signals.arrived() {
            log::debug!("{signal} dispatched");
            match cb.try_borrow_mut() {
                Ok(mut f) => {
                    catch_panic("a signal callback", &mut *f);
                }
                Err(_) => log::warn!("signal callback for {signal} is already running; skipped"),
            }
        }
    }
}

impl ReactorCore for Reactor {
    fn running(&self) -> bool {
        Reactor::running(self)
    }

    fn stop(&self) -> Result<(), ReactorStateError> {
        Reactor::stop(self)
    }

    fn call_when_running_boxed(&self, f: Box<dyn FnOnce()>) {
        Reactor::call_when_running(self, f);
    }
}
