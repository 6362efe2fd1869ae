//! The errors of `torsion-net`, carried inside `io::Error` (so every method keeps the
//! `io::Result` of std and tokio); `io::Error::get_ref` + `downcast_ref::<NetError>()`
//! gives the typed value back.

use std::fmt;
use std::io;

use torsion_transport::Reason;

/// What went wrong, beyond the OS error kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetError {
    /// A line was longer than the limit of [`Lines`](crate::Lines) without a newline; the
    /// bytes read so far stay buffered (see [`Lines::take_buffer`](crate::Lines::take_buffer)).
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A line was not UTF-8; the raw bytes are here.
    NotUtf8(Vec<u8>),
    /// A write after the write side was shut down or the connection closed.
    WriteClosed,
    /// The connection ended with an error (reset, ...): the reactor's reason, as text.
    ConnectionLost(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::LineTooLong { limit } => write!(
                f,
                "a line is longer than {limit} bytes; raise the limit with Lines::with_max_length"
            ),
            NetError::NotUtf8(b) => write!(f, "a line of {} bytes is not UTF-8", b.len()),
            NetError::WriteClosed => {
                f.write_str("write after the stream's write side was shut down or closed")
            }
            NetError::ConnectionLost(r) => write!(f, "the connection was lost: {r}"),
        }
    }
}

impl std::error::Error for NetError {}

impl NetError {
    pub(crate) fn into_io(self, kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, self)
    }
}

/// The `io::Error` for a connection that ended with `reason` (keeping the OS error kind).
pub(crate) fn io_from_reason(reason: &Reason) -> io::Error {
    let kind = match reason {
        Reason::ConnectionRefused => io::ErrorKind::ConnectionRefused,
        Reason::TimedOut => io::ErrorKind::TimedOut,
        _ => reason
            .io_error()
            .map(|e| e.kind())
            .unwrap_or(io::ErrorKind::ConnectionReset),
    };
    NetError::ConnectionLost(reason.to_string()).into_io(kind)
}
