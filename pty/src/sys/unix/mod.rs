//! The POSIX back end: opening a pair, the window size, terminal attributes, fd flags. All of this
//! crate's `unsafe` lives under this module; every block says why it is sound.

#![allow(unsafe_code)]

pub(crate) mod fd;
pub(crate) mod pty;
pub(crate) mod termios;

/// The one syscall funnel of the torsion crates (mio's `syscall!`): `-1` becomes the
/// thread's `io::Error`; `cvt_r` also retries `EINTR`. It lives in `torsion-reactor`.
pub(crate) use torsion_reactor::syscall::{cvt, cvt_r};
