//! Child processes as futures: `builder.output(&reactor).await`,
//! `builder.status(&reactor).await`, and `builder.spawn_async(&reactor)` for a [`Child`]
//! whose stdin, stdout and stderr are async streams, on pipes or a PTY — on top of
//! torsion-process's `spawn` and a [`ProcessProtocol`].

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use torsion_process::{Process, ProcessBuilderExt};
use torsion_reactor::Reactor;
use torsion_transport::{
    ChildFd, ExitReason, ProcessBuilder, ProcessError, ProcessProtocol, ProcessTransport, Producer,
    PushProducer, Signal, SpawnError,
};

use crate::lines::{HasInbound, Lines};
use crate::pipe::{Gate, Inbound, Outbound, WRITE_CHUNK};

/// What [`ProcessBuilderAsync::output`] collects (std's `Output`, with torsion's exit
/// reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the child ended.
    pub status: ExitReason,
    /// Everything it wrote to stdout (for a PTY child: the terminal's output).
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// The `io::Error` of a failed spawn: the OS error's kind (`NotFound` for a missing
/// program), with the [`SpawnError`] inside (naming the step and the program).
pub fn spawn_error_to_io(e: SpawnError) -> io::Error {
    let kind = e
        .source
        .as_ref()
        .map(|s| s.kind())
        .unwrap_or(io::ErrorKind::InvalidInput);
    io::Error::new(kind, e)
}

fn process_error_to_io(e: ProcessError) -> io::Error {
    let kind = match &e {
        ProcessError::ExitedAlready => io::ErrorKind::NotFound,
        ProcessError::Os(os) => os.kind(),
        _ => io::ErrorKind::Unsupported,
    };
    io::Error::new(kind, e)
}

/// Pauses the process's reading while any of its readers is behind (balanced).
struct Pauser {
    process: RefCell<Option<Rc<dyn ProcessTransport>>>,
    count: Cell<usize>,
}

impl PushProducer for Pauser {
    fn pause_producing(&self) {
        self.count.set(self.count.get() + 1);
        if self.count.get() == 1 {
            if let Some(p) = self.process.borrow().clone() {
                p.pause_producing();
            }
        }
    }

    fn resume_producing(&self) {
        if self.count.get() == 0 {
            return;
        }
        self.count.set(self.count.get() - 1);
        if self.count.get() == 0 {
            if let Some(p) = self.process.borrow().clone() {
                p.resume_producing();
            }
        }
    }

    fn stop_producing(&self) {}
}

#[derive(Default)]
struct Exit {
    reason: RefCell<Option<ExitReason>>,
    waker: RefCell<Option<Waker>>,
}

impl Exit {
    fn set(&self, r: ExitReason) {
        *self.reason.borrow_mut() = Some(r);
        let w = self.waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<ExitReason> {
        match *self.reason.borrow() {
            Some(r) => Poll::Ready(r),
            None => {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

struct ChildShared {
    out: Inbound,
    err: Inbound,
    stdin: Rc<Outbound>,
    pauser: Rc<Pauser>,
    exited: Exit,
    ended: Exit,
}

struct AsyncProcessProtocol(Rc<ChildShared>);

impl ProcessProtocol for AsyncProcessProtocol {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        let gate: Rc<dyn PushProducer> = Rc::new(Gate(Rc::downgrade(&self.0.stdin)));
        if let Err(e) = transport.register_producer(Producer::Push(gate)) {
            log::warn!("child: cannot register the stdin writer as a producer: {e}");
        }
        *self.0.pauser.process.borrow_mut() = Some(transport);
        self.0.out.set_source(self.0.pauser.clone());
        self.0.err.set_source(self.0.pauser.clone());
    }

    fn out_received(&mut self, data: &[u8]) {
        self.0.out.push(data);
    }

    fn err_received(&mut self, data: &[u8]) {
        self.0.err.push(data);
    }

    fn child_connection_lost(&mut self, fd: i32) {
        match fd {
            0 => self.0.stdin.set_shut(),
            1 => self.0.out.finish(None),
            2 => self.0.err.finish(None),
            _ => {}
        }
    }

    fn process_exited(&mut self, reason: ExitReason) {
        self.0.exited.set(reason);
    }

    fn process_ended(&mut self, reason: ExitReason) {
        self.0.out.finish(None);
        self.0.err.finish(None);
        self.0.stdin.set_shut();
        // The process is gone: break the process ↔ protocol cycle.
        self.0.pauser.process.borrow_mut().take();
        self.0.ended.set(reason);
    }
}

/// A running child, from [`ProcessBuilderAsync::spawn_async`]: [`wait`](Self::wait) for
/// it, and take its [`stdin`](Self::stdin), [`stdout`](Self::stdout) and
/// [`stderr`](Self::stderr) as async streams. Dropping it leaves the child running (the
/// reactor still reaps it); output nobody reads any more is discarded.
pub struct Child {
    process: Rc<Process>,
    shared: Rc<ChildShared>,
    /// The process group the child was put in by [`ProcessBuilder::process_group`].
    group: Option<u32>,
    /// The child's stdin (fd 0; for a PTY child, the terminal's input).
    pub stdin: Option<ChildStdin>,
    /// The child's stdout (fd 1; for a PTY child, everything the terminal shows).
    pub stdout: Option<ChildStdout>,
    /// The child's stderr (fd 2; for a PTY child it never has data).
    pub stderr: Option<ChildStdout>,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.process.pid())
            .field("exit", &self.process.exit_reason())
            .finish()
    }
}

impl Child {
    /// The child's pid, `None` once it was reaped.
    pub fn id(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The process transport underneath.
    pub fn process(&self) -> &Rc<Process> {
        &self.process
    }

    /// Close stdin (if still held) and wait for the child to exit (be reaped). Output may
    /// still be arriving on stdout/stderr: read those to their end for all of it.
    ///
    /// # Errors
    ///
    /// None today; `io::Result` for symmetry with std and tokio.
    pub async fn wait(&mut self) -> io::Result<ExitReason> {
        drop(self.stdin.take());
        let shared = self.shared.clone();
        Ok(poll_fn(|cx| shared.exited.poll(cx)).await)
    }

    /// Wait until the child exited **and** every pipe closed (`process_ended`).
    ///
    /// # Errors
    ///
    /// None today.
    pub async fn wait_ended(&mut self) -> io::Result<ExitReason> {
        drop(self.stdin.take());
        let shared = self.shared.clone();
        Ok(poll_fn(|cx| shared.ended.poll(cx)).await)
    }

    /// Send `signal` to the child.
    ///
    /// # Errors
    ///
    /// `NotFound` with [`ProcessError::ExitedAlready`] once it was reaped.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        self.process
            .signal_process(signal)
            .map_err(process_error_to_io)
    }

    /// Send SIGKILL.
    ///
    /// # Errors
    ///
    /// As [`signal`](Self::signal).
    pub fn kill(&self) -> io::Result<()> {
        self.signal(Signal::Kill)
    }

    /// Send `signal` to the child's whole process group (`killpg`): the child and every
    /// process it started that stayed in its group — grandchildren that
    /// [`signal`](Self::signal) would leave running. Works after the child was reaped, as
    /// long as a member of the group is left. Unix only.
    ///
    /// The child must have been spawned with
    /// [`ProcessBuilder::process_group`]`(0)` (a new group it leads) or into a given group.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the child was not put in a process group, or `signal` has no
    /// number here; `NotFound` when no process of the group is left; `Unsupported` off Unix.
    #[doc(alias = "killpg")]
    pub fn signal_group(&self, signal: Signal) -> io::Result<()> {
        let group = self.group.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the child has no process group of its own: spawn it with \
                 ProcessBuilder::process_group(0)",
            )
        })?;
        killpg(group, signal)
    }
}

#[cfg(unix)]
fn killpg(group: u32, signal: Signal) -> io::Result<()> {
    use nix::sys::signal;
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{signal} has no number on this system"),
        )
    };
    let sig = signal::Signal::try_from(signal.as_raw().ok_or_else(bad)?).map_err(|_| bad())?;
    let pgid = i32::try_from(group)
        .ok()
        .filter(|&g| g > 1)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad process group id"))?;
    signal::killpg(nix::unistd::Pid::from_raw(pgid), sig).map_err(|e| match e {
        nix::errno::Errno::ESRCH => io::Error::new(
            io::ErrorKind::NotFound,
            format!("process group {pgid} has no process left"),
        ),
        e => io::Error::from(e),
    })
}

#[cfg(not(unix))]
fn killpg(_group: u32, _signal: Signal) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "process groups exist only on Unix",
    ))
}

/// A child's stdout or stderr as an async stream.
pub struct ChildStdout {
    source: Rc<ChildOut>,
    /// False once turned into [`Lines`], which reads on.
    abandon_on_drop: bool,
}

struct ChildOut {
    shared: Rc<ChildShared>,
    fd: i32,
}

impl HasInbound for ChildOut {
    fn inbound(&self) -> &Inbound {
        if self.fd == 2 {
            &self.shared.err
        } else {
            &self.shared.out
        }
    }
}

impl fmt::Debug for ChildStdout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdout")
            .field("fd", &self.source.fd)
            .finish()
    }
}

impl ChildStdout {
    /// Read into `buf`; `Ok(0)` once the child closed it. While unread output piles up,
    /// the child's pipes stop being read (the child blocks on its writes; CONTRACT P6).
    ///
    /// # Errors
    ///
    /// None today; `io::Result` for symmetry with std and tokio.
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read(cx, buf)).await
    }

    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.source.inbound().poll_read(cx, buf)
    }

    /// Bytes received and not read yet (bounded: the child is paused past
    /// [`READ_HIGH_WATER`](crate::READ_HIGH_WATER)).
    pub fn buffered(&self) -> usize {
        self.source.inbound().buffered()
    }

    /// Read to the end.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = self.read(&mut buf).await?;
            if n == 0 {
                return Ok(all);
            }
            all.extend_from_slice(&buf[..n]);
        }
    }

    /// The stream of its lines.
    pub fn lines(mut self) -> Lines {
        self.abandon_on_drop = false;
        Lines::new(self.source.clone())
    }
}

impl Drop for ChildStdout {
    fn drop(&mut self) {
        if self.abandon_on_drop {
            self.source.inbound().abandon();
        }
    }
}

/// A child's stdin as an async stream. Dropping it (or [`shutdown`](Self::shutdown))
/// closes the pipe: the child reads EOF.
pub struct ChildStdin {
    process: Rc<Process>,
    shared: Rc<ChildShared>,
}

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildStdin").finish()
    }
}

impl ChildStdin {
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match self.shared.stdin.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        let n = data.len().min(WRITE_CHUNK);
        match self.process.write_to_child(0, &data[..n]) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(e) => Poll::Ready(Err(process_error_to_io(e))),
        }
    }

    /// Write some of `data`, waiting while the pipe's buffer is over its size.
    ///
    /// # Errors
    ///
    /// `BrokenPipe` with [`NetError::WriteClosed`](crate::NetError::WriteClosed) once stdin is closed (by us or the
    /// child).
    pub async fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write(cx, data)).await
    }

    /// Write all of `data`, waiting while the pipe's buffer is over its size (CONTRACT P6).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.write(data).await?;
            data = &data[n..];
        }
        Ok(())
    }

    pub(crate) fn close(&self) {
        if !self.shared.stdin.is_closed() {
            self.shared.stdin.close();
            if let Err(e) = self.process.close_stdin() {
                log::debug!("closing a child's stdin: {e}");
            }
        }
    }

    /// Close stdin once what was written is sent: the child reads EOF.
    ///
    /// # Errors
    ///
    /// None today.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.close();
        Ok(())
    }
}

impl Drop for ChildStdin {
    fn drop(&mut self) {
        self.close();
    }
}

/// Child processes as futures, for [`ProcessBuilder`] (in `torsion::prelude`).
pub trait ProcessBuilderAsync {
    /// Spawn the child with stdin, stdout and stderr as async streams (on pipes, or the
    /// PTY if the builder asks for one).
    ///
    /// # Errors
    ///
    /// The spawn failed: see [`spawn_error_to_io`] (`NotFound` for a missing program).
    fn spawn_async(&self, reactor: &Reactor) -> io::Result<Child>;

    /// Run the child to its end, collecting stdout and stderr (std's `Command::output`,
    /// without its deadlock: both are read as they come). Its stdin is closed at once.
    ///
    /// # Errors
    ///
    /// The spawn failed (see [`spawn_error_to_io`]).
    fn output(&self, reactor: &Reactor) -> impl Future<Output = io::Result<Output>> + 'static;

    /// Run the child to its end and give its exit reason. Without a PTY or an explicit fd
    /// map, the child shares our stdin, stdout and stderr (std's `Command::status`);
    /// otherwise its output is read and discarded.
    ///
    /// # Errors
    ///
    /// The spawn failed (see [`spawn_error_to_io`]).
    fn status(&self, reactor: &Reactor) -> impl Future<Output = io::Result<ExitReason>> + 'static;
}

fn spawn_child(builder: &ProcessBuilder, reactor: &Reactor) -> io::Result<Child> {
    let shared = Rc::new(ChildShared {
        out: Inbound::default(),
        err: Inbound::default(),
        stdin: Rc::new(Outbound::default()),
        pauser: Rc::new(Pauser {
            process: RefCell::new(None),
            count: Cell::new(0),
        }),
        exited: Exit::default(),
        ended: Exit::default(),
    });
    let process = builder
        .spawn(reactor, Box::new(AsyncProcessProtocol(shared.clone())))
        .map_err(spawn_error_to_io)?;
    let out = |fd| ChildStdout {
        source: Rc::new(ChildOut {
            shared: shared.clone(),
            fd,
        }),
        abandon_on_drop: true,
    };
    Ok(Child {
        stdin: Some(ChildStdin {
            process: process.clone(),
            shared: shared.clone(),
        }),
        stdout: Some(out(1)),
        stderr: Some(out(2)),
        // Group 0 is "a new group led by the child": its id is the child's pid.
        group: match builder.get_process_group() {
            Some(0) => process.pid(),
            g => g,
        },
        process,
        shared,
    })
}

impl ProcessBuilderAsync for ProcessBuilder {
    fn spawn_async(&self, reactor: &Reactor) -> io::Result<Child> {
        spawn_child(self, reactor)
    }

    fn output(&self, reactor: &Reactor) -> impl Future<Output = io::Result<Output>> + 'static {
        let child = spawn_child(self, reactor);
        async move {
            let mut child = child?;
            child.shared.out.set_unbounded();
            child.shared.err.set_unbounded();
            let status = child.wait_ended().await?;
            Ok(Output {
                status,
                stdout: child.shared.out.take_all(),
                stderr: child.shared.err.take_all(),
            })
        }
    }

    fn status(&self, reactor: &Reactor) -> impl Future<Output = io::Result<ExitReason>> + 'static {
        let child = if self.get_pty().is_none() && !self.has_explicit_child_fds() {
            let inherit = self
                .clone()
                .child_fd(0, ChildFd::Inherit(0))
                .child_fd(1, ChildFd::Inherit(1))
                .child_fd(2, ChildFd::Inherit(2));
            spawn_child(&inherit, reactor)
        } else {
            spawn_child(self, reactor)
        };
        async move {
            let mut child = child?;
            drop(child.stdout.take());
            drop(child.stderr.take());
            child.wait_ended().await
        }
    }
}
