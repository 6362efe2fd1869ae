//! Socket options and listen backlogs that neither std nor mio expose, and the
//! classification of `accept` errors, through Winsock.

use std::io;
use std::mem;
use std::os::windows::io::{AsRawSocket, AsSocket};
use std::time::Duration;

use windows_sys::Win32::Networking::WinSock::{
    IPPROTO_TCP, SIO_KEEPALIVE_VALS, SO_KEEPALIVE, SOCKET, SOCKET_ERROR, SOL_SOCKET, TCP_KEEPIDLE,
    WSAECONNABORTED, WSAECONNRESET, WSAEHOSTDOWN, WSAEHOSTUNREACH, WSAEINTR, WSAEINVAL, WSAEMFILE,
    WSAENETDOWN, WSAENETUNREACH, WSAENOBUFS, WSAENOPROTOOPT, WSAGetLastError, WSAIoctl, getsockopt,
    listen, setsockopt, tcp_keepalive,
};

/// What an `accept` error means for a listening port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptError {
    /// A problem with one pending connection (reset or aborted before it was accepted,
    /// unreachable, interrupted): try the next one at once.
    Transient,
    /// The process or the system is out of a resource (`WSAEMFILE`, `WSAENOBUFS`): stop
    /// accepting for a while, or the loop spins on a readable listener.
    Resources,
    /// Anything else.
    Other,
}

/// Classify an error from `accept`.
///
/// # References
/// `accept` in the Winsock reference ("Windows Sockets Error Codes"); Windows reports a
/// connection reset by the peer while still queued as `WSAECONNRESET`.
pub(crate) fn accept_error(e: &io::Error) -> AcceptError {
    match e.raw_os_error() {
        Some(WSAEMFILE | WSAENOBUFS) => AcceptError::Resources,
        Some(
            WSAEINTR | WSAECONNRESET | WSAECONNABORTED | WSAENETDOWN | WSAEHOSTDOWN
            | WSAEHOSTUNREACH | WSAENETUNREACH,
        ) => AcceptError::Transient,
        _ => AcceptError::Other,
    }
}

fn raw(sock: &impl AsSocket) -> SOCKET {
    sock.as_socket().as_raw_socket() as SOCKET
}

/// Turn a Winsock return value into `io::Result`: `SOCKET_ERROR` means "ask
/// `WSAGetLastError`".
fn wsa(ret: i32) -> io::Result<()> {
    if ret == SOCKET_ERROR {
        // SAFETY: WSAGetLastError only reads the calling thread's last Winsock error.
        Err(io::Error::from_raw_os_error(unsafe { WSAGetLastError() }))
    } else {
        Ok(())
    }
}

/// Set the accept backlog of a socket that is already listening.
///
/// # Portability
/// Windows accepts a second `listen` on a listening socket but keeps the first backlog
/// (std's 128), so this is best effort there; a backlog of 0 still means "tiny".
///
/// # References
/// `listen` (winsock2.h).
pub(crate) fn set_backlog(sock: &impl AsSocket, backlog: i32) -> io::Result<()> {
    // SAFETY: `raw(sock)` is a live socket borrowed for the duration of the call.
    wsa(unsafe { listen(raw(sock), backlog.max(0)) })
}

fn setsockopt_int(sock: &impl AsSocket, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the pointer is to a live local `i32` and the length is its size.
    wsa(unsafe {
        setsockopt(
            raw(sock),
            level,
            name,
            (&raw const value).cast(),
            mem::size_of::<i32>() as i32,
        )
    })
}

fn getsockopt_int(sock: &impl AsSocket, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = mem::size_of::<i32>() as i32;
    // SAFETY: the pointers are to live locals; `len` holds the size of `value`. Winsock
    // may write fewer bytes (a BOOL option written as one byte): `value` starts at 0.
    wsa(unsafe {
        getsockopt(
            raw(sock),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    })?;
    Ok(value)
}

/// `SIO_KEEPALIVE_VALS`: keepalive on or off with `idle` before the first probe and the
/// Windows default of one second between probes.
fn keepalive_vals(sock: &impl AsSocket, idle: Option<Duration>) -> io::Result<()> {
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let vals = tcp_keepalive {
        onoff: u32::from(idle.is_some()),
        keepalivetime: idle.map_or(0, ms),
        keepaliveinterval: 1000,
    };
    let mut returned: u32 = 0;
    // SAFETY: the input buffer is a live `tcp_keepalive` of the given size; there is no
    // output buffer; `returned` is a live local; no OVERLAPPED, so the call is synchronous.
    wsa(unsafe {
        WSAIoctl(
            raw(sock),
            SIO_KEEPALIVE_VALS,
            (&raw const vals).cast(),
            mem::size_of::<tcp_keepalive>() as u32,
            std::ptr::null_mut(),
            0,
            &raw mut returned,
            std::ptr::null_mut(),
            None,
        )
    })
}

/// Turn TCP keepalive on with `idle` before the first probe, or off with `None`.
///
/// # Implementation notes
/// `SO_KEEPALIVE` plus `TCP_KEEPIDLE` (seconds; Windows 10 1709 and later, and Wine); where
/// `TCP_KEEPIDLE` is refused, `WSAIoctl(SIO_KEEPALIVE_VALS)`, which every Windows has but
/// which cannot be read back.
///
/// # References
/// `setsockopt`, "IPPROTO_TCP socket options", `SIO_KEEPALIVE_VALS` control code.
pub(crate) fn set_keepalive(sock: &impl AsSocket, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        None => setsockopt_int(sock, SOL_SOCKET, SO_KEEPALIVE, 0),
        Some(d) => {
            let secs = i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX);
            setsockopt_int(sock, SOL_SOCKET, SO_KEEPALIVE, 1)?;
            match setsockopt_int(sock, IPPROTO_TCP, TCP_KEEPIDLE, secs) {
                Err(e) if matches!(e.raw_os_error(), Some(WSAENOPROTOOPT | WSAEINVAL)) => {
                    keepalive_vals(sock, Some(Duration::from_secs(secs as u64)))
                }
                other => other,
            }
        }
    }
}

/// The keepalive idle time, or `None` when keepalive is off.
///
/// # Errors
/// `ErrorKind::Unsupported` where keepalive is on but the system cannot report the idle
/// time (`TCP_KEEPIDLE` is refused: Windows before 10 1709, Wine 8).
///
/// # References
/// `getsockopt`, "IPPROTO_TCP socket options".
pub(crate) fn keepalive(sock: &impl AsSocket) -> io::Result<Option<Duration>> {
    if getsockopt_int(sock, SOL_SOCKET, SO_KEEPALIVE)? & 0xff == 0 {
        return Ok(None);
    }
    let secs = match getsockopt_int(sock, IPPROTO_TCP, TCP_KEEPIDLE) {
        Err(e) if e.raw_os_error() == Some(WSAENOPROTOOPT) => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "keepalive is on, but this system cannot report its idle time \
                 (TCP_KEEPIDLE needs Windows 10 1709 or later)",
            ));
        }
        other => other?,
    };
    Ok(Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0))))
}
