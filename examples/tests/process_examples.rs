//! The `run` and `inetd` examples, driven as a user would: real processes, bounded in time.

// Unix only: the `run` example is POSIX (fd maps, PTYs), and the tests stop children
// with SIGTERM.
#![cfg(unix)]

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::{Guard, wait_bounded};

const RUN: &str = env!("CARGO_BIN_EXE_run");
const INETD: &str = env!("CARGO_BIN_EXE_inetd");

fn run(args: &[&str], input: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
    let mut child = Command::new(RUN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = se.read_to_end(&mut err);
        err
    });
    so.read_to_end(&mut out).unwrap();
    let err = reader.join().unwrap();
    writer.join().unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn run_relays_stdin_and_exits_with_the_childs_code() {
    let (code, out, _) = run(&["--", "sh", "-c", "tr a-z A-Z; exit 3"], b"hello\n");
    assert_eq!(out, b"HELLO\n");
    assert_eq!(code, 3);
}

#[test]
fn run_keeps_stdout_and_stderr_apart() {
    let (code, out, err) = run(&["--", "sh", "-c", "echo out; echo err >&2"], b"");
    assert_eq!(
        (code, &out[..], &err[..]),
        (0, &b"out\n"[..], &b"err\n"[..])
    );
}

#[test]
fn run_moves_eight_mib_byte_for_byte_with_flow_control() {
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let (code, out, _) = run(&["--", "cat"], &data);
    assert_eq!(code, 0);
    assert!(out == data, "cat through run differs");
}

#[test]
fn run_exits_128_plus_signal_when_the_child_is_killed() {
    let (code, _, _) = run(&["--", "sh", "-c", "kill -TERM $$"], b"");
    assert_eq!(code, 128 + 15);
}

#[test]
fn run_timeout_terminates_the_child_and_exits_124() {
    let start = Instant::now();
    let (code, _, _) = run(&["--timeout", "0.2", "--", "sleep", "30"], b"");
    assert_eq!(code, 124);
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn run_timeout_kills_a_child_that_ignores_term_two_seconds_later() {
    let start = Instant::now();
    // SIG_IGN survives exec: the child is `sleep`, ignoring SIGTERM.
    let script = "trap '' TERM; exec sleep 30";
    let (code, _, _) = run(&["--timeout", "0.2", "--", "sh", "-c", script], b"");
    assert_eq!(code, 124);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "SIGKILL comes 2 s after SIGTERM: {took:?}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn run_reports_a_missing_program_with_127_and_a_display_error() {
    let (code, out, err) = run(&["--", "/nonexistent/program"], b"");
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, 127, "{err}");
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: cannot spawn \"/nonexistent/program\""),
        "a Display error: {err}"
    );
    assert!(
        !err.contains("Os {") && !err.contains("kind:"),
        "no Debug form: {err}"
    );
}

#[test]
fn run_help_describes_the_options_and_exits_0() {
    let (code, out, _) = run(&["--help"], b"");
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 0);
    for want in [
        "Usage: run",
        "--timeout <SECONDS>",
        "--pty",
        "--rows",
        "--cols",
        "PROGRAM",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
}

#[test]
fn run_rejects_an_unknown_option_with_a_clear_message() {
    let (code, out, err) = run(&["--bogus", "--", "true"], b"");
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.starts_with("error: unexpected argument '--bogus'"),
        "{err}"
    );
    assert!(err.contains("Usage: run"), "{err}");
    // No program at all, and a bad --timeout, are usage errors too.
    assert_eq!(run(&[], b"").0, 2);
    let (code, _, err) = run(&["--timeout", "soon", "--", "true"], b"");
    assert_eq!(code, 2);
    assert!(String::from_utf8_lossy(&err).contains("--timeout"));
}

fn nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL takes no argument; `fd` is open for the borrow.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

/// Issue 10: run's stdin, stdout and stderr are pipes shared with us; while it runs and
/// after, their descriptions stay blocking, and a 10 MB blocking write of ours to the
/// same stdout pipe completes.
#[test]
fn issue_10_run_leaves_the_callers_stdio_blocking() {
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::mpsc;
    let pipe = || {
        let (r, w) = std::io::pipe().unwrap();
        (OwnedFd::from(r), OwnedFd::from(w))
    };
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let child = Command::new(RUN)
        .args([
            "--",
            "sh",
            "-c",
            "echo start; read x; echo end $x; echo oops >&2",
        ])
        .stdin(in_r.try_clone().unwrap())
        .stdout(out_w.try_clone().unwrap())
        .stderr(err_w.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut g = Guard(child);
    let (tx, rx) = mpsc::channel();
    let drain = std::thread::spawn(move || {
        let mut f = std::fs::File::from(out_r);
        let mut all = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => return all,
                Ok(n) => {
                    all.extend_from_slice(&buf[..n]);
                    let _ = tx.send(());
                }
            }
        }
    });
    // run is up and relaying: its child wrote "start".
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the child's first line");
    let shared = [in_r.as_fd(), out_w.as_fd(), err_w.as_fd()];
    assert!(shared.iter().all(|fd| !nonblocking(*fd)), "while run runs");
    std::fs::File::from(out_w.try_clone().unwrap())
        .write_all(&vec![0u8; 10 * 1024 * 1024])
        .expect("our own blocking 10 MB write to the shared stdout pipe");
    std::fs::File::from(in_w).write_all(b"go\n").unwrap();
    let status = wait_bounded(&mut g.0, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(
        shared.iter().all(|fd| !nonblocking(*fd)),
        "after run exited"
    );
    drop((in_r, out_w, err_w));
    let out: Vec<u8> = drain
        .join()
        .unwrap()
        .into_iter()
        .filter(|&b| b != 0)
        .collect();
    assert_eq!(out, b"start\nend go\n");
    let mut err = String::new();
    std::fs::File::from(err_r).read_to_string(&mut err).unwrap();
    assert_eq!(err, "oops\n");
}

#[test]
fn run_forwards_sigterm_to_the_child() {
    let child = Command::new(RUN)
        .args(["--", "sh", "-c", "echo ready; exec sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut g = Guard(child);
    let mut line = String::new();
    BufReader::new(g.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(g.0.id() as i32, libc::SIGTERM) };
    let status = wait_bounded(&mut g.0, Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(128 + 15),
        "the child died of the forwarded SIGTERM"
    );
}

#[test]
fn inetd_serves_each_connection_with_a_child_and_stops_on_sigterm() {
    let child = Command::new(INETD)
        .args(["--port", "0", "--", "tr", "a-z", "A-Z"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut g = Guard(child);
    let mut line = String::new();
    BufReader::new(g.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on tcp:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let data: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| b"abcxyz\n"[i as usize % 7])
        .collect();
    let want: Vec<u8> = data.to_ascii_uppercase();
    for _ in 0..3 {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = s.try_clone().unwrap();
        let d = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&d).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(got == want, "connection got {} bytes", got.len());
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(g.0.id() as i32, libc::SIGTERM) };
    let status = wait_bounded(&mut g.0, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
}
