//! The portable way to create the child: `fork`, then the child's steps in the copy.

use std::io;
use std::os::fd::RawFd;

use super::child::{self, ChildContext};
use super::cvt;

/// `fork()`; the child runs [`child::run`] and, if a step fails, writes the 8-byte
/// report `(step code, errno)` to `report` and calls `_exit(127)`. Returns the child's pid
/// in the parent. The caller has blocked all signals.
///
/// # References
///
/// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html),
/// [`signal-safety(7)`](https://man7.org/linux/man-pages/man7/signal-safety.7.html).
pub(super) fn fork_child(
    ctx: &ChildContext<'_>,
    scratch: &mut [RawFd],
    report: RawFd,
) -> io::Result<libc::pid_t> {
    // SAFETY: in the child (a copy of this process with only this thread) we call only
    // `child::run`, which makes async-signal-safe calls and neither allocates nor takes
    // locks, then `write` and `_exit`; everything it reads was prepared before the fork.
    let pid = cvt(unsafe { libc::fork() })?;
    if pid == 0 {
        let (step, errno) = child::run(ctx, scratch);
        let code = child::step_code(step).to_ne_bytes();
        let errno = errno.to_ne_bytes();
        let buf = [
            code[0], code[1], code[2], code[3], errno[0], errno[1], errno[2], errno[3],
        ];
        // SAFETY: `buf` is readable for its length; a short or failed write only loses
        // the step name (the parent then sees a successful exec and exit status 127).
        unsafe { libc::write(report, buf.as_ptr().cast(), buf.len()) };
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(127) }
    }
    Ok(pid)
}
