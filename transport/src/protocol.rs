//! Protocols and factories.

use std::fmt;
use std::rc::Rc;

use crate::{Address, Reason, Transport};

/// The code that handles one connection (Twisted's `IProtocol`).
///
/// The transport owns its protocol (`Box<dyn Protocol>`) and calls these methods from the
/// loop, never while another of them is on the stack (ARCHITECTURE, ownership rule 4). The
/// transport drops its protocol after `connection_lost` returns; keep results you need
/// in shared state (`Rc<RefCell<..>>`).
pub trait Protocol {
    /// The connection is up; `transport` is the way to write and close. Called once, first.
    /// Keep the `Rc` to use the transport later.
    #[doc(alias = "connectionMade")]
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let _ = transport;
    }

    /// Bytes arrived. Chunk boundaries carry no meaning.
    #[doc(alias = "dataReceived")]
    fn data_received(&mut self, data: &[u8]);

    /// The connection ended (CONTRACT D7): called exactly once, last.
    #[doc(alias = "connectionLost")]
    fn connection_lost(&mut self, reason: Reason) {
        let _ = reason;
    }

    /// This protocol's half-close handlers, if it supports half-close (Twisted's
    /// `providedBy(IHalfCloseableProtocol)`). The default says it does not, so EOF from the
    /// peer ends the whole connection.
    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        None
    }

    /// This protocol as a receiver of file descriptors sent over a Unix socket (Twisted's
    /// `providedBy(IFileDescriptorReceiver)`; CONTRACT Q8). The default says it is not, and
    /// the transport reads with plain `read`. Asked once, after `connection_made`.
    #[cfg(unix)]
    fn as_fd_receiver(&mut self) -> Option<&mut dyn crate::FileDescriptorReceiver> {
        None
    }
}

/// Half-close notifications (Twisted's `IHalfCloseableProtocol`).
pub trait HalfCloseableProtocol {
    /// The peer shut down its write side (EOF); this side may keep writing (CONTRACT C2).
    #[doc(alias = "readConnectionLost")]
    fn read_connection_lost(&mut self);

    /// Our write side was shut down after `lose_write_connection` flushed (CONTRACT D6).
    #[doc(alias = "writeConnectionLost")]
    fn write_connection_lost(&mut self) {}
}

/// Builds a protocol per connection (Twisted's `Factory`/`ServerFactory`).
pub trait Factory {
    /// A protocol for a new connection with `peer`, or `None` to refuse it (the connection
    /// is closed at once).
    #[doc(alias = "buildProtocol")]
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>>;
}

/// A factory for outgoing connections (Twisted's `ClientFactory`).
pub trait ClientFactory: Factory {
    /// The connection attempt began.
    #[doc(alias = "startedConnecting")]
    fn started_connecting(&self) {}

    /// The attempt failed: refused, timed out, unreachable, or cancelled. Called instead of
    /// `build_protocol`, exactly once, from the loop.
    #[doc(alias = "clientConnectionFailed")]
    fn client_connection_failed(&self, reason: Reason);

    /// An established connection ended (after the protocol's `connection_lost`).
    #[doc(alias = "clientConnectionLost")]
    fn client_connection_lost(&self, reason: Reason) {
        let _ = reason;
    }
}

/// A [`Factory`] from a closure: `factory_fn(|_peer| Box::new(Echo))`.
pub struct FnFactory<F>(pub F);

impl<F> fmt::Debug for FnFactory<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnFactory(..)")
    }
}

impl<F> Factory for FnFactory<F>
where
    F: Fn(&Address) -> Box<dyn Protocol>,
{
    fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        Some((self.0)(peer))
    }
}

/// A shared server factory that builds each protocol with `f`.
///
/// ```
/// use torsion_transport::{factory_fn, Protocol};
///
/// struct Discard;
/// impl Protocol for Discard {
///     fn data_received(&mut self, _data: &[u8]) {}
/// }
/// let factory = factory_fn(|_peer| Box::new(Discard));
/// # let _ = factory;
/// ```
pub fn factory_fn<F>(f: F) -> Rc<dyn Factory>
where
    F: Fn(&Address) -> Box<dyn Protocol> + 'static,
{
    Rc::new(FnFactory(f))
}
