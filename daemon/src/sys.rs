//! The OS calls of this crate that need `unsafe`: each a few lines with its reason.
#![allow(unsafe_code)]

use std::ffi::OsStr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Take ownership of `fd`, an fd this process inherited at startup (from systemd or a
/// prefork parent) and checked to be open.
///
/// Only the two once-per-process initializers call this (`systemd::ListenFds::from_env`
/// and `prefork::Worker::from_env`, each behind a `OnceLock`), each for the fds its
/// environment variables named, after removing those variables: nothing else in this
/// crate takes these numbers, so each is owned exactly once.
pub(crate) fn own_inherited_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` is open (the caller's F_SETFD on it succeeded) and owned by nothing
    // else in the process (see above), so the OwnedFd closes it exactly once.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Remove `key` from the process environment.
///
/// Rust 2024 marks `remove_var` unsafe because a thread reading the environment through
/// libc (`getenv` in C code, `getaddrinfo`) at the same moment could see it half-changed.
/// The callers (`systemd::ListenFds::from_env`, `prefork::Worker::from_env`) do this once
/// per process, at startup, and document that they must run before any other thread is
/// started; std's own readers take std's environment lock, which `remove_var` holds.
pub(crate) fn remove_env(key: &str) {
    // SAFETY: see above: called before the program starts threads that read the
    // environment behind std's lock (a documented precondition of the public callers).
    unsafe { std::env::remove_var(OsStr::new(key)) }
}

/// Ask the kernel to send `signal` to this process when its parent (the thread that
/// forked it) ends: `prctl(PR_SET_PDEATHSIG)`, Linux only.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_parent_death_signal(signal: libc::c_int) -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes an integer signal number and no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) };
    if rc == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
