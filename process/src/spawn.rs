//! The one way to spawn: `builder.spawn(&reactor, protocol)` ([`ProcessBuilderExt`]), on
//! pipes or a pseudo-terminal as the builder says, with no install step (CONTRACT G9).
//! [`ReactorProcess::spawn_process`] and Twisted's
//! [`spawn_process`](crate::spawn_process) argument list are thin aliases of it.

use std::rc::Rc;

use torsion_reactor::Reactor;
use torsion_transport::{ProcessBuilder, ProcessProtocol, ProcessTransport, SpawnError};

use crate::Process;
#[cfg(windows)]
use crate::sys::windows::spawn;
#[cfg(unix)]
use crate::wire::spawn;

/// Child processes (Twisted's `IReactorProcess`): the capability generic code asks of a
/// reactor, implemented by [`Reactor`] and by the test kit's `MemoryReactor`.
///
/// It lives here rather than in `torsion-transport` so that this crate can implement it for
/// [`Reactor`]: every reactor spawns, with no install step.
pub trait ReactorProcess {
    /// Spawn the child `builder` describes, driven by `protocol` (CONTRACT F1, G):
    /// on [`Reactor`], exactly `builder.spawn(self, protocol)`.
    /// `connection_made` runs before this returns; every other callback comes from the loop.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] naming the failed step, the errno and the program (CONTRACT G8).
    #[doc(alias = "spawnProcess")]
    fn spawn_process(
        &self,
        builder: &ProcessBuilder,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<dyn ProcessTransport>, SpawnError>;
}

impl ReactorProcess for Reactor {
    fn spawn_process(
        &self,
        builder: &ProcessBuilder,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<dyn ProcessTransport>, SpawnError> {
        spawn(self, builder, protocol).map(|p| p as Rc<dyn ProcessTransport>)
    }
}

/// `builder.spawn(&reactor, protocol)`: the spawn entry point, as a method of
/// [`ProcessBuilder`] (which lives in `torsion-transport`, so the method comes from this
/// extension trait, in `torsion::prelude`).
///
/// ```
/// # #[cfg(unix)] { // POSIX programs (sh, echo, true)
/// use torsion_process::ProcessBuilderExt;
/// use torsion_reactor::Reactor;
/// use torsion_transport::{ProcessBuilder, ProcessProtocol, PtyOptions};
///
/// struct Quiet;
/// impl ProcessProtocol for Quiet {}
///
/// let reactor = Reactor::new()?;
/// let on_pipes = ProcessBuilder::new("true").spawn(&reactor, Box::new(Quiet))?;
/// let on_a_pty = ProcessBuilder::new("true")
///     .pty(PtyOptions::default())
///     .spawn(&reactor, Box::new(Quiet))?;
/// assert!(!on_pipes.is_pty() && on_a_pty.is_pty());
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ProcessBuilderExt {
    /// Spawn the child this builder describes on `reactor`, driven by `protocol`: on
    /// pipes as the child fd map says, or on a pseudo-terminal if
    /// [`pty`](ProcessBuilder::pty) was asked for (CONTRACT G9, L).
    ///
    /// `connection_made` runs before this returns (CONTRACT F1); every other callback comes
    /// from the loop, even for a child that is already dead (F6). A panic in
    /// `connection_made` is caught: the channels are closed, the exit and the end still
    /// come, and the handle is returned (C5).
    ///
    /// A PTY child gets a fresh PTY, or the caller's pair from
    /// [`PtyOptions::pair`](torsion_transport::PtyOptions::pair); it starts a new session
    /// with the slave as its controlling terminal and on fds 0, 1 and 2, every other fd
    /// closed, signals reset, and the window size set before `exec` (CONTRACT L1, L2).
    /// With a caller's pair, the transport reads and writes a duplicate of the caller's
    /// master (the open file description is shared, so it becomes non-blocking); close
    /// your slave once this returns, or the end of output (L4) never comes while you hold
    /// it.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] naming the step, errno and program (CONTRACT G8): `InvalidInput`
    /// for a bad builder (a NUL byte, a child fd mapped twice, a PTY with an explicit fd
    /// map or a zero window side); `Lookup`, `Setup`, `Fork`, `Setsid`,
    /// `ControllingTty`, `Chdir`, `Exec` and the credential steps from the child;
    /// `Register` if the reactor refuses a channel. Nothing is left behind: fds the spawn
    /// created are closed and a half-started child is killed and reaped; the caller's
    /// fds are never closed.
    fn spawn(
        &self,
        reactor: &Reactor,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<Process>, SpawnError>;
}

impl ProcessBuilderExt for ProcessBuilder {
    fn spawn(
        &self,
        reactor: &Reactor,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<Process>, SpawnError> {
        spawn(reactor, self, protocol)
    }
}
