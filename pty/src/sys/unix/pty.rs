//! Pseudo-terminals: opening a fresh pair and the window size (CONTRACT L1, L2).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{cvt, cvt_r};

/// A fresh PTY: `(master, slave)`, both `CLOEXEC` and neither our controlling terminal.
///
/// # References
///
/// [`posix_openpt(3)`](https://man7.org/linux/man-pages/man3/posix_openpt.3.html),
/// [`grantpt(3)`](https://man7.org/linux/man-pages/man3/grantpt.3.html),
/// [`unlockpt(3)`](https://man7.org/linux/man-pages/man3/unlockpt.3.html),
/// [`ptsname_r(3)`](https://man7.org/linux/man-pages/man3/ptsname.3.html).
pub(crate) fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(target_os = "linux")]
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // posix_openpt rejects O_CLOEXEC on some BSDs; set it right after.
    #[cfg(not(target_os = "linux"))]
    let flags = libc::O_RDWR | libc::O_NOCTTY;
    // SAFETY: plain flag argument; the result is checked.
    let raw = cvt(unsafe { libc::posix_openpt(flags) })?;
    // SAFETY: `raw` was just opened and is owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(raw) };
    #[cfg(not(target_os = "linux"))]
    super::fd::set_cloexec(std::os::fd::AsFd::as_fd(&master))?;
    // SAFETY: `master` is an open PTY master for both calls.
    cvt(unsafe { libc::grantpt(master.as_raw_fd()) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    let name = slave_name(master.as_raw_fd())?;
    let slave_flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: `name` is a NUL-terminated path; the result is checked.
    let raw = cvt_r(|| unsafe { libc::open(name.as_ptr().cast(), slave_flags) })?;
    // SAFETY: `raw` was just opened and is owned by nobody else.
    let slave = unsafe { OwnedFd::from_raw_fd(raw) };
    Ok((master, slave))
}

/// The slave's path, NUL-terminated.
#[cfg(target_os = "linux")]
fn slave_name(master: libc::c_int) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 128];
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    let r = unsafe { libc::ptsname_r(master, buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    let len = CStr::from_bytes_until_nul(&buf)
        .map_err(|_| io::Error::from_raw_os_error(libc::ERANGE))?
        .to_bytes_with_nul()
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// The slave's path, NUL-terminated. `ptsname` uses a static buffer, so calls are
/// serialized within this crate.
#[cfg(not(target_os = "linux"))]
fn slave_name(master: libc::c_int) -> io::Result<Vec<u8>> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: `master` is an open PTY master; the result is null or a NUL-terminated
    // string valid until the next ptsname call, which the lock holds off.
    let p = unsafe { libc::ptsname(master) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: non-null, NUL-terminated (see above); copied before the lock is released.
    Ok(unsafe { CStr::from_ptr(p) }.to_bytes_with_nul().to_vec())
}

/// Set the terminal's window size (`TIOCSWINSZ`).
///
/// # References
///
/// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html) `TIOCSWINSZ`.
pub(crate) fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    set_window_size_raw(fd.as_raw_fd(), rows, cols)
}

/// [`set_window_size`] on a raw fd the caller has checked is open (a caller-supplied
/// PTY master). A closed fd gives `EBADF`; a reused number at worst gets `ENOTTY` or a
/// window size, never memory unsafety.
pub(crate) fn set_window_size_raw(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize`, which `ws` is; any fd value is safe to pass.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// The terminal's window size `(rows, cols)` (`TIOCGWINSZ`).
///
/// # References
///
/// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html) `TIOCGWINSZ`.
pub(crate) fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into `ws`; `fd` is open for the borrow.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}
