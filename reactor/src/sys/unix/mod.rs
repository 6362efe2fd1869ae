//! Unix back end: the syscall funnel, pipes, and the signal self-pipe.

pub(crate) mod net;
pub(crate) mod signal;

use std::io;
#[cfg(any(target_os = "macos", target_os = "ios"))]
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Calls a libc function, turning `-1` into the thread's `io::Error` and retrying on
/// `EINTR` — the one place the crate handles `EINTR` (DESIGN, the loop).
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        loop {
            // SAFETY: every use passes arguments that satisfy the named libc function's
            // contract; the call sites document the pointers they pass.
            let res = unsafe { libc::$fn($($arg),*) };
            if res == -1 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(err);
            }
            break Ok(res);
        }
    }};
}
pub(crate) use syscall;

/// A pipe whose both ends are non-blocking and close-on-exec from creation.
///
/// # References
/// `pipe2(2)` on Linux and the BSDs; `pipe(2)` + `fcntl(2)` on macOS.
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK))?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        syscall!(pipe(fds.as_mut_ptr()))?;
    }
    // SAFETY: pipe2/pipe succeeded, so both fds are open and owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    for fd in [&r, &w] {
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
        syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK))?;
    }
    Ok((r, w))
}

/// Reads and discards everything readable from a non-blocking fd; returns the bytes.
pub(crate) fn drain(fd: RawFd, out: &mut Vec<u8>) {
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
            continue;
        }
        if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break;
    }
}
