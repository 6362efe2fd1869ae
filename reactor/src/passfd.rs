//! Descriptor passing over Unix stream sockets (`SCM_RIGHTS`; CONTRACT Q8): the queue of
//! descriptors waiting to go out with their bytes, in order with the stream.
//!
//! `send_fds(data, fds)` records `(offset, fds)`, where `offset` is the position of
//! `data`'s first byte in the stream of bytes still to send, and buffers `data` like any
//! write. The writer then sends up to the next such offset with plain writes, and from it
//! with `sendmsg` carrying the descriptors, so they travel with exactly their first byte.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, OwnedFd};

use crate::sys::socket as syssock;

pub(crate) use syssock::WithFds;

/// Descriptors waiting to be sent.
#[derive(Debug, Default)]
pub(crate) struct FdOut {
    /// `(offset, fds)`, offsets counted from when the queue was last empty.
    queue: RefCell<VecDeque<(u64, Vec<OwnedFd>)>>,
    /// Bytes sent since the queue was last empty.
    sent: Cell<u64>,
}

impl FdOut {
    /// True while descriptors wait.
    pub(crate) fn pending(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Queue `fds` to go with the byte `unsent` bytes from now.
    pub(crate) fn push(&self, unsent: usize, fds: Vec<OwnedFd>) {
        let mut q = self.queue.borrow_mut();
        if q.is_empty() {
            self.sent.set(0);
        }
        q.push_back((self.sent.get() + unsent as u64, fds));
    }

    /// Forget (and close) the descriptors queued last.
    pub(crate) fn drop_last(&self) {
        self.queue.borrow_mut().pop_back();
    }

    /// Close every descriptor not sent.
    pub(crate) fn clear(&self) {
        let dropped = std::mem::take(&mut *self.queue.borrow_mut());
        if !dropped.is_empty() {
            log::debug!(
                "{} descriptor messages not sent: connection closed",
                dropped.len()
            );
        }
    }

    /// Write from `bufs` to `sock`, not past the next descriptor boundary, sending the
    /// descriptors that start here.
    pub(crate) fn write(
        &self,
        sock: &mio::net::UnixStream,
        bufs: &[IoSlice<'_>],
    ) -> io::Result<usize> {
        let sent = self.sent.get();
        let (first, next) = {
            let q = self.queue.borrow();
            let Some(&(first, _)) = q.front() else {
                return (&*sock).write_vectored(bufs);
            };
            (first, q.get(1).map(|&(o, _)| o))
        };
        let n = if first == sent {
            let limit = next.map(|o| (o - sent) as usize);
            let slices = limited(bufs, limit);
            let fds = self
                .queue
                .borrow_mut()
                .pop_front()
                .map(|(_, f)| f)
                .unwrap_or_default();
            match syssock::send_with_fds(sock.as_fd(), &slices, &fds) {
                Ok(n) => n, // `fds` dropped: our copies close, the peer has its own.
                Err(e) => {
                    self.queue.borrow_mut().push_front((first, fds));
                    return Err(e);
                }
            }
        } else {
            let slices = limited(bufs, Some((first - sent) as usize));
            (&*sock).write_vectored(&slices)?
        };
        self.sent.set(sent + n as u64);
        Ok(n)
    }
}

/// The first `limit` bytes of `bufs` (all of them for `None`).
fn limited<'b>(bufs: &'b [IoSlice<'_>], limit: Option<usize>) -> Vec<IoSlice<'b>> {
    let mut left = limit.unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(bufs.len());
    for b in bufs {
        if left == 0 {
            break;
        }
        let take = b.len().min(left);
        out.push(IoSlice::new(&b[..take]));
        left -= take;
    }
    out
}

/// One `recvmsg` taking up to `MAX_FDS_PER_MESSAGE` descriptors.
pub(crate) fn recv(sock: &mio::net::UnixStream, buf: &mut [u8]) -> io::Result<WithFds> {
    syssock::recv_with_fds(sock.as_fd(), buf, torsion_transport::MAX_FDS_PER_MESSAGE)
}

/// The peer's credentials.
pub(crate) fn peer_credentials(
    sock: &mio::net::UnixStream,
) -> io::Result<torsion_transport::Credentials> {
    syssock::peer_credentials(sock.as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_cuts_at_the_boundary() {
        let a = [1u8, 2, 3];
        let b = [4u8, 5];
        let bufs = [IoSlice::new(&a), IoSlice::new(&b)];
        let cut = limited(&bufs, Some(4));
        assert_eq!(cut.len(), 2);
        assert_eq!(&*cut[1], &[4]);
        assert_eq!(limited(&bufs, None).len(), 2);
        assert_eq!(limited(&bufs, Some(2)).len(), 1);
    }
}
