//! Spawning a child on a PTY: [`spawn`], and the back end that lets `Reactor` spawn PTY
//! children through `ReactorProcess::spawn_process` ([`install`]).

use std::cell::Cell;
use std::fmt;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use torsion_process::ChildWatcher;
use torsion_process::raw::{self, RawSpawnOptions};
use torsion_reactor::{ProcessSpawner, Reactor};
use torsion_transport::{
    ProcessBuilder, ProcessProtocol, ProcessTransport, PtyOptions, Signal, SpawnError, SpawnStep,
};

use crate::master::PtyMaster;
use crate::process::PtyProcess;
use crate::sys::unix::fd::dup_cloexec;

/// Spawn the child `builder` describes on a pseudo-terminal, driven by `protocol`
/// (CONTRACT L).
///
/// `builder` must ask for a PTY ([`ProcessBuilder::pty`]). The child gets a fresh PTY, or
/// the caller's pair from [`PtyOptions::pair`](torsion_transport::PtyOptions::pair); it
/// starts a new session with the slave as its controlling terminal and on fds 0, 1 and
/// 2, every other fd closed, signals reset, and the window size set before `exec`
/// (CONTRACT L1, L2). The child is created with the same vfork-style spawn as pipe
/// children (`clone(CLONE_VM | CLONE_VFORK)` on Linux), so a large parent costs no
/// page-table copy.
///
/// `connection_made` runs before this returns (CONTRACT F1); every other callback comes
/// from the loop, even for a child that is already dead (F6). Also [`install`]s the PTY
/// back end on `reactor`.
///
/// With a caller's pair, the transport reads and writes a duplicate of the caller's
/// master; the open file description is shared, so it becomes non-blocking. The caller
/// keeps both of its fds: close your slave once this returns (the child has its own), or
/// the end of output (CONTRACT L4) never comes while you hold it.
///
/// # Errors
///
/// [`SpawnError`] naming the step, errno and program (CONTRACT G8): `InvalidInput` for a
/// builder without a PTY, with an explicit child fd map (G7) or with a zero window side;
/// `Lookup`, `Setup`, `Fork`, `Setsid`, `ControllingTty`, `Chdir`, `Exec` and the
/// credential steps from the child; `Register` if the reactor refuses the master. Nothing
/// is left behind: the fds the spawn created are closed and a half-started child is
/// killed and reaped; the caller's fds are never closed.
pub fn spawn(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Rc<PtyProcess>, SpawnError> {
    install(reactor);
    let program = builder.get_program();
    let Some(pty) = builder.get_pty() else {
        return Err(SpawnError::invalid(
            program,
            "torsion_pty::spawn needs a builder with .pty(PtyOptions); spawn pipe children \
             with torsion_process::spawn",
        ));
    };
    builder.validate()?;
    let watcher = ChildWatcher::of(reactor);
    watcher
        .prepare(reactor)
        .map_err(|e| SpawnError::os(SpawnStep::Setup, program, e))?;
    let mut options = RawSpawnOptions::default();
    options.pidfd = watcher.wants_pidfd();
    // Terminal modes asked for are set on the slave before the child exists, so the child
    // never runs on the wrong modes. A fresh PTY is then opened here and handed to the
    // spawn as a pair; `_own` keeps it open until the child has its copy.
    let (with_modes, _own) = with_terminal_modes(builder, pty)
        .map_err(|e| SpawnError::os(SpawnStep::Setup, program, e))?;
    let builder = with_modes.as_ref().unwrap_or(builder);
    let pty = builder.get_pty().unwrap_or(pty);
    let child = raw::spawn_child(builder, &options)?;
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
        .and_then(|master| wire(reactor, builder, protocol, pid, pidfd, master))
        .inspect_err(|_| {
            // Wiring failed after the child started: do not leave it running or a zombie.
            let _ = raw::send_signal(pid, None, Signal::Kill);
            while let Ok(None) = raw::try_wait(pid) {
                std::thread::yield_now();
            }
        })
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
        let mut t = crate::termios::get_attributes(slave)?;
        if pty.raw {
            t.make_raw();
        }
        if let Some(on) = pty.echo {
            t.set_echo(on);
        }
        crate::termios::set_attributes(slave, crate::termios::When::Now, &t)
    };
    match pty.pair {
        Some((_, slave)) => {
            // A duplicate reaches the same terminal; the caller's fd stays untouched.
            let dup = dup_cloexec(slave)?;
            apply(std::os::fd::AsFd::as_fd(&dup))?;
            Ok((None, None))
        }
        None => {
            let (master, slave) = raw::open_pty()?;
            apply(std::os::fd::AsFd::as_fd(&slave))?;
            let mut options = pty.clone();
            options.pair = Some((master.as_raw_fd(), slave.as_raw_fd()));
            Ok((Some(builder.clone().pty(options)), Some((master, slave))))
        }
    }
}

fn wire(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
    pid: u32,
    pidfd: Option<Rc<OwnedFd>>,
    master: OwnedFd,
) -> Result<Rc<PtyProcess>, SpawnError> {
    let program = builder.get_program();
    let reg_err = |e| SpawnError::os(SpawnStep::Register, program, e);
    let process = PtyProcess::new(pid, pidfd.clone(), protocol);
    let owner = process
        .owner()
        .ok_or_else(|| reg_err(std::io::Error::other("process dropped")))?;
    let m = PtyMaster::register(reactor, master, owner).map_err(reg_err)?;
    process.set_master(m);
    let p = Rc::downgrade(&process);
    let strong = process.clone();
    ChildWatcher::of(reactor)
        .watch(
            reactor,
            pid,
            pidfd,
            builder.get_shutdown_policy(),
            Box::new(move |info| {
                // The watcher keeps the process alive until it is reaped.
                let _keep = &strong;
                if let Some(p) = p.upgrade() {
                    p.reaped(info);
                }
            }),
        )
        .map_err(reg_err)?;
    process.start();
    Ok(process)
}

/// The process back end of a reactor with PTY support: PTY requests are spawned here,
/// everything else by [`torsion_process::spawn`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PtySpawner;

impl ProcessSpawner for PtySpawner {
    fn spawn(
        &self,
        reactor: &Reactor,
        builder: &ProcessBuilder,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Rc<dyn ProcessTransport>, SpawnError> {
        if builder.get_pty().is_some() {
            spawn(reactor, builder, protocol).map(|p| p as Rc<dyn ProcessTransport>)
        } else {
            torsion_process::spawn(reactor, builder, protocol)
                .map(|p| p as Rc<dyn ProcessTransport>)
        }
    }
}

impl fmt::Display for PtySpawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PTY and pipe spawner")
    }
}

/// Marks a reactor whose spawner is a [`PtySpawner`].
struct Installed(Cell<bool>);

/// Install [`PtySpawner`] on `reactor`, replacing the pipe-only back end if one is
/// installed, so `ReactorProcess::spawn_process` and `torsion_process::spawn_process(..,
/// use_pty = true, ..)` can spawn PTY children. Pipe requests still go to
/// [`torsion_process::spawn`]. Calling it again does nothing.
pub fn install(reactor: &Reactor) {
    let installed = reactor.extension(|| Installed(Cell::new(false)));
    if !installed.0.replace(true) {
        reactor.set_process_spawner(Rc::new(PtySpawner));
    }
}
