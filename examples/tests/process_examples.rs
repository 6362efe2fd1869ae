//! The `run` and `inetd` examples, driven as a user would: real processes, bounded in time.

// Unix only: the `run` example is POSIX (fd maps, PTYs), and the tests stop children
// with SIGTERM.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUN: &str = env!("CARGO_BIN_EXE_run");
const INETD: &str = env!("CARGO_BIN_EXE_inetd");

/// Kills the child if the test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_with_deadline(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {secs} s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

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
    let status = wait_with_deadline(&mut child, 30);
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
fn run_reports_a_missing_program_with_127_and_bad_usage_with_2() {
    let (code, _, err) = run(&["--", "/nonexistent/program"], b"");
    assert_eq!(code, 127);
    assert!(String::from_utf8_lossy(&err).contains("cannot spawn"));
    let (code, _, err) = run(&["--bogus"], b"");
    assert_eq!(code, 2);
    assert!(String::from_utf8_lossy(&err).contains("usage"));
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
    let status = wait_with_deadline(&mut g.0, 20);
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
    let status = wait_with_deadline(&mut g.0, 20);
    assert_eq!(status.code(), Some(0));
}
