//! Operating-system code. The rest of the crate picks a back end here and nowhere else.
#![allow(unsafe_code)]

#[cfg(unix)]
pub(crate) mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
pub(crate) mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
