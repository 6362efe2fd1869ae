//! `tcgetattr`/`tcsetattr`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::{cvt, cvt_r};

/// The value of a disabled control character (`_POSIX_VDISABLE`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) const VDISABLE: libc::cc_t = 0;
/// The value of a disabled control character (`_POSIX_VDISABLE`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) const VDISABLE: libc::cc_t = 0xff;

/// The terminal's attributes.
///
/// # References
///
/// [`tcgetattr(3)`](https://man7.org/linux/man-pages/man3/tcgetattr.3.html).
pub(crate) fn get(fd: BorrowedFd<'_>) -> io::Result<libc::termios> {
    // SAFETY: `termios` is a plain C struct of integers and arrays; all zeroes is a valid
    // value, and tcgetattr overwrites it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable termios; `fd` is open for the borrow.
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(t)
}

/// Set the terminal's attributes; `action` is `TCSANOW`, `TCSADRAIN` or `TCSAFLUSH`.
/// Retried on `EINTR` (a `TCSADRAIN` waits for output to drain).
///
/// # References
///
/// [`tcsetattr(3)`](https://man7.org/linux/man-pages/man3/tcsetattr.3.html).
pub(crate) fn set(fd: BorrowedFd<'_>, action: libc::c_int, t: &libc::termios) -> io::Result<()> {
    // SAFETY: tcsetattr only reads `*t`, a valid termios; `fd` is open for the borrow.
    cvt_r(|| unsafe { libc::tcsetattr(fd.as_raw_fd(), action, t) })?;
    Ok(())
}
