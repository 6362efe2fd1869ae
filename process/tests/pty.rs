//! Children on a pseudo-terminal (CONTRACT L1, L2), on both back ends.

// Unix only: pseudo-terminals and the `raw` spawn layer are POSIX.
#![cfg(unix)]

mod raw_util;

use std::os::fd::{AsFd, AsRawFd};

use raw_util::{clone_options, fork_options, read_to_end, spawn};
use torsion_process::raw::{self, RawSpawnOptions};
use torsion_transport::{ExitReason, ProcessBuilder, PtyOptions};

#[test]
fn l1_child_on_fresh_pty_clone() {
    l1_child_on_fresh_pty(&clone_options());
}

#[test]
fn l1_child_on_fresh_pty_fork() {
    l1_child_on_fresh_pty(&fork_options());
}

#[test]
fn l1_child_on_callers_pty_pair_clone() {
    l1_child_on_callers_pty_pair(&clone_options());
}

#[test]
fn l1_child_on_callers_pty_pair_fork() {
    l1_child_on_callers_pty_pair(&fork_options());
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, session,
/// tty_nr, tpgid, ...
fn stat_fields(line: &str) -> Vec<i64> {
    let rest = &line[line.rfind(')').expect("comm") + 2..];
    rest.split(' ')
        .skip(1)
        .take(5)
        .map(|f| f.parse().expect("number"))
        .collect()
}

fn l1_child_on_fresh_pty(o: &RawSpawnOptions) {
    let script = "test -t 0 && test -t 1 && test -t 2 && echo TTY; stty size; cat /proc/$$/stat";
    let b = ProcessBuilder::new("sh")
        .args(["-c", script])
        .pty(PtyOptions::size(30, 100));
    let mut child = spawn(&b, o);
    assert!(child.inner.pipes.is_empty());
    let master = child
        .inner
        .pty_master
        .take()
        .expect("a fresh PTY has a master");
    let (fd_flags, fl_flags) = raw_util::fd_flags(master.as_fd());
    assert_ne!(fd_flags & libc::FD_CLOEXEC, 0);
    assert_ne!(fl_flags & libc::O_NONBLOCK, 0);
    assert_eq!(
        torsion_pty::window_size(master.as_fd()).expect("winsize"),
        (30, 100)
    );
    let out = String::from_utf8(read_to_end(master)).expect("utf-8");
    let r = child.wait();
    assert_eq!(r.reason, ExitReason::ProcessDone, "{out}");
    // The line discipline turns \n into \r\n (L3).
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert_eq!(lines[0], "TTY", "isatty(0..2): {out:?}");
    assert_eq!(lines[1], "30 100", "window size before exec: {out:?}");
    let f = stat_fields(lines[2]);
    let (pid, pgrp, session, tty_nr, tpgid) = (i64::from(child.pid()), f[1], f[2], f[3], f[4]);
    assert_eq!(session, pid, "session leader: {out:?}");
    assert_eq!(pgrp, pid, "process group leader: {out:?}");
    assert_ne!(tty_nr, 0, "has a controlling terminal: {out:?}");
    assert_eq!(tpgid, pgrp, "in the terminal's foreground group: {out:?}");
}

fn l1_child_on_callers_pty_pair(o: &RawSpawnOptions) {
    let (master, slave) = torsion_pty::open_pty().expect("open_pty");
    let mut options = PtyOptions::size(12, 34);
    options.pair = Some((master.as_raw_fd(), slave.as_raw_fd()));
    let b = ProcessBuilder::new("sh")
        .args(["-c", "stty size; test -t 0 && echo TTY"])
        .pty(options);
    let mut child = spawn(&b, o);
    assert!(
        child.inner.pty_master.is_none(),
        "the caller keeps its own master"
    );
    // The caller's fds are neither closed nor changed.
    assert!(raw_util::raw_is_open(master.as_raw_fd()) && raw_util::raw_is_open(slave.as_raw_fd()));
    assert_eq!(raw_util::fd_flags(master.as_fd()).1 & libc::O_NONBLOCK, 0);
    drop(slave);
    raw::set_nonblocking(master.as_fd(), true).expect("nonblocking");
    let out = read_to_end(master);
    assert_eq!(child.wait().reason, ExitReason::ProcessDone);
    assert_eq!(String::from_utf8_lossy(&out), "12 34\r\nTTY\r\n");
}
