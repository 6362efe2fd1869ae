//! Unix-socket extras: passing file descriptors (`SCM_RIGHTS`) and the peer's credentials
//! (Twisted's `IUNIXTransport.sendFileDescriptor` and `IFileDescriptorReceiver`; CONTRACT
//! Q8, Q9). Unix only.
//!
//! A protocol reaches them through its transport: [`Transport::as_unix_socket`](crate::Transport::as_unix_socket) is
//! `Some` on a connected Unix stream socket and `None` on every other transport. A protocol
//! that wants descriptors says so by returning itself from
//! [`Protocol::as_fd_receiver`](crate::Protocol::as_fd_receiver), as a Twisted protocol
//! provides `IFileDescriptorReceiver`.
//!
//! # Examples
//!
//! ```
//! use std::os::fd::OwnedFd;
//! use std::rc::Rc;
//! use torsion_transport::*;
//!
//! /// Sends a file descriptor to each client, and checks who the client is.
//! struct Handout(OwnedFd);
//! impl Protocol for Handout {
//!     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
//!         let Some(unix) = transport.as_unix_socket() else { return };
//!         match unix.peer_credentials() {
//!             Ok(c) => log::info!("client uid {} gid {} pid {:?}", c.uid, c.gid, c.pid),
//!             Err(e) => log::warn!("no credentials: {e}"),
//!         }
//!         if let Ok(fd) = self.0.try_clone() {
//!             let _ = unix.send_fds(b"here", vec![fd]);
//!         }
//!     }
//!     fn data_received(&mut self, _: &[u8]) {}
//! }
//!
//! /// Keeps the descriptors it is sent.
//! #[derive(Default)]
//! struct Collector(Vec<OwnedFd>);
//! impl Protocol for Collector {
//!     fn data_received(&mut self, _: &[u8]) {}
//!     fn as_fd_receiver(&mut self) -> Option<&mut dyn FileDescriptorReceiver> {
//!         Some(self)
//!     }
//! }
//! impl FileDescriptorReceiver for Collector {
//!     fn fds_received(&mut self, fds: Vec<OwnedFd>) {
//!         self.0.extend(fds);
//!     }
//! }
//! # let _ = Collector::default();
//! ```

use std::io;
use std::os::fd::OwnedFd;

/// The most descriptors [`UnixSocketTransport::send_fds`] sends with one message (Linux's
/// `SCM_MAX_FD` is 253) and the most one receive accepts.
pub const MAX_FDS_PER_MESSAGE: usize = 253;

/// Who is at the other end of a Unix socket, as the kernel saw it when the socket was
/// connected (`SO_PEERCRED`, `getpeereid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// The peer's process id, where the system reports it (Linux, macOS); `None` elsewhere.
    pub pid: Option<u32>,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// What a connected Unix stream socket adds to [`Transport`](crate::Transport) (Twisted's
/// `IUNIXTransport`). Reached with [`Transport::as_unix_socket`](crate::Transport::as_unix_socket).
pub trait UnixSocketTransport {
    /// Send `fds` along with `data` (`SCM_RIGHTS`; Twisted's `sendFileDescriptor`, which
    /// sends each descriptor with the next byte written). The descriptors travel with the
    /// first byte of `data`, in order with every other write: they are sent when the bytes
    /// written before have gone, and closed here once sent (the peer has its own copies).
    /// Like a write, nothing is sent after the connection is closing or lost; then the
    /// descriptors are closed unsent.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `data` is empty (a descriptor must ride with at least one byte)
    /// or `fds` holds more than [`MAX_FDS_PER_MESSAGE`]; `NotConnected` once the
    /// connection is closing or closed. Send errors (`EPIPE`, ...) end the connection as
    /// a failed write does.
    #[doc(alias = "sendFileDescriptor")]
    fn send_fds(&self, data: &[u8], fds: Vec<OwnedFd>) -> io::Result<()>;

    /// The peer's credentials (`SO_PEERCRED` on Linux, `getpeereid` and `LOCAL_PEERPID`
    /// elsewhere).
    ///
    /// # Errors
    ///
    /// The OS error; `NotConnected` once the connection is closed.
    fn peer_credentials(&self) -> io::Result<Credentials>;
}

/// A protocol that accepts descriptors sent over its Unix socket (Twisted's
/// `IFileDescriptorReceiver`), offered through
/// [`Protocol::as_fd_receiver`](crate::Protocol::as_fd_receiver).
///
/// A protocol that is not a receiver never gets descriptors: its transport reads with
/// plain `read`, and the kernel closes any descriptors sent to it.
pub trait FileDescriptorReceiver {
    /// Descriptors arrived (close-on-exec), before the `data_received` call for the bytes
    /// they came with (Twisted's `fileDescriptorReceived`, one call per message here).
    /// Dropping them closes them.
    #[doc(alias = "fileDescriptorReceived")]
    fn fds_received(&mut self, fds: Vec<OwnedFd>);

    /// The kernel dropped descriptors of a message because the receive buffer for them was
    /// too small (`MSG_CTRUNC`): the sender sent more than [`MAX_FDS_PER_MESSAGE`] at once.
    /// The default logs a warning.
    fn fds_truncated(&mut self) {
        log::warn!("some file descriptors sent over a Unix socket were dropped (MSG_CTRUNC)");
    }
}
