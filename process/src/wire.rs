//! The POSIX spawn path behind [`ProcessBuilderExt::spawn`](crate::ProcessBuilderExt):
//! start the child (pipes or a PTY), wire its channels to the reactor, watch it.

use std::os::fd::OwnedFd;
use std::rc::Rc;

use torsion_pty::PtyMaster;
use torsion_reactor::Reactor;
use torsion_transport::{
    ChildFd, ProcessBuilder, ProcessProtocol, PtyOptions, Signal, SpawnError, SpawnStep,
};

use crate::pipes::{ProcessReader, ProcessWriter};
use crate::process::Process;
use crate::raw::{self, RawSpawnOptions, SpawnedChild};
use crate::reaper::ChildWatcher;
use crate::sys::unix::fd::dup_cloexec;

/// The one spawn path: validate, start the child, wire its channels, watch it.
pub(crate) fn spawn(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Rc<Process>, SpawnError> {
    let program = builder.get_program();
    builder.validate()?;
    let watcher = ChildWatcher::of(reactor);
    watcher
        .prepare(reactor)
        .map_err(|e| SpawnError::os(SpawnStep::Setup, program, e))?;
    let options = RawSpawnOptions {
        pidfd: watcher.wants_pidfd(),
        pipe_size: builder.get_pipe_size(),
        ..RawSpawnOptions::default()
    };
    match builder.get_pty() {
        None => {
            let child = raw::spawn_child(builder, &options)?;
            let pid = child.pid;
            log::debug!("spawned {program:?} as pid {pid}");
            wire_pipes(reactor, builder, protocol, child).inspect_err(|_| kill_and_reap(pid))
        }
        Some(pty) => spawn_on_pty(reactor, builder, pty, protocol, &options),
    }
}

/// Registration failed after the child started: do not leave it running or a zombie.
fn kill_and_reap(pid: u32) {
    let _ = raw::send_signal(pid, None, Signal::Kill);
    while let Ok(None) = raw::try_wait(pid) {
        std::thread::yield_now();
    }
}

fn wire_pipes(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
    child: SpawnedChild,
) -> Result<Rc<Process>, SpawnError> {
    let program = builder.get_program();
    let reg_err = |e| SpawnError::os(SpawnStep::Register, program, e);
    let pidfd: Option<Rc<OwnedFd>> = child.pidfd.map(Rc::new);
    let process = Process::new_pipes(child.pid, pidfd.clone(), protocol, &builder.get_child_fds());
    let owner = process
        .pipe_owner()
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
    watch(reactor, builder, &process, child.pid, pidfd).map_err(reg_err)?;
    process.start();
    Ok(process)
}

/// Hand the child to the reactor's watcher, which keeps the process alive until it is
/// reaped.
fn watch(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    process: &Rc<Process>,
    pid: u32,
    pidfd: Option<Rc<OwnedFd>>,
) -> std::io::Result<()> {
    let strong = process.clone();
    ChildWatcher::of(reactor).watch(
        reactor,
        pid,
        pidfd,
        builder.get_shutdown_policy(),
        Box::new(move |info| strong.reaped(info)),
    )
}

fn spawn_on_pty(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    pty: &PtyOptions,
    protocol: Box<dyn ProcessProtocol>,
    options: &RawSpawnOptions,
) -> Result<Rc<Process>, SpawnError> {
    let program = builder.get_program();
    // Terminal modes asked for are set on the slave before the child exists, so the child
    // never runs on the wrong modes. A fresh PTY is then opened here and handed to the
    // spawn as a pair; `_own` keeps it open until the child has its copy.
    let (with_modes, _own) = with_terminal_modes(builder, pty)
        .map_err(|e| SpawnError::os(SpawnStep::Setup, program, e))?;
    let builder = with_modes.as_ref().unwrap_or(builder);
    let pty = builder.get_pty().unwrap_or(pty);
    let child = raw::spawn_child(builder, options)?;
    let pid = child.pid;
    log::debug!("spawned {program:?} on a PTY as pid {pid}");
    let master = match (child.pty_master, pty.pair) {
        (Some(m), _) => Ok(m),
        (None, Some((m, _))) => dup_cloexec(m).and_then(|m| {
            raw::set_nonblocking(std::os::fd::AsFd::as_fd(&m), true)?;
            Ok(m)
        }),
        (None, None) => Err(std::io::Error::other("the spawn returned no PTY master")),
    }
    .map_err(|e| SpawnError::os(SpawnStep::Setup, program, e));
    let pidfd = child.pidfd.map(Rc::new);
    master
        .and_then(|master| wire_pty(reactor, builder, protocol, pid, pidfd, master))
        .inspect_err(|_| kill_and_reap(pid))
}

fn wire_pty(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
    pid: u32,
    pidfd: Option<Rc<OwnedFd>>,
    master: OwnedFd,
) -> Result<Rc<Process>, SpawnError> {
    let program = builder.get_program();
    let reg_err = |e| SpawnError::os(SpawnStep::Register, program, e);
    let process = Process::new_pty(pid, pidfd.clone(), protocol);
    let owner = process
        .master_owner()
        .ok_or_else(|| reg_err(std::io::Error::other("process dropped")))?;
    let m = PtyMaster::register(reactor, master, owner).map_err(reg_err)?;
    process.set_master(m);
    watch(reactor, builder, &process, pid, pidfd).map_err(reg_err)?;
    process.start();
    Ok(process)
}

/// A PTY pair opened by the spawn itself: (master, slave).
type OwnPair = (OwnedFd, OwnedFd);

/// If `pty` asks for terminal modes, a builder whose PTY pair has them set (a fresh pair,
/// returned too so it stays open until the spawn is done, or the caller's own).
fn with_terminal_modes(
    builder: &ProcessBuilder,
    pty: &PtyOptions,
) -> std::io::Result<(Option<ProcessBuilder>, Option<OwnPair>)> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    if pty.echo.is_none() && !pty.raw {
        return Ok((None, None));
    }
    let apply = |slave: BorrowedFd<'_>| -> std::io::Result<()> {
        let mut t = torsion_pty::termios::get_attributes(slave)?;
        if pty.raw {
            t.make_raw();
        }
        if let Some(on) = pty.echo {
            t.set_echo(on);
        }
        torsion_pty::termios::set_attributes(slave, torsion_pty::termios::When::Now, &t)
    };
    match pty.pair {
        Some((_, slave)) => {
            // A duplicate reaches the same terminal; the caller's fd stays untouched.
            let dup = dup_cloexec(slave)?;
            apply(std::os::fd::AsFd::as_fd(&dup))?;
            Ok((None, None))
        }
        None => {
            let (master, slave) = torsion_pty::open_pty()?;
            apply(std::os::fd::AsFd::as_fd(&slave))?;
            let mut options = pty.clone();
            options.pair = Some((master.as_raw_fd(), slave.as_raw_fd()));
            Ok((Some(builder.clone().pty(options)), Some((master, slave))))
        }
    }
}
