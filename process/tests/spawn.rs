//! `raw::spawn_child`, `try_wait` and `send_signal` against real children (CONTRACT F5,
//! G, H, J1). Most tests run on both back ends: `clone` (the Linux default) and the
//! portable `fork` one.

// Unix only: it drives the POSIX `raw` spawn layer (clone/fork, fd maps, signals).
#![cfg(unix)]

mod raw_util;

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use raw_util::{clone_options, fork_options, read_to_end, sh, spawn, spawn_err, write_and_close};
use torsion_process::raw::{self, RawSpawnOptions};
use torsion_transport::{ChildFd, ExitReason, ProcessBuilder, Signal, SpawnStep};

/// Run `body` as two tests: `<name>_clone` and `<name>_fork`.
macro_rules! both_back_ends {
    ($($name:ident),* $(,)?) => {
        mod clone_back_end {
            $(#[test] fn $name() { super::$name(&super::clone_options()); })*
        }
        mod fork_back_end {
            $(#[test] fn $name() { super::$name(&super::fork_options()); })*
        }
    };
}

both_back_ends!(
    g8_missing_program_is_exec_error,
    g3_missing_program_on_path_is_lookup_error,
    g8_not_executable_is_eacces,
    g4_bad_cwd_is_chdir_error,
    g4_cwd_is_applied,
    g6_inherit_of_closed_fd_is_setup_error,
    g6_six_fd_map,
    h1_child_sees_exactly_the_mapped_fds,
    h3_parent_ends_nonblocking_child_ends_blocking,
    g1_arguments_round_trip_every_byte,
    g2_env_clear_gives_empty_environment,
    g2_non_utf8_env_passes_through,
    f5_exit_code,
    f5_killed_by_signal,
    j1_send_signal_after_reap_is_esrch,
    g5_uid_gid_change_as_root,
);

fn g8_missing_program_is_exec_error(o: &RawSpawnOptions) {
    let e = spawn_err(&ProcessBuilder::new("/nonexistent/torsion/prog"), o);
    assert_eq!(e.step, SpawnStep::Exec, "{e}");
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
    assert_eq!(e.program, OsStr::new("/nonexistent/torsion/prog"));
}

fn g3_missing_program_on_path_is_lookup_error(o: &RawSpawnOptions) {
    let e = spawn_err(&ProcessBuilder::new("torsion-no-such-program-xyz"), o);
    assert_eq!(e.step, SpawnStep::Lookup, "{e}");
    assert_eq!(e.errno(), Some(libc::ENOENT), "{e}");
}

fn g8_not_executable_is_eacces(o: &RawSpawnOptions) {
    let dir = raw_util::TempDir::new("noexec");
    let path = dir.file("tool", "#!/bin/sh\necho hi\n", 0o644);
    let e = spawn_err(&ProcessBuilder::new(&path), o);
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Exec, Some(libc::EACCES)),
        "{e}"
    );
    // Found on the child's PATH but not executable: the lookup says so.
    let b = ProcessBuilder::new("tool").env("PATH", &dir.0);
    let e = spawn_err(&b, o);
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Lookup, Some(libc::EACCES)),
        "{e}"
    );
}

#[test]
fn g3_program_is_searched_on_the_childs_path() {
    let dir = raw_util::TempDir::new("path");
    dir.file("torsion-g3-tool", "#!/bin/sh\necho found \"$0\"\n", 0o755);
    let b = ProcessBuilder::new("torsion-g3-tool")
        .env("PATH", &dir.0)
        .child_fd(1, ChildFd::Read);
    let (out, r) = spawn(&b, &clone_options()).output();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    // argv[0] is verbatim (G1); the kernel passes the resolved path to the interpreter.
    let expected = format!("found {}/torsion-g3-tool\n", dir.0.display());
    assert_eq!(String::from_utf8_lossy(&out), expected);
}

fn g4_bad_cwd_is_chdir_error(o: &RawSpawnOptions) {
    let b = ProcessBuilder::new("/bin/true").cwd("/nonexistent/torsion-dir");
    let e = spawn_err(&b, o);
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Chdir, Some(libc::ENOENT)),
        "{e}"
    );
}

fn g4_cwd_is_applied(o: &RawSpawnOptions) {
    let (out, _) = spawn(&sh("pwd").cwd("/usr"), o).output();
    assert_eq!(out, b"/usr\n");
}

#[test]
fn g1_nul_in_argument_is_invalid_input() {
    let e = spawn_err(&ProcessBuilder::new("echo").arg("a\0b"), &clone_options());
    assert_eq!(e.step, SpawnStep::InvalidInput);
    assert!(e.source.is_none());
    let e = spawn_err(
        &ProcessBuilder::new("echo").env("K", "v\0"),
        &clone_options(),
    );
    assert_eq!(e.step, SpawnStep::InvalidInput);
}

#[test]
fn h4_new_session_with_a_process_group_is_invalid_input() {
    let b = ProcessBuilder::new("true")
        .new_session(true)
        .process_group(1);
    let e = spawn_err(&b, &clone_options());
    assert_eq!(e.step, SpawnStep::InvalidInput, "{e}");
}

fn g6_inherit_of_closed_fd_is_setup_error(o: &RawSpawnOptions) {
    let closed = 29_999;
    assert!(!raw_util::raw_is_open(closed));
    let b = ProcessBuilder::new("true")
        .child_fd(0, ChildFd::Write)
        .child_fd(1, ChildFd::Inherit(closed));
    let e = spawn_err(&b, o);
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Setup, Some(libc::EBADF)),
        "{e}"
    );
    assert!(e.to_string().contains("29999"), "{e}");
}

fn g6_six_fd_map(o: &RawSpawnOptions) {
    let script = "read a; read b <&3; read c <&5; printf '%s-%s-%s\\n' \"$a\" \"$b\" \"$c\"; \
                  echo four >&4; printf '' >&2 || exit 9";
    let b = ProcessBuilder::new("sh")
        .args(["-c", script])
        .child_fd(0, ChildFd::Write)
        .child_fd(1, ChildFd::Read)
        .child_fd(2, ChildFd::Inherit(2))
        .child_fd(3, ChildFd::Write)
        .child_fd(4, ChildFd::Read)
        .child_fd(5, ChildFd::Write);
    let mut child = spawn(&b, o);
    let dirs: Vec<(i32, ChildFd)> = child
        .inner
        .pipes
        .iter()
        .map(|p| (p.child_fd, p.direction))
        .collect();
    assert_eq!(
        dirs,
        [
            (0, ChildFd::Write),
            (1, ChildFd::Read),
            (3, ChildFd::Write),
            (4, ChildFd::Read),
            (5, ChildFd::Write)
        ]
    );
    write_and_close(child.take_pipe(0), b"A\n");
    write_and_close(child.take_pipe(3), b"B\n");
    write_and_close(child.take_pipe(5), b"C\n");
    let four = read_to_end(child.take_pipe(4));
    let (out, r) = child.output();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    assert_eq!(out, b"A-B-C\n");
    assert_eq!(four, b"four\n");
}

fn h1_child_sees_exactly_the_mapped_fds(o: &RawSpawnOptions) {
    // A parent fd without CLOEXEC: only the child's closing step keeps it out.
    let null = std::fs::File::open("/dev/null").expect("open /dev/null");
    let leak_plain = dup_without_cloexec(null.as_fd());
    for (map, want) in [
        (vec![(1, ChildFd::Read)], "1\n"),
        (
            vec![(0, ChildFd::Null), (1, ChildFd::Read), (2, ChildFd::Null)],
            "0\n1\n2\n",
        ),
        (
            vec![
                (1, ChildFd::Read),
                (5, ChildFd::Null),
                (7, ChildFd::Inherit(leak_plain)),
            ],
            "1\n5\n7\n",
        ),
    ] {
        let b = ProcessBuilder::new("sh")
            .args(["-c", "ls /proc/$$/fd"])
            .child_fds(map.into_iter().collect());
        let (out, _) = spawn(&b, o).output();
        assert_eq!(String::from_utf8_lossy(&out), want);
    }
    // SAFETY: `leak_plain` was returned by dup and is owned by this test only.
    unsafe { libc::close(leak_plain) };
}

fn dup_without_cloexec(fd: std::os::fd::BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    // SAFETY: dup only reads the fd table; the fd is open for the borrow.
    let new = unsafe { libc::dup(fd.as_raw_fd()) };
    assert!(new >= 0);
    new
}

fn h3_parent_ends_nonblocking_child_ends_blocking(o: &RawSpawnOptions) {
    let b = ProcessBuilder::new("sh")
        .args([
            "-c",
            "cat /proc/self/fdinfo/0 >&3; cat /proc/self/fdinfo/1 >&3",
        ])
        .child_fd(0, ChildFd::Write)
        .child_fd(1, ChildFd::Read)
        .child_fd(3, ChildFd::Read);
    let mut child = spawn(&b, o);
    for p in &child.inner.pipes {
        let (fd_flags, fl_flags) = raw_util::fd_flags(p.parent_end.as_fd());
        assert_ne!(
            fd_flags & libc::FD_CLOEXEC,
            0,
            "parent end of {} is CLOEXEC",
            p.child_fd
        );
        assert_ne!(
            fl_flags & libc::O_NONBLOCK,
            0,
            "parent end of {} is non-blocking",
            p.child_fd
        );
    }
    let info = String::from_utf8(read_to_end(child.take_pipe(3))).expect("utf-8");
    drop(child.take_pipe(0));
    child.output();
    let flags: Vec<i32> = info
        .lines()
        .filter_map(|l| l.strip_prefix("flags:"))
        .map(|v| i32::from_str_radix(v.trim(), 8).expect("octal flags"))
        .collect();
    assert_eq!(flags.len(), 2, "{info}");
    for f in flags {
        assert_eq!(f & libc::O_NONBLOCK, 0, "child end is blocking: {info}");
    }
}

fn g1_arguments_round_trip_every_byte(o: &RawSpawnOptions) {
    let every: Vec<u8> = (1..=255u8).collect();
    let args: Vec<OsString> = [
        every.clone(),
        b"".to_vec(),
        b"'single' \"double\" `back` $HOME ${X} \\ ; & | * ? [a] ~ # !".to_vec(),
        b" leading and trailing ".to_vec(),
        b"new\nline\ttab\r".to_vec(),
        b"-n".to_vec(),
        vec![0xff, 0xfe, 0x80],
    ]
    .into_iter()
    .map(OsString::from_vec)
    .collect();
    let b = sh("printf '%s\\0' \"$@\"").args(&args);
    let (out, r) = spawn(&b, o).output();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    let got: Vec<&[u8]> = out.split(|b| *b == 0).collect();
    assert_eq!(got.len(), args.len() + 1, "one NUL after each argument");
    for (want, got) in args.iter().zip(&got) {
        assert_eq!(want.as_bytes(), *got);
    }
}

fn g2_env_clear_gives_empty_environment(o: &RawSpawnOptions) {
    // `env` is looked up on the parent's PATH: the cleared child has none (G3).
    let b = ProcessBuilder::new("env")
        .env_clear()
        .child_fd(1, ChildFd::Read);
    let (out, r) = spawn(&b, o).output();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    assert_eq!(String::from_utf8_lossy(&out), "");
    // Inherited by default; env_remove takes one out.
    let b = ProcessBuilder::new("env").child_fd(1, ChildFd::Read);
    let (out, _) = spawn(&b, o).output();
    assert!(out.split(|c| *c == b'\n').any(|l| l.starts_with(b"PATH=")));
    let (out, _) = spawn(&b.clone().env_remove("PATH"), o).output();
    assert!(!out.split(|c| *c == b'\n').any(|l| l.starts_with(b"PATH=")));
}

fn g2_non_utf8_env_passes_through(o: &RawSpawnOptions) {
    let key = OsStr::from_bytes(b"K\xe9Y");
    let value = OsStr::from_bytes(b"\xff\xfe v=al\x01ue");
    let b = ProcessBuilder::new("/usr/bin/env")
        .env_clear()
        .env(key, value)
        .env("PLAIN", "x")
        .child_fd(1, ChildFd::Read);
    let (out, _) = spawn(&b, o).output();
    let mut lines: Vec<&[u8]> = out
        .split(|c| *c == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    assert_eq!(lines, [&b"K\xe9Y=\xff\xfe v=al\x01ue"[..], b"PLAIN=x"]);
}

fn f5_exit_code(o: &RawSpawnOptions) {
    let r = spawn(
        &ProcessBuilder::new("sh")
            .args(["-c", "exit 23"])
            .child_fds(Default::default()),
        o,
    )
    .wait();
    assert_eq!(r.reason.exit_code(), Some(23));
    assert_eq!(r.reason.signal(), None);
    assert!(libc::WIFEXITED(r.status) && libc::WEXITSTATUS(r.status) == 23);
    assert!(matches!(r.reason, ExitReason::ProcessTerminated { status, .. } if status == r.status));
    let r = spawn(
        &ProcessBuilder::new("true").child_fds(Default::default()),
        o,
    )
    .wait();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    assert_eq!(r.status, 0);
}

fn f5_killed_by_signal(o: &RawSpawnOptions) {
    for signal in [Signal::Kill, Signal::Term, Signal::Hup, Signal::Int] {
        for use_pidfd in [true, false] {
            let b = ProcessBuilder::new("sleep")
                .arg("1000")
                .child_fds(Default::default());
            let mut child = spawn(&b, o);
            let pidfd = child.pidfd().filter(|_| use_pidfd);
            raw::send_signal(child.pid(), pidfd, signal).expect("send_signal");
            let r = child.wait();
            assert_eq!(
                r.reason.signal(),
                Some(signal),
                "{signal} via pidfd={use_pidfd}"
            );
            assert_eq!(r.reason.exit_code(), None);
            assert!(libc::WIFSIGNALED(r.status));
            assert_eq!(Some(libc::WTERMSIG(r.status)), signal.as_raw());
        }
    }
}

fn j1_send_signal_after_reap_is_esrch(o: &RawSpawnOptions) {
    let mut child = spawn(
        &ProcessBuilder::new("true").child_fds(Default::default()),
        o,
    );
    // A zombie not yet reaped still accepts a signal.
    if child.pidfd().is_some() {
        child.wait_exited_unreaped();
        raw::send_signal(child.pid(), child.pidfd(), Signal::Term).expect("zombie accepts");
    }
    let r = child.wait();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    if let Some(fd) = child.pidfd() {
        let e = raw::send_signal(child.pid(), Some(fd), Signal::Term).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "pidfd: {e}");
    }
    let e = raw::send_signal(child.pid(), None, Signal::Term).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ESRCH), "kill: {e}");
    // And a second wait says ECHILD (the transport's "exit status unknown").
    let e = raw::try_wait(child.pid()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECHILD));
}

#[test]
fn j1_pid_zero_and_unnamed_signals_are_refused() {
    for pid in [0, u32::MAX] {
        let e = raw::send_signal(pid, None, Signal::Term).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(raw::try_wait(pid).is_err());
    }
    let e = raw::send_signal(std::process::id(), None, Signal::Raw(0)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

fn g5_uid_gid_change_as_root(o: &RawSpawnOptions) {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped g5_uid_gid_change_as_root: not running as root");
        return;
    }
    let b = sh("id -u; id -g; id -G").uid(65534).cwd("/");
    let (out, r) = spawn(&b, o).output();
    assert_eq!(r.reason, ExitReason::ProcessDone);
    // 65534 is "nobody" in group "nogroup" (65534) only, so every line says 65534.
    assert_eq!(String::from_utf8_lossy(&out), "65534\n65534\n65534\n");
    let b = sh("id -u; id -g; id -G").uid(65534).gid(100).cwd("/");
    let (out, _) = spawn(&b, o).output();
    let text = String::from_utf8_lossy(&out).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..2], ["65534", "100"], "{text}");
    assert!(
        lines[2].split(' ').all(|g| g == "100" || g == "65534"),
        "{text}"
    );
}

#[test]
fn l2_window_size_helpers() {
    let (master, slave) = torsion_pty::open_pty().expect("open_pty");
    torsion_pty::set_window_size(master.as_fd(), 33, 111).expect("set");
    assert_eq!(
        torsion_pty::window_size(slave.as_fd()).expect("get"),
        (33, 111)
    );
    let e = torsion_pty::window_size(std::fs::File::open("/dev/null").expect("null").as_fd())
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
}

#[test]
fn pidfd_is_returned_when_asked_for() {
    let mut child = spawn(
        &ProcessBuilder::new("true").child_fds(Default::default()),
        &clone_options(),
    );
    assert_eq!(child.inner.pidfd.is_some(), raw::pidfd_supported());
    child.wait();
    let mut child = spawn(
        &ProcessBuilder::new("true").child_fds(Default::default()),
        &RawSpawnOptions::default(),
    );
    assert!(child.inner.pidfd.is_none());
    child.wait();
}

#[cfg(target_os = "linux")] // F_SETPIPE_SZ/F_GETPIPE_SZ are Linux-only.
#[test]
fn pipe_size_is_applied() {
    let mut o = clone_options();
    o.pipe_size = Some(1 << 20);
    let mut child = spawn(&sh("exit 0"), &o);
    let fd = child.take_pipe(1);
    // SAFETY: F_GETPIPE_SZ takes no argument; the fd is open.
    let size = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETPIPE_SZ) };
    assert_eq!(size, 1 << 20);
    child.wait();
}

#[test]
fn spawning_while_other_threads_allocate_and_spawn() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..3)
        .map(|i| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut keep = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    keep.push(vec![i as u8; 1000 + keep.len() % 5000]);
                    if keep.len() > 200 {
                        keep.clear();
                    }
                }
            })
        })
        .collect();
    let spawners: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..40 {
                    let tag = format!("t{t}-{i}");
                    let o = if i % 4 == 0 {
                        fork_options()
                    } else {
                        clone_options()
                    };
                    let (out, r) = spawn(&sh("echo \"$1\"").arg(&tag), &o).output();
                    assert_eq!(r.reason, ExitReason::ProcessDone);
                    assert_eq!(out, format!("{tag}\n").into_bytes());
                }
            })
        })
        .collect();
    for s in spawners {
        s.join().expect("spawner thread");
    }
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().expect("busy thread");
    }
}
