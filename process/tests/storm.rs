//! 5,000 spawns with 200 alive at once leave no zombie and no fd (issue 4). Its own test
//! binary: the zombie check looks at every child of this process.

// Unix only: it counts fds and zombies of POSIX children.
#![cfg(unix)]

mod util;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use torsion_process::{Process, ProcessBuilderExt};
use torsion_transport::{ProcessBuilder, ProcessTransport};
use util::{DEADLINE, MODES, Recorder, Shared, reactor};

/// True if this process has a child that exited and was not reaped.
fn has_zombie() -> bool {
    // SAFETY: siginfo_t is a plain C struct; all-zero bytes are a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: WNOWAIT only observes; `info` is valid for writes.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is valid to read after a successful waitid.
    rc == 0 && unsafe { info.si_pid() } != 0
}

#[test]
#[ignore = "stress test (6,000 spawns, ~7 s): .ci/run runs it with --ignored"]
fn j2_five_thousand_spawns_two_hundred_alive_no_zombie_no_fd() {
    for (i, mode) in MODES.into_iter().enumerate() {
        let total = if i == 0 { 5000 } else { 1000 };
        let r = reactor(mode);
        // Warm up lazily created fds (signal pipe, pidfd probe) before counting.
        let (proto, s) = Recorder::new();
        (ProcessBuilder::new("true")).spawn(&r, proto).unwrap();
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        let fds_before = util::open_fds();

        let mut alive: VecDeque<(Rc<Process>, Rc<RefCell<Shared>>)> = VecDeque::new();
        let mut done: Vec<Rc<RefCell<Shared>>> = Vec::new();
        let mut spawned = 0;
        let mut peak = 0;
        while spawned < total || !alive.is_empty() {
            while spawned < total && alive.len() < 200 {
                let (proto, s) = Recorder::new();
                let p = (ProcessBuilder::new("cat")).spawn(&r, proto).unwrap();
                alive.push_back((p, s));
                spawned += 1;
            }
            peak = peak.max(alive.len());
            // Let the oldest go: closing its stdin makes cat exit.
            let (p, s) = alive.pop_front().unwrap();
            p.close_stdin().unwrap();
            r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
            done.push(s);
        }
        assert_eq!(peak, 200);
        assert_eq!(done.len(), total);
        assert!(
            done.iter()
                .all(|s| s.borrow().end_reason().is_some_and(|r| r.is_success()))
        );
        r.iterate(std::time::Duration::ZERO).unwrap();
        assert!(!has_zombie(), "{mode:?}: a zombie is left");
        assert_eq!(util::open_fds(), fds_before, "{mode:?}: an fd is left");
    }
}
