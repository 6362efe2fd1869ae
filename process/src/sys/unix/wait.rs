//! Waiting for and signalling one child by pid (CONTRACT F5, J1, J2). Never
//! `waitpid(-1)`, never a pid that could name a process group.

use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use torsion_transport::{ExitReason, Signal};

use super::{cvt, cvt_r};

/// A pid as `pid_t`, refusing 0 and values that do not fit: `kill(0)`, `kill(-n)` and
/// `waitpid(0)` address whole process groups.
pub(crate) fn pid_t(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{pid} is not a process id (it must be between 1 and i32::MAX)"),
        )),
    }
}

/// Raw `wait4(pid, WNOHANG)`: `None` while the child runs.
pub(crate) fn try_wait(pid: u32) -> io::Result<Option<(i32, libc::rusage)>> {
    let pid = pid_t(pid)?;
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero bytes are a valid `rusage` (integers and timevals).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are valid for the kernel to fill; `pid > 0` names one
    // child.
    let r = cvt_r(|| unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) })?;
    Ok((r != 0).then_some((status, usage)))
}

/// Blocking `waitpid(pid, 0)`, used to reap a child whose spawn failed (it has exited or
/// is about to: it reported the failure and called `_exit`).
pub(crate) fn wait_blocking(pid: libc::pid_t) -> io::Result<i32> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is valid for the kernel to fill; `pid > 0` is our own child.
    cvt_r(|| unsafe { libc::waitpid(pid, &mut status, 0) })?;
    Ok(status)
}

/// The [`ExitReason`] for a raw wait status (CONTRACT F5), keeping the raw status.
pub(crate) fn exit_reason_from_status(status: i32) -> ExitReason {
    if libc::WIFEXITED(status) {
        match ExitReason::exited(libc::WEXITSTATUS(status)) {
            ExitReason::ProcessTerminated {
                exit_code,
                signal,
                core_dumped,
                ..
            } => ExitReason::ProcessTerminated {
                exit_code,
                signal,
                core_dumped,
                status,
            },
            done => done,
        }
    } else if libc::WIFSIGNALED(status) {
        ExitReason::ProcessTerminated {
            exit_code: None,
            signal: Some(Signal::from_raw(libc::WTERMSIG(status))),
            core_dumped: libc::WCOREDUMP(status),
            status,
        }
    } else {
        // Stopped or continued: wait4 without WUNTRACED/WCONTINUED does not report these,
        // but a status can come from elsewhere.
        ExitReason::ProcessTerminated {
            exit_code: None,
            signal: None,
            core_dumped: false,
            status,
        }
    }
}

/// `(user time, system time, max RSS in KiB)` from a `rusage`.
pub(crate) fn usage_parts(usage: &libc::rusage) -> (Duration, Duration, u64) {
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    // macOS reports bytes; Linux and the BSDs KiB.
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    let rss = rss / 1024;
    (tv(usage.ru_utime), tv(usage.ru_stime), rss)
}

/// Send `signal` to `pid`, through `pidfd` when there is one.
pub(crate) fn send_signal(
    pid: u32,
    pidfd: Option<BorrowedFd<'_>>,
    signal: Signal,
) -> io::Result<()> {
    let sig = signal.as_raw().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signal} has no number on this system"),
        )
    })?;
    if let Some(fd) = pidfd {
        return pidfd_send_signal(fd, sig);
    }
    let pid = pid_t(pid)?;
    // SAFETY: `pid > 0` names one process; `sig` is a plain integer the kernel checks.
    cvt(unsafe { libc::kill(pid, sig) })?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn pidfd_send_signal(fd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: `fd` is open for the borrow; a null siginfo asks for the `kill` defaults.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    cvt(r as i64)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn pidfd_send_signal(_fd: BorrowedFd<'_>, _sig: i32) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// `pidfd_open(pid, 0)`: a `CLOEXEC` fd that refers to this process for good.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = pid_t(pid)?;
    // SAFETY: plain integer arguments; the result is checked.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    let fd = cvt(r as i64)?;
    // SAFETY: the kernel just created this fd for us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// No pidfds off Linux.
#[cfg(not(target_os = "linux"))]
pub(crate) fn pidfd_open(_pid: u32) -> io::Result<OwnedFd> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Whether this kernel gives pidfds (`pidfd_open`, Linux 5.3+), probed once.
pub(crate) fn pidfd_supported() -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 yes, 2 no
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = pidfd_open(std::process::id()).is_ok();
            STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Reap a child that reported a failure (it has called or is calling `_exit(127)`).
pub(crate) fn reap_failed(pid: libc::pid_t) {
    if let Err(e) = wait_blocking(pid) {
        // ECHILD: SIGCHLD is ignored or someone ran waitpid(-1); nothing is left to reap.
        log::debug!("reaping failed child {pid}: {e}");
    }
}
