//! Duplicating an fd the caller names by number.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// A `CLOEXEC` duplicate of `fd`, which the caller names by number (a PTY master passed in
/// [`PtyOptions::pair`](torsion_transport::PtyOptions::pair)). The duplicate shares the
/// open file description (and so its `O_NONBLOCK` flag) with the original.
///
/// # Errors
///
/// `EBADF` if `fd` is not open; `EMFILE`.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_DUPFD_CLOEXEC`.
pub(crate) fn dup_cloexec(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes any integer fd (a closed one gives EBADF) and touches
    // no memory; the result is checked.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    // SAFETY: `new` was just created by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}
