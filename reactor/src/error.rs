//! The reactor's errors.

use std::fmt;

/// Errors of reactor control operations (CONTRACT B1, B4, B6): the one reactor-state enum,
/// shared with [`ReactorCore`](torsion_transport::ReactorCore) (and the test kit's
/// `MemoryReactor`), under the name callers of this crate know.
pub use torsion_transport::ReactorStateError as ReactorError;

/// `call_from_thread` on a reactor that no longer exists: the call was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorGone;

impl fmt::Display for ReactorGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor this handle belongs to has been dropped; the call was not queued")
    }
}

impl std::error::Error for ReactorGone {}

/// Why a descriptor cannot be adopted (`adopt_stream_port`, `adopt_stream_connection`,
/// `adopt_datagram_port`). Carried inside the `io::Error` those return (kind
/// `InvalidInput`); [`AdoptError::of`] finds it. The descriptor is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdoptError {
    /// The descriptor is not a socket (a file, a pipe, a terminal).
    NotASocket,
    /// A socket of the wrong type: a datagram socket where a stream socket is needed, or
    /// the reverse (or a raw or sequenced-packet socket).
    WrongType {
        /// What the call needs: `"stream"` or `"datagram"`.
        expected: &'static str,
        /// What the descriptor is.
        found: String,
    },
    /// A stream socket that is not listening, given to `adopt_stream_port` (call `listen`
    /// first).
    NotListening,
    /// A listening socket given to `adopt_stream_connection` (use `adopt_stream_port`).
    Listening,
    /// A stream socket with no peer, given to `adopt_stream_connection`.
    NotConnected,
    /// A socket family torsion does not drive (only IPv4, IPv6 and Unix sockets are).
    UnsupportedFamily(i32),
}

impl AdoptError {
    /// The `AdoptError` inside an `io::Error` returned by an adopt call, if the descriptor
    /// was refused for what it is (rather than for an OS failure).
    pub fn of(e: &std::io::Error) -> Option<&AdoptError> {
        e.get_ref().and_then(|inner| inner.downcast_ref())
    }
}

impl fmt::Display for AdoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdoptError::NotASocket => f.write_str("the file descriptor is not a socket"),
            AdoptError::WrongType { expected, found } => {
                write!(
                    f,
                    "the socket is a {found} socket; a {expected} socket is needed"
                )
            }
            AdoptError::NotListening => f.write_str(
                "the stream socket is not listening (call listen before adopting it as a port)",
            ),
            AdoptError::Listening => {
                f.write_str("the socket is listening; adopt it as a port, not as a connection")
            }
            AdoptError::NotConnected => f.write_str("the stream socket is not connected to a peer"),
            AdoptError::UnsupportedFamily(family) => write!(
                f,
                "the socket's address family ({family}) is not IPv4, IPv6 or Unix"
            ),
        }
    }
}

impl std::error::Error for AdoptError {}

impl From<AdoptError> for std::io::Error {
    fn from(e: AdoptError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}
