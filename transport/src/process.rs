//! Child processes: the protocol, the transport, and the spawn request (CONTRACT F, G, I, J).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use crate::error::{ProcessError, SpawnError};
use crate::{Consumer, ExitReason, PushProducer, Signal};

/// The parent's handle on a running child (Twisted's `IProcessTransport`).
///
/// As a [`Consumer`], `write` goes to the child's stdin (CONTRACT I5). As a
/// [`PushProducer`], pausing stops reading every pipe from the child, resuming starts
/// again (I6). No method calls back into the protocol synchronously: losses and exits are
/// reported from the loop.
pub trait ProcessTransport: Consumer + PushProducer {
    /// The child's process id while it has not been reaped; `None` afterwards (CONTRACT F3).
    fn pid(&self) -> Option<u32>;

    /// Queue `data` for child fd `fd` (CONTRACT I5).
    ///
    /// # Errors
    ///
    /// [`ProcessError::NotWritable`] if `fd` is not a pipe the parent writes to;
    /// [`ProcessError::Unsupported`] on a PTY for any fd but 0.
    #[doc(alias = "writeToChild")]
    fn write_to_child(&self, fd: i32, data: &[u8]) -> Result<(), ProcessError>;

    /// Close the parent's end of child fd `fd` (CONTRACT I3): a writer flushes first, a
    /// reader stops now; `child_connection_lost(fd)` comes from the loop. Closing twice or
    /// an fd that is not a pipe is a no-op.
    ///
    /// # Errors
    ///
    /// [`ProcessError::Unsupported`] on a PTY, which has one channel (CONTRACT L7).
    #[doc(alias = "closeChildFD")]
    fn close_child_fd(&self, fd: i32) -> Result<(), ProcessError>;

    /// Close the child's stdin after pending data is written.
    ///
    /// # Errors
    ///
    /// As [`close_child_fd`](Self::close_child_fd).
    #[doc(alias = "closeStdin")]
    fn close_stdin(&self) -> Result<(), ProcessError> {
        self.close_child_fd(0)
    }

    /// Stop reading the child's stdout and close the parent's end; the child then gets
    /// `EPIPE` when it writes.
    ///
    /// # Errors
    ///
    /// As [`close_child_fd`](Self::close_child_fd).
    #[doc(alias = "closeStdout")]
    fn close_stdout(&self) -> Result<(), ProcessError> {
        self.close_child_fd(1)
    }

    /// As [`close_stdout`](Self::close_stdout), for stderr.
    ///
    /// # Errors
    ///
    /// As [`close_child_fd`](Self::close_child_fd).
    #[doc(alias = "closeStderr")]
    fn close_stderr(&self) -> Result<(), ProcessError> {
        self.close_child_fd(2)
    }

    /// Send `signal` to the child (CONTRACT J1). A zombie not yet reaped still accepts it.
    ///
    /// # Errors
    ///
    /// [`ProcessError::ExitedAlready`] once the child has been reaped;
    /// [`ProcessError::UnsupportedSignal`] for a signal this system cannot send.
    #[doc(alias = "signalProcess")]
    fn signal_process(&self, signal: Signal) -> Result<(), ProcessError>;

    /// Close stdin (after flushing), stderr and stdout (CONTRACT I4). Never kills the child.
    #[doc(alias = "loseConnection")]
    fn lose_connection(&self);
}

/// The code that drives a child process (Twisted's `IProcessProtocol`).
///
/// Order (CONTRACT F): `connection_made` inside spawn; then for each pipe zero or more
/// `child_data_received(fd, ..)` and exactly one `child_connection_lost(fd)`;
/// `process_exited` once when the child is reaped (before, between or after the losses);
/// `process_ended` once and last, when the child is reaped **and** every pipe is closed.
///
/// `process_exited` tells you the child is gone; `process_ended` tells you that *and* that
/// no more output can arrive. A grandchild holding the child's stdout keeps
/// `process_ended` waiting; `process_exited` is not held up by it.
pub trait ProcessProtocol {
    /// The child exists and its pipes are wired; `transport.pid()` is set (CONTRACT F1).
    #[doc(alias = "makeConnection")]
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        let _ = transport;
    }

    /// The child wrote `data` on its fd `fd`. The default calls
    /// [`out_received`](Self::out_received) for 1 and [`err_received`](Self::err_received)
    /// for 2 and drops other fds.
    #[doc(alias = "childDataReceived")]
    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        match fd {
            1 => self.out_received(data),
            2 => self.err_received(data),
            _ => {}
        }
    }

    /// The child wrote to its stdout.
    #[doc(alias = "outReceived")]
    fn out_received(&mut self, data: &[u8]) {
        let _ = data;
    }

    /// The child wrote to its stderr.
    #[doc(alias = "errReceived")]
    fn err_received(&mut self, data: &[u8]) {
        let _ = data;
    }

    /// The pipe for child fd `fd` is closed (CONTRACT F2). The default calls
    /// `in_connection_lost`, `out_connection_lost` or `err_connection_lost` for 0, 1, 2.
    #[doc(alias = "childConnectionLost")]
    fn child_connection_lost(&mut self, fd: i32) {
        match fd {
            0 => self.in_connection_lost(),
            1 => self.out_connection_lost(),
            2 => self.err_connection_lost(),
            _ => {}
        }
    }

    /// The pipe to the child's stdin is closed.
    #[doc(alias = "inConnectionLost")]
    fn in_connection_lost(&mut self) {}

    /// The pipe from the child's stdout is closed.
    #[doc(alias = "outConnectionLost")]
    fn out_connection_lost(&mut self) {}

    /// The pipe from the child's stderr is closed.
    #[doc(alias = "errConnectionLost")]
    fn err_connection_lost(&mut self) {}

    /// The child was reaped (CONTRACT F3). Exactly once.
    #[doc(alias = "processExited")]
    fn process_exited(&mut self, reason: ExitReason) {
        let _ = reason;
    }

    /// The child was reaped and every pipe is closed (CONTRACT F4). Exactly once, last.
    #[doc(alias = "processEnded")]
    fn process_ended(&mut self, reason: ExitReason) {
        let _ = reason;
    }
}

/// What a child fd is connected to (CONTRACT G6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildFd {
    /// A pipe the parent **reads**: the child writes, `child_data_received` gets it.
    Read,
    /// A pipe the parent **writes**: `write_to_child` sends, the child reads.
    Write,
    /// This parent fd appears at the key's number in the child. The parent keeps
    /// ownership; the fd must be open.
    Inherit(i32),
    /// `/dev/null` (**\[deliberate\]**: Twisted has no such option).
    Null,
}

/// What happens to a child still alive when the reactor shuts down (CONTRACT J4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownPolicy {
    /// Leave it running (Twisted's behaviour, and the default). It is re-parented when
    /// this process exits; the reactor stops tracking it.
    #[default]
    Leave,
    /// Send SIGTERM, wait up to `grace`, then SIGKILL, and reap it before `run` returns.
    Terminate {
        /// How long to wait after SIGTERM before SIGKILL.
        grace: Duration,
    },
}

/// Options of a pseudo-terminal child (CONTRACT L).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PtyOptions {
    /// Window rows, set before exec (default 24).
    pub rows: u16,
    /// Window columns, set before exec (default 80).
    pub cols: u16,
    /// A caller-supplied `(master, slave)` pair of open fds instead of a fresh PTY. The
    /// caller keeps ownership of the fds it passes.
    pub pair: Option<(i32, i32)>,
    /// The terminal's echo, set before the child starts; `None` leaves the line
    /// discipline's default (on).
    pub echo: Option<bool>,
    /// Raw mode (`cfmakeraw`: no echo, no line editing, no `\n` → `\r\n` translation), set
    /// before the child starts. Default off: the child gets a cooked terminal.
    pub raw: bool,
}

impl Default for PtyOptions {
    fn default() -> Self {
        PtyOptions {
            rows: 24,
            cols: 80,
            pair: None,
            echo: None,
            raw: false,
        }
    }
}

impl PtyOptions {
    /// A fresh PTY with the given window size.
    pub fn size(rows: u16, cols: u16) -> Self {
        PtyOptions {
            rows,
            cols,
            ..PtyOptions::default()
        }
    }

    /// Set the terminal's echo before the child starts.
    pub fn with_echo(mut self, on: bool) -> Self {
        self.echo = Some(on);
        self
    }

    /// Start the child on a raw terminal.
    pub fn with_raw(mut self) -> Self {
        self.raw = true;
        self
    }

    /// A caller-supplied `(master, slave)` pair instead of a fresh PTY.
    pub fn with_pair(mut self, master: i32, slave: i32) -> Self {
        self.pair = Some((master, slave));
        self
    }
}

/// A complete description of a child to spawn (CONTRACT G): the same value goes to the
/// real reactor and to the test kit's `MemoryReactor`, which records it.
///
/// `argv[0]` is the program unless [`arg0`](Self::arg0) or [`argv`](Self::argv) say
/// otherwise. The environment is inherited unless [`env_clear`](Self::env_clear) is called
/// (**\[deliberate\]**: Rust's `Command` convention, not Twisted's empty default).
///
/// ```
/// use torsion_transport::{ChildFd, ProcessBuilder};
///
/// let b = ProcessBuilder::new("sh")
///     .args(["-c", "echo hi >&3"])
///     .env("LANG", "C")
///     .child_fd(3, ChildFd::Read);
/// assert!(b.validate().is_ok());
/// assert_eq!(b.get_argv().len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessBuilder {
    program: OsString,
    argv: Vec<OsString>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<PathBuf>,
    uid: Option<u32>,
    gid: Option<u32>,
    child_fds: Option<BTreeMap<i32, ChildFd>>,
    pty: Option<PtyOptions>,
    new_session: bool,
    process_group: Option<u32>,
    shutdown: ShutdownPolicy,
    pipe_size: Option<usize>,
    /// Child fds mapped more than once with `child_fd` (CONTRACT G10): an error at spawn.
    remapped: Vec<i32>,
}

impl ProcessBuilder {
    /// A request to run `program` with `argv = [program]`, the parent's environment and
    /// the default fd map `{0: Write, 1: Read, 2: Read}`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref().to_owned();
        ProcessBuilder {
            argv: vec![program.clone()],
            program,
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            uid: None,
            gid: None,
            child_fds: None,
            pty: None,
            new_session: false,
            process_group: None,
            shutdown: ShutdownPolicy::default(),
            pipe_size: None,
            remapped: Vec::new(),
        }
    }

    /// Append one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.argv.push(arg.as_ref().to_owned());
        self
    }

    /// Append arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.argv
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set `argv[0]` (what the child sees as its name).
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        if let Some(first) = self.argv.first_mut() {
            *first = arg0.as_ref().to_owned();
        } else {
            self.argv.push(arg0.as_ref().to_owned());
        }
        self
    }

    /// Replace the whole argv, verbatim, `argv[0]` included (Twisted's `args`, CONTRACT G1).
    pub fn argv<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.argv = argv.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// Set one environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Set several environment variables.
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Remove one inherited environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Start from an empty environment instead of the parent's (CONTRACT G2).
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.retain(|_, v| v.is_some());
        self
    }

    /// The child's working directory (CONTRACT G4).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Run the child as this user id (needs privilege; CONTRACT G5).
    pub fn uid(mut self, uid: u32) -> Self {
        self.uid = Some(uid);
        self
    }

    /// Run the child as this group id (needs privilege; CONTRACT G5).
    pub fn gid(mut self, gid: u32) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Map child fd `fd` (CONTRACT G6). The first call replaces the default map
    /// `{0: Write, 1: Read, 2: Read}` with an empty one: every fd you want must be named.
    ///
    /// Mapping the same child fd twice is an error at spawn (CONTRACT G10), never "last
    /// one wins": `.child_fd(1, Read).child_fd(1, Write)` fails with
    /// [`SpawnError`] `InvalidInput`.
    pub fn child_fd(mut self, fd: i32, what: ChildFd) -> Self {
        let map = self.child_fds.get_or_insert_with(BTreeMap::new);
        if map.insert(fd, what).is_some() && !self.remapped.contains(&fd) {
            self.remapped.push(fd);
        }
        self
    }

    /// Ask for pipes of `bytes` bytes (`F_SETPIPE_SZ`, Linux; ignored elsewhere). Larger
    /// pipes move bulk data with fewer wake-ups: 1 MiB roughly doubles throughput to and
    /// from `cat`. `None` (the default) keeps the kernel's size.
    pub fn pipe_size(mut self, bytes: usize) -> Self {
        self.pipe_size = Some(bytes);
        self
    }

    /// The pipe size asked for with [`pipe_size`](Self::pipe_size).
    pub fn get_pipe_size(&self) -> Option<usize> {
        self.pipe_size
    }

    /// Replace the whole child fd map.
    pub fn child_fds(mut self, map: BTreeMap<i32, ChildFd>) -> Self {
        self.child_fds = Some(map);
        self
    }

    /// Run the child on a fresh pseudo-terminal (CONTRACT L). Not combinable with
    /// [`child_fd`](Self::child_fd) (CONTRACT G7).
    pub fn pty(mut self, options: PtyOptions) -> Self {
        self.pty = Some(options);
        self
    }

    /// Start the child in a new session (`setsid`), detached from our terminal
    /// (CONTRACT H4). A PTY child always gets one.
    pub fn new_session(mut self, yes: bool) -> Self {
        self.new_session = yes;
        self
    }

    /// Put the child in process group `pgid`; 0 makes a new group led by the child.
    pub fn process_group(mut self, pgid: u32) -> Self {
        self.process_group = Some(pgid);
        self
    }

    /// What the reactor does with this child if it is still alive at shutdown (J4).
    pub fn shutdown_policy(mut self, policy: ShutdownPolicy) -> Self {
        self.shutdown = policy;
        self
    }

    /// The program to execute.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The argv, `argv[0]` included.
    pub fn get_argv(&self) -> &[OsString] {
        &self.argv
    }

    /// True if the child starts from an empty environment.
    pub fn get_env_clear(&self) -> bool {
        self.env_clear
    }

    /// Environment changes: `Some(value)` sets, `None` removes.
    pub fn get_env_changes(&self) -> &BTreeMap<OsString, Option<OsString>> {
        &self.env
    }

    /// The child's environment, given the parent's.
    pub fn resolved_env<I>(&self, parent: I) -> Vec<(OsString, OsString)>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let mut out: BTreeMap<OsString, OsString> = if self.env_clear {
            BTreeMap::new()
        } else {
            parent.into_iter().collect()
        };
        for (k, v) in &self.env {
            match v {
                Some(v) => {
                    out.insert(k.clone(), v.clone());
                }
                None => {
                    out.remove(k);
                }
            }
        }
        out.into_iter().collect()
    }

    /// The `PATH` the child will have, if the builder sets one (CONTRACT G3).
    pub fn get_child_path(&self) -> Option<&OsStr> {
        self.env.get(OsStr::new("PATH")).and_then(|v| v.as_deref())
    }

    /// The working directory, if set.
    pub fn get_cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// The user id, if set.
    pub fn get_uid(&self) -> Option<u32> {
        self.uid
    }

    /// The group id, if set.
    pub fn get_gid(&self) -> Option<u32> {
        self.gid
    }

    /// The child fd map: the explicit one, or the default `{0: Write, 1: Read, 2: Read}`.
    pub fn get_child_fds(&self) -> BTreeMap<i32, ChildFd> {
        match &self.child_fds {
            Some(m) => m.clone(),
            None => BTreeMap::from([(0, ChildFd::Write), (1, ChildFd::Read), (2, ChildFd::Read)]),
        }
    }

    /// True if an explicit child fd map was given.
    pub fn has_explicit_child_fds(&self) -> bool {
        self.child_fds.is_some()
    }

    /// The PTY options, if the child runs on a PTY.
    pub fn get_pty(&self) -> Option<&PtyOptions> {
        self.pty.as_ref()
    }

    /// True if the child starts a new session.
    pub fn get_new_session(&self) -> bool {
        self.new_session
    }

    /// The process group, if one was asked for.
    pub fn get_process_group(&self) -> Option<u32> {
        self.process_group
    }

    /// The shutdown policy.
    pub fn get_shutdown_policy(&self) -> ShutdownPolicy {
        self.shutdown
    }

    /// Check the request without touching the system (CONTRACT G1, G6, G7).
    ///
    /// # Errors
    ///
    /// [`SpawnError`] with step [`InvalidInput`](crate::SpawnStep::InvalidInput) naming the
    /// problem: a NUL byte in the program, an argument, an environment key or value, or the
    /// cwd; `=` in an environment key; an empty argv or program; a negative child fd or
    /// inherited fd; an fd map together with `pty`; a zero-sized window.
    pub fn validate(&self) -> Result<(), SpawnError> {
        let bad = |what: String| Err(SpawnError::invalid(self.program.clone(), what));
        if self.program.is_empty() {
            return bad("the program name is empty".into());
        }
        if has_nul(&self.program) {
            return bad("the program name contains a NUL byte".into());
        }
        if self.argv.is_empty() {
            return bad("argv is empty; it needs at least argv[0]".into());
        }
        if let Some(i) = self.argv.iter().position(|a| has_nul(a)) {
            return bad(format!("argument {i} contains a NUL byte"));
        }
        for (k, v) in &self.env {
            if k.is_empty() || has_nul(k) || k.as_encoded_bytes().contains(&b'=') {
                return bad(format!(
                    "environment key {k:?} is empty or contains '=' or a NUL byte"
                ));
            }
            if v.as_deref().is_some_and(has_nul) {
                return bad(format!(
                    "the value of environment variable {k:?} contains a NUL byte"
                ));
            }
        }
        if let Some(cwd) = &self.cwd {
            if has_nul(cwd.as_os_str()) {
                return bad("the working directory contains a NUL byte".into());
            }
        }
        if let Some(fd) = self.remapped.first() {
            return bad(format!(
                "child fd {fd} is mapped more than once; map each child fd once"
            ));
        }
        if let Some(map) = &self.child_fds {
            for (fd, what) in map {
                if *fd < 0 {
                    return bad(format!("child fd {fd} is negative"));
                }
                if let ChildFd::Inherit(p) = what {
                    if *p < 0 {
                        return bad(format!("child fd {fd} inherits negative parent fd {p}"));
                    }
                }
            }
        }
        if let Some(pty) = &self.pty {
            if self.child_fds.is_some() {
                return bad(
                    "a PTY child has the terminal on fds 0, 1 and 2; an explicit child fd map cannot be combined with pty"
                        .into(),
                );
            }
            if pty.rows == 0 || pty.cols == 0 {
                return bad(format!(
                    "window size {}x{} has a zero side",
                    pty.rows, pty.cols
                ));
            }
        }
        Ok(())
    }
}

fn has_nul(s: &OsStr) -> bool {
    s.as_encoded_bytes().contains(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g10_mapping_a_child_fd_twice_is_invalid_input() {
        let b = ProcessBuilder::new("echo")
            .child_fd(1, ChildFd::Read)
            .child_fd(1, ChildFd::Write);
        let e = b.validate().unwrap_err();
        assert_eq!(e.step, crate::SpawnStep::InvalidInput);
        assert!(
            e.to_string()
                .contains("child fd 1 is mapped more than once"),
            "{e}"
        );
        let ok = ProcessBuilder::new("echo")
            .child_fd(1, ChildFd::Read)
            .child_fd(2, ChildFd::Read);
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn g1_nul_bytes_are_invalid_input() {
        let b = ProcessBuilder::new("echo").arg("a\0b");
        let e = b.validate().unwrap_err();
        assert_eq!(e.step, crate::SpawnStep::InvalidInput);
        assert!(e.to_string().contains("argument 1"));
        assert!(ProcessBuilder::new("e\0").validate().is_err());
        assert!(ProcessBuilder::new("e").env("K", "v\0").validate().is_err());
        assert!(ProcessBuilder::new("e").env("K=", "v").validate().is_err());
        assert!(ProcessBuilder::new("e").cwd("/t\0mp").validate().is_err());
        assert!(
            ProcessBuilder::new("e")
                .argv(Vec::<&str>::new())
                .validate()
                .is_err()
        );
    }

    #[test]
    fn g6_default_and_explicit_fd_maps() {
        let b = ProcessBuilder::new("x");
        assert_eq!(b.get_child_fds().len(), 3);
        assert_eq!(b.get_child_fds()[&0], ChildFd::Write);
        let b = b.child_fd(5, ChildFd::Null);
        assert_eq!(b.get_child_fds().len(), 1);
        assert!(b.clone().child_fd(-1, ChildFd::Read).validate().is_err());
        assert!(b.child_fd(1, ChildFd::Inherit(-4)).validate().is_err());
    }

    #[test]
    fn g7_pty_with_fd_map_is_invalid() {
        let b = ProcessBuilder::new("x")
            .child_fd(0, ChildFd::Read)
            .pty(PtyOptions::default());
        assert!(b.validate().unwrap_err().to_string().contains("pty"));
        assert!(
            ProcessBuilder::new("x")
                .pty(PtyOptions::size(0, 80))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn g2_env_resolution() {
        let parent = vec![
            (OsString::from("A"), OsString::from("1")),
            (OsString::from("B"), OsString::from("2")),
        ];
        let b = ProcessBuilder::new("x").env("C", "3").env_remove("A");
        let env = b.resolved_env(parent.clone());
        assert_eq!(
            env,
            vec![
                (OsString::from("B"), OsString::from("2")),
                (OsString::from("C"), OsString::from("3"))
            ]
        );
        let cleared = ProcessBuilder::new("x").env_clear().resolved_env(parent);
        assert!(cleared.is_empty());
    }

    #[test]
    fn g1_argv_is_verbatim() {
        let b = ProcessBuilder::new("/bin/sh").argv(["-sh", "-c", "true"]);
        assert_eq!(b.get_argv()[0], "-sh");
        assert_eq!(b.get_program(), "/bin/sh");
        let b = ProcessBuilder::new("ls").arg0("list").arg("-l");
        assert_eq!(
            b.get_argv(),
            &[OsString::from("list"), OsString::from("-l")]
        );
    }
}
