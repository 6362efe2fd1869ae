//! Socket options and listen backlogs that neither std nor mio expose, and the
//! classification of `accept(2)` errors.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use super::syscall;

/// What an `accept(2)` error means for a listening port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// A problem with one pending connection (it was aborted, a protocol error, a firewall
    /// verdict, `EINTR`): try the next one at once.
    Transient,
    /// The process or the system is out of a resource (`EMFILE`, `ENFILE`, `ENOBUFS`,
    /// `ENOMEM`): stop accepting for a while, or the loop spins on a readable listener.
    Resources,
    /// Anything else.
    Other,
}

/// Classify an error from `accept(2)`.
///
/// # References
/// `accept(2)` on Linux ("should treat already-pending network errors ... like `EAGAIN`").
pub(crate) fn accept_error(e: &io::Error) -> AcceptError {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptError::Resources,
        Some(
            libc::EINTR
            | libc::ECONNABORTED
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH,
        ) => AcceptError::Transient,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(libc::ENONET) => AcceptError::Transient,
        _ => AcceptError::Other,
    }
}

/// Set the accept backlog of a socket that is already listening (std binds with a fixed
/// backlog; calling `listen` again changes it on Linux and the BSDs).
///
/// # References
/// `listen(2)`.
pub(crate) fn set_backlog(sock: &impl AsFd, backlog: i32) -> io::Result<()> {
    syscall!(listen(sock.as_fd().as_raw_fd(), backlog.max(0)))?;
    Ok(())
}

/// `setsockopt(2)` of an `int` option.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    value: i32,
) -> io::Result<()> {
    let len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // The pointer is to a live local `c_int` and `len` is its size.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&raw const value).cast(),
        len
    ))?;
    Ok(())
}

/// `getsockopt(2)` of an `int` option.
pub(crate) fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut value: libc::c_int = 0;
    let mut len = mem::size_of::<libc::c_int>() as libc::socklen_t;
    // The pointers are to live locals; `len` holds the size of `value`.
    syscall!(getsockopt(
        fd.as_raw_fd(),
        level,
        name,
        (&raw mut value).cast(),
        &raw mut len
    ))?;
    Ok(value)
}

#[cfg(any(target_os = "macos", target_os = "ios"))]
const KEEPIDLE: i32 = libc::TCP_KEEPALIVE;
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const KEEPIDLE: i32 = libc::TCP_KEEPIDLE;

/// Turn TCP keepalive on with `idle` before the first probe, or off with `None`.
///
/// # References
/// `setsockopt(2)` with `SO_KEEPALIVE` and `TCP_KEEPIDLE` (`TCP_KEEPALIVE` on macOS);
/// `tcp(7)`.
pub(crate) fn set_keepalive(sock: &impl AsFd, idle: Option<Duration>) -> io::Result<()> {
    let fd = sock.as_fd();
    match idle {
        None => setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0),
        Some(d) => {
            let secs = i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX);
            setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
            setsockopt_int(fd, libc::IPPROTO_TCP, KEEPIDLE, secs)
        }
    }
}

/// The keepalive idle time, or `None` when keepalive is off.
///
/// # References
/// `getsockopt(2)`, `tcp(7)`.
pub(crate) fn keepalive(sock: &impl AsFd) -> io::Result<Option<Duration>> {
    let fd = sock.as_fd();
    if getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)? == 0 {
        return Ok(None);
    }
    let secs = getsockopt_int(fd, libc::IPPROTO_TCP, KEEPIDLE)?;
    Ok(Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0))))
}
