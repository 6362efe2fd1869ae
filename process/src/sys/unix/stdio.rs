//! Syscalls for [`StandardIo`](crate::StandardIo): what kind of file an fd is, a private
//! non-blocking open file description for it, socket I/O with `MSG_DONTWAIT`, and the
//! `O_NONBLOCK` flag with its restore-at-exit list (the last resort).

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::sync::Mutex;

use super::cvt;

/// What an fd refers to, as far as blocking goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A regular file or block device: never `EAGAIN`, cannot be polled.
    File,
    /// A pipe or FIFO.
    Fifo,
    /// A character device: a terminal, `/dev/null`, ...
    CharDevice,
    /// A socket.
    Socket,
    /// Anything else (a directory, an unknown type).
    Other,
}

/// The kind of `fd`, from `fstat`.
///
/// # References
///
/// [`fstat(2)`](https://man7.org/linux/man-pages/man2/fstat.2.html).
pub(crate) fn fd_kind(fd: BorrowedFd<'_>) -> io::Result<FdKind> {
    // `File::metadata` is fstat; the clone is closed at once.
    let ty = File::from(fd.try_clone_to_owned()?).metadata()?.file_type();
    Ok(if ty.is_file() || ty.is_block_device() {
        FdKind::File
    } else if ty.is_fifo() {
        FdKind::Fifo
    } else if ty.is_char_device() {
        FdKind::CharDevice
    } else if ty.is_socket() {
        FdKind::Socket
    } else {
        FdKind::Other
    })
}

/// A new open file description for what `fd` refers to, `O_NONBLOCK | O_CLOEXEC |
/// O_NOCTTY`, read-only or write-only: its flags are ours alone, unlike a `dup`'s.
///
/// # Errors
///
/// Where there is no `/proc` (`ENOENT`), for sockets (`ENXIO`), for the write end of a
/// pipe nobody reads (`ENXIO`), or when the fd's owner changed (`EACCES`).
///
/// # References
///
/// [`proc_pid_fd(5)`](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html),
/// [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html).
pub(crate) fn reopen_nonblocking(fd: BorrowedFd<'_>, write: bool) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let file = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    Ok(OwnedFd::from(file))
}

#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(any(target_os = "macos", target_os = "ios"))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

/// `recv(fd, buf, MSG_DONTWAIT)`: a non-blocking read that leaves the socket's flags
/// alone.
///
/// # References
///
/// [`recv(2)`](https://man7.org/linux/man-pages/man2/recv.2.html).
pub(crate) fn recv_dontwait(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call; `fd` is open
    // for the borrow.
    let n = cvt(unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    })?;
    Ok(n as usize)
}

/// `sendmsg(fd, bufs, MSG_DONTWAIT | MSG_NOSIGNAL)`: a non-blocking vectored write that
/// leaves the socket's flags alone (and raises no SIGPIPE where `MSG_NOSIGNAL` exists).
///
/// # References
///
/// [`sendmsg(2)`](https://man7.org/linux/man-pages/man2/sendmsg.2.html).
pub(crate) fn send_dontwait(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix; sendmsg only reads the buffers.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = bufs.len().min(1024) as _;
    // SAFETY: `msg` points at `bufs`, valid for the call; `fd` is open for the borrow.
    let n = cvt(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, SEND_FLAGS) })?;
    Ok(n as usize)
}

/// Whether `O_NONBLOCK` is set on `fd`'s open file description.
///
/// # References
///
/// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html) `F_GETFL`.
pub(crate) fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no argument; `fd` is open for the borrow.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// Fds whose shared description we made non-blocking and must make blocking again, even
/// if the process exits without dropping their guard (see [`restore_at_exit`]).
static TO_RESTORE: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

extern "C" fn restore_all() {
    // `try_lock`: never block process exit on a thread that holds the lock.
    if let Ok(list) = TO_RESTORE.try_lock() {
        restore_fds(&list);
    }
}

fn restore_fds(fds: &[RawFd]) {
    for &fd in fds {
        let _ = set_nonblocking_raw(fd, false);
    }
}

fn set_nonblocking_raw(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; an fd that is not open gives EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: F_SETFL takes an int argument; an fd that is not open gives EBADF.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Set `O_NONBLOCK` on `fd`'s (shared) description and remember to clear it when the
/// process exits (`atexit`: a return from `main`, `std::process::exit`, a panic that
/// unwinds out of `main`). [`restore_now`] clears it earlier. Nothing covers `SIGKILL`, a
/// fatal signal or `abort`.
///
/// # References
///
/// [`atexit(3)`](https://man7.org/linux/man-pages/man3/atexit.3.html).
pub(crate) fn set_nonblocking_until_exit(fd: BorrowedFd<'_>) -> io::Result<()> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // SAFETY: `restore_all` is a plain `extern "C" fn()` that never unwinds.
        unsafe { libc::atexit(restore_all) };
    });
    let mut list = TO_RESTORE.lock().unwrap_or_else(|e| e.into_inner());
    set_nonblocking_raw(fd.as_raw_fd(), true)?;
    list.push(fd.as_raw_fd());
    Ok(())
}

/// Clear `O_NONBLOCK` on `fd` now and forget it; call before closing `fd`.
pub(crate) fn restore_now(fd: BorrowedFd<'_>) {
    let mut list = TO_RESTORE.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|&f| f != fd.as_raw_fd());
    let _ = set_nonblocking_raw(fd.as_raw_fd(), false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_exit_hook_clears_the_flags_still_listed() {
        let (r, _w) = std::io::pipe().unwrap();
        let (kept, forgotten) = (OwnedFd::from(r), std::io::pipe().unwrap().0);
        set_nonblocking_until_exit(kept.as_fd()).unwrap();
        set_nonblocking_until_exit(forgotten.as_fd()).unwrap();
        assert!(is_nonblocking(kept.as_fd()).unwrap());
        let mine = [kept.as_raw_fd(), forgotten.as_raw_fd()];
        let listed = TO_RESTORE.lock().unwrap().clone();
        assert!(mine.iter().all(|fd| listed.contains(fd)));
        // What `atexit` runs for a process that never dropped its fds (only on ours here:
        // other tests' fds are in the list too).
        restore_fds(&mine);
        assert!(!is_nonblocking(kept.as_fd()).unwrap());
        assert!(!is_nonblocking(forgotten.as_fd()).unwrap());
        restore_now(kept.as_fd());
        restore_now(forgotten.as_fd());
        assert!(!TO_RESTORE.lock().unwrap().contains(&kept.as_raw_fd()));
    }
}
