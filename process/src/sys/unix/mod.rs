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

/// The one syscall funnel of the torsion crates (mio's `syscall!`): `-1` becomes the
/// thread's `io::Error`; `cvt_r` also retries `EINTR`. It lives in `torsion-reactor`.
pub(crate) use torsion_reactor::syscall::{cvt, cvt_r};
