//! CONTRACT J4: what happens to live children when the reactor shuts down.

// Unix only: it signals and reaps POSIX children; Windows has tests/windows.rs.
#![cfg(unix)]

mod util;

use std::time::Duration;

use torsion_process::ProcessBuilderExt;
use torsion_transport::{ExitReason, ProcessBuilder, ProcessTransport, ShutdownPolicy, Signal};
use util::{MODES, Recorder, reactor};

fn run_and_stop(r: &torsion_reactor::Reactor) {
    r.set_install_signal_handlers(false);
    let r2 = r.clone();
    r.call_when_running(move || r2.stop().unwrap());
    r.run().unwrap();
}

#[test]
fn j4_terminate_policy_sends_term_and_reaps_before_run_returns() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::new();
        let p =
            (ProcessBuilder::new("sleep")
                .arg("100")
                .shutdown_policy(ShutdownPolicy::Terminate {
                    grace: Duration::from_secs(5),
                }))
            .spawn(&r, proto)
            .unwrap();
        run_and_stop(&r);
        assert_eq!(
            p.exit_reason().and_then(|e| e.signal()),
            Some(Signal::Term),
            "{mode:?}"
        );
        assert!(s.borrow().exited());
        assert_eq!(p.pid(), None);
    }
}

#[test]
fn j4_terminate_policy_kills_a_child_that_ignores_term() {
    for mode in MODES {
        let r = reactor(mode);
        r.set_shutdown_grace(Duration::from_secs(5));
        let (proto, _s) = Recorder::new();
        let p = (ProcessBuilder::new("/bin/sh")
            .args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
            .shutdown_policy(ShutdownPolicy::Terminate {
                grace: Duration::from_millis(100),
            }))
        .spawn(&r, proto)
        .unwrap();
        // Wait until the trap is set before stopping.
        let s = _s.clone();
        r.run_until(|| s.borrow().output(1) == b"ready\n", util::DEADLINE)
            .unwrap();
        run_and_stop(&r);
        assert_eq!(
            p.exit_reason().and_then(|e| e.signal()),
            Some(Signal::Kill),
            "{mode:?}"
        );
    }
}

#[test]
fn j4_leave_policy_is_the_default_and_leaves_the_child_running() {
    let r = reactor(torsion_process::ReapMode::Auto);
    let (proto, _s) = Recorder::new();
    let p = (ProcessBuilder::new("sleep").arg("100"))
        .spawn(&r, proto)
        .unwrap();
    let pid = p.pid().unwrap() as i32;
    run_and_stop(&r);
    assert_eq!(p.exit_reason(), None, "not reaped by the reactor");
    // SAFETY: signal 0 only checks that our child still exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "still running");
    // Clean up: kill and reap it ourselves.
    let mut status = 0;
    // SAFETY: our own child; waitpid reaps it.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
    }
    assert!(!matches!(p.exit_reason(), Some(ExitReason::ProcessDone)));
}
