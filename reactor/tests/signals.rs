//! Signals (CONTRACT B7), in a `harness = false` binary: these tests change process-wide
//! signal dispositions, so they run one after another on the main thread.
//!
//! POSIX only: Windows has console control events instead, mapped and tested in the
//! reactor's `sys::windows::signal` unit tests (Wine cannot raise them).

#[cfg(unix)]
use std::cell::Cell;
#[cfg(unix)]
use std::rc::Rc;
#[cfg(unix)]
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(unix)]
use std::time::Duration;

#[cfg(unix)]
use torsion_reactor::{Event, Phase, Reactor, SignalId};
#[cfg(unix)]
use torsion_transport::Signal;

#[cfg(unix)]
const DEADLINE: Duration = Duration::from_secs(10);

#[cfg(unix)]
fn raise(sig: Signal) {
    let n = sig.as_raw().unwrap();
    // SAFETY: raise(3) with a valid signal number; a handler is installed for it.
    let rc = unsafe { libc::raise(n) };
    assert_eq!(rc, 0);
}

#[cfg(unix)]
fn b7_on_signal_runs_the_callback_from_the_loop_not_the_handler() {
    let r = Reactor::new().unwrap();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    r.on_signal(Signal::Usr1, move || h.set(h.get() + 1))
        .unwrap();
    raise(Signal::Usr1);
    assert_eq!(hits.get(), 0, "nothing runs inside the handler");
    r.run_until(|| hits.get() == 1, DEADLINE).unwrap();
}

#[cfg(unix)]
fn b7_sigterm_and_sigint_stop_a_running_reactor() {
    for sig in [Signal::Term, Signal::Int] {
        let r = Reactor::new().unwrap();
        let shut = Rc::new(Cell::new(false));
        let s = shut.clone();
        r.add_system_event_trigger(Phase::After, Event::Shutdown, move || s.set(true));
        r.call_when_running(move || raise(sig));
        let guard = r.call_later(DEADLINE, || panic!("the signal did not stop the reactor"));
        r.run().unwrap();
        assert!(shut.get(), "{sig}: shutdown fired");
        assert!(!guard.called());
    }
}

/// A supervisor handling SIGTERM (to forward it to its child) is not stopped by it: its
/// callback replaces `run`'s default stop. Once the callback is removed, the signal stops
/// the reactor again.
#[cfg(unix)]
fn b7_on_signal_for_term_or_int_replaces_the_default_stop_until_removed() {
    for sig in [Signal::Term, Signal::Int] {
        let r = Reactor::new().unwrap();
        let hits = Rc::new(Cell::new(0));
        let survived = Rc::new(Cell::new(false));
        let id: Rc<Cell<Option<SignalId>>> = Rc::new(Cell::new(None));
        let (h, r2, id2, sv) = (hits.clone(), r.clone(), id.clone(), survived.clone());
        let handler = r
            .on_signal(sig, move || {
                h.set(h.get() + 1);
                // Still running well after the signal: then drop the override and send
                // the signal again, which must now stop the reactor.
                let (r3, id3, sv3) = (r2.clone(), id2.clone(), sv.clone());
                r2.call_later(Duration::from_millis(50), move || {
                    sv3.set(r3.running());
                    assert!(
                        r3.running(),
                        "{sig}: the handled signal did not stop the reactor"
                    );
                    if let Some(id) = id3.take() {
                        r3.remove_signal_handler(id);
                    }
                    raise(sig);
                });
            })
            .unwrap();
        id.set(Some(handler));
        let shut = Rc::new(Cell::new(false));
        let s = shut.clone();
        r.add_system_event_trigger(Phase::After, Event::Shutdown, move || s.set(true));
        r.call_when_running(move || raise(sig));
        let guard = r.call_later(DEADLINE, || panic!("the default stop did not come back"));
        r.run().unwrap();
        assert_eq!(
            hits.get(),
            1,
            "{sig}: the callback ran once, the second time it was gone"
        );
        assert!(shut.get(), "{sig}: the default stop shut the reactor down");
        assert!(!guard.called());
    }
}

/// As in Twisted, `run` leaves a SIGINT the process inherited as ignored alone: a
/// background job of a non-interactive shell is not stopped by it.
#[cfg(unix)]
fn b7_run_leaves_an_inherited_sig_ign_for_sigint_alone() {
    let n = Signal::Int.as_raw().unwrap();
    // SAFETY: a zeroed sigaction with SIG_IGN and an empty mask is valid to install.
    unsafe {
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        assert_eq!(libc::sigaction(n, &ign, std::ptr::null_mut()), 0);
    }
    let r = Reactor::new().unwrap();
    let by_timer = Rc::new(Cell::new(false));
    let (bt, r2) = (by_timer.clone(), r.clone());
    r.call_when_running(move || {
        raise(Signal::Int);
        let r3 = r2.clone();
        r2.call_later(Duration::from_millis(100), move || {
            bt.set(true);
            r3.stop().unwrap();
        });
    });
    r.run().unwrap();
    assert!(
        by_timer.get(),
        "SIGINT stopped the reactor although it was ignored"
    );
    // SAFETY: querying the current action; then restoring the default for later tests.
    let now = unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(n, std::ptr::null(), &mut cur), 0);
        let dfl: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(n, &dfl, std::ptr::null_mut()), 0);
        cur.sa_sigaction
    };
    assert_eq!(
        now,
        libc::SIG_IGN,
        "the inherited disposition is left in place"
    );
}

#[cfg(unix)]
fn b7_opting_out_leaves_sigterm_alone() {
    // With handlers installed by another reactor's on_signal, SIGTERM reaches that one only.
    let watcher = Reactor::new().unwrap();
    let seen = Rc::new(Cell::new(false));
    let s = seen.clone();
    let id = watcher
        .on_signal(Signal::Term, move || s.set(true))
        .unwrap();
    let r = Reactor::new().unwrap();
    r.set_install_signal_handlers(false);
    let r2 = r.clone();
    let by_timer = Rc::new(Cell::new(false));
    let bt = by_timer.clone();
    r.call_when_running(move || {
        raise(Signal::Term);
        let r3 = r2.clone();
        r2.call_later(Duration::from_millis(20), move || {
            bt.set(true);
            r3.stop().unwrap();
        });
    });
    r.run().unwrap();
    assert!(
        by_timer.get(),
        "the opted-out reactor was not stopped by SIGTERM"
    );
    watcher.run_until(|| seen.get(), DEADLINE).unwrap();
    watcher.remove_signal_handler(id);
}

#[cfg(unix)]
static PREVIOUS: AtomicUsize = AtomicUsize::new(0);

#[cfg(unix)]
extern "C" fn previous_handler(_sig: libc::c_int) {
    PREVIOUS.fetch_add(1, Ordering::SeqCst);
}

#[cfg(unix)]
fn b7_chains_to_the_previous_handler_and_uses_sa_restart() {
    let n = Signal::Usr2.as_raw().unwrap();
    // SAFETY: a zeroed sigaction is valid (SIG_DFL, empty mask); we install a plain handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = previous_handler as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(n, &sa, std::ptr::null_mut()), 0);
    }
    let r = Reactor::new().unwrap();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    r.on_signal(Signal::Usr2, move || h.set(h.get() + 1))
        .unwrap();
    raise(Signal::Usr2);
    r.run_until(|| hits.get() == 1, DEADLINE).unwrap();
    assert_eq!(
        PREVIOUS.load(Ordering::SeqCst),
        1,
        "the previous handler still ran"
    );
    // SAFETY: querying the current action into a zeroed struct.
    let flags = unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(n, std::ptr::null(), &mut cur), 0);
        cur.sa_flags
    };
    assert_ne!(flags & libc::SA_RESTART, 0, "installed with SA_RESTART");
}

#[cfg(unix)]
fn b7_two_reactors_both_see_a_signal() {
    let a = Reactor::new().unwrap();
    let b = Reactor::new().unwrap();
    let (ha, hb) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (x, y) = (ha.clone(), hb.clone());
    a.on_signal(Signal::Hup, move || x.set(x.get() + 1))
        .unwrap();
    b.on_signal(Signal::Hup, move || y.set(y.get() + 1))
        .unwrap();
    raise(Signal::Hup);
    a.run_until(|| ha.get() == 1, DEADLINE).unwrap();
    b.run_until(|| hb.get() == 1, DEADLINE).unwrap();
}

#[cfg(unix)]
fn b7_removed_callback_is_not_called() {
    let r = Reactor::new().unwrap();
    let (kept, gone) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let (k, g) = (kept.clone(), gone.clone());
    r.on_signal(Signal::Usr1, move || k.set(k.get() + 1))
        .unwrap();
    let id = r
        .on_signal(Signal::Usr1, move || g.set(g.get() + 1))
        .unwrap();
    r.remove_signal_handler(id);
    raise(Signal::Usr1);
    r.run_until(|| kept.get() == 1, DEADLINE).unwrap();
    assert_eq!(gone.get(), 0);
}

#[cfg(unix)]
fn b7_uncatchable_signals_are_an_error() {
    let r = Reactor::new().unwrap();
    let e = r.on_signal(Signal::Kill, || {}).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(r.on_signal(Signal::Stop, || {}).is_err());
    assert!(r.on_signal(Signal::Raw(0), || {}).is_err());
}

#[cfg(unix)]
fn i1_sigpipe_at_its_default_is_ignored_so_epipe_is_an_error() {
    let n = Signal::Pipe.as_raw().unwrap();
    // SAFETY: zeroed sigaction is SIG_DFL with an empty mask; restore the default.
    unsafe {
        let dfl: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(n, &dfl, std::ptr::null_mut()), 0);
    }
    let _r = Reactor::new().unwrap();
    // SAFETY: querying the current action.
    let now = unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(n, std::ptr::null(), &mut cur), 0);
        cur.sa_sigaction
    };
    assert_eq!(now, libc::SIG_IGN);
    let (reader, mut writer) = std::io::pipe().unwrap();
    drop(reader);
    use std::io::Write;
    let e = writer.write(b"x").unwrap_err();
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe,
        "an error, and we are alive"
    );
}

#[cfg(unix)]
fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "b7_run_leaves_an_inherited_sig_ign_for_sigint_alone",
            b7_run_leaves_an_inherited_sig_ign_for_sigint_alone,
        ),
        (
            "b7_on_signal_for_term_or_int_replaces_the_default_stop_until_removed",
            b7_on_signal_for_term_or_int_replaces_the_default_stop_until_removed,
        ),
        (
            "b7_on_signal_runs_the_callback_from_the_loop_not_the_handler",
            b7_on_signal_runs_the_callback_from_the_loop_not_the_handler,
        ),
        (
            "b7_sigterm_and_sigint_stop_a_running_reactor",
            b7_sigterm_and_sigint_stop_a_running_reactor,
        ),
        (
            "b7_opting_out_leaves_sigterm_alone",
            b7_opting_out_leaves_sigterm_alone,
        ),
        (
            "b7_chains_to_the_previous_handler_and_uses_sa_restart",
            b7_chains_to_the_previous_handler_and_uses_sa_restart,
        ),
        (
            "b7_two_reactors_both_see_a_signal",
            b7_two_reactors_both_see_a_signal,
        ),
        (
            "b7_removed_callback_is_not_called",
            b7_removed_callback_is_not_called,
        ),
        (
            "b7_uncatchable_signals_are_an_error",
            b7_uncatchable_signals_are_an_error,
        ),
        (
            "i1_sigpipe_at_its_default_is_ignored_so_epipe_is_an_error",
            i1_sigpipe_at_its_default_is_ignored_so_epipe_is_an_error,
        ),
    ];
    let mut failed = 0;
    for (name, t) in tests {
        match std::panic::catch_unwind(t) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        tests.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

#[cfg(not(unix))]
fn main() {
    println!(
        "SKIPPED: signals (POSIX signal dispositions do not exist here; the Windows \
         console-event mapping is tested in torsion-reactor's unit tests)"
    );
}
