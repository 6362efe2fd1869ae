//! run — run a program with its stdio relayed through the reactor, on pipes or a PTY.
//!
//! ```sh
//! cargo run -p torsion-examples --bin run -- [--timeout S] [--pty [--rows R] [--cols C]] -- PROGRAM [ARGS...]
//! echo hello | cargo run -p torsion-examples --bin run -- -- tr a-z A-Z
//! cargo run -p torsion-examples --bin run -- --pty -- sh     # script(1)-style
//! ```
//!
//! Our stdin goes to the child's stdin (its stdin is closed at our EOF), the child's stdout
//! to our stdout and its stderr to our stderr, with flow control both ways: a slow reader
//! of our stdout pauses reading the child, a child slow to read pauses reading our stdin.
//! SIGINT and SIGTERM are forwarded to the child. With `--timeout S` the child gets SIGTERM
//! after S seconds (SIGKILL two seconds later) and `run` exits 124, like timeout(1).
//! Otherwise `run` exits with the child's exit code, or 128 + the signal that killed it;
//! 127 if the program cannot be found, 126 if it cannot be run.
//!
//! With `--pty` the program runs on a pseudo-terminal (its stdout and stderr both arrive
//! as our stdout). When our stdin is a terminal it is put in raw mode, so keys go to the
//! program, and its window size is forwarded at start and on SIGWINCH; the terminal is
//! restored on every exit path. On SIGTERM a program still running after a second gets its
//! terminal hung up (SIGHUP). At our stdin's EOF, the terminal's EOF key (^D) is sent.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::pipes::{PipeOwner, ProcessWriter};
use torsion_process::{ProcessBuilderExt, StandardIo};
use torsion_reactor::Reactor;
use torsion_transport::{
    Consumer, ExitReason, HalfCloseableProtocol, ProcessBuilder, ProcessProtocol, ProcessTransport,
    Producer, Protocol, PushProducer, Reason, Signal,
};

mod args;
mod terminal;

use args::{USAGE, parse};

/// The child's side: stdout to our stdout, stderr to our stderr, stop when it ended.
struct Child {
    reactor: Reactor,
    stdout: Rc<RefCell<Option<Rc<StandardIo>>>>,
    stderr: Rc<ProcessWriter>,
    code: Rc<Cell<Option<ExitReason>>>,
}

impl ProcessProtocol for Child {
    fn child_data_received(&mut self, fd: i32, data: &[u8]) {
        match fd {
            1 => {
                if let Some(out) = self.stdout.borrow().as_ref() {
                    out.write(data);
                }
            }
            _ => self.stderr.file_descriptor().write(data),
        }
    }

    fn process_ended(&mut self, reason: ExitReason) {
        self.code.set(Some(reason));
        // Shutdown flushes what our stdout and stderr still hold (CONTRACT B5).
        let _ = self.reactor.stop();
    }
}

/// Our stdin's side: everything to the child's stdin; EOF closes it.
struct StdinRelay(Rc<dyn ProcessTransport>);

impl Protocol for StdinRelay {
    fn data_received(&mut self, data: &[u8]) {
        self.0.write(data);
    }
    fn as_half_closeable(&mut self) -> Option<&mut dyn HalfCloseableProtocol> {
        Some(self)
    }
}

impl HalfCloseableProtocol for StdinRelay {
    fn read_connection_lost(&mut self) {
        let _ = self.0.close_stdin();
    }
}

/// Our stdin as the producer feeding the child's stdin. When the child's stdin closes,
/// `stop_producing` only stops reading our stdin: our stdout stays open for its output.
struct StdinProducer(Rc<StandardIo>);

impl PushProducer for StdinProducer {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }
    fn resume_producing(&self) {
        self.0.resume_producing();
    }
    fn stop_producing(&self) {
        self.0.pause_producing();
    }
}

/// Our stderr needs no callbacks.
struct Quiet;

impl PipeOwner for Quiet {
    fn child_data_received(&self, _: i32, _: &[u8]) {}
    fn child_connection_lost(&self, _: i32, _: Reason) {}
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (timeout, pty, argv) = match parse(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("run: {e}\n{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    let reactor = Reactor::new()?;
    reactor.set_install_signal_handlers(false);
    let stderr_fd = std::io::stderr().as_fd().try_clone_to_owned()?;
    torsion_process::raw::set_nonblocking(stderr_fd.as_fd(), true)?;
    let stderr = ProcessWriter::register(&reactor, stderr_fd, 2, Rc::new(Quiet))?;
    let stdout = Rc::new(RefCell::new(None));
    let code = Rc::new(Cell::new(None));
    let child = Child {
        reactor: reactor.clone(),
        stdout: stdout.clone(),
        stderr,
        code: code.clone(),
    };
    let builder = ProcessBuilder::new(&argv[0]).argv(&argv);
    let spawned = match pty {
        Some(size) => terminal::spawn(&reactor, builder, size, Box::new(child))
            .map(|p| (p.clone() as Rc<dyn ProcessTransport>, Some(p))),
        None => builder
            .spawn(&reactor, Box::new(child))
            .map(|p| (p as _, None)),
    };
    let (process, on_pty) = match spawned {
        Ok(p) => p,
        Err(e) => {
            eprintln!("run: {e}");
            let missing = e
                .source
                .as_ref()
                .is_some_and(|s| s.kind() == ErrorKind::NotFound);
            return Ok(ExitCode::from(if missing { 127 } else { 126 }));
        }
    };
    let mut raw_mode = match &on_pty {
        Some(p) => terminal::attach(&reactor, p)?,
        None => None,
    };
    let stdio = StandardIo::stdio(&reactor, Box::new(StdinRelay(process.clone())))?;
    *stdout.borrow_mut() = Some(stdio.clone());
    // Flow control both ways.
    stdio.register_producer(Producer::Push(process.clone()))?;
    process.register_producer(Producer::Push(Rc::new(StdinProducer(stdio.clone()))))?;

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
    let timed_out = Rc::new(Cell::new(false));
    if let Some(secs) = timeout {
        let (p, t, r) = (process.clone(), timed_out.clone(), reactor.clone());
        reactor.call_later(Duration::from_secs_f64(secs), move || {
            t.set(true);
            let _ = p.signal_process(Signal::Term);
            r.call_later(Duration::from_secs(2), move || {
                let _ = p.signal_process(Signal::Kill);
            });
        });
    }
    reactor.run()?;
    if let Some(guard) = raw_mode.as_mut() {
        guard.restore()?;
    }
    let _ = torsion_process::raw::set_nonblocking(std::io::stderr().as_fd(), false);
    let status = match code.get() {
        _ if timed_out.get() => 124,
        Some(reason) => reason.shell_code(),
        None => 1,
    };
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(255)))
}
