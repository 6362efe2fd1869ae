//! Children without a reactor: reaping one child, signalling it, and reading a wait
//! status — what the reactor's process transport is built on.
//!
//! There is one way to spawn: `builder.spawn(&reactor, protocol)`
//! ([`ProcessBuilderExt`](crate::ProcessBuilderExt)). The vfork-style spawn underneath it
//! is not part of the API; it stays reachable (hidden from the docs) only so this crate's
//! own tests can drive the `clone` and `fork` back ends separately.
//!
//! # Examples
//!
//! ```
//! use torsion_process::raw;
//! use torsion_transport::ExitReason;
//!
//! // Any child of ours, here one from std.
//! let child = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn()?;
//! let result = loop {
//!     if let Some(r) = raw::try_wait(child.id())? {
//!         break r;
//!     }
//!     std::thread::yield_now();
//! };
//! assert_eq!(result.reason.exit_code(), Some(3));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Portability
//!
//! Linux creates the child with `clone(CLONE_VM | CLONE_VFORK)` (no page-table copy) and
//! can hand out a pidfd; other Unix systems use `fork` and have no pidfds.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use torsion_transport::{ChildFd, ExitReason, ProcessBuilder, Signal, SpawnError};

use crate::sys::unix as sys;

#[doc(hidden)] // not an API: for this crate's tests of the clone and fork back ends
/// Options of [`spawn_child`] that are not part of the spawn request itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawSpawnOptions {
    /// Ask for a pidfd for the child (`CLONE_PIDFD`, else `pidfd_open`; Linux 5.3+). The
    /// result is in [`SpawnedChild::pidfd`], `None` where the kernel has none.
    pub pidfd: bool,
    /// Set the capacity of every pipe created for the child (`F_SETPIPE_SZ`, Linux; ignored
    /// elsewhere). Above `/proc/sys/fs/pipe-max-size` an unprivileged caller gets a
    /// [`SpawnStep::Setup`](torsion_transport::SpawnStep::Setup) error.
    pub pipe_size: Option<usize>,
    /// Use `fork` + `exec` even where `clone(CLONE_VM)` is available: the portable back end,
    /// so it can be tested on Linux, and for tools that trace `fork`. Slower with a large
    /// heap (the page tables are copied).
    pub force_fork: bool,
}

#[doc(hidden)] // not an API: for this crate's tests of the clone and fork back ends
/// A running child and the parent's fds for it, as [`spawn_child`] returns it.
#[derive(Debug)]
#[non_exhaustive]
pub struct SpawnedChild {
    /// The child's process id. It stays valid (no other process gets it) until the child
    /// is reaped by [`try_wait`].
    pub pid: u32,
    /// A pidfd for the child, if [`RawSpawnOptions::pidfd`] asked for one and the kernel
    /// has them. Readable (`POLLIN`) once the child has exited.
    pub pidfd: Option<OwnedFd>,
    /// The parent's ends of the pipes, one per `Read`/`Write` entry of the fd map, in
    /// child-fd order.
    pub pipes: Vec<ChildPipe>,
    /// The PTY master (`O_NONBLOCK`, `CLOEXEC`) when a fresh PTY was opened; `None`
    /// without a PTY or when the caller supplied the pair (it keeps its own fds).
    pub pty_master: Option<OwnedFd>,
}

#[doc(hidden)] // not an API: for this crate's tests of the clone and fork back ends
/// The parent's end of one pipe to the child (CONTRACT G6, H3).
#[derive(Debug)]
#[non_exhaustive]
pub struct ChildPipe {
    /// The fd number in the child.
    pub child_fd: i32,
    /// [`ChildFd::Read`]: the parent reads what the child writes; [`ChildFd::Write`]: the
    /// parent writes what the child reads.
    pub direction: ChildFd,
    /// The parent's end: `CLOEXEC` and `O_NONBLOCK`. (The child's end was blocking.)
    pub parent_end: OwnedFd,
}

/// What [`try_wait`] learned about a child that has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WaitResult {
    /// Why it ended (CONTRACT F5).
    pub reason: ExitReason,
    /// The raw wait status.
    pub status: i32,
    /// The resources it used.
    pub rusage: ResourceUsage,
}

/// The resources a reaped child used (from `wait4`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceUsage {
    /// CPU time in user mode.
    pub user_time: Duration,
    /// CPU time in the kernel.
    pub system_time: Duration,
    /// Peak resident set size, in KiB.
    pub max_rss_kib: u64,
}

#[doc(hidden)] // not an API: for this crate's tests of the clone and fork back ends
/// Start the child `builder` describes (CONTRACT G, H, L1).
///
/// Everything that allocates — argv/envp, the `PATH` lookup (G3), credentials, pipes,
/// `/dev/null`, the PTY and its window size, the fd plan — happens before the child
/// exists. The child then, in order: starts a new session (`new_session` or a PTY) or
/// joins a process group; makes the PTY slave its controlling terminal; places its fds
/// (every fd not in the map is closed, 0–2 included); changes directory; sets gid,
/// supplementary groups and uid; resets every signal to its default and empties the
/// mask; and calls `execve`. It returns once the child has exec'd (or failed).
///
/// Groups when a uid is given: the user's groups from the password and group
/// databases (what `initgroups` would set), or just the gid if the uid has no entry;
/// with only a gid, only `setgid` is called.
///
/// # Errors
///
/// A [`SpawnError`] naming the step (CONTRACT G8): `InvalidInput` for what
/// [`ProcessBuilder::validate`] rejects and for a new session combined with a non-zero
/// process group; `Lookup` (`ENOENT`/`EACCES`) when a program without `/` is not found;
/// `Setup` for pipes, `/dev/null`, the PTY, or an inherited fd that is not open
/// (`EBADF`); `Fork`; and the child's steps `Setsid`, `ControllingTty`, `Dup2`, `Chdir`,
/// `Setgid`, `Setgroups`, `Setuid`, `Signals`, `Exec` with the errno the child got. A
/// child that failed is reaped before this returns; every fd the spawn created is
/// closed; fds the caller passed are never closed or modified.
///
/// # References
///
/// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html),
/// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html),
/// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html),
/// [`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html),
/// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html),
/// [`posix_openpt(3)`](https://man7.org/linux/man-pages/man3/posix_openpt.3.html),
/// [`getgrouplist(3)`](https://man7.org/linux/man-pages/man3/getgrouplist.3.html).
pub fn spawn_child(
    builder: &ProcessBuilder,
    options: &RawSpawnOptions,
) -> Result<SpawnedChild, SpawnError> {
    sys::spawn::spawn_child(builder, options)
}

/// Reap child `pid` if it has ended: `wait4(pid, WNOHANG)`. `Ok(None)` while it runs.
///
/// # Errors
///
/// `ECHILD` (passed through) if `pid` is not an unreaped child of this process — someone
/// else reaped it (`waitpid(-1)`, or `SIGCHLD` set to `SIG_IGN`); the transport turns
/// that into [`ExitReason::Unknown`] (CONTRACT J2). `InvalidInput` for pid 0 or a pid
/// above `i32::MAX`, which would name a process group. `EINTR` is retried.
///
/// # References
///
/// [`wait4(2)`](https://man7.org/linux/man-pages/man2/wait4.2.html).
pub fn try_wait(pid: u32) -> io::Result<Option<WaitResult>> {
    Ok(sys::wait::try_wait(pid)?.map(|(status, usage)| {
        let (user_time, system_time, max_rss_kib) = sys::wait::usage_parts(&usage);
        WaitResult {
            reason: exit_reason_from_status(status),
            status,
            rusage: ResourceUsage {
                user_time,
                system_time,
                max_rss_kib,
            },
        }
    }))
}

/// Send `signal` to the child: through `pidfd` when there is one (immune to pid reuse),
/// else with `kill(pid)`. A zombie not yet reaped still accepts a signal (CONTRACT J1).
///
/// # Errors
///
/// `ESRCH` once the child has been reaped (with a pidfd always; with a bare pid as long
/// as the pid has not been reused) — the transport maps it, and any call after it has
/// reaped the child, to `ProcessError::ExitedAlready`. `InvalidInput` for a signal with
/// no number here ([`Signal::as_raw`] is `None`) or a pid of 0 or above `i32::MAX`.
/// `EPERM` if the child changed its uid out of our reach.
///
/// # References
///
/// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html),
/// [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html).
pub fn send_signal(pid: u32, pidfd: Option<BorrowedFd<'_>>, signal: Signal) -> io::Result<()> {
    sys::wait::send_signal(pid, pidfd, signal)
}

/// Whether this system gives pidfds (Linux 5.3+, not forbidden by a sandbox). Probed
/// once, with `pidfd_open(getpid())`.
///
/// # References
///
/// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
pub fn pidfd_supported() -> bool {
    sys::wait::pidfd_supported()
}

/// The [`ExitReason`] for a raw wait status (CONTRACT F5): exit 0 → `ProcessDone`; exit N
/// → `ProcessTerminated { exit_code: Some(N), .. }`; killed → `ProcessTerminated {
/// signal: Some(..), core_dumped, .. }`. `status` in the reason is the raw status given.
///
/// # References
///
/// [`waitpid(2)`](https://man7.org/linux/man-pages/man2/waitpid.2.html) (`WIFEXITED`,
/// `WEXITSTATUS`, `WIFSIGNALED`, `WTERMSIG`, `WCOREDUMP`).
pub fn exit_reason_from_status(status: i32) -> ExitReason {
    sys::wait::exit_reason_from_status(status)
}

/// Set or clear `O_NONBLOCK` on an fd (for the parent's ends, which come non-blocking,
/// when a caller wants blocking I/O on them).
///
/// # Errors
///
/// `EBADF`.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_SETFL`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    sys::fd::set_nonblocking(fd, nonblocking)
}
