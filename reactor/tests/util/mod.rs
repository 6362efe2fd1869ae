//! Shared helpers for the reactor's integration tests.
#![allow(dead_code)]

use std::time::Duration;

/// Default deadline for a test waiting on the loop.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Number of open fds of this process (`/proc/self/fd`, or `/dev/fd` elsewhere).
pub fn open_fds() -> usize {
    let dir = if std::path::Path::new("/proc/self/fd").exists() {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}
