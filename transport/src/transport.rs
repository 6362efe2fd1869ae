//! Byte-stream transports, consumers and producers (CONTRACT D, E).

use std::fmt;
use std::rc::Rc;

use crate::error::ProducerError;
use crate::{Address, SharedBytes};

/// A producer that writes on its own schedule and must be told to pause when the consumer's
/// buffer is full (Twisted's `IPushProducer`).
///
/// Methods take `&self`: producers are shared as `Rc<dyn PushProducer>` and keep their state
/// in cells. A consumer calls these methods from inside its own `write` (pause) or from the
/// loop (resume, stop); an implementation must not assume it is *not* inside one of its own
/// `write` calls, and may write from `resume_producing` (CONTRACT E3).
pub trait PushProducer {
    /// Stop producing until [`resume_producing`](Self::resume_producing) is called. Called
    /// synchronously inside the `write` that takes the consumer's buffer over its limit
    /// (CONTRACT D4). Calls are balanced with `resume_producing`.
    #[doc(alias = "pauseProducing")]
    fn pause_producing(&self);

    /// Start producing again: the consumer's buffer drained (CONTRACT D3, D4).
    #[doc(alias = "resumeProducing")]
    fn resume_producing(&self);

    /// Stop for good: the consumer is gone or will take no more data (CONTRACT D7).
    #[doc(alias = "stopProducing")]
    fn stop_producing(&self);
}

/// A producer that writes one chunk each time it is asked (Twisted's `IPullProducer`).
pub trait PullProducer {
    /// Produce some data by calling the consumer's `write`. Called at registration and
    /// after each full drain of the consumer's buffer (CONTRACT E1, E2).
    #[doc(alias = "resumeProducing")]
    fn resume_producing(&self);

    /// Stop for good (CONTRACT D7).
    #[doc(alias = "stopProducing")]
    fn stop_producing(&self);
}

/// A registered producer: streaming (push) or not (pull). Twisted's `streaming` flag is the
/// variant.
#[derive(Clone)]
pub enum Producer {
    /// A streaming producer: writes until paused.
    Push(Rc<dyn PushProducer>),
    /// A non-streaming producer: writes one chunk per `resume_producing`.
    Pull(Rc<dyn PullProducer>),
}

impl Producer {
    /// True for a streaming (push) producer.
    pub fn is_streaming(&self) -> bool {
        matches!(self, Producer::Push(_))
    }

    /// Calls the producer's `stop_producing`.
    pub fn stop_producing(&self) {
        match self {
            Producer::Push(p) => p.stop_producing(),
            Producer::Pull(p) => p.stop_producing(),
        }
    }

    /// Calls the producer's `resume_producing`.
    pub fn resume_producing(&self) {
        match self {
            Producer::Push(p) => p.resume_producing(),
            Producer::Pull(p) => p.resume_producing(),
        }
    }

    /// True when both refer to the same producer object.
    pub fn same_as(&self, other: &Producer) -> bool {
        match (self, other) {
            (Producer::Push(a), Producer::Push(b)) => Rc::ptr_eq(a, b),
            (Producer::Pull(a), Producer::Pull(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_streaming() {
            "Producer::Push(..)"
        } else {
            "Producer::Pull(..)"
        })
    }
}

/// Something bytes can be written to, with flow control (Twisted's `IConsumer`).
pub trait Consumer {
    /// Queue `data` for sending (CONTRACT D1). Never blocks and never calls back into the
    /// protocol synchronously. Ignored when the transport is disconnected or its write side
    /// was half-closed; an empty write does nothing. Data written after `lose_connection`
    /// but before the close completes is still sent.
    ///
    /// A push producer registered with this consumer is paused from inside this call when
    /// the unsent data goes over the buffer size (CONTRACT D4).
    fn write(&self, data: &[u8]);

    /// Queue an owned buffer without copying it (CONTRACT D10): the consumer keeps the `Vec`
    /// until its bytes are sent. Same rules as [`write`](Self::write) otherwise; the bytes
    /// and their order are those of `write(&data)`.
    ///
    /// The default copies (`self.write(&data)`); the reactor's transports (TCP, Unix
    /// sockets, a child's pipes, the PTY) queue the `Vec` itself.
    #[doc(alias = "write_vec")]
    fn write_owned(&self, data: Vec<u8>) {
        self.write(&data);
    }

    /// Queue a shared buffer without copying it (CONTRACT D10): the consumer holds a
    /// reference until the bytes are sent, so one buffer can be written many times (to many
    /// consumers, or as a reused chunk) at the cost of a reference count. Same rules as
    /// [`write`](Self::write) otherwise.
    ///
    /// The default copies (`self.write(&data)`); the reactor's transports queue the
    /// reference.
    fn write_shared(&self, data: SharedBytes) {
        self.write(&data);
    }

    /// Queue several buffers, sent with vectored I/O (CONTRACT D2); same rules as
    /// [`write`](Self::write).
    #[doc(alias = "writeSequence")]
    fn write_sequence(&self, data: &[&[u8]]) {
        for chunk in data {
            self.write(chunk);
        }
    }

    /// Register a producer (CONTRACT E1).
    ///
    /// A pull producer gets `resume_producing` at once; a push producer is assumed to be
    /// producing. On a disconnected consumer, the producer gets `stop_producing` and is not
    /// registered (that is not an error).
    ///
    /// # Errors
    ///
    /// [`ProducerError::AlreadyRegistered`] if a producer is registered already.
    #[doc(alias = "registerProducer")]
    fn register_producer(&self, producer: Producer) -> Result<(), ProducerError>;

    /// Forget the registered producer (CONTRACT E4). A pending `lose_connection` then
    /// completes once the buffer is flushed. No-op if none is registered.
    #[doc(alias = "unregisterProducer")]
    fn unregister_producer(&self);
}

/// A connected byte stream (Twisted's `ITransport` + `ITCPTransport`): what a
/// [`Protocol`](crate::Protocol) talks to.
///
/// A transport is itself a push producer of the data it *reads*: `pause_producing` stops
/// reading, `resume_producing` starts it, `stop_producing` is `lose_connection` (CONTRACT D8).
///
/// **Re-entrancy:** no method here calls back into the protocol synchronously. Calling
/// `lose_connection` from inside `data_received` marks the transport; `connection_lost`
/// arrives later from the loop, exactly once (ARCHITECTURE, ownership rule 4).
pub trait Transport: Consumer + PushProducer {
    /// Close after everything written has been sent (CONTRACT D5). Reading stops at once:
    /// no `data_received` is delivered after this call. A registered pull producer keeps
    /// the connection open until it unregisters (E2). Calling it again is a no-op.
    #[doc(alias = "loseConnection")]
    fn lose_connection(&self);

    /// Close now, dropping unsent data (CONTRACT D5). `connection_lost` still comes from
    /// the loop, with [`Reason::ConnectionAborted`](crate::Reason::ConnectionAborted).
    #[doc(alias = "abortConnection")]
    fn abort_connection(&self);

    /// Half-close: flush, then shut down the write side; reading goes on (CONTRACT D6).
    /// Later writes are dropped. A transport that cannot half-close (a PTY) closes instead.
    #[doc(alias = "loseWriteConnection")]
    fn lose_write_connection(&self);

    /// The local address.
    #[doc(alias = "getHost")]
    fn host(&self) -> Address;

    /// The remote address.
    #[doc(alias = "getPeer")]
    fn peer(&self) -> Address;

    /// Bytes written and not yet handed to the operating system (or, on a fake, to the
    /// peer): the backlog a slow reader leaves behind. Zero once everything is sent, and
    /// after `abort_connection` or the close (the buffer is dropped).
    ///
    /// Twisted has no equivalent. A broadcaster uses it to cut a client that does not keep
    /// up instead of buffering for it without bound; a producer-driven writer does not need
    /// it (CONTRACT D4 pauses the producer instead). Never calls back into the protocol
    /// (CONTRACT D9).
    fn unsent_bytes(&self) -> usize;

    /// The Unix-socket extras of this transport (descriptor passing, peer credentials;
    /// CONTRACT Q8, Q9): `Some` on a connected Unix stream socket, `None` (the default) on
    /// every other transport.
    #[cfg(unix)]
    fn as_unix_socket(&self) -> Option<&dyn crate::UnixSocketTransport> {
        None
    }
}
