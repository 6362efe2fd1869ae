//! A child's output as a [`Deferred`] (Twisted's `twisted.internet.utils`).
//!
//! - [`get_process_output`]: its stdout (Twisted's `getProcessOutput`);
//! - [`get_process_output_and_value`]: stdout, stderr and the exit reason
//!   (`getProcessOutputAndValue`);
//! - [`get_process_value`]: only the exit reason (`getProcessValue`).
//!
//! Each takes a reactor that can spawn and keep time ([`ReactorProcess`] +
//! [`ReactorTime`]: the real reactor, or the test kit's `MemoryReactor`) and an
//! [`OutputRequest`]: a [`ProcessBuilder`] (which converts into one) plus options —
//! bytes for the child's stdin, a timeout with kill escalation, a limit on collected
//! output, and whether stderr output is an error.
//!
//! The child's stdin, stdout and stderr are pipes; input is written while output is read,
//! so no size of input or output can deadlock the two. The result comes when the child
//! has ended and its pipes are closed (`process_ended`, CONTRACT P8); a failure is a
//! [`ProcessOutputError`] inside the [`Failure`] (`failure.downcast_ref::<ProcessOutputError>()`),
//! carrying what was collected.
//!
//! # Examples
//!
//! ```
//! # #[cfg(unix)] { // POSIX programs (sh, tr)
//! use std::time::Duration;
//! use torsion_reactor::Reactor;
//! use torsion_toolkit::utils::{OutputRequest, get_process_output};
//! use torsion_transport::ProcessBuilder;
//!
//! let reactor = Reactor::new()?;
//! let request = OutputRequest::new(ProcessBuilder::new("tr").args(["a-z", "A-Z"]))
//!     .input(b"shout\n".to_vec())
//!     .timeout(Duration::from_secs(10));
//! let out = get_process_output(&reactor, request);
//! let (r, seen) = (reactor.clone(), std::rc::Rc::new(std::cell::RefCell::new(None)));
//! let s = seen.clone();
//! out.add_both(move |result| {
//!     *s.borrow_mut() = Some(result);
//!     let _ = r.stop();
//!     Ok(())
//! });
//! reactor.run()?;
//! assert_eq!(seen.borrow_mut().take().unwrap()?, b"SHOUT\n");
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::ReactorProcess;
use torsion_transport::defer::{Deferred, Failure};
use torsion_transport::{
    ChildFd, DelayedCall, ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport,
    ReactorTime, Signal, SpawnError,
};

/// The default limit on collected output (stdout + stderr): 64 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

/// The default time between SIGTERM and SIGKILL after a timeout: 2 s (as `run --timeout`).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// What a child produced: both streams and why it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Its stdout (with its stderr mixed in, in arrival order, under
    /// [`OutputRequest::err_too`] for [`get_process_output`]).
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// Why it ended.
    pub reason: ExitReason,
}

/// Why a `get_process_*` result failed. Each variant but `Spawn` carries what was
/// collected up to then and the exit reason.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessOutputError {
    /// The child could not be started (the program is missing, not executable, ...).
    Spawn(SpawnError),
    /// The child did not end within the [timeout](OutputRequest::timeout): it was sent
    /// SIGTERM, and SIGKILL after the grace period if it was still there.
    TimedOut {
        /// The timeout that ran out.
        timeout: Duration,
        /// Whether SIGKILL was needed.
        killed: bool,
        /// What it wrote before it ended, and how it ended.
        output: Output,
    },
    /// The child wrote more than the [limit](OutputRequest::max_output): it was sent
    /// SIGKILL and its pipes were closed. The output holds the first `limit` bytes.
    OutputLimitExceeded {
        /// The limit, in bytes of stdout + stderr.
        limit: usize,
        /// What was kept, and how it ended.
        output: Output,
    },
    /// [`get_process_output`] without [`err_too`](OutputRequest::err_too): the child wrote
    /// to its stderr (Twisted's "got stderr" `IOError`).
    UnexpectedStderr {
        /// Everything it wrote, and how it ended.
        output: Output,
    },
}

impl ProcessOutputError {
    /// What the child wrote and how it ended; `None` for [`Spawn`](Self::Spawn).
    pub fn output(&self) -> Option<&Output> {
        match self {
            ProcessOutputError::Spawn(_) => None,
            ProcessOutputError::TimedOut { output, .. }
            | ProcessOutputError::OutputLimitExceeded { output, .. }
            | ProcessOutputError::UnexpectedStderr { output } => Some(output),
        }
    }
}

impl fmt::Display for ProcessOutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessOutputError::Spawn(e) => write!(f, "cannot start the child: {e}"),
            ProcessOutputError::TimedOut {
                timeout,
                killed,
                output,
            } => write!(
                f,
                "the child timed out: still running after {timeout:?}, so it was sent SIGTERM{} ({})",
                if *killed { " then SIGKILL" } else { "" },
                output.reason
            ),
            ProcessOutputError::OutputLimitExceeded { limit, output } => write!(
                f,
                "the child wrote more than the {limit}-byte output limit, so it was killed ({}); \
                 raise OutputRequest::max_output if more is expected",
                output.reason
            ),
            ProcessOutputError::UnexpectedStderr { output } => {
                let text = String::from_utf8_lossy(&output.stderr);
                let mut shown: String = text.chars().take(200).collect();
                if shown.len() < text.len() {
                    shown.push_str("...");
                }
                write!(
                    f,
                    "the child wrote to stderr: {shown:?} ({}); use OutputRequest::err_too to \
                     collect stderr with stdout",
                    output.reason
                )
            }
        }
    }
}

impl std::error::Error for ProcessOutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessOutputError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// A child to run and how to collect its output; built from a [`ProcessBuilder`]
/// (`From<ProcessBuilder>`, so a builder can be passed where a request is asked for).
///
/// Defaults: no input (the child's stdin is closed at once, so a child that reads it sees
/// EOF, not a hang), no timeout, a [64 MiB](DEFAULT_MAX_OUTPUT) output limit, and stderr
/// output failing [`get_process_output`] (Twisted's default, `errortoo=False`).
#[derive(Debug, Clone)]
pub struct OutputRequest {
    builder: ProcessBuilder,
    input: Option<Vec<u8>>,
    timeout: Option<Duration>,
    kill_grace: Duration,
    max_output: usize,
    err_too: bool,
}

impl From<ProcessBuilder> for OutputRequest {
    fn from(builder: ProcessBuilder) -> Self {
        OutputRequest::new(builder)
    }
}

impl From<&ProcessBuilder> for OutputRequest {
    fn from(builder: &ProcessBuilder) -> Self {
        OutputRequest::new(builder.clone())
    }
}

impl OutputRequest {
    /// The child `builder` describes, with the default options. The builder's child fd
    /// map should keep the default pipes for 0, 1 and 2 (a PTY child's output all arrives
    /// as stdout).
    pub fn new(builder: ProcessBuilder) -> Self {
        OutputRequest {
            builder,
            input: None,
            timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
            max_output: DEFAULT_MAX_OUTPUT,
            err_too: false,
        }
    }

    /// Write `bytes` to the child's stdin, then close it (Twisted's `stdinBytes`). The
    /// bytes are written as the child reads them, while its output is read: any size
    /// works, with no deadlock.
    pub fn input(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.input = Some(bytes.into());
        self
    }

    /// Fail with [`ProcessOutputError::TimedOut`] if the child has not ended after
    /// `timeout`: it is sent SIGTERM, then SIGKILL after the [grace
    /// period](Self::kill_grace) (and its pipes are closed then, so a grandchild holding
    /// them cannot hold the result up).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The time between SIGTERM and SIGKILL after a timeout (default
    /// [`DEFAULT_KILL_GRACE`]).
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// Keep at most `bytes` of output (stdout + stderr); a child that writes more is
    /// killed and the result is [`ProcessOutputError::OutputLimitExceeded`]. Default
    /// [`DEFAULT_MAX_OUTPUT`]; `usize::MAX` for no limit. [`get_process_value`] keeps no
    /// output, so has no limit.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// For [`get_process_output`]: collect stderr into the result with stdout, in arrival
    /// order (Twisted's `errortoo=True`). Without it (the default), output on stderr fails
    /// the result with [`ProcessOutputError::UnexpectedStderr`].
    ///
    /// **\[deliberate\]** Twisted fails at the first stderr byte and closes the pipes,
    /// leaving the child running; torsion keeps reading until the child has ended, so no
    /// child is left behind unobserved and the error carries all of stderr.
    pub fn err_too(mut self, yes: bool) -> Self {
        self.err_too = yes;
        self
    }

    /// The builder.
    pub fn builder(&self) -> &ProcessBuilder {
        &self.builder
    }
}

/// SIGTERM after a timeout, SIGKILL after a grace period: the escalation
/// [`get_process_output`] uses, for any running child ([`kill_after`]).
///
/// Dropping it does not cancel it; [`cancel`](Self::cancel) when the child has ended.
#[derive(Debug)]
pub struct KillTimer {
    term: DelayedCall,
    kill: DelayedCall,
    timed_out: Rc<Cell<bool>>,
    killed: Rc<Cell<bool>>,
}

impl KillTimer {
    /// Cancel what has not happened yet (the child ended).
    pub fn cancel(&self) {
        let _ = self.term.cancel();
        let _ = self.kill.cancel();
    }

    /// Whether the timeout ran out (SIGTERM was sent).
    pub fn timed_out(&self) -> bool {
        self.timed_out.get()
    }

    /// Whether the grace period ran out too (SIGKILL was sent).
    pub fn killed(&self) -> bool {
        self.killed.get()
    }
}

/// Send `process` SIGTERM after `timeout`, then SIGKILL and close its pipes `grace` later,
/// on `clock` (like `timeout -k GRACE TIMEOUT`). Closing the pipes lets `process_ended`
/// come once the child is reaped, even if a grandchild still holds them. Cancel the
/// returned timer when the child ends.
pub fn kill_after<C>(
    clock: &C,
    process: Rc<dyn ProcessTransport>,
    timeout: Duration,
    grace: Duration,
) -> KillTimer
where
    C: ReactorTime + ?Sized,
{
    let timed_out = Rc::new(Cell::new(false));
    let killed = Rc::new(Cell::new(false));
    let (t, p) = (timed_out.clone(), process.clone());
    let term = clock.call_later_boxed(
        timeout,
        Box::new(move || {
            t.set(true);
            log::debug!("child timed out after {timeout:?}: SIGTERM");
            let _ = p.signal_process(Signal::Term);
        }),
    );
    let (k, t) = (killed.clone(), timed_out.clone());
    let kill = clock.call_later_boxed(
        timeout.saturating_add(grace),
        Box::new(move || {
            t.set(true);
            // A child that ended already is only waiting for its pipes: no signal then.
            if process.pid().is_some() {
                log::debug!("child still running {grace:?} after SIGTERM: SIGKILL");
                k.set(true);
                let _ = process.signal_process(Signal::Kill);
            }
            process.lose_connection();
        }),
    );
    KillTimer {
        term,
        kill,
        timed_out,
        killed,
    }
}

/// What the caller wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Stdout,
    Everything,
    Value,
}

#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    over_limit: bool,
    transport: Option<Rc<dyn ProcessTransport>>,
    timer: Option<KillTimer>,
}

/// The process protocol behind the three functions.
struct Collector {
    shared: Rc<RefCell<Collected>>,
    input: Option<Vec<u8>>,
    want: Want,
    err_too: bool,
    limit: usize,
    timeout: Duration,
    result: Deferred<Output>,
}

impl Collector {
    fn keep(&mut self, fd: i32, data: &[u8]) {
        let mut c = self.shared.borrow_mut();
        if self.want == Want::Value || c.over_limit {
            return;
        }
        let room = self.limit.saturating_sub(c.stdout.len() + c.stderr.len());
        let take = data.len().min(room);
        let into_stdout = fd == 1 || (self.want == Want::Stdout && self.err_too);
        let buf = if into_stdout {
            &mut c.stdout
        } else {
            &mut c.stderr
        };
        buf.extend_from_slice(&data[..take]);
        if take < data.len() {
            c.over_limit = true;
            let transport = c.transport.clone();
            drop(c);
            log::debug!("child output over the {}-byte limit: SIGKILL", self.limit);
            if let Some(t) = transport {
                let _ = t.signal_process(Signal::Kill);
                t.lose_connection();
            }
        }
    }
}

impl ProcessProtocol for Collector {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        if let Some(input) = self.input.take() {
            transport.write(&input);
        }
        // Flushes what was written first (CONTRACT I3).
        let _ = transport.close_stdin();
        self.shared.borrow_mut().transport = Some(transport);
    }

    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        if fd == 1 || fd == 2 {
            self.keep(fd, data);
        }
    }

    fn process_ended(&mut self, reason: ExitReason) {
        let (output, over_limit, timer) = {
            let mut c = self.shared.borrow_mut();
            // Break the transport → protocol → shared → transport cycle.
            c.transport = None;
            let output = Output {
                stdout: std::mem::take(&mut c.stdout),
                stderr: std::mem::take(&mut c.stderr),
                reason,
            };
            (output, c.over_limit, c.timer.take())
        };
        let (timed_out, killed) = match &timer {
            Some(t) => {
                t.cancel();
                (t.timed_out(), t.killed())
            }
            None => (false, false),
        };
        let error = if over_limit {
            Some(ProcessOutputError::OutputLimitExceeded {
                limit: self.limit,
                output,
            })
        } else if timed_out {
            Some(ProcessOutputError::TimedOut {
                timeout: self.timeout,
                killed,
                output,
            })
        } else if self.want == Want::Stdout && !self.err_too && !output.stderr.is_empty() {
            Some(ProcessOutputError::UnexpectedStderr { output })
        } else {
            let _ = self.result.callback(output);
            None
        };
        if let Some(e) = error {
            let _ = self.result.errback(Failure::new(e));
        }
    }
}

fn collect<R>(reactor: &R, request: OutputRequest, want: Want) -> Deferred<Output>
where
    R: ReactorProcess + ReactorTime + ?Sized,
{
    let builder = &request.builder;
    let stdin_is_a_pipe =
        builder.get_pty().is_some() || builder.get_child_fds().get(&0) == Some(&ChildFd::Write);
    if request.input.is_some() && !stdin_is_a_pipe {
        let e = SpawnError::invalid(
            builder.get_program(),
            "input was given, but the child's fd 0 is not a pipe to write it to \
             (map it to ChildFd::Write, or give no input)",
        );
        return Deferred::fail(Failure::new(ProcessOutputError::Spawn(e)));
    }
    let shared: Rc<RefCell<Collected>> = Rc::default();
    let s = shared.clone();
    // Cancelling kills the child; its end then finds the Deferred already failed.
    let result = Deferred::with_canceller(move |_| {
        let transport = s.borrow().transport.clone();
        if let Some(t) = transport {
            let _ = t.signal_process(Signal::Kill);
            t.lose_connection();
        }
    });
    let collector = Collector {
        shared: shared.clone(),
        input: request.input,
        want,
        err_too: request.err_too,
        limit: request.max_output,
        timeout: request.timeout.unwrap_or_default(),
        result: result.clone(),
    };
    match reactor.spawn_process(&request.builder, Box::new(collector)) {
        Ok(transport) => {
            if let Some(timeout) = request.timeout {
                let timer = kill_after(reactor, transport, timeout, request.kill_grace);
                shared.borrow_mut().timer = Some(timer);
            }
        }
        Err(e) => {
            log::debug!("get_process_*: {e}");
            let _ = result.errback(Failure::new(ProcessOutputError::Spawn(e)));
        }
    }
    result
}

/// The child's stdout, once it has ended (Twisted's `getProcessOutput`). Its exit code
/// does not matter (as in Twisted); output on its stderr fails the result unless the
/// request says [`err_too`](OutputRequest::err_too).
///
/// # Errors (in the Deferred)
///
/// A [`ProcessOutputError`]: `Spawn`, `TimedOut`, `OutputLimitExceeded` or
/// `UnexpectedStderr`.
#[doc(alias = "getProcessOutput")]
pub fn get_process_output<R>(reactor: &R, request: impl Into<OutputRequest>) -> Deferred<Vec<u8>>
where
    R: ReactorProcess + ReactorTime + ?Sized,
{
    collect(reactor, request.into(), Want::Stdout).add_callback(|o| o.stdout)
}

/// The child's stdout, stderr and exit reason, once it has ended (Twisted's
/// `getProcessOutputAndValue`). **\[deliberate\]** A child killed by a signal is a value
/// here (the [`ExitReason`] says which signal), not a failure as in Twisted.
///
/// # Errors (in the Deferred)
///
/// A [`ProcessOutputError`]: `Spawn`, `TimedOut` or `OutputLimitExceeded`.
#[doc(alias = "getProcessOutputAndValue")]
pub fn get_process_output_and_value<R>(
    reactor: &R,
    request: impl Into<OutputRequest>,
) -> Deferred<(Vec<u8>, Vec<u8>, ExitReason)>
where
    R: ReactorProcess + ReactorTime + ?Sized,
{
    collect(reactor, request.into(), Want::Everything)
        .add_callback(|o| (o.stdout, o.stderr, o.reason))
}

/// Why the child ended, once it has (Twisted's `getProcessValue`, which gives the exit
/// code; [`ExitReason::shell_code`] gives that). Its output is read and dropped.
///
/// # Errors (in the Deferred)
///
/// A [`ProcessOutputError`]: `Spawn` or `TimedOut`.
#[doc(alias = "getProcessValue")]
pub fn get_process_value<R>(reactor: &R, request: impl Into<OutputRequest>) -> Deferred<ExitReason>
where
    R: ReactorProcess + ReactorTime + ?Sized,
{
    collect(reactor, request.into(), Want::Value).add_callback(|o| o.reason)
}
