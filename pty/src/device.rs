//! The pseudo-terminal device: opening a fresh pair and the window size (CONTRACT L1, L2).
//! Terminal attributes are in [`termios`](crate::termios).

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use crate::sys;

/// Open a fresh PTY: `(master, slave)`, both `CLOEXEC`, neither this process's
/// controlling terminal, both blocking. For callers that want to hold the pair
/// themselves and pass it in [`PtyOptions::pair`](torsion_transport::PtyOptions::pair).
///
/// # Errors
///
/// `ENOENT`/`EAGAIN` when no PTY can be allocated; any error of the calls below.
///
/// # References
///
/// [`posix_openpt(3)`](https://man7.org/linux/man-pages/man3/posix_openpt.3.html),
/// [`grantpt(3)`](https://man7.org/linux/man-pages/man3/grantpt.3.html),
/// [`unlockpt(3)`](https://man7.org/linux/man-pages/man3/unlockpt.3.html),
/// [`ptsname_r(3)`](https://man7.org/linux/man-pages/man3/ptsname.3.html).
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    sys::unix::pty::open_pty()
}

/// Set a terminal's window size (CONTRACT L2); on a PTY master the child's foreground
/// process group gets `SIGWINCH` when the size changes.
///
/// # Errors
///
/// `ENOTTY` if `fd` is not a terminal; `EBADF`.
///
/// # References
///
/// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html) `TIOCSWINSZ`.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    sys::unix::pty::set_window_size(fd, rows, cols)
}

/// A terminal's window size, `(rows, cols)`.
///
/// # Errors
///
/// `ENOTTY` if `fd` is not a terminal; `EBADF`.
///
/// # References
///
/// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html) `TIOCGWINSZ`.
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    sys::unix::pty::window_size(fd)
}

/// [`set_window_size`] on an fd named by number, such as a master passed in
/// [`PtyOptions::pair`](torsion_transport::PtyOptions::pair). A closed fd gives `EBADF`;
/// a reused number at worst gets `ENOTTY` or a window size, never memory unsafety.
///
/// # Errors
///
/// As [`set_window_size`].
pub fn set_window_size_raw(fd: std::os::fd::RawFd, rows: u16, cols: u16) -> io::Result<()> {
    sys::unix::pty::set_window_size_raw(fd, rows, cols)
}
