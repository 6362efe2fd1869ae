//! The code that runs in the child between its creation and `execve` (CONTRACT G4, G5,
//! H1, H2, L1).
//!
//! On Linux the child shares the parent's memory (`CLONE_VM`) and the parent may have
//! other threads, so everything here is restricted to what is safe in that state: no
//! allocation, no locks, no panics (no indexing, no unchecked arithmetic, no `unwrap`), no
//! thread-locals beyond `errno`, and on Linux only raw system calls (`syscall(2)`), never
//! libc wrappers that take locks or broadcast to the parent's threads (glibc's `setuid`,
//! musl's `sigaction`). Everything the child needs was computed by the parent and is
//! handed over in a [`ChildContext`].

use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

use torsion_transport::SpawnStep;

use crate::fdplan::FdPlacement;

/// Session handling, the child's first step (CONTRACT H4, L1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Session {
    /// Stay in the parent's session and process group.
    Keep,
    /// `setsid()`: a new session and process group led by the child.
    Setsid,
    /// `setpgid(0, pgid)`: `pgid` 0 makes a new group led by the child.
    Group(libc::pid_t),
}

/// How the child closes the fds it must not keep.
#[derive(Debug, Clone, Copy)]
pub(super) enum CloseFds<'a> {
    /// `close_range(first, last, 0)` for each range.
    Ranges(&'a [(u32, u32)]),
    /// `close(fd)` for each fd of this list (computed before the child existed) that is
    /// not a target.
    List(&'a [RawFd]),
}

/// Everything the child needs, prepared by the parent. Pointers point into buffers the
/// parent keeps alive until the child has exec'd or exited.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChildContext<'a> {
    pub(super) program: &'a CStr,
    /// NULL-terminated array of NUL-terminated strings.
    pub(super) argv: *const *const libc::c_char,
    /// NULL-terminated array of `KEY=VALUE` strings.
    pub(super) envp: *const *const libc::c_char,
    pub(super) cwd: Option<&'a CStr>,
    pub(super) session: Session,
    /// The PTY slave to make the controlling terminal (after `setsid`).
    pub(super) controlling_tty: Option<RawFd>,
    pub(super) placements: &'a [FdPlacement],
    pub(super) high: RawFd,
    /// Sorted.
    pub(super) targets: &'a [RawFd],
    pub(super) close: CloseFds<'a>,
    /// An fd that survives the closing step (the fork back end's report pipe; `CLOEXEC`,
    /// numbered `>= high`).
    pub(super) keep: Option<RawFd>,
    pub(super) gid: Option<libc::gid_t>,
    pub(super) groups: Option<&'a [libc::gid_t]>,
    pub(super) uid: Option<libc::uid_t>,
}

/// A failed step and its errno, as the child reports it.
pub(super) type Failure = (SpawnStep, i32);

/// Run the child's steps, in the order of the module docs of `spawn`, and `execve`.
/// Returns only on failure. `scratch` holds one slot per moved source.
pub(super) fn run(ctx: &ChildContext<'_>, scratch: &mut [RawFd]) -> Failure {
    match steps(ctx, scratch) {
        Err(failure) => failure,
        Ok(never) => match never {},
    }
}

fn steps(
    ctx: &ChildContext<'_>,
    scratch: &mut [RawFd],
) -> Result<std::convert::Infallible, Failure> {
    let at = |step: SpawnStep| move |errno: i32| (step, errno);
    match ctx.session {
        Session::Keep => {}
        Session::Setsid => prim::setsid().map_err(at(SpawnStep::Setsid))?,
        Session::Group(pgid) => prim::setpgid(pgid).map_err(at(SpawnStep::Setsid))?,
    }
    if let Some(tty) = ctx.controlling_tty {
        prim::set_controlling_tty(tty).map_err(at(SpawnStep::ControllingTty))?;
    }
    place_fds(ctx, scratch).map_err(at(SpawnStep::Dup2))?;
    if let Some(cwd) = ctx.cwd {
        prim::chdir(cwd).map_err(at(SpawnStep::Chdir))?;
    }
    if let Some(gid) = ctx.gid {
        prim::setgid(gid).map_err(at(SpawnStep::Setgid))?;
    }
    if let Some(groups) = ctx.groups {
        prim::setgroups(groups).map_err(at(SpawnStep::Setgroups))?;
    }
    if let Some(uid) = ctx.uid {
        prim::setuid(uid).map_err(at(SpawnStep::Setuid))?;
    }
    prim::reset_signals().map_err(at(SpawnStep::Signals))?;
    Err((
        SpawnStep::Exec,
        prim::execve(ctx.program, ctx.argv, ctx.envp),
    ))
}

/// Execute the fd plan (see `crate::fdplan`), then close everything else.
fn place_fds(ctx: &ChildContext<'_>, scratch: &mut [RawFd]) -> Result<(), i32> {
    let mut slots = scratch.iter_mut();
    for p in ctx.placements.iter().filter(|p| p.move_first) {
        let slot = slots.next().ok_or(libc::EINVAL)?;
        *slot = prim::dup_cloexec_at_least(p.source, ctx.high)?;
    }
    let mut moved = scratch.iter();
    for p in ctx.placements {
        let source = if p.move_first {
            *moved.next().ok_or(libc::EINVAL)?
        } else {
            p.source
        };
        if source == p.target {
            prim::clear_cloexec(source)?;
        } else {
            prim::dup2(source, p.target)?;
        }
    }
    match ctx.close {
        CloseFds::Ranges(ranges) => {
            for &(first, last) in ranges {
                match ctx.keep.and_then(|k| u32::try_from(k).ok()) {
                    Some(k) if first <= k && k <= last => {
                        if first < k {
                            prim::close_range(first, k - 1)?;
                        }
                        if k < last {
                            prim::close_range(k + 1, last)?;
                        }
                    }
                    _ => prim::close_range(first, last)?,
                }
            }
        }
        CloseFds::List(list) => {
            for &fd in list {
                if Some(fd) != ctx.keep && ctx.targets.binary_search(&fd).is_err() {
                    prim::close(fd);
                }
            }
        }
    }
    Ok(())
}

/// Every signal blocked in the calling thread until dropped, which restores the old
/// mask. Held around creating the child, so no handler of the parent runs in the child
/// before it has reset them (the child inherits this mask and empties it last).
pub(super) struct BlockedSignals(prim::SavedMask);

impl BlockedSignals {
    pub(super) fn new() -> Self {
        BlockedSignals(prim::block_all_signals())
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        prim::restore_signals(&self.0);
    }
}

/// The report's wire form: a step as a small integer (0 = no failure).
pub(super) fn step_code(step: SpawnStep) -> u32 {
    CODES
        .iter()
        .position(|s| *s == step)
        .map_or(u32::MAX, |i| i as u32 + 1)
}

/// The inverse of [`step_code`]; `None` for 0 (no failure) and unknown codes.
pub(super) fn step_from_code(code: u32) -> Option<SpawnStep> {
    let i = usize::try_from(code.checked_sub(1)?).ok()?;
    CODES.get(i).copied()
}

const CODES: [SpawnStep; 9] = [
    SpawnStep::Setsid,
    SpawnStep::ControllingTty,
    SpawnStep::Dup2,
    SpawnStep::Chdir,
    SpawnStep::Setgid,
    SpawnStep::Setgroups,
    SpawnStep::Setuid,
    SpawnStep::Signals,
    SpawnStep::Exec,
];

/// The calling thread's errno (no allocation: `last_os_error` only reads it).
fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Linux: raw system calls, so the `CLONE_VM` child never enters a libc wrapper that
/// takes a lock or signals the parent's threads.
#[cfg(target_os = "linux")]
mod prim {
    use std::ffi::CStr;
    use std::os::fd::RawFd;

    use libc::{c_long, syscall};

    use super::errno;

    /// The kernel's `sizeof(sigset_t)`: `_NSIG / 8`.
    #[cfg(any(target_arch = "mips", target_arch = "mips64"))]
    const KERNEL_SIGSET_BYTES: usize = 16;
    #[cfg(not(any(target_arch = "mips", target_arch = "mips64")))]
    const KERNEL_SIGSET_BYTES: usize = 8;
    const KERNEL_NSIG: i32 = (KERNEL_SIGSET_BYTES * 8) as i32;

    fn check(r: c_long) -> Result<c_long, i32> {
        if r == -1 { Err(errno()) } else { Ok(r) }
    }

    // 32-bit x86 and ARM have 16-bit ids in the old calls; the `*32` calls take full ids.
    #[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
    use libc::{
        SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS, SYS_setuid as SYS_SETUID,
    };
    #[cfg(any(target_arch = "x86", target_arch = "arm"))]
    use libc::{
        SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS, SYS_setuid32 as SYS_SETUID,
    };

    pub(super) fn setsid() -> Result<(), i32> {
        // SAFETY: no arguments.
        check(unsafe { syscall(libc::SYS_setsid) }).map(drop)
    }

    pub(super) fn setpgid(pgid: libc::pid_t) -> Result<(), i32> {
        // SAFETY: integer arguments; pid 0 is the caller.
        check(unsafe { syscall(libc::SYS_setpgid, 0 as c_long, pgid as c_long) }).map(drop)
    }

    pub(super) fn set_controlling_tty(fd: RawFd) -> Result<(), i32> {
        // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
        check(unsafe {
            syscall(
                libc::SYS_ioctl,
                fd as c_long,
                libc::TIOCSCTTY as c_long,
                0 as c_long,
            )
        })
        .map(drop)
    }

    pub(super) fn dup_cloexec_at_least(fd: RawFd, at_least: RawFd) -> Result<RawFd, i32> {
        // SAFETY: integer arguments.
        let r = check(unsafe {
            syscall(
                libc::SYS_fcntl,
                fd as c_long,
                libc::F_DUPFD_CLOEXEC as c_long,
                at_least as c_long,
            )
        })?;
        Ok(r as RawFd)
    }

    pub(super) fn clear_cloexec(fd: RawFd) -> Result<(), i32> {
        // SAFETY: integer arguments.
        check(unsafe {
            syscall(
                libc::SYS_fcntl,
                fd as c_long,
                libc::F_SETFD as c_long,
                0 as c_long,
            )
        })
        .map(drop)
    }

    pub(super) fn dup2(from: RawFd, to: RawFd) -> Result<(), i32> {
        // dup3 exists on every architecture (aarch64 has no dup2); from != to here.
        // SAFETY: integer arguments.
        check(unsafe { syscall(libc::SYS_dup3, from as c_long, to as c_long, 0 as c_long) })
            .map(drop)
    }

    pub(super) fn close_range(first: u32, last: u32) -> Result<(), i32> {
        // SAFETY: integer arguments; closing fds the child must not keep.
        check(unsafe {
            syscall(
                libc::SYS_close_range,
                first as c_long,
                last as c_long,
                0 as c_long,
            )
        })
        .map(drop)
    }

    pub(super) fn close(fd: RawFd) {
        // SAFETY: integer argument; errors (EBADF for an fd closed meanwhile) are moot.
        unsafe { syscall(libc::SYS_close, fd as c_long) };
    }

    pub(super) fn chdir(dir: &CStr) -> Result<(), i32> {
        // SAFETY: `dir` is NUL-terminated and alive.
        check(unsafe { syscall(libc::SYS_chdir, dir.as_ptr()) }).map(drop)
    }

    pub(super) fn setgid(gid: libc::gid_t) -> Result<(), i32> {
        // SAFETY: integer argument. Raw: changes this task only (no glibc broadcast).
        check(unsafe { syscall(SYS_SETGID, gid as c_long) }).map(drop)
    }

    pub(super) fn setgroups(groups: &[libc::gid_t]) -> Result<(), i32> {
        // SAFETY: `groups` is readable for `groups.len()` entries.
        check(unsafe { syscall(SYS_SETGROUPS, groups.len() as c_long, groups.as_ptr()) }).map(drop)
    }

    pub(super) fn setuid(uid: libc::uid_t) -> Result<(), i32> {
        // SAFETY: integer argument. Raw: changes this task only (no glibc broadcast).
        check(unsafe { syscall(SYS_SETUID, uid as c_long) }).map(drop)
    }

    /// Every signal to `SIG_DFL` (handled ones must not run parent code in a `CLONE_VM`
    /// child; ignored ones are reset by CONTRACT H2), then an empty mask.
    pub(super) fn reset_signals() -> Result<(), i32> {
        // All-zero bytes are a kernel `struct sigaction` with SIG_DFL, no flags and an
        // empty mask on every architecture; 64 bytes cover the largest layout.
        let default = [0u64; 8];
        for sig in 1..=KERNEL_NSIG {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: `default` is readable and large enough; no old action is asked for.
            let r = unsafe {
                syscall(
                    libc::SYS_rt_sigaction,
                    sig as c_long,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    KERNEL_SIGSET_BYTES as c_long,
                )
            };
            if r == -1 && errno() != libc::EINVAL {
                return Err(errno());
            }
        }
        let empty = [0u64; 2];
        // SAFETY: `empty` is readable for KERNEL_SIGSET_BYTES; no old mask is asked for.
        check(unsafe {
            syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as c_long,
                empty.as_ptr(),
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_BYTES as c_long,
            )
        })
        .map(drop)
    }

    /// The kernel sigset of the parent thread before [`block_all_signals`].
    pub(super) struct SavedMask([u64; 2]);

    /// Block everything, glibc's internal signals (32, 33) included, as glibc's own
    /// `posix_spawn` does: raw, because `pthread_sigmask` leaves those two unblocked.
    pub(super) fn block_all_signals() -> SavedMask {
        let all = [u64::MAX; 2];
        let mut old = [0u64; 2];
        // SAFETY: `all` is readable and `old` writable for KERNEL_SIGSET_BYTES. With valid
        // pointers and SIG_SETMASK the call cannot fail; if it did, `old` stays empty.
        unsafe {
            syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as c_long,
                all.as_ptr(),
                old.as_mut_ptr(),
                KERNEL_SIGSET_BYTES as c_long,
            )
        };
        SavedMask(old)
    }

    pub(super) fn restore_signals(saved: &SavedMask) {
        // SAFETY: `saved.0` is readable for KERNEL_SIGSET_BYTES; no old mask asked for.
        unsafe {
            syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK as c_long,
                saved.0.as_ptr(),
                std::ptr::null_mut::<u64>(),
                KERNEL_SIGSET_BYTES as c_long,
            )
        };
    }

    pub(super) fn execve(
        program: &CStr,
        argv: *const *const libc::c_char,
        envp: *const *const libc::c_char,
    ) -> i32 {
        // SAFETY: `program` is NUL-terminated; `argv` and `envp` are NULL-terminated arrays
        // of NUL-terminated strings that the parent keeps alive.
        unsafe { syscall(libc::SYS_execve, program.as_ptr(), argv, envp) };
        errno()
    }
}

/// Elsewhere: the child is a `fork`ed single-threaded copy, where POSIX allows the
/// async-signal-safe libc calls used here.
#[cfg(not(target_os = "linux"))]
mod prim {
    use std::ffi::CStr;
    use std::os::fd::RawFd;

    use super::errno;

    fn check(r: libc::c_int) -> Result<libc::c_int, i32> {
        if r == -1 { Err(errno()) } else { Ok(r) }
    }

    #[cfg(any(target_os = "macos", target_os = "ios"))]
    const NSIG: i32 = 32;
    #[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
    const NSIG: i32 = 128;
    #[cfg(not(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly"
    )))]
    const NSIG: i32 = 64;

    pub(super) fn setsid() -> Result<(), i32> {
        // SAFETY: no arguments; async-signal-safe.
        check(unsafe { libc::setsid() }).map(drop)
    }

    pub(super) fn setpgid(pgid: libc::pid_t) -> Result<(), i32> {
        // SAFETY: integer arguments; async-signal-safe.
        check(unsafe { libc::setpgid(0, pgid) }).map(drop)
    }

    pub(super) fn set_controlling_tty(fd: RawFd) -> Result<(), i32> {
        // SAFETY: TIOCSCTTY takes an integer argument.
        check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY as _, 0) }).map(drop)
    }

    pub(super) fn dup_cloexec_at_least(fd: RawFd, at_least: RawFd) -> Result<RawFd, i32> {
        // SAFETY: integer arguments; async-signal-safe.
        check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, at_least) })
    }

    pub(super) fn clear_cloexec(fd: RawFd) -> Result<(), i32> {
        // SAFETY: integer arguments; async-signal-safe.
        check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
    }

    pub(super) fn dup2(from: RawFd, to: RawFd) -> Result<(), i32> {
        // SAFETY: integer arguments; async-signal-safe.
        check(unsafe { libc::dup2(from, to) }).map(drop)
    }

    pub(super) fn close_range(first: u32, last: u32) -> Result<(), i32> {
        // Never chosen off Linux (`close_range_supported` is false there).
        let _ = (first, last);
        Err(libc::ENOSYS)
    }

    pub(super) fn close(fd: RawFd) {
        // SAFETY: integer argument; async-signal-safe; errors are moot.
        unsafe { libc::close(fd) };
    }

    pub(super) fn chdir(dir: &CStr) -> Result<(), i32> {
        // SAFETY: `dir` is NUL-terminated and alive.
        check(unsafe { libc::chdir(dir.as_ptr()) }).map(drop)
    }

    pub(super) fn setgid(gid: libc::gid_t) -> Result<(), i32> {
        // SAFETY: integer argument; async-signal-safe.
        check(unsafe { libc::setgid(gid) }).map(drop)
    }

    pub(super) fn setgroups(groups: &[libc::gid_t]) -> Result<(), i32> {
        let n = groups.len().try_into().map_err(|_| libc::EINVAL)?;
        // SAFETY: `groups` is readable for `n` entries.
        check(unsafe { libc::setgroups(n, groups.as_ptr()) }).map(drop)
    }

    pub(super) fn setuid(uid: libc::uid_t) -> Result<(), i32> {
        // SAFETY: integer argument; async-signal-safe.
        check(unsafe { libc::setuid(uid) }).map(drop)
    }

    pub(super) fn reset_signals() -> Result<(), i32> {
        // SAFETY: all-zero bytes are a `sigaction` with SIG_DFL, no flags, empty mask.
        let default: libc::sigaction = unsafe { std::mem::zeroed() };
        for sig in 1..NSIG {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: `default` is a valid action; no old action is asked for.
            if unsafe { libc::sigaction(sig, &default, std::ptr::null_mut()) } == -1
                && errno() != libc::EINVAL
            {
                return Err(errno());
            }
        }
        // SAFETY: all-zero bytes are a valid sigset_t; sigemptyset makes it empty.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `empty` is a valid sigset_t.
        unsafe { libc::sigemptyset(&mut empty) };
        // SAFETY: `empty` is a valid set; the forked child has one thread.
        check(unsafe { libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) })
            .map(drop)
    }

    /// The signal mask of the parent thread before [`block_all_signals`].
    pub(super) struct SavedMask(libc::sigset_t);

    pub(super) fn block_all_signals() -> SavedMask {
        // SAFETY: all-zero bytes are a valid sigset_t; the calls below fill them.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `all` is a valid sigset_t.
        unsafe { libc::sigfillset(&mut all) };
        // SAFETY: valid sets; SIG_SETMASK cannot fail with them.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
        SavedMask(old)
    }

    pub(super) fn restore_signals(saved: &SavedMask) {
        // SAFETY: `saved.0` is the mask the kernel gave us.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &saved.0, std::ptr::null_mut()) };
    }

    pub(super) fn execve(
        program: &CStr,
        argv: *const *const libc::c_char,
        envp: *const *const libc::c_char,
    ) -> i32 {
        // SAFETY: `program` is NUL-terminated; `argv` and `envp` are NULL-terminated arrays
        // of NUL-terminated strings that outlive the call.
        unsafe { libc::execve(program.as_ptr(), argv.cast(), envp.cast()) };
        errno()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g8_step_codes_round_trip() {
        for step in CODES {
            assert_eq!(step_from_code(step_code(step)), Some(step));
        }
        assert_eq!(step_from_code(0), None);
        assert_eq!(step_from_code(999), None);
    }
}
