//! Fd helpers run in the parent: pipes, flags, `/dev/null`, and how the child will close
//! the fds it must not keep.

use std::ffi::CStr;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::cvt;

/// A pipe whose both ends are `CLOEXEC` and blocking: `(read end, write end)`.
///
/// # References
///
/// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html) with `O_CLOEXEC`;
/// `pipe` + `fcntl(F_SETFD)` where there is no `pipe2` (macOS).
pub(crate) fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    #[cfg(not(any(target_os = "macos", target_os = "ios")))]
    {
        // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    }
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
        cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    }
    // SAFETY: the call succeeded, so both fds are open and owned by nobody else.
    let pair = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    {
        set_cloexec(std::os::fd::AsFd::as_fd(&pair.0))?;
        set_cloexec(std::os::fd::AsFd::as_fd(&pair.1))?;
    }
    Ok(pair)
}

/// Set `FD_CLOEXEC` on `fd`.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_SETFD`.
#[allow(dead_code)] // used where pipe2 or O_CLOEXEC is missing
pub(crate) fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_SETFD takes an int argument; `fd` is open for the borrow.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// Set or clear `O_NONBLOCK` on `fd`'s open file description.
///
/// # References
///
/// [`ioctl(2)`](https://man7.org/linux/man-pages/man2/ioctl.2.html) `FIONBIO` (Linux),
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_GETFL`/`F_SETFL`
/// elsewhere.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    #[cfg(target_os = "linux")]
    {
        // One call instead of F_GETFL + F_SETFL (what std's `set_nonblocking` does too).
        let mut on = libc::c_int::from(nonblocking);
        // SAFETY: FIONBIO reads one int through the pointer, which is valid for the call;
        // `raw` is open for the borrow.
        cvt(unsafe { libc::ioctl(raw, libc::FIONBIO, &mut on) })?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    set_nonblocking_fcntl(raw, nonblocking)
}

#[cfg(not(target_os = "linux"))]
fn set_nonblocking_fcntl(raw: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; `raw` is open for the borrow.
    let flags = cvt(unsafe { libc::fcntl(raw, libc::F_GETFL) })?;
    let new = if nonblocking {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: F_SETFL takes an int argument; `raw` is open for the borrow.
        cvt(unsafe { libc::fcntl(raw, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Set the capacity of the pipe behind `fd` (Linux); a no-op elsewhere.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_SETPIPE_SZ`.
pub(crate) fn set_pipe_size(fd: BorrowedFd<'_>, size: usize) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let size =
            libc::c_int::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: F_SETPIPE_SZ takes an int argument; `fd` is open for the borrow.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) })?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (fd, size);
    Ok(())
}

/// Whether `path` is a regular file this process may execute: `Ok(false)` if it does
/// not exist or is not a regular file, `Err(EACCES)` if it exists but is not
/// executable for us.
///
/// # References
///
/// [`access(2)`](https://man7.org/linux/man-pages/man2/access.2.html) with `X_OK`.
pub(crate) fn executable_file(path: &CStr) -> io::Result<bool> {
    let os = std::ffi::OsStr::from_bytes(path.to_bytes());
    match std::fs::metadata(os) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => return Err(e),
        Err(_) => return Ok(false),
    }
    // SAFETY: `path` is NUL-terminated; access only reads it.
    cvt(unsafe { libc::access(path.as_ptr(), libc::X_OK) })?;
    Ok(true)
}

/// `/dev/null`, opened read-write and `CLOEXEC` (std opens every file `O_CLOEXEC`).
pub(crate) fn dev_null() -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    Ok(OwnedFd::from(file))
}

/// Whether `fd` is open in this process. Never closes or changes it.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_GETFD`.
pub(crate) fn is_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD takes no argument and only reads the fd table; an fd that is not
    // open gives EBADF.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Ok(())
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, at_least)`: a `CLOEXEC` copy of `fd` numbered
/// `>= at_least`.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_DUPFD_CLOEXEC`.
#[allow(dead_code)] // the fork back end's report pipe
pub(crate) fn dup_cloexec_at_least(fd: BorrowedFd<'_>, at_least: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int argument; `fd` is open for the borrow.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, at_least) })?;
    // SAFETY: `new` was just created by the call and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Whether the child can close its unmapped fds with one `close_range(2)` per gap.
/// Probed once (Linux 5.9+; seccomp filters may refuse it); `false` off Linux.
///
/// # References
///
/// [`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html).
pub(crate) fn close_range_supported() -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::sync::atomic::{AtomicU8, Ordering};
        static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 yes, 2 no
        match STATE.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                // Close the (never open) range [u32::MAX - 1, u32::MAX]: 0 if the call
                // exists, ENOSYS/EPERM if not.
                // SAFETY: closes no fd this process can have open (fd numbers are below
                // RLIMIT_NOFILE, far below u32::MAX - 1); plain integer arguments.
                let r = unsafe {
                    libc::syscall(
                        libc::SYS_close_range,
                        libc::c_uint::MAX - 1,
                        libc::c_uint::MAX,
                        0 as libc::c_uint,
                    )
                };
                let ok = r == 0;
                STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
                ok
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The fds open in this process now, from `/proc/self/fd` (Linux) or `/dev/fd`, or every
/// number below the soft `RLIMIT_NOFILE` (capped at 65536) if neither can be read.
/// Used where `close_range` is missing; fds opened by other threads after this call are
/// not in the list (they are `CLOEXEC` if they come from std, mio or this crate).
pub(crate) fn open_fd_list() -> Vec<RawFd> {
    for dir in ["/proc/self/fd", "/dev/fd"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let list: Vec<RawFd> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        if !list.is_empty() {
            return list;
        }
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the kernel to fill.
    let limit = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(65536) as RawFd
    } else {
        1024
    };
    (0..limit).collect()
}

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

/// Write `data` to the pipe `fd` by reference: `vmsplice(2)` hands the pipe the pages of
/// `data` instead of copying them (CONTRACT D11). Sound because `data` is `'static` and
/// shared, so no one can free or change those pages while the reader may still see them.
/// `SPLICE_F_NONBLOCK`: `WouldBlock` when the pipe is full (the fd is non-blocking too).
///
/// # References
///
/// [`vmsplice(2)`](https://man7.org/linux/man-pages/man2/vmsplice.2.html).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn vmsplice_static(fd: BorrowedFd<'_>, data: &'static [u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: one iovec over a live slice the kernel only reads; the slice is 'static and
    // immutable, so the pages the pipe keeps referencing never change or go away.
    let n = unsafe { libc::vmsplice(fd.as_raw_fd(), &iov, 1, libc::SPLICE_F_NONBLOCK) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Without `vmsplice(2)`: an ordinary `write(2)`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn vmsplice_static(fd: BorrowedFd<'_>, data: &'static [u8]) -> io::Result<usize> {
    // SAFETY: write from a live slice to an fd the caller keeps open.
    let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
