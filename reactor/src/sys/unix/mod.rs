//! Unix back end: the syscall funnel, pipes, and the signal self-pipe.

pub(crate) mod net;
pub(crate) mod signal;
pub(crate) mod socket;

use std::io;
#[cfg(any(target_os = "macos", target_os = "ios"))]
use std::os::fd::AsRawFd;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Values a C call returns where `-1` means "look at `errno`".
pub trait MinusOne: Copy + PartialEq {
    /// The failure value.
    const MINUS_ONE: Self;
}

macro_rules! impl_minus_one {
    ($($t:ty)*) => { $(impl MinusOne for $t { const MINUS_ONE: Self = -1; })* };
}

impl_minus_one! { i8 i16 i32 i64 isize }

/// The one funnel from a C return value to `io::Result` (mio's `syscall!`): `-1` becomes
/// the thread's `io::Error` (`errno`), anything else is returned.
///
/// # Errors
///
/// `io::Error::last_os_error()` when `ret` is `-1`.
pub fn cvt<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`] around `call`, retrying while it fails with `EINTR` — the one place that
/// retries (ARCHITECTURE, the loop).
///
/// # Errors
///
/// As [`cvt`], never `Interrupted`.
pub fn cvt_r<T: MinusOne>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Calls a libc function through [`cvt_r`]: `-1` becomes the thread's `io::Error`,
/// `EINTR` is retried.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        $crate::sys::cvt_r(|| {
            // SAFETY: every use passes arguments that satisfy the named libc function's
            // contract; the call sites document the pointers they pass.
            unsafe { libc::$fn($($arg),*) }
        })
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
