//! 500 PTY spawns leave no fd and no zombie; failed spawns leave no fd. Its own test
//! binary, with one test, so counting this process's fds and children is not disturbed by
//! other tests running in parallel threads.

// Unix only: pseudo-terminals are POSIX (torsion-pty is empty elsewhere), and it counts fds
// and zombies.
#![cfg(unix)]

mod util;

use std::time::Instant;

use torsion_process::{ProcessBuilderExt, ReapMode};
use torsion_transport::{ExitReason, ProcessBuilder, PtyOptions};
use util::{DEADLINE, Recorder, children, open_fds, reactor};

const SPAWNS: usize = 500;
/// Children alive at once.
const BATCH: usize = 25;

fn storm(mode: ReapMode) {
    let r = reactor(mode);
    let start = Instant::now();
    let mut done = 0;
    while done < SPAWNS {
        let mut batch = Vec::new();
        for i in 0..BATCH.min(SPAWNS - done) {
            let (p, s) = Recorder::new();
            let b = ProcessBuilder::new("sh")
                .args(["-c", &format!("echo {i}")])
                .pty(PtyOptions::default());
            let t = b
                .spawn(&r, p)
                .unwrap_or_else(|e| panic!("spawn {done}: {e}"));
            batch.push((t, s, format!("{i}\r\n")));
        }
        r.run_until(
            || batch.iter().all(|(_, s, _)| s.borrow().ended()),
            DEADLINE,
        )
        .unwrap_or_else(|_| panic!("a batch did not end within {DEADLINE:?} ({mode:?})"));
        for (t, s, want) in &batch {
            assert_eq!(&s.borrow().text(), want);
            assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
            assert!(t.master_closed());
            util::assert_pty_f_order(&s.borrow().events);
        }
        done += batch.len();
    }
    eprintln!(
        "{SPAWNS} PTY spawns ({mode:?}) in {:?}: {:?} each",
        start.elapsed(),
        start.elapsed() / SPAWNS as u32
    );
}

#[test]
fn five_hundred_pty_spawns_leave_no_fd_and_no_zombie() {
    // Warm up: the reactor, the SIGCHLD pipe and lazily opened fds exist before counting.
    storm_once();
    let fds = open_fds();
    assert!(fds > 0, "/proc/self/fd is readable");
    for mode in [ReapMode::Auto, ReapMode::Sigchld] {
        storm(mode);
        assert_eq!(open_fds(), fds, "no fd left behind ({mode:?})");
        assert_eq!(children(), Vec::<u32>::new(), "no zombie ({mode:?})");
    }

    // Failed spawns close what they opened (CONTRACT G8).
    let r = reactor(ReapMode::Auto);
    let fds = open_fds();
    for _ in 0..50 {
        for b in [
            ProcessBuilder::new("/nonexistent/program").pty(PtyOptions::default()),
            ProcessBuilder::new("true")
                .cwd("/nonexistent/dir")
                .pty(PtyOptions::default()),
        ] {
            let (p, _s) = Recorder::new();
            assert!(b.spawn(&r, p).is_err());
        }
    }
    assert_eq!(open_fds(), fds, "failed spawns leave no fd");
    assert_eq!(
        children(),
        Vec::<u32>::new(),
        "failed spawns leave no zombie"
    );
}

fn storm_once() {
    let r = reactor(ReapMode::Sigchld);
    let (p, s) = Recorder::new();
    let _t = ProcessBuilder::new("true")
        .pty(PtyOptions::default())
        .spawn(&r, p)
        .unwrap();
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
}
