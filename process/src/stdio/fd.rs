//! [`StdioFd`]: non-blocking I/O on an fd that other processes may share, without setting
//! `O_NONBLOCK` on the open file description they share with us.
//!
//! `O_NONBLOCK` is a flag of the *open file description*, not of the fd: a `dup` (or the
//! copy a shell gives every process of a pipeline) shares it. Setting it on our stdout
//! would make another writer of the same pipe get `EAGAIN` or short writes, and the flag
//! would outlive us. So, by what the fd is:
//!
//! | kind                          | how we avoid blocking                                  |
//! |-------------------------------|--------------------------------------------------------|
//! | regular file, block device    | nothing: they never block; used as they are            |
//! | pipe, FIFO, terminal, char dev| a new description from `/proc/self/fd/N`, non-blocking |
//! | socket                        | `recv`/`sendmsg` with `MSG_DONTWAIT`; flags untouched  |
//! | anything else, or no `/proc`  | last resort: set the flag, clear it again (below)      |
//!
//! The last resort clears the flag when the `StdioFd` is dropped (the transport closed it,
//! after an error or a panic too) and, for those never dropped, when the process exits
//! (`atexit`). Nothing can clear it after `SIGKILL` or another fatal signal.

use std::fs::File;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::sys::unix::stdio::{self as sys, FdKind};

/// How a [`StdioFd`] reads and writes without blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A regular file: plain blocking calls, which never wait.
    Direct,
    /// Our own non-blocking open file description (pipes, FIFOs, terminals).
    Reopened,
    /// A socket: `MSG_DONTWAIT` per call.
    Socket,
    /// `O_NONBLOCK` set on the shared description; cleared on drop (and at exit).
    Flagged,
}

/// An fd ready for the reactor: every read and write returns `WouldBlock` rather than
/// waiting (a regular file never waits anyway).
#[derive(Debug)]
pub(crate) struct StdioFd {
    file: File,
    mode: Mode,
}

impl StdioFd {
    /// Take `fd` (to be read, or written if `write`) and make its I/O non-blocking without
    /// touching the flags of the description it shares.
    ///
    /// # Errors
    ///
    /// The OS error of `fstat`, or of setting the flag in the last resort.
    pub(crate) fn new(fd: OwnedFd, write: bool) -> io::Result<StdioFd> {
        let kind = sys::fd_kind(fd.as_fd())?;
        let (fd, mode) = match kind {
            FdKind::File => (fd, Mode::Direct),
            FdKind::Socket => (fd, Mode::Socket),
            FdKind::Fifo | FdKind::CharDevice => match sys::reopen_nonblocking(fd.as_fd(), write) {
                // The original closes here; the new description replaces it.
                Ok(new) => (new, Mode::Reopened),
                Err(e) => {
                    log::debug!("stdio: cannot reopen fd through /proc ({e}); setting O_NONBLOCK");
                    flagged(fd)?
                }
            },
            FdKind::Other => flagged(fd)?,
        };
        Ok(StdioFd {
            file: File::from(fd),
            mode,
        })
    }

    /// How this fd avoids blocking.
    #[cfg(test)]
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    /// `read(2)`, or `recv(MSG_DONTWAIT)` on a socket.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self.mode {
            Mode::Socket => sys::recv_dontwait(self.file.as_fd(), buf),
            _ => (&self.file).read(buf),
        }
    }

    /// `writev(2)`, or `sendmsg(MSG_DONTWAIT)` on a socket.
    pub(crate) fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.mode {
            Mode::Socket => sys::send_dontwait(self.file.as_fd(), bufs),
            _ => (&self.file).write_vectored(bufs),
        }
    }

    /// The fd, to register with the poller.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

fn flagged(fd: OwnedFd) -> io::Result<(OwnedFd, Mode)> {
    if sys::is_nonblocking(fd.as_fd())? {
        // Someone else made it non-blocking; it is not ours to clear.
        return Ok((fd, Mode::Direct));
    }
    sys::set_nonblocking_until_exit(fd.as_fd())?;
    Ok((fd, Mode::Flagged))
}

impl Drop for StdioFd {
    fn drop(&mut self) {
        if self.mode == Mode::Flagged {
            sys::restore_now(self.file.as_fd());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_nonblocking(fd: BorrowedFd<'_>) -> bool {
        sys::is_nonblocking(fd).unwrap()
    }

    #[test]
    fn a_pipe_is_reopened_and_its_description_stays_blocking() {
        let (r, w) = std::io::pipe().unwrap();
        let (r, w) = (OwnedFd::from(r), OwnedFd::from(w));
        let (r2, w2) = (r.try_clone().unwrap(), w.try_clone().unwrap());
        let read = StdioFd::new(r, false).unwrap();
        let write = StdioFd::new(w, true).unwrap();
        if read.mode() != Mode::Reopened {
            // Linux always has /proc/self/fd: there the reopen must have happened.
            #[cfg(target_os = "linux")]
            panic!("not reopened: {:?}", read.mode());
            #[cfg(not(target_os = "linux"))]
            {
                log::info!("skipped: no /proc here ({:?})", read.mode());
                return;
            }
        }
        assert_eq!(write.mode(), Mode::Reopened);
        assert!(!flags_nonblocking(r2.as_fd()) && !flags_nonblocking(w2.as_fd()));
        assert!(flags_nonblocking(read.as_fd()) && flags_nonblocking(write.as_fd()));
        let mut buf = [0u8; 4];
        assert_eq!(
            read.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(write.write_vectored(&[IoSlice::new(b"hi")]).unwrap(), 2);
        assert_eq!(read.read(&mut buf).unwrap(), 2);
    }

    #[test]
    fn the_last_resort_sets_the_flag_and_clears_it_on_drop() {
        let (r, _w) = std::io::pipe().unwrap();
        let r = OwnedFd::from(r);
        let original = r.try_clone().unwrap();
        let (fd, mode) = flagged(r).unwrap();
        assert_eq!(mode, Mode::Flagged);
        let stdio = StdioFd {
            file: File::from(fd),
            mode,
        };
        assert!(flags_nonblocking(original.as_fd()));
        let mut buf = [0u8; 4];
        assert_eq!(
            stdio.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(stdio);
        assert!(!flags_nonblocking(original.as_fd()));
    }

    #[test]
    fn the_last_resort_leaves_a_flag_someone_else_set() {
        let (r, _w) = std::io::pipe().unwrap();
        let r = OwnedFd::from(r);
        let original = r.try_clone().unwrap();
        crate::raw::set_nonblocking(original.as_fd(), true).unwrap();
        let (fd, mode) = flagged(r).unwrap();
        assert_eq!(mode, Mode::Direct);
        drop(fd);
        assert!(flags_nonblocking(original.as_fd()));
    }

    #[test]
    fn regular_files_are_used_as_they_are_and_sockets_with_dontwait() {
        let file = std::fs::File::open("/proc/self/exe")
            .or_else(|_| std::fs::File::open("Cargo.toml"))
            .unwrap();
        assert_eq!(
            StdioFd::new(file.into(), false).unwrap().mode(),
            Mode::Direct
        );
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a_copy = a.try_clone().unwrap();
        let a = StdioFd::new(a.into(), false).unwrap();
        assert_eq!(a.mode(), Mode::Socket);
        assert!(!flags_nonblocking(a_copy.as_fd()));
        let mut buf = [0u8; 4];
        assert_eq!(
            a.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        (&b).write_all(b"yo").unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 2);
        let b = StdioFd::new(b.into(), true).unwrap();
        assert_eq!(
            b.write_vectored(&[IoSlice::new(b"x"), IoSlice::new(b"y")])
                .unwrap(),
            2
        );
    }
}
