//! The POSIX back end: spawning (`clone` on Linux, `fork` elsewhere), pipes, the PTY,
//! waiting and signalling. All of this crate's `unsafe` lives under this module; every
//! block says why it is sound.

#![allow(unsafe_code)]

mod child;
#[cfg(target_os = "linux")]
mod clone;
pub(crate) mod fd;
mod fork;
pub(crate) mod spawn;
pub(crate) mod stdio;
mod user;
pub(crate) mod wait;

use std::io;

/// Values a C call returns, where `-1` means "look at errno".
pub(crate) trait MinusOne: Copy + PartialEq {
    const MINUS_ONE: Self;
}

macro_rules! impl_minus_one {
    ($($t:ty)*) => { $(impl MinusOne for $t { const MINUS_ONE: Self = -1; })* };
}

impl_minus_one! { i32 i64 isize }

/// The one funnel from a C return value to `io::Result` (mio's `syscall!`).
pub(crate) fn cvt<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`cvt`], retrying while the call fails with `EINTR` — the one place that retries.
pub(crate) fn cvt_r<T: MinusOne>(mut call: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(call()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
