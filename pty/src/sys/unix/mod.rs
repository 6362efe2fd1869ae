//! The POSIX back end: opening a pair, the window size, terminal attributes, fd flags. All of this
//! crate's `unsafe` lives under this module; every block says why it is sound.

#![allow(unsafe_code)]

pub(crate) mod fd;
pub(crate) mod pty;
pub(crate) mod termios;

use std::io;

/// The one funnel from a C return value to `io::Result` (mio's `syscall!`): `-1` means
/// "look at errno".
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`], retrying while the call fails with `EINTR` — the one place that retries.
pub(crate) fn cvt_r(mut call: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
