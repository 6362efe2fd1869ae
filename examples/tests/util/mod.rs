//! Helpers shared by the tests that run the built example binaries: a guard that kills a
//! child the test leaves behind, a bounded wait, and a run-to-completion with output.

#![allow(dead_code)] // each test file uses a different subset

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it exits.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for `child` to exit, polling; past `limit` the test fails (and the caller's
/// `Guard` kills the child).
pub fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
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

/// Runs `program` to completion with `args` and stdin from /dev/null, bounded in time:
/// (exit code, stdout, stderr).
pub fn output(program: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
    let mut guard = Guard(child);
    let (mut out, mut err) = (String::new(), String::new());
    // The examples print little before exiting, so reading to EOF cannot block on a full
    // stderr pipe; the status wait is bounded.
    if let Some(mut s) = guard.0.stdout.take() {
        s.read_to_string(&mut out).unwrap();
    }
    if let Some(mut s) = guard.0.stderr.take() {
        s.read_to_string(&mut err).unwrap();
    }
    let status = wait_bounded(&mut guard.0, Duration::from_secs(10));
    (status.code(), out, err)
}
