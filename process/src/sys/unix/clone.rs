//! Linux: creating the child with `clone(CLONE_VM | CLONE_VFORK)` on its own stack.
//!
//! `CLONE_VM` makes the child share the parent's memory: no page table is copied, so
//! spawning costs the same with a 1 GiB heap as with an empty one. `CLONE_VFORK`
//! suspends the calling thread until the child has called `execve` (or `_exit`), so
//! the child's stack, its arguments and the report stay valid and untouched by the
//! parent while the child uses them. This is glibc's and musl's `posix_spawn`
//! technique; torsion does it itself so the child can run steps `posix_spawn` cannot
//! express (TIOCSCTTY, setuid, closing every unmapped fd) and name the step that failed.

use std::cell::Cell;
use std::ffi::c_void;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use torsion_transport::SpawnStep;

use super::child::{self, BlockedSignals, ChildContext};
use super::wait;
use super::wait::reap_failed;

/// The child's stack, above one guard page. It only runs `child::run`: a few KiB.
const STACK_SIZE: usize = 256 * 1024;

/// An anonymous mapping used as the child's stack, unmapped on drop.
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

impl ChildStack {
    fn new() -> io::Result<Self> {
        // SAFETY: sysconf only reads a constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let len = STACK_SIZE + page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // The stack grows down: its lowest page is the guard.
        // SAFETY: `base..base + page` lies inside the mapping just made.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    fn top(&self) -> *mut c_void {
        self.base.cast::<u8>().wrapping_add(self.len).cast()
    }
}

thread_local! {
    /// One stack per spawning thread, kept between spawns: saves an mmap, an mprotect, a
    /// munmap and the page faults of a fresh mapping on every spawn. Taken out for the
    /// duration of a spawn and put back after, so a spawn that somehow nested (it cannot:
    /// CLONE_VFORK suspends this thread until the child execs or exits) would simply map
    /// its own.
    static CACHED_STACK: Cell<Option<ChildStack>> = const { Cell::new(None) };
}

impl ChildStack {
    /// This thread's kept stack, or a new one.
    fn take() -> io::Result<Self> {
        match CACHED_STACK.try_with(Cell::take) {
            Ok(Some(stack)) => Ok(stack),
            _ => ChildStack::new(),
        }
    }

    /// Keep this stack for the thread's next spawn. Only once the child no longer runs on
    /// it: it has exec'd or exited (CLONE_VFORK returned).
    fn keep(self) {
        // During thread teardown the cache is gone: the stack is then simply unmapped.
        let _ = CACHED_STACK.try_with(|c| c.set(Some(self)));
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; the child that used it has
        // exec'd or exited (CLONE_VFORK), so nothing runs on it.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Where the child reports a failure: step code (0 = none) and errno.
struct Report {
    step: AtomicU32,
    errno: AtomicI32,
}

/// What `child_entry` receives, on the parent's stack.
struct CloneArgs<'a, 'b> {
    ctx: &'a ChildContext<'b>,
    scratch: *mut RawFd,
    scratch_len: usize,
    report: &'a Report,
}

/// The child's entry point: run the steps; on failure report and `_exit(127)`.
extern "C" fn child_entry(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` is the `CloneArgs` that `create` passed; it lives on the parent's
    // stack, which the suspended parent (CLONE_VFORK) does not touch until we exec or exit.
    let args = unsafe { &*arg.cast::<CloneArgs<'_, '_>>() };
    // SAFETY: `scratch` points to `scratch_len` ints owned by `create`'s caller and used
    // by nothing else while the parent is suspended.
    let scratch = unsafe { std::slice::from_raw_parts_mut(args.scratch, args.scratch_len) };
    let (step, errno) = child::run(args.ctx, scratch);
    args.report.errno.store(errno, Ordering::Relaxed);
    args.report
        .step
        .store(child::step_code(step), Ordering::Release);
    // SAFETY: ends the child (exit_group of the child's own thread group); no atexit
    // handler of the parent runs.
    unsafe { libc::_exit(127) }
}

/// Create the child; see the module docs. Returns `(pid, pidfd)`.
pub(super) fn create(
    ctx: &ChildContext<'_>,
    scratch: &mut [RawFd],
    want_pidfd: bool,
) -> Result<(u32, Option<OwnedFd>), (SpawnStep, io::Error)> {
    let stack = ChildStack::take().map_err(|e| (SpawnStep::Fork, e))?;
    let report = Report {
        step: AtomicU32::new(0),
        errno: AtomicI32::new(0),
    };
    let mut args = CloneArgs {
        ctx,
        scratch: scratch.as_mut_ptr(),
        scratch_len: scratch.len(),
        report: &report,
    };
    let mut pidfd: libc::c_int = -1;
    let base = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    let pid = {
        let _blocked = BlockedSignals::new();
        let first = clone_once(&stack, base | pidfd_flag(want_pidfd), &mut args, &mut pidfd);
        match first {
            // A kernel or sandbox that rejects CLONE_PIDFD: pidfd_open is tried below.
            Err(e) if want_pidfd && e.raw_os_error() == Some(libc::EINVAL) => {
                clone_once(&stack, base, &mut args, &mut pidfd)
            }
            other => other,
        }
    };
    // CLONE_VFORK has returned: the child exec'd or exited and no longer runs on the stack
    // (after a failed clone nothing ran on it).
    stack.keep();
    let pid = pid.map_err(|e| (SpawnStep::Fork, e))?;
    // SAFETY: a non-negative value was written by the kernel (CLONE_PIDFD): a new fd
    // owned by nobody else. Old kernels ignore the flag and leave -1.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    if let Some(step) = child::step_from_code(report.step.load(Ordering::Acquire)) {
        let errno = report.errno.load(Ordering::Relaxed);
        drop(pidfd);
        reap_failed(pid);
        return Err((step, io::Error::from_raw_os_error(errno)));
    }
    let pid = pid as u32;
    let pidfd = match pidfd {
        None if want_pidfd => wait::pidfd_open(pid).ok(),
        other => other,
    };
    Ok((pid, pidfd))
}

fn pidfd_flag(want: bool) -> libc::c_int {
    if want { libc::CLONE_PIDFD } else { 0 }
}

fn clone_once(
    stack: &ChildStack,
    flags: libc::c_int,
    args: &mut CloneArgs<'_, '_>,
    pidfd: &mut libc::c_int,
) -> io::Result<libc::pid_t> {
    // `child_entry` `_exit`s instead of returning and makes only `child::run`'s raw calls;
    // no CLONE_SETTLS/CHILD_*TID flags, so tls and ctid are unused.
    // SAFETY: it runs on `stack`, its own mapping; `args` and `pidfd` outlive the call, and
    // CLONE_VFORK suspends this thread until the child no longer uses them.
    let pid = unsafe {
        libc::clone(
            child_entry,
            stack.top(),
            flags,
            (args as *mut CloneArgs<'_, '_>).cast::<c_void>(),
            pidfd as *mut libc::c_int,
            std::ptr::null_mut::<c_void>(),
            std::ptr::null_mut::<libc::c_int>(),
        )
    };
    super::cvt(pid)
}
