//! Spawning a child on the reactor: [`spawn`], Twisted's [`spawn_process`], and the
//! back end that lets `Reactor` implement `ReactorProcess`.

use std::fmt;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use torsion_reactor::{ProcessSpawner, Reactor};
use torsion_transport::{
    ChildFd, ProcessBuilder, ProcessProtocol, ProcessTransport, SpawnError, SpawnStep,
};

use crate::pipes::{ProcessReader, ProcessWriter};
use crate::process::Process;
use crate::raw::{self, RawSpawnOptions, SpawnedChild};
use crate::reaper::ChildWatcher;

/// Options of a reactor spawn beyond the [`ProcessBuilder`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// Pipe buffer size to ask the kernel for (`F_SETPIPE_SZ`, Linux). Larger pipes move
    /// bulk data with fewer wake-ups: 1 MiB roughly doubles throughput to and from `cat`.
    pub pipe_size: Option<usize>,
}

impl SpawnOptions {
    /// Ask for pipes of `bytes` bytes.
    pub fn pipe_size(mut self, bytes: usize) -> Self {
        self.pipe_size = Some(bytes);
        self
    }
}

/// Spawn the child `builder` describes on `reactor`, driven by `protocol`.
///
/// `connection_made` runs before this returns (CONTRACT F1); every other callback comes
/// from the loop, even for a child that is already dead (F6). Installs the process back end
/// on the reactor (see [`install`]).
///
/// # Errors
///
/// [`SpawnError`] naming the step, errno and program (CONTRACT G8); nothing is left
/// behind: fds the spawn created are closed and a half-started child is reaped.
pub fn spawn(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Rc<Process>, SpawnError> {
    spawn_with(reactor, builder, protocol, &SpawnOptions::default())
}

/// [`spawn`] with [`SpawnOptions`].
///
/// # Errors
///
/// As [`spawn`].
pub fn spawn_with(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
    options: &SpawnOptions,
) -> Result<Rc<Process>, SpawnError> {
    install(reactor);
    if builder.get_pty().is_some() {
        return Err(SpawnError::unsupported(
            builder.get_program(),
            "PTY children are spawned by torsion-pty: call torsion_pty::install(&reactor) or use torsion_pty::spawn",
        ));
    }
    let watcher = ChildWatcher::of(reactor);
    watcher
        .prepare(reactor)
        .map_err(|e| SpawnError::os(SpawnStep::Setup, builder.get_program(), e))?;
    let raw_options = RawSpawnOptions {
        pidfd: watcher.wants_pidfd(),
        pipe_size: options.pipe_size,
        ..RawSpawnOptions::default()
    };
    let child = raw::spawn_child(builder, &raw_options)?;
    let pid = child.pid;
    log::debug!("spawned {:?} as pid {pid}", builder.get_program());
    wire(reactor, builder, protocol, child).inspect_err(|_| {
        // Registration failed after the child started: do not leave it running or a zombie.
        let _ = raw::send_signal(pid, None, torsion_transport::Signal::Kill);
        while let Ok(None) = raw::try_wait(pid) {
            std::thread::yield_now();
        }
    })
}

fn wire(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
    child: SpawnedChild,
) -> Result<Rc<Process>, SpawnError> {
    let program = builder.get_program();
    let reg_err = |e| SpawnError::os(SpawnStep::Register, program, e);
    let pidfd: Option<Rc<OwnedFd>> = child.pidfd.map(Rc::new);
    let process = Process::new(
        reactor,
        child.pid,
        pidfd.clone(),
        protocol,
        &builder.get_child_fds(),
    );
    let owner = process
        .owner()
        .ok_or_else(|| reg_err(std::io::Error::other("process dropped")))?;
    for pipe in child.pipes {
        match pipe.direction {
            ChildFd::Read => {
                let r = ProcessReader::register(
                    reactor,
                    pipe.parent_end,
                    pipe.child_fd,
                    owner.clone(),
                    false,
                )
                .map_err(reg_err)?;
                process.add_reader(r);
            }
            _ => {
                let w =
                    ProcessWriter::register(reactor, pipe.parent_end, pipe.child_fd, owner.clone())
                        .map_err(reg_err)?;
                process.add_writer(w);
            }
        }
    }
    let watcher = ChildWatcher::of(reactor);
    // The watcher keeps the process alive until it is reaped.
    let strong = process.clone();
    watcher
        .watch(
            reactor,
            child.pid,
            pidfd,
            builder.get_shutdown_policy(),
            Box::new(move |info| strong.reaped(info)),
        )
        .map_err(reg_err)?;
    process.start();
    Ok(process)
}

/// The process back end of a reactor (pipes only; `torsion-pty` wraps it for PTYs).
#[derive(Debug, Default, Clone, Copy)]
pub struct PipeSpawner;

impl ProcessSpawner for PipeSpawner {
    fn spawn(
        &self,
        reactor: &Reactor,
        builder: &ProcessBuilder,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<dyn ProcessTransport>, SpawnError> {
        spawn(reactor, builder, protocol).map(|p| p as Rc<dyn ProcessTransport>)
    }
}

/// Install the pipe back end on `reactor` so `ReactorProcess::spawn_process` works, unless a
/// back end (such as `torsion-pty`'s, which handles pipes too) is installed already.
pub fn install(reactor: &Reactor) {
    if !reactor.has_process_spawner() {
        reactor.set_process_spawner(Rc::new(PipeSpawner));
    }
}

impl fmt::Display for PipeSpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pipe spawner")
    }
}

/// `builder.spawn(&reactor, protocol)`: the spawn entry point as a method of
/// [`ProcessBuilder`] (which lives in `torsion-transport`, so the method comes from this
/// extension trait).
///
/// ```
/// use torsion_process::ProcessBuilderExt;
/// use torsion_reactor::Reactor;
/// use torsion_transport::{ProcessBuilder, ProcessProtocol};
///
/// struct Quiet;
/// impl ProcessProtocol for Quiet {}
///
/// let reactor = Reactor::new()?;
/// let child = ProcessBuilder::new("true").spawn(&reactor, Box::new(Quiet))?;
/// assert!(child.original_pid() > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ProcessBuilderExt {
    /// As [`spawn`].
    ///
    /// # Errors
    ///
    /// As [`spawn`].
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
