//! Shared helpers of the `raw` spawn-layer tests (`spawn.rs`, `pty.rs`,
//! `process_wide.rs`): spawning with a guard that always reaps, reading and writing the
//! parent's ends with a deadline, inspecting this process's fds. (The reactor transport's
//! tests have their own `util`.)
//!
//! Nothing here sleeps to wait for an event: reads poll the fd, waits poll the pidfd.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use torsion_process::raw::{self, RawSpawnOptions, SpawnedChild, WaitResult};
use torsion_transport::{ChildFd, ProcessBuilder, Signal, SpawnError};

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// The default back end (clone on Linux), asking for a pidfd.
pub fn clone_options() -> RawSpawnOptions {
    let mut o = RawSpawnOptions::default();
    o.pidfd = true;
    o
}

/// The portable fork back end, asking for a pidfd.
pub fn fork_options() -> RawSpawnOptions {
    let mut o = clone_options();
    o.force_fork = true;
    o
}

/// A spawned child that is killed and reaped on drop unless the test waited for it.
#[derive(Debug)]
pub struct Child {
    pub inner: SpawnedChild,
    reaped: bool,
}

impl Child {
    /// Guard a child spawned without [`spawn`].
    pub fn adopt(inner: SpawnedChild) -> Child {
        Child {
            inner,
            reaped: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// Take the parent's end of the pipe for child fd `fd`.
    pub fn take_pipe(&mut self, fd: i32) -> OwnedFd {
        let i = self
            .inner
            .pipes
            .iter()
            .position(|p| p.child_fd == fd)
            .unwrap_or_else(|| panic!("no pipe for child fd {fd}"));
        self.inner.pipes.remove(i).parent_end
    }

    /// Wait (bounded by [`DEADLINE`]) until the child has ended and reap it.
    pub fn wait(&mut self) -> WaitResult {
        let r = wait_for(self.inner.pid, self.pidfd());
        self.reaped = true;
        r
    }

    /// Wait until the child has exited without reaping it (needs a pidfd).
    pub fn wait_exited_unreaped(&self) {
        let fd = self.pidfd().expect("this test needs a pidfd");
        assert!(poll_in(fd, DEADLINE), "child did not exit in time");
    }

    /// Drain stdout (child fd 1) to EOF, then reap.
    pub fn output(&mut self) -> (Vec<u8>, WaitResult) {
        let out = read_to_end(self.take_pipe(1));
        (out, self.wait())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = raw::send_signal(self.inner.pid, self.pidfd(), Signal::Kill);
            wait_for(self.inner.pid, self.pidfd());
        }
    }
}

/// Spawn or panic with the error.
pub fn spawn(builder: &ProcessBuilder, options: &RawSpawnOptions) -> Child {
    let inner = raw::spawn_child(builder, options).unwrap_or_else(|e| panic!("spawn failed: {e}"));
    Child::adopt(inner)
}

/// Spawn expecting failure; returns the error.
pub fn spawn_err(builder: &ProcessBuilder, options: &RawSpawnOptions) -> SpawnError {
    match raw::spawn_child(builder, options) {
        Ok(c) => {
            drop(Child::adopt(c));
            panic!(
                "spawn of {:?} succeeded but should fail",
                builder.get_program()
            )
        }
        Err(e) => e,
    }
}

/// `sh -c script` with argv `["sh", "-c", script, "sh", ...]` and the fd map `{1: Read}`.
pub fn sh(script: &str) -> ProcessBuilder {
    ProcessBuilder::new("sh")
        .args(["-c", script, "sh"])
        .child_fd(1, ChildFd::Read)
}

/// Reap `pid`, polling its pidfd between attempts (or sleeping 1 ms without one).
pub fn wait_for(pid: u32, pidfd: Option<BorrowedFd<'_>>) -> WaitResult {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(r) = raw::try_wait(pid).expect("try_wait") {
            return r;
        }
        let left = end
            .checked_duration_since(Instant::now())
            .unwrap_or_else(|| panic!("child {pid} did not exit within {DEADLINE:?}"));
        match pidfd {
            Some(fd) => {
                poll_in(fd, left);
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// `poll(fd, POLLIN)` for up to `timeout`; true if readable (or hung up).
pub fn poll_in(fd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `p` is one valid pollfd; the fd is open for the borrow.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        assert!(r >= 0, "poll: {}", io::Error::last_os_error());
        return r > 0;
    }
}

/// Read a (non-blocking) pipe or PTY master until EOF — or EIO, a PTY's end of output.
pub fn read_to_end(fd: OwnedFd) -> Vec<u8> {
    let end = Instant::now() + DEADLINE;
    let mut file = File::from(fd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = end
                    .checked_duration_since(Instant::now())
                    .unwrap_or_else(|| panic!("no EOF within {DEADLINE:?}; got {out:?}"));
                poll_in(file.as_fd(), left);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return out,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Write all of `data` to a pipe end (small writes: they fit in the pipe buffer), then
/// close it.
pub fn write_and_close(fd: OwnedFd, data: &[u8]) {
    let mut file = File::from(fd);
    file.write_all(data).expect("write to child");
}

/// This process's open fds, from `/proc/self/fd` (minus the directory's own fd).
pub fn open_fds() -> BTreeSet<i32> {
    let dir = std::fs::read_dir("/proc/self/fd").expect("read /proc/self/fd");
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The listing includes the fd read_dir used, closed by now.
    fds.into_iter().filter(|fd| raw_is_open(*fd)).collect()
}

/// Whether `fd` is open here (`fcntl(F_GETFD)`).
pub fn raw_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the fd table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// `fcntl(F_GETFD)` and `fcntl(F_GETFL)` of `fd`.
pub fn fd_flags(fd: BorrowedFd<'_>) -> (i32, i32) {
    // SAFETY: F_GETFD/F_GETFL take no argument; the fd is open for the borrow.
    unsafe {
        (
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
            libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
        )
    }
}

/// A fresh empty directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "torsion-process-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Create `name` with `contents` and permission bits `mode`.
    pub fn file(&self, name: &str, contents: &str, mode: u32) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write temp file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True if this process has no child at all, zombie or alive. Reaps a zombie if there is
/// one (and then returns false). Only for single-threaded `harness = false` binaries:
/// it would steal other tests' children.
pub fn no_children() -> bool {
    let mut status = 0;
    // SAFETY: `status` is valid for writing; WNOHANG never blocks.
    let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}
