//! Flags of an fd: close-on-exec and non-blocking.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;

/// Set `FD_CLOEXEC` on `fd`.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_SETFD`.
#[allow(dead_code)] // used where posix_openpt takes no O_CLOEXEC
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_SETFD takes an int argument; `fd` is open for the borrow.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// Set `O_NONBLOCK` on `fd`'s open file description.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_GETFL`/`F_SETFL`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; `fd` is open for the borrow.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: F_SETFL takes an int argument; `fd` is open for the borrow.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    }
    Ok(())
}
