//! Runs the example binaries.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the child did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tour_runs_and_exits_zero() {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_tour"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tour");
    let mut guard = Guard(child);
    let status = wait_bounded(&mut guard.0, Duration::from_secs(10));
    let mut out = String::new();
    if let Some(mut s) = guard.0.stdout.take() {
        s.read_to_string(&mut out).unwrap();
    }
    assert!(status.success(), "tour failed: {status}\n{out}");
    assert!(out.contains("echo verified byte for byte"), "{out}");
    assert!(!out.contains("FAILED"));
    eprintln!("tour ran in {:?}", start.elapsed());
}

#[test]
fn echo_server_echoes_and_exits_zero_on_sigterm() {
    let child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn echo-server");
    let mut guard = Guard(child);
    let mut line = String::new();
    let stdout = guard.0.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on tcp:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"hello, echo").unwrap();
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello, echo");
    drop(s);
    let pid = i32::try_from(guard.0.id()).unwrap();
    // SAFETY: sending SIGTERM to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_bounded(&mut guard.0, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[test]
fn echo_server_bad_arguments_exit_two() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--bogus", "1"])
        .output()
        .expect("spawn echo-server");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}
