//! The raw floor for the process benchmarks: `pipe2`, `posix_spawn` with dup2 file
//! actions, `waitpid`. No framework, no allocation per child beyond what libc does.

use std::ffi::{CString, c_char};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

unsafe extern "C" {
    static environ: *const *mut c_char;
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A `pipe2(O_CLOEXEC)`: (read end, write end).
///
/// # Errors
///
/// The OS error (fd exhaustion).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = std::io::pipe()?;
    Ok((OwnedFd::from(r), OwnedFd::from(w)))
}

/// `F_SETPIPE_SZ` on `fd`.
///
/// # Errors
///
/// The OS error (`EPERM` above `/proc/sys/fs/pipe-max-size`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn set_pipe_size(fd: &OwnedFd, bytes: usize) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own with an integer argument.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes as libc::c_int) })?;
    Ok(())
}

/// Pipe sizes cannot be set on this system: an `Unsupported` error.
///
/// # Errors
///
/// Always.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn set_pipe_size(_fd: &OwnedFd, _bytes: usize) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Make `fd` non-blocking.
///
/// # Errors
///
/// The OS error.
pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL/F_SETFL on an fd we own.
    unsafe {
        let flags = cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        cvt(libc::fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            flags | libc::O_NONBLOCK,
        ))?;
    }
    Ok(())
}

/// `posix_spawn(argv[0], argv)` with the child's fds 0, 1, 2 dup2'ed from `stdio`.
///
/// # Errors
///
/// The OS error of `posix_spawn` (`ENOENT` for a missing program).
pub fn spawn(argv: &[CString], stdio: [RawFd; 3]) -> io::Result<libc::pid_t> {
    let mut ptrs: Vec<*mut c_char> = argv.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    ptrs.push(std::ptr::null_mut());
    let mut pid: libc::pid_t = 0;
    // SAFETY: the file actions object is initialised before use and destroyed after; argv
    // is a NULL-terminated array of valid C strings that outlives the call; `environ` is
    // the process environment.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        let rc = libc::posix_spawn_file_actions_init(&mut fa);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        for (target, fd) in stdio.iter().enumerate() {
            libc::posix_spawn_file_actions_adddup2(&mut fa, *fd, target as libc::c_int);
        }
        let rc = libc::posix_spawn(
            &mut pid,
            ptrs[0],
            &fa,
            std::ptr::null(),
            ptrs.as_ptr(),
            environ,
        );
        libc::posix_spawn_file_actions_destroy(&mut fa);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
    }
    Ok(pid)
}

/// Blocking `waitpid(pid, 0)`; returns the wait status.
///
/// # Errors
///
/// The OS error (`ECHILD`).
pub fn wait(pid: libc::pid_t) -> io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to write.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(status);
    }
}

/// Blocking read of `fd` until EOF; returns the bytes read.
///
/// # Errors
///
/// The OS error.
pub fn drain(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut total = 0;
    loop {
        // SAFETY: `buf` is valid for `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => return Ok(total),
            n if n > 0 => total += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// `vmsplice(2)` of `data` into the pipe `fd` (no `SPLICE_F_GIFT`): the pipe references
/// the caller's pages instead of copying them, so they must stay allocated and unchanged
/// until the reader has consumed them.
///
/// # Errors
///
/// The OS error; `WouldBlock` when the (non-blocking) pipe is full.
#[cfg(target_os = "linux")]
pub fn vmsplice(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: one iovec over a live slice; the kernel only reads it. The caller keeps the
    // pages alive and unchanged until the reader consumed them (see above).
    let n = unsafe { libc::vmsplice(fd, &iov, 1, libc::SPLICE_F_NONBLOCK) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (the B4 scale cells hold 10,000
/// connections on each side); returns the new soft limit.
///
/// # Errors
///
/// The OS error.
pub fn raise_fd_limit() -> io::Result<libc::rlim_t> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a local rlimit.
    unsafe {
        cvt(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            cvt(libc::setrlimit(libc::RLIMIT_NOFILE, &lim))?;
        }
    }
    Ok(lim.rlim_cur)
}

/// `listen(fd, backlog)` again on a listening socket: Linux takes the new backlog. mio and
/// tokio bind with std's 128; torsion's default is 1,024, and the B4 scale cells connect
/// 10,000 clients at once, so every server gets 1,024 (an overflowing accept queue costs a
/// 1 s SYN retransmission, which would measure the backlog, not the server).
///
/// # Errors
///
/// The OS error.
pub fn set_backlog(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen on a socket fd the caller owns.
    cvt(unsafe { libc::listen(fd, backlog) })?;
    Ok(())
}
