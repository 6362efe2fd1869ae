//! torsion: a Twisted-style, single-threaded reactor framework on mio.
//!
//! One dependency for users. This crate re-exports the layers, bottom up:
//!
//! - [`transport`]: the interfaces — `Transport`, `Consumer`, producers, `Protocol`,
//!   `Factory`, `ProcessTransport`, `ProcessProtocol`, `ProcessBuilder`, reasons, signals,
//!   the timer queue, the reactor capability traits. No I/O.
//! - [`reactor`]: the mio loop — selectables, timers, thread calls, system events, signals,
//!   `FileDescriptor`, TCP and Unix sockets.
//! - [`pty`]: the pseudo-terminal device layer — open a pair, termios, window size, raw
//!   mode for our own terminal, a master as a transport.
//! - [`process`]: every child — pipes or a PTY as the builder says, reaping without
//!   zombies, `StandardIo`.
//! - [`net`]: async/await on the loop — `Reactor::spawn_local`/`block_on`, TCP and Unix
//!   streams, processes and time as futures (feature `futures-io` for the `futures-io`
//!   traits); the async guide is in its docs.
//! - [`testing`] (feature `testing`): fake transports, `Clock`, `MemoryReactor`, the
//!   loopback pump and the shared contract suite.
//! - `tls` (feature `tls`): TLS on rustls over any transport, STARTTLS.
//!
//! [`prelude`] brings into scope every trait needed to write protocols and spawn children.
//!
//! # Example
//!
//! A child's output, collected by a protocol:
//!
//! ```
//! # #[cfg(unix)] { // POSIX programs (sh, echo, true)
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//! use torsion::prelude::*;
//! use torsion::reactor::Reactor;
//!
//! #[derive(Default)]
//! struct Collect(Rc<RefCell<Vec<u8>>>, Rc<RefCell<Option<ExitReason>>>);
//!
//! impl ProcessProtocol for Collect {
//!     fn out_received(&mut self, data: &[u8]) {
//!         self.0.borrow_mut().extend_from_slice(data);
//!     }
//!     fn process_ended(&mut self, reason: ExitReason) {
//!         *self.1.borrow_mut() = Some(reason);
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! let protocol = Collect::default();
//! let (out, ended) = (protocol.0.clone(), protocol.1.clone());
//! ProcessBuilder::new("echo").arg("hi").spawn(&reactor, Box::new(protocol))?;
//! reactor.run_until(|| ended.borrow().is_some(), Duration::from_secs(10))?;
//! assert_eq!(&out.borrow()[..], b"hi\n");
//! assert_eq!(*ended.borrow(), Some(ExitReason::ProcessDone));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

#[doc(inline)]
pub use torsion_net as net;
#[doc(inline)]
pub use torsion_process as process;
#[doc(inline)]
pub use torsion_pty as pty;
#[doc(inline)]
pub use torsion_reactor as reactor;
#[cfg(feature = "testing")]
#[doc(inline)]
pub use torsion_testing as testing;
#[cfg(feature = "tls")]
#[doc(inline)]
pub use torsion_tls as tls;
#[doc(inline)]
pub use torsion_transport as transport;
#[doc(inline)]
pub use torsion_transport::defer;

#[doc(inline)]
pub use torsion_toolkit::{client, framing, task, utils};

/// Endpoints in Twisted's syntax (`tcp:8080`, `systemd:domain=INET:index=0`, ...).
#[cfg(unix)]
#[doc(inline)]
pub use torsion_daemon::endpoints;
/// Prefork workers sharing listening sockets.
#[cfg(unix)]
#[doc(inline)]
pub use torsion_daemon::prefork;
/// systemd socket activation and `sd_notify`.
#[cfg(unix)]
#[doc(inline)]
pub use torsion_daemon::systemd;

/// Every trait and type needed to write protocols and spawn children:
/// `use torsion::prelude::*;`.
pub mod prelude {
    pub use torsion_process::{Process, ProcessBuilderExt, ReactorProcess};
    #[cfg(unix)]
    pub use torsion_process::{StandardIo, StdoutWriter};
    pub use torsion_toolkit::client::{
        Backoff, Connection, ReconnectingClientFactory, RequestProtocol,
    };
    pub use torsion_toolkit::task::LoopingCall;
    pub use torsion_toolkit::utils::{OutputRequest, ProcessOutputError};
    pub use torsion_transport::defer::{Deferred, Failure};
    // async/await (torsion::net): the extension traits the async methods need.
    pub use torsion_net::{
        DeferredFromFuture, JoinError, JoinHandle, ProcessBuilderAsync, ReactorTimeExt,
    };
    /// Shared buffers written without a copy (`Consumer::write_shared`, CONTRACT D10).
    pub use torsion_transport::SharedBytes;
    pub use torsion_transport::{
        Address, ChildFd, ClientFactory, Connector, Consumer, DelayedCall, ExitReason, Factory,
        HalfCloseableProtocol, ListeningPort, ProcessBuilder, ProcessError, ProcessProtocol,
        ProcessTransport, Producer, ProducerError, Protocol, PtyOptions, PullProducer,
        PushProducer, ReactorCore, ReactorTcp, ReactorTime, ReactorUnix, Reason, Signal,
        SpawnError, Transport, factory_fn,
    };
    // Datagrams, listen options and the Unix-socket extras (issue 13).
    pub use torsion_transport::{
        DatagramProtocol, DatagramTransport, ListenOptions, MulticastInterface, ReactorUdp,
    };
    #[cfg(unix)]
    pub use torsion_transport::{FileDescriptorReceiver, UnixSocketTransport};
}

/// The TLS guide `docs/guides/tls.md`, its code compiled as doctests.
#[cfg(all(doctest, unix, feature = "tls", feature = "testing"))]
#[doc = include_str!("../docs/guides/tls.md")]
pub struct TlsGuideDoctests;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}
