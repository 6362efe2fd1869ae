//! run — run a program with its stdio relayed through the reactor, on pipes or a PTY.
//!
//! ```sh
//! cargo run -p torsion-examples --bin run -- --help
//! echo hello | cargo run -p torsion-examples --bin run -- tr a-z A-Z
//! cargo run -p torsion-examples --bin run -- --timeout 2 -- sleep 10; echo $?   # 124
//! cargo run -p torsion-examples --bin run -- --pty sh     # script(1)-style
//! ```
//!
//! Our stdin goes to the child's stdin (its stdin is closed at our EOF), the child's stdout
//! to our stdout and its stderr to our stderr, with flow control both ways: a slow reader
//! of our stdout pauses reading the child, a child slow to read pauses reading our stdin.
//! Our stdin, stdout and stderr are shared with whoever started us, so their open file
//! descriptions are never made non-blocking (`StandardIo` reopens them).
//! SIGINT and SIGTERM are forwarded to the child. With `--timeout S` the child gets SIGTERM
//! after S seconds (SIGKILL two seconds later) and `run` exits 124, like timeout(1).
//! Otherwise `run` exits with the child's exit code, or 128 + the signal that killed it;
//! 127 if the program cannot be found, 126 if it cannot be run, 2 for bad usage, 1 for
//! any other error (printed as `error: ...`).
//!
//! With `--pty` the program runs on a pseudo-terminal (its stdout and stderr both arrive
//! as our stdout). When our stdin is a terminal it is put in raw mode, so keys go to the
//! program, and its window size is forwarded at start and on SIGWINCH (a terminal that
//! reports 0 rows or columns counts as 24×80); the terminal is restored on every exit
//! path. On SIGTERM a program still running after a second gets its terminal hung up
//! (SIGHUP). At our stdin's EOF, the terminal's EOF key (^D) is sent.

use std::cell::Cell;
use std::error::Error;
use std::io::ErrorKind;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use torsion::utils::{DEFAULT_KILL_GRACE, KillTimer, kill_after};
use torsion_process::{Process, ProcessBuilderExt, StandardIo, StdoutWriter};
use torsion_reactor::Reactor;
use torsion_transport::{
    Consumer, ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport, Producer, Protocol,
    Reason, Signal, SpawnError,
};

mod args;
mod terminal;

/// The child's side: stdout to our stdout, stderr to our stderr, stop when it ended.
struct Child {
    reactor: Reactor,
    stdout: Rc<StdoutWriter>,
    stderr: Rc<StdoutWriter>,
    code: Rc<Cell<Option<ExitReason>>>,
}

impl ProcessProtocol for Child {
    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        match fd {
            1 => self.stdout.write(data),
            _ => self.stderr.write(data),
        }
    }

    fn process_ended(&mut self, reason: ExitReason) {
        self.code.set(Some(reason));
        // Shutdown flushes what our stdout and stderr still hold (CONTRACT B5).
        let _ = self.reactor.stop();
    }
}

/// Our stdin's side: everything to the child's stdin; our EOF closes it.
struct StdinRelay(Rc<dyn ProcessTransport>);

impl Protocol for StdinRelay {
    fn data_received(&mut self, data: &[u8]) {
        self.0.write(data);
    }
    fn connection_lost(&mut self, _reason: Reason) {
        let _ = self.0.close_stdin();
    }
}

/// The child, as a process transport and (on a PTY) as the terminal to resize.
type Spawned = (Rc<dyn ProcessTransport>, Option<Rc<Process>>);

/// The one spawn call: on a PTY if `builder.pty(..)` was set, else on pipes. (With the
/// unified spawn API this becomes `builder.spawn(&reactor, protocol)`.)
fn spawn(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<Spawned, SpawnError> {
    let p = builder.spawn(reactor, protocol)?;
    let pty = p.is_pty().then(|| p.clone());
    Ok((p, pty))
}

fn main() -> ExitCode {
    let args = args::Args::parse(); // prints usage and exits 2 on bad usage
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: args::Args) -> Result<ExitCode, Box<dyn Error>> {
    let reactor = Reactor::new()?;
    reactor.set_install_signal_handlers(false);
    let stdout = StandardIo::stdout(&reactor)?;
    let code = Rc::new(Cell::new(None));
    let child = Child {
        reactor: reactor.clone(),
        stdout: stdout.clone(),
        stderr: StandardIo::stderr(&reactor)?,
        code: code.clone(),
    };
    let argv = &args.command;
    let mut builder = ProcessBuilder::new(&argv[0]).argv(argv);
    if let Some(size) = args.pty_size() {
        builder = terminal::on_pty(builder, size);
    }
    let (process, on_pty) = match spawn(&reactor, &builder, Box::new(child)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            let missing = e
                .source
                .as_ref()
                .is_some_and(|s| s.kind() == ErrorKind::NotFound);
            return Ok(ExitCode::from(if missing { 127 } else { 126 }));
        }
    };
    // Dropped on every way out of this function, panics included: the terminal is restored.
    let mut raw_mode = match &on_pty {
        Some(p) => terminal::attach(&reactor, p)?,
        None => None,
    };
    let stdin = StandardIo::stdin(&reactor, Box::new(StdinRelay(process.clone())))?;
    // Flow control both ways.
    stdout.register_producer(Producer::Push(process.clone()))?;
    process.register_producer(Producer::Push(stdin))?;

    for sig in [Signal::Int, Signal::Term] {
        if let (Signal::Term, Some(p)) = (sig, &on_pty) {
            terminal::on_sigterm(&reactor, p)?;
            continue;
        }
        let p = process.clone();
        reactor.on_signal(sig, move || {
            let _ = p.signal_process(sig);
        })?;
    }
    // --timeout: SIGTERM, SIGKILL two seconds later (the toolkit's escalation, as
    // `timeout -k 2 S`).
    let killer = args.timeout.map(|secs| {
        let after = Duration::from_secs_f64(secs);
        kill_after(&reactor, process.clone(), after, DEFAULT_KILL_GRACE)
    });
    reactor.run()?;
    if let Some(guard) = raw_mode.as_mut() {
        guard.restore()?;
    }
    let timed_out = killer.as_ref().is_some_and(KillTimer::timed_out);
    if let Some(k) = &killer {
        k.cancel();
    }
    let status = match code.get() {
        _ if timed_out => 124,
        Some(reason) => reason.shell_code(),
        None => 1,
    };
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(255)))
}
