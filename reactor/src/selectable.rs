//! What the reactor dispatches: Twisted's `IReadDescriptor`/`IWriteDescriptor`.

use std::io;

use mio::{Registry, Token};
use torsion_transport::Reason;

/// What a `do_read` or `do_write` left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStatus {
    /// The kernel said `WouldBlock` (or there was nothing to do): wait for readiness.
    Blocked,
    /// Stopped early (the fairness budget, CONTRACT C4): dispatch again next iteration
    /// without waiting for a new readiness event.
    More,
}

/// A source of events the reactor dispatches (Twisted's `IReadWriteDescriptor`).
///
/// Held by the reactor as `Rc<dyn Selectable>` in a slab keyed by mio [`Token`]. The reactor
/// clones the `Rc` out and releases every borrow before calling any method, so a method may
/// call back into the reactor freely (add or remove readers and writers, schedule timers,
/// remove itself or others). A selectable removed during dispatch gets no further calls
/// from the reactor (ARCHITECTURE, ownership rule 2).
///
/// The reactor keeps level-triggered semantics over mio's edges: it remembers readiness,
/// calls `do_read` while the selectable is a reader and readable, and `do_write` while it is
/// a writer and writable. Adding a reader or writer makes the reactor try the operation
/// once even without a fresh event, so data that arrived while paused is not stranded.
pub trait Selectable {
    /// Register the underlying source with `registry` under `token`. Register once, for
    /// every interest the source can have (usually readable and writable): the reactor
    /// filters events itself and never re-registers.
    ///
    /// # Errors
    ///
    /// The OS error from the poller.
    fn register(&self, registry: &Registry, token: Token) -> io::Result<()>;

    /// Deregister from `registry`. Called before the reactor forgets the selectable; the
    /// selectable closes its fd afterwards (in `connection_lost` or on drop).
    ///
    /// # Errors
    ///
    /// The OS error from the poller.
    fn deregister(&self, registry: &Registry) -> io::Result<()>;

    /// The fd is readable (or hung up, or in error). Read until `WouldBlock` or a budget.
    ///
    /// # Errors
    ///
    /// A [`Reason`] disconnects the selectable (CONTRACT C2): `Err(ConnectionDone)` for a
    /// clean EOF, which a half-closeable selectable may survive through
    /// [`read_connection_lost`](Self::read_connection_lost).
    fn do_read(&self) -> Result<IoStatus, Reason>;

    /// The fd is writable. Write until `WouldBlock` or the buffer is empty. A selectable
    /// embedding a [`FileDescriptor`](crate::FileDescriptor) borrows its fd for
    /// [`FileDescriptor::do_write`](crate::FileDescriptor::do_write) only, and calls
    /// [`finish_write`](crate::FileDescriptor::finish_write) (which may run a producer)
    /// after releasing it.
    ///
    /// # Errors
    ///
    /// A [`Reason`] disconnects the selectable; `Err(ConnectionDone)` when a requested
    /// close completes after the flush.
    fn do_write(&self) -> Result<IoStatus, Reason> {
        Ok(IoStatus::Blocked)
    }

    /// The read side reached a clean EOF. Return `true` if the selectable handles half-close
    /// and stays registered (it keeps writing); `false` to be disconnected.
    fn read_connection_lost(&self) -> bool {
        false
    }

    /// The poller reported that the other end of this fd's write side is gone (a pipe whose
    /// reader closed, for example), whether or not the selectable is writing. Return a
    /// reason to be disconnected now (Twisted's process "read hack", CONTRACT I1), or `None`
    /// to let the next write find out. Default `None`.
    fn on_write_closed(&self) -> Option<Reason> {
        None
    }

    /// The selectable is disconnected: it has been deregistered and will get no more calls.
    /// Close the fd and tell the protocol. Called exactly once per disconnection.
    fn connection_lost(&self, reason: Reason);

    /// A short description for logs (`"tcp 127.0.0.1:80 -> 127.0.0.1:5555"`).
    fn describe(&self) -> String {
        String::from("selectable")
    }
}
