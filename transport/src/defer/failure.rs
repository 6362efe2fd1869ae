//! [`Failure`]: why a [`Deferred`](super::Deferred) did not produce its value.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

/// Why a [`Deferred`](super::Deferred) failed (Twisted's `Failure`), passed down the chain
/// to the next errback.
#[non_exhaustive]
pub enum Failure {
    /// The Deferred was cancelled and its canceller did not complete it (Twisted's
    /// `CancelledError`, CONTRACT P2).
    Cancelled,
    /// [`add_timeout`](super::Deferred::add_timeout) ran out: no result within this long
    /// (Twisted's `TimeoutError`).
    TimedOut(Duration),
    /// A chained callback panicked; the message (CONTRACT P3).
    Panicked(String),
    /// The result had already gone to another consumer: each link of a chain delivers its
    /// result once (a second `add_callback` on a clone of the same handle, or a future
    /// polled after it completed).
    Consumed,
    /// Any other error.
    Error(Box<dyn Error + 'static>),
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

impl Failure {
    /// A failure carrying `error`.
    pub fn new(error: impl Error + 'static) -> Self {
        Failure::Error(Box::new(error))
    }

    /// A failure carrying only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Failure::Error(Box::new(Message(message.into())))
    }

    /// Whether this is [`Failure::Cancelled`] (Twisted's `failure.check(CancelledError)`).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Failure::Cancelled)
    }

    /// Whether this is [`Failure::TimedOut`].
    pub fn is_timed_out(&self) -> bool {
        matches!(self, Failure::TimedOut(_))
    }

    /// The carried error as `E`, if it is one (Twisted's `failure.check`/`trap`).
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        match self {
            Failure::Error(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cancelled => f.write_str("Cancelled"),
            Failure::TimedOut(d) => f.debug_tuple("TimedOut").field(d).finish(),
            Failure::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
            Failure::Consumed => f.write_str("Consumed"),
            Failure::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Cancelled => f.write_str("the operation was cancelled"),
            Failure::TimedOut(d) => write!(f, "no result within {d:?}: timed out"),
            Failure::Panicked(m) => write!(f, "a callback panicked: {m}"),
            Failure::Consumed => {
                f.write_str("the result had already been taken by another consumer")
            }
            Failure::Error(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl Error for Failure {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Failure::Error(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::new(e)
    }
}

impl From<crate::Reason> for Failure {
    fn from(r: crate::Reason) -> Self {
        Failure::new(r)
    }
}

impl From<String> for Failure {
    fn from(m: String) -> Self {
        Failure::msg(m)
    }
}

impl From<&str> for Failure {
    fn from(m: &str) -> Self {
        Failure::msg(m)
    }
}

impl From<Failure> for io::Error {
    /// The failure as an `io::Error`: an I/O error is returned as it was, a timeout is
    /// `TimedOut`, a cancellation `Interrupted`, anything else `Other`.
    fn from(f: Failure) -> Self {
        match f {
            Failure::Error(e) => match e.downcast::<io::Error>() {
                Ok(io) => *io,
                Err(e) => io::Error::other(e.to_string()),
            },
            Failure::TimedOut(_) => io::Error::new(io::ErrorKind::TimedOut, f.to_string()),
            Failure::Cancelled => io::Error::new(io::ErrorKind::Interrupted, f.to_string()),
            other => io::Error::other(other.to_string()),
        }
    }
}
