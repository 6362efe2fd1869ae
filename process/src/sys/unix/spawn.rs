//! Turning a [`ProcessBuilder`] into a running child (CONTRACT G, H, L1).
//!
//! # Implementation notes
//!
//! In the parent, before the child exists: validate the request; build argv, envp and
//! the cwd as C strings; look the program up on `PATH` (G3); compute credentials (G5);
//! create pipes, `/dev/null` and the PTY; check inherited fds are open; plan the child's
//! fd table ([`crate::fdplan`]); decide how the child closes the rest. Every fd created
//! here is an [`OwnedFd`] owned by this function until it is handed to the caller, so
//! any failure closes them all; the caller's fds are never wrapped, never closed.
//!
//! Creating the child, Linux: `clone(CLONE_VM | CLONE_VFORK | SIGCHLD [| CLONE_PIDFD])`
//! on a separately mapped stack with a guard page. `CLONE_VM` shares the parent's
//! memory, so no page table is copied (a parent with a large heap spawns as fast as a
//! small one, unlike `fork`); `CLONE_VFORK` suspends the calling thread until the child
//! has exec'd or exited. The child reports a failure as (step, errno) into memory the
//! parent reads after it resumes; a failed child is reaped here.
//!
//! Elsewhere (and on Linux with [`RawSpawnOptions::force_fork`]): `fork`, with a
//! `CLOEXEC` pipe carrying the (step, errno) report; EOF on it means exec succeeded.
//!
//! All signals are blocked in the calling thread while the child is created, so no
//! handler of the parent runs in the child; the child resets every disposition and
//! empties its mask just before `execve` (H2).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use torsion_transport::{ChildFd, ProcessBuilder, SpawnError, SpawnStep};

use super::child::{self, BlockedSignals, ChildContext, CloseFds, Session};
use super::{fd, user, wait};
use crate::fdplan;
use crate::raw::{ChildPipe, RawSpawnOptions, SpawnedChild};

/// What a failed creation step returns before the program name is attached.
type StepError = (SpawnStep, io::Error);

/// See [`crate::raw::spawn_child`].
pub(crate) fn spawn_child(
    builder: &ProcessBuilder,
    options: &RawSpawnOptions,
) -> Result<SpawnedChild, SpawnError> {
    builder.validate()?;
    let program = builder.get_program();
    let os_err = |step: SpawnStep| move |e: io::Error| SpawnError::os(step, program, e);

    let path = resolve_program(builder)?;
    let argv = CStringArray::new(builder.get_argv().iter().map(|a| a.as_bytes().to_vec()))
        .ok_or_else(|| SpawnError::invalid(program, "an argument contains a NUL byte"))?;
    let built_envp;
    let envp = match inherited_environment(builder) {
        Some(environ) => environ,
        None => {
            let env = builder.resolved_env(std::env::vars_os());
            built_envp = CStringArray::new(env.into_iter().map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                kv
            }))
            .ok_or_else(|| SpawnError::invalid(program, "the environment contains a NUL byte"))?;
            built_envp.as_ptr()
        }
    };
    let cwd = match builder.get_cwd() {
        Some(dir) => Some(CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
            SpawnError::invalid(program, "the working directory contains a NUL byte")
        })?),
        None => None,
    };
    let session = session_for(builder)?;
    let creds = user::credentials(builder.get_uid(), builder.get_gid())
        .map_err(os_err(SpawnStep::Setgroups))?;

    let mut fds = ParentFds::default();
    let mut map = BTreeMap::new();
    let mut controlling_tty = None;
    match builder.get_pty() {
        Some(options) => {
            let slave = fds.pty(program, options.pair, options.rows, options.cols)?;
            controlling_tty = Some(slave);
            map.extend([(0, slave), (1, slave), (2, slave)]);
        }
        None => {
            for (target, what) in builder.get_child_fds() {
                let source = fds.child_fd(program, target, what, options.pipe_size)?;
                map.insert(target, source);
            }
        }
    }
    let plan = fdplan::plan(&map);
    let list;
    let close = if fd::close_range_supported() {
        CloseFds::Ranges(&plan.close_ranges)
    } else {
        list = fd::open_fd_list();
        CloseFds::List(&list)
    };
    let ctx = ChildContext {
        program: &path,
        argv: argv.as_ptr(),
        envp,
        cwd: cwd.as_deref(),
        session,
        controlling_tty,
        placements: &plan.placements,
        high: plan.high,
        targets: &plan.targets,
        close,
        keep: None,
        gid: creds.gid,
        groups: creds.groups.as_deref(),
        uid: creds.uid,
    };
    let mut scratch = vec![-1; plan.moves()];
    let (pid, pidfd) = create(&ctx, &mut scratch, options).map_err(|(step, e)| {
        log::debug!("spawning {program:?} failed at {step}: {e}");
        SpawnError::os(step, program, e)
    })?;
    log::debug!("spawned {program:?} as pid {pid}");
    // The child-side ends, /dev/null and the PTY slave close here (the child has its own).
    drop(fds.child_side);
    Ok(SpawnedChild {
        pid,
        pidfd,
        pipes: fds.pipes,
        pty_master: fds.pty_master,
    })
}

/// The fds the spawn creates in the parent.
#[derive(Default)]
struct ParentFds {
    /// Ends and files the child uses; closed in the parent after the spawn.
    child_side: Vec<OwnedFd>,
    /// `/dev/null`, opened once for every `Null` entry.
    null: Option<RawFd>,
    pipes: Vec<ChildPipe>,
    pty_master: Option<OwnedFd>,
}

impl ParentFds {
    /// Create what child fd `target` needs; returns the parent fd the child places there.
    fn child_fd(
        &mut self,
        program: &OsStr,
        target: i32,
        what: ChildFd,
        pipe_size: Option<usize>,
    ) -> Result<RawFd, SpawnError> {
        let setup = |e: io::Error| SpawnError::os(SpawnStep::Setup, program, e);
        match what {
            ChildFd::Read | ChildFd::Write => {
                let (read, write) = fd::pipe_cloexec().map_err(setup)?;
                let (parent, child) = if what == ChildFd::Read {
                    (read, write)
                } else {
                    (write, read)
                };
                fd::set_nonblocking(parent.as_fd(), true).map_err(setup)?;
                if let Some(size) = pipe_size {
                    fd::set_pipe_size(parent.as_fd(), size).map_err(setup)?;
                }
                let source = child.as_raw_fd();
                self.child_side.push(child);
                self.pipes.push(ChildPipe {
                    child_fd: target,
                    direction: what,
                    parent_end: parent,
                });
                Ok(source)
            }
            ChildFd::Inherit(parent) => {
                check_open(
                    program,
                    parent,
                    &format!("child fd {target} inherits parent fd {parent}"),
                )?;
                Ok(parent)
            }
            ChildFd::Null => match self.null {
                Some(null) => Ok(null),
                None => {
                    let null = fd::dev_null().map_err(setup)?;
                    let raw = null.as_raw_fd();
                    self.child_side.push(null);
                    self.null = Some(raw);
                    Ok(raw)
                }
            },
            other => Err(SpawnError::unsupported(
                program,
                format!("child fd {target}: {other:?} is not supported on this system"),
            )),
        }
    }

    /// Open (or check the caller's) PTY and set its window size; returns the slave.
    fn pty(
        &mut self,
        program: &OsStr,
        pair: Option<(i32, i32)>,
        rows: u16,
        cols: u16,
    ) -> Result<RawFd, SpawnError> {
        let setup = |e: io::Error| SpawnError::os(SpawnStep::Setup, program, e);
        let (master, slave) = match pair {
            Some((master, slave)) => {
                check_open(program, master, &format!("the PTY master {master}"))?;
                check_open(program, slave, &format!("the PTY slave {slave}"))?;
                (master, slave)
            }
            None => {
                let (master, slave) = torsion_pty::open_pty().map_err(setup)?;
                fd::set_nonblocking(master.as_fd(), true).map_err(setup)?;
                let raws = (master.as_raw_fd(), slave.as_raw_fd());
                self.pty_master = Some(master);
                self.child_side.push(slave);
                raws
            }
        };
        torsion_pty::set_window_size_raw(master, rows, cols).map_err(setup)?;
        Ok(slave)
    }
}

/// `SpawnError { step: Setup, EBADF }` unless `fd` is open.
fn check_open(program: &OsStr, fd: RawFd, what: &str) -> Result<(), SpawnError> {
    fd::is_open(fd).map_err(|e| SpawnError {
        step: SpawnStep::Setup,
        program: program.to_owned(),
        source: Some(e),
        detail: Some(format!("{what}, which is not open")),
    })
}

/// The child's session step from the builder (CONTRACT H4, L1).
fn session_for(builder: &ProcessBuilder) -> Result<Session, SpawnError> {
    let program = builder.get_program();
    let new_session = builder.get_new_session() || builder.get_pty().is_some();
    match (new_session, builder.get_process_group()) {
        (true, None | Some(0)) => Ok(Session::Setsid),
        (true, Some(pgid)) => Err(SpawnError::invalid(
            program,
            format!(
                "a new session (new_session or pty) makes the child lead its own process group; \
                 it cannot join process group {pgid}"
            ),
        )),
        (false, Some(pgid)) => libc::pid_t::try_from(pgid)
            .map(Session::Group)
            .map_err(|_| {
                SpawnError::invalid(program, format!("process group {pgid} is out of range"))
            }),
        (false, None) => Ok(Session::Keep),
    }
}

/// The path to execute (CONTRACT G3): the program itself if it contains `/`, else the
/// first executable regular file named so in a directory of the child's `PATH` (if the
/// builder sets one) or the parent's (or `/bin:/usr/bin` if neither is set). An empty
/// `PATH` entry means the current directory, resolved against the parent's cwd.
fn resolve_program(builder: &ProcessBuilder) -> Result<CString, SpawnError> {
    let program = builder.get_program();
    let name = program.as_bytes();
    if name.contains(&b'/') {
        return CString::new(name)
            .map_err(|_| SpawnError::invalid(program, "the program name contains a NUL byte"));
    }
    let search: OsString = builder
        .get_child_path()
        .map(OsStr::to_owned)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| OsString::from("/bin:/usr/bin"));
    let mut denied = false;
    for dir in search.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(name);
        let Ok(candidate) = CString::new(candidate) else {
            continue;
        };
        match fd::executable_file(&candidate) {
            Ok(true) => return Ok(candidate),
            Ok(false) => {}
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    let errno = if denied { libc::EACCES } else { libc::ENOENT };
    Err(SpawnError {
        step: SpawnStep::Lookup,
        program: program.to_owned(),
        source: Some(io::Error::from_raw_os_error(errno)),
        detail: Some(format!("searched PATH={search:?}")),
    })
}

/// The parent's own `environ` when the child inherits it unchanged (CONTRACT G2: no
/// `env_clear`, no changes), as `std::process::Command` does: no copy of every variable
/// into fresh `CString`s per spawn. `None` when the environment must be built.
#[cfg(target_os = "linux")]
fn inherited_environment(builder: &ProcessBuilder) -> Option<*const *const libc::c_char> {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    if builder.get_env_clear() || !builder.get_env_changes().is_empty() {
        return None;
    }
    // Changing the environment while others read it is already UB (`set_var` is `unsafe`).
    // SAFETY: reads `environ`'s pointer; the array stays valid until the child exec'd
    // (CLONE_VFORK suspends this thread; a forked child has its own copy).
    let env = unsafe { environ };
    (!env.is_null()).then_some(env)
}

/// Elsewhere the environment is always built.
#[cfg(not(target_os = "linux"))]
fn inherited_environment(_builder: &ProcessBuilder) -> Option<*const *const libc::c_char> {
    None
}

/// A NULL-terminated array of C strings, and the strings it points into.
struct CStringArray {
    _strings: Vec<CString>,
    pointers: Vec<*const libc::c_char>,
}

impl CStringArray {
    /// `None` if an item contains a NUL byte.
    fn new(items: impl Iterator<Item = Vec<u8>>) -> Option<Self> {
        let strings = items
            .map(CString::new)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        // The pointers stay valid when `strings` moves: each CString owns a heap buffer.
        let mut pointers: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        Some(CStringArray {
            _strings: strings,
            pointers,
        })
    }

    fn as_ptr(&self) -> *const *const libc::c_char {
        self.pointers.as_ptr()
    }
}

/// Create the child and learn whether it exec'd: `(pid, pidfd)`.
fn create(
    ctx: &ChildContext<'_>,
    scratch: &mut [RawFd],
    options: &RawSpawnOptions,
) -> Result<(u32, Option<OwnedFd>), StepError> {
    #[cfg(target_os = "linux")]
    if !options.force_fork {
        return super::clone::create(ctx, scratch, options.pidfd);
    }
    fork_create(ctx, scratch, options.pidfd)
}

/// The portable back end: `fork`, the child's steps, a `CLOEXEC` report pipe.
fn fork_create(
    ctx: &ChildContext<'_>,
    scratch: &mut [RawFd],
    want_pidfd: bool,
) -> Result<(u32, Option<OwnedFd>), StepError> {
    let setup = |e: io::Error| (SpawnStep::Setup, e);
    let (report_read, first_write) = fd::pipe_cloexec().map_err(setup)?;
    // Above every target and source: no dup2 of the child touches it. The first write end
    // must be closed too, or the read below never sees EOF.
    let report_write = fd::dup_cloexec_at_least(first_write.as_fd(), ctx.high).map_err(setup)?;
    drop(first_write);
    let ctx = ChildContext {
        keep: Some(report_write.as_raw_fd()),
        ..*ctx
    };
    let pid = {
        let _blocked = BlockedSignals::new();
        super::fork::fork_child(&ctx, scratch, report_write.as_raw_fd())
    };
    drop(report_write);
    let pid = pid.map_err(|e| (SpawnStep::Fork, e))?;
    let mut report = [0u8; 8];
    let mut got = 0;
    let mut file = std::fs::File::from(report_read);
    while got < report.len() {
        match file.read(&mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                wait::reap_failed(pid);
                return Err((SpawnStep::Fork, e));
            }
        }
    }
    if got == report.len() {
        let [a, b, c, d, e, f, g, h] = report;
        let step = child::step_from_code(u32::from_ne_bytes([a, b, c, d]));
        let errno = i32::from_ne_bytes([e, f, g, h]);
        wait::reap_failed(pid);
        return Err((
            step.unwrap_or(SpawnStep::Fork),
            io::Error::from_raw_os_error(errno),
        ));
    }
    let pid = pid as u32;
    let pidfd = if want_pidfd {
        wait::pidfd_open(pid).ok()
    } else {
        None
    };
    Ok((pid, pidfd))
}
