//! Tests that change process-wide state — signal dispositions and masks, fds 0–5 — or
//! that count this process's fds and children. `harness = false`: they run one after
//! another on the main thread, with no test-harness threads to race.
//!
//! Unix only (fds 0–5, signal masks, `/proc`, the POSIX `raw` spawn layer): every item is
//! `#[cfg(unix)]`, and elsewhere `main` only says it skipped (a `harness = false` binary
//! needs a `main`, so a crate-level `#![cfg(unix)]` would not build).

#[cfg(unix)]
mod raw_util;

#[cfg(unix)]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[cfg(unix)]
use raw_util::{clone_options, fork_options, no_children, open_fds, read_to_end, spawn};
#[cfg(unix)]
use torsion_process::raw::{self, RawSpawnOptions};
#[cfg(unix)]
use torsion_transport::{ChildFd, ExitReason, ProcessBuilder, PtyOptions, SpawnStep};

#[cfg(unix)]
fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "g1_nul_in_argument_spawns_nothing",
            g1_nul_in_argument_spawns_nothing,
        ),
        (
            "g8_failed_spawns_leak_no_fd_and_no_zombie",
            g8_failed_spawns_leak_no_fd_and_no_zombie,
        ),
        (
            "g8_successful_spawns_leak_no_fd_and_no_zombie",
            g8_successful_spawns_leak_no_fd_and_no_zombie,
        ),
        ("h1_fd_swap", h1_fd_swap),
        ("h1_fd_rotation", h1_fd_rotation),
        (
            "g6_inherited_fd_is_not_modified",
            g6_inherited_fd_is_not_modified,
        ),
        (
            "h2_parent_signal_state_is_reset_in_child",
            h2_parent_signal_state_is_reset_in_child,
        ),
    ];
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed", tests.len());
}

#[cfg(unix)]
fn both() -> [RawSpawnOptions; 2] {
    [clone_options(), fork_options()]
}

#[cfg(unix)]
fn g1_nul_in_argument_spawns_nothing() {
    let before = open_fds();
    let e =
        raw::spawn_child(&ProcessBuilder::new("echo").arg("a\0b"), &clone_options()).unwrap_err();
    assert_eq!(e.step, SpawnStep::InvalidInput);
    assert!(no_children(), "nothing was spawned");
    assert_eq!(open_fds(), before);
}

#[cfg(unix)]
fn g8_failed_spawns_leak_no_fd_and_no_zombie() {
    let before = open_fds();
    for i in 0..200 {
        let o = &both()[i % 2];
        let (b, step) = match (i / 2) % 5 {
            0 => (ProcessBuilder::new("/nonexistent/prog"), SpawnStep::Exec),
            1 => (
                ProcessBuilder::new("true").cwd("/nonexistent"),
                SpawnStep::Chdir,
            ),
            2 => (
                ProcessBuilder::new("torsion-no-such-prog"),
                SpawnStep::Lookup,
            ),
            3 => (
                ProcessBuilder::new("true")
                    .child_fd(0, ChildFd::Null)
                    .child_fd(1, ChildFd::Read)
                    .child_fd(2, ChildFd::Inherit(29_999)),
                SpawnStep::Setup,
            ),
            _ => (
                ProcessBuilder::new("true")
                    .pty(PtyOptions::default())
                    .cwd("/nonexistent"),
                SpawnStep::Chdir,
            ),
        };
        let e = raw::spawn_child(&b, o).unwrap_err();
        assert_eq!(e.step, step, "{e}");
    }
    assert_eq!(
        open_fds(),
        before,
        "every fd the failed spawns created is closed"
    );
    assert!(no_children(), "every failed child was reaped");
}

#[cfg(unix)]
fn g8_successful_spawns_leak_no_fd_and_no_zombie() {
    let before = open_fds();
    for i in 0..500 {
        let o = &both()[i % 2];
        let b = if i % 10 == 9 {
            ProcessBuilder::new("true").pty(PtyOptions::default())
        } else {
            ProcessBuilder::new("true")
        };
        let mut child = spawn(&b, o);
        assert_eq!(child.wait().reason, ExitReason::ProcessDone);
    }
    assert_eq!(open_fds(), before, "no fd left behind");
    assert!(no_children(), "no zombie left behind");
}

#[cfg(unix)]
/// A `CLOEXEC` pipe with both ends numbered 10 or above, clear of the fds the tests
/// place by number.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is valid for two ints. (pipe + FD_CLOEXEC rather than pipe2, which
    // macOS lacks; this binary is single-threaded, so nothing can fork in between.)
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    for fd in fds {
        // SAFETY: F_SETFD on an fd we just created.
        let rc = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0);
    }
    // SAFETY: both fds were just created and are owned here only.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    (save(r.as_raw_fd()), save(w.as_raw_fd()))
}

#[cfg(unix)]
/// `dup2(from, to)`; `to` is then owned by the caller of this test helper.
fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: plain fd numbers; this single-threaded binary owns fds 0–5.
    assert_eq!(unsafe { libc::dup2(from, to) }, to);
}

#[cfg(unix)]
fn save(fd: RawFd) -> OwnedFd {
    // SAFETY: F_DUPFD_CLOEXEC only reads the fd table; the result is new and ours.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10) };
    assert!(new >= 10);
    // SAFETY: as above.
    unsafe { OwnedFd::from_raw_fd(new) }
}

#[cfg(unix)]
fn fd_flags(fd: RawFd) -> i32 {
    // SAFETY: F_GETFD only reads the fd table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) }
}

#[cfg(unix)]
/// `{0: Inherit(1), 1: Inherit(0)}`: the child's stdin and stdout are the parent's
/// stdout and stdin, swapped.
fn h1_fd_swap() {
    for o in both() {
        let (saved0, saved1) = (save(0), save(1));
        let (p_read, p_write) = pipe();
        let (q_read, q_write) = pipe();
        dup2(p_write.as_raw_fd(), 0);
        dup2(q_write.as_raw_fd(), 1);
        let flags = (fd_flags(0), fd_flags(1));
        let b = ProcessBuilder::new("sh")
            .args(["-c", "echo out; echo in >&0"])
            .child_fd(0, ChildFd::Inherit(1))
            .child_fd(1, ChildFd::Inherit(0));
        let result = raw::spawn_child(&b, &o);
        let flags_after = (fd_flags(0), fd_flags(1));
        dup2(saved0.as_raw_fd(), 0);
        dup2(saved1.as_raw_fd(), 1);
        drop((p_write, q_write, saved0, saved1));
        let mut child = raw_util::Child::adopt(result.expect("spawn"));
        assert_eq!(child.wait().reason, ExitReason::ProcessDone);
        assert_eq!(flags, flags_after, "the parent's fds are not modified");
        assert_eq!(read_to_end(p_read), b"out\n", "child fd 1 is parent fd 0");
        assert_eq!(read_to_end(q_read), b"in\n", "child fd 0 is parent fd 1");
    }
}

#[cfg(unix)]
/// `{3: Inherit(4), 4: Inherit(5), 5: Inherit(3)}`: a cycle through three targets.
fn h1_fd_rotation() {
    for fd in 3..=5 {
        assert!(
            !raw_util::raw_is_open(fd),
            "fd {fd} must be free in this binary"
        );
    }
    for o in both() {
        let pipes = [pipe(), pipe(), pipe()];
        for (i, (_, w)) in pipes.iter().enumerate() {
            dup2(w.as_raw_fd(), 3 + i as RawFd);
        }
        let b = ProcessBuilder::new("sh")
            .args(["-c", "echo three >&3; echo four >&4; echo five >&5"])
            .child_fd(3, ChildFd::Inherit(4))
            .child_fd(4, ChildFd::Inherit(5))
            .child_fd(5, ChildFd::Inherit(3));
        let result = raw::spawn_child(&b, &o);
        for fd in 3..=5 {
            // SAFETY: fds 3–5 are the dup2 copies made above, owned by this test.
            unsafe { libc::close(fd) };
        }
        let mut child = raw_util::Child::adopt(result.expect("spawn"));
        assert_eq!(child.wait().reason, ExitReason::ProcessDone);
        let [(a, aw), (b, bw), (c, cw)] = pipes;
        drop((aw, bw, cw));
        assert_eq!(read_to_end(a), b"five\n", "child fd 5 is parent fd 3");
        assert_eq!(read_to_end(b), b"three\n", "child fd 3 is parent fd 4");
        assert_eq!(read_to_end(c), b"four\n", "child fd 4 is parent fd 5");
    }
}

#[cfg(unix)]
/// An inherited fd keeps its flags in the parent, stays open, and reaches the child
/// without `CLOEXEC` even at its own number.
fn g6_inherited_fd_is_not_modified() {
    for o in both() {
        let (r, high) = pipe();
        // At a number the shell can redirect to (below 10), still CLOEXEC.
        let at = 6;
        // SAFETY: plain fd numbers; fd 6 is free in this binary and owned by `w` below.
        let placed = unsafe { libc::dup2(high.as_raw_fd(), at) };
        assert_eq!(placed, at);
        // SAFETY: F_SETFD on the fd just placed (dup3 with O_CLOEXEC is Linux-only).
        let rc = unsafe { libc::fcntl(at, libc::F_SETFD, libc::FD_CLOEXEC) };
        assert_eq!(rc, 0);
        // SAFETY: as above: `at` was just made and is owned here only.
        let w = unsafe { OwnedFd::from_raw_fd(at) };
        drop(high);
        let b = ProcessBuilder::new("sh")
            .args(["-c", &format!("echo same >&{at}")])
            .child_fd(at, ChildFd::Inherit(at));
        let before = fd_flags(at);
        let mut child = spawn(&b, &o);
        assert_eq!(fd_flags(at), before);
        assert_ne!(before & libc::FD_CLOEXEC, 0);
        drop(w);
        assert_eq!(child.wait().reason, ExitReason::ProcessDone);
        assert_eq!(read_to_end(r), b"same\n");
    }
}

#[cfg(unix)]
/// CONTRACT H2: with SIGUSR2 ignored, SIGINT handled and SIGUSR1/SIGTERM blocked here, the
/// child starts with every signal at its default and an empty mask.
fn h2_parent_signal_state_is_reset_in_child() {
    extern "C" fn on_int(_: libc::c_int) {}
    // SAFETY: this binary is single-threaded; the handler does nothing.
    unsafe {
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
        libc::signal(libc::SIGINT, on_int as *const () as libc::sighandler_t);
    }
    // SAFETY: all-zero bytes are a valid sigset_t, filled by the calls below.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t throughout.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let parent = status_masks(&std::fs::read_to_string("/proc/self/status").expect("status"));
    let bit = |sig: libc::c_int| 1u64 << (sig - 1);
    assert_eq!(
        parent.0 & (bit(libc::SIGUSR1) | bit(libc::SIGTERM)),
        bit(libc::SIGUSR1) | bit(libc::SIGTERM)
    );
    assert_ne!(parent.1 & bit(libc::SIGUSR2), 0);
    for o in both() {
        let b = ProcessBuilder::new("cat")
            .arg("/proc/self/status")
            .child_fd(1, ChildFd::Read);
        let mut child = spawn(&b, &o);
        let out = String::from_utf8(read_to_end(child.take_pipe(1))).expect("utf-8");
        assert_eq!(child.wait().reason, ExitReason::ProcessDone);
        let (blocked, ignored, caught) = status_masks(&out);
        assert_eq!(blocked, 0, "empty mask in the child: {out}");
        assert_eq!(
            ignored, 0,
            "no ignored signal in the child (SIGUSR2, SIGPIPE): {out}"
        );
        assert_eq!(caught, 0, "{out}");
    }
    let after = status_masks(&std::fs::read_to_string("/proc/self/status").expect("status"));
    assert_eq!(after, parent, "the parent's signal state is unchanged");
    // SAFETY: restores what this test changed; single-threaded.
    unsafe {
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGUSR2, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}

#[cfg(unix)]
/// `(SigBlk, SigIgn, SigCgt)` from a `/proc/<pid>/status` text.
fn status_masks(status: &str) -> (u64, u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex mask"))
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("SigBlk:"), field("SigIgn:"), field("SigCgt:"))
}

#[cfg(not(unix))]
fn main() {
    println!(
        "SKIPPED: process_wide (POSIX fds, signal masks and spawn layer; not on this platform)"
    );
}
