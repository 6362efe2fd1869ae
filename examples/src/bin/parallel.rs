//! parallel: run a command once per input line, N at a time, output in input order
//! (GNU `parallel -k`), written with async/await over torsion's process API.
//!
//! Run it:
//!
//! ```text
//! printf 'a\nb\nc\n' | cargo run -p torsion-examples --bin parallel -- -j 2 -- echo item {}
//! ls *.txt | cargo run -p torsion-examples --bin parallel -- --timeout 0.5 -- gzip -k
//! ```
//!
//! Every `{}` in ARGS is replaced by the line (stdin is read whole first); with no `{}`,
//! the line is appended. At most `-j N` jobs run at once (default: the number of CPUs).
//! Each job's stdout and stderr are printed in input order, as soon as the jobs before it
//! are done. `--timeout SECS` (fractions allowed) sends TERM, then KILL a second later,
//! and counts the job as failed. The exit code is the number of failed jobs (101 when
//! over 100); a program that cannot be run is a failed job with a message naming it.
//! Bad arguments are an error, exit code 2.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use torsion::net::{Child, ProcessBuilderAsync};
use torsion::prelude::*;
use torsion::reactor::Reactor;

/// Run COMMAND once per line of stdin, at most N at a time, output in input order.
#[derive(Parser)]
#[command(name = "parallel")]
struct Args {
    /// Jobs at once (default: the number of CPUs).
    #[arg(short = 'j', long = "jobs", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Kill a job after SECS seconds (TERM, then KILL); fractions allowed.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// The command and its arguments; `{}` is replaced by the input line.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<OsString>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("the timeout must be a positive number of seconds, not {s}"))
}

/// What one job printed, and whether it failed.
struct JobResult {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    failed: bool,
}

fn command_for(template: &[OsString], line: &str) -> ProcessBuilder {
    let has_slot = template[1..]
        .iter()
        .any(|a| a.to_string_lossy().contains("{}"));
    let mut args: Vec<OsString> = template[1..]
        .iter()
        .map(|a| match a.to_str() {
            Some(s) if s.contains("{}") => s.replace("{}", line).into(),
            _ => a.clone(),
        })
        .collect();
    if !has_slot {
        args.push(line.into());
    }
    ProcessBuilder::new(&template[0])
        .args(args)
        .child_fd(0, ChildFd::Null)
        .child_fd(1, ChildFd::Read)
        .child_fd(2, ChildFd::Read)
}

async fn run_job(reactor: &Reactor, builder: ProcessBuilder, limit: Option<Duration>) -> JobResult {
    let program = builder.get_program().to_string_lossy().into_owned();
    let mut child: Child = match builder.spawn_async(reactor) {
        Ok(c) => c,
        Err(e) => {
            let stderr = format!("parallel: cannot run {program}: {e}\n").into_bytes();
            return JobResult {
                stdout: Vec::new(),
                stderr,
                failed: true,
            };
        }
    };
    // Both pipes are read at once, while we wait: a chatty child never blocks on them.
    // What they read is kept even if a killed job's grandchild holds a pipe open.
    let (out, err) = (
        Rc::new(RefCell::new(Vec::new())),
        Rc::new(RefCell::new(Vec::new())),
    );
    let readers = [
        (child.stdout.take(), out.clone()),
        (child.stderr.take(), err.clone()),
    ]
    .map(|(pipe, into)| {
        reactor.spawn_local(async move {
            let (Some(mut pipe), mut buf) = (pipe, vec![0; 16 * 1024]) else {
                return;
            };
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                into.borrow_mut().extend_from_slice(&buf[..n]);
            }
        })
    });
    let mut timed_out = false;
    let status = match limit {
        None => child.wait().await,
        Some(limit) => match reactor.timeout(limit, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                timed_out = true;
                let _ = child.signal(Signal::Term);
                match reactor.timeout(Duration::from_secs(1), child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        let _ = child.kill();
                        child.wait().await
                    }
                }
            }
        },
    };
    // The output to its end; after a kill, only for a moment (a grandchild may hold it).
    let grace = if timed_out {
        Duration::from_millis(500)
    } else {
        Duration::MAX
    };
    for reader in readers {
        let abort = reader.abort_handle();
        if reactor.timeout(grace, reader).await.is_err() {
            abort.abort();
        }
    }
    let (stdout, mut stderr) = (out.take(), err.take());
    if timed_out {
        let secs = limit.map_or(0.0, |d| d.as_secs_f64());
        stderr.extend(format!("parallel: {program} timed out after {secs}s; killed\n").bytes());
    }
    let failed = timed_out || !matches!(status, Ok(ExitReason::ProcessDone));
    JobResult {
        stdout,
        stderr,
        failed,
    }
}

fn main() -> Result<ExitCode, Box<dyn Error>> {
    let args = Args::parse();
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |j| j as usize,
    );
    let mut input = String::new();
    io::stdin().read_to_string(&mut input)?;
    let lines: Vec<String> = input.lines().map(str::to_owned).collect();

    let reactor = Reactor::new()?;
    let results: Rc<Vec<Deferred<JobResult>>> =
        Rc::new(lines.iter().map(|_| Deferred::new()).collect());
    let next = Rc::new(Cell::new(0));
    let lines = Rc::new(lines);
    for _ in 0..jobs.min(lines.len()) {
        let (r, results, next, lines) = (
            reactor.clone(),
            results.clone(),
            next.clone(),
            lines.clone(),
        );
        let (template, limit) = (args.command.clone(), args.timeout);
        drop(reactor.spawn_local(async move {
            loop {
                let i = next.get();
                if i >= lines.len() {
                    break;
                }
                next.set(i + 1);
                let result = run_job(&r, command_for(&template, &lines[i]), limit).await;
                let _ = results[i].callback(result);
            }
        }));
    }
    let failed = reactor.block_on(async move {
        let mut failed = 0u32;
        for d in results.iter() {
            let r = d
                .clone()
                .await
                .map_err(|f| io::Error::other(f.to_string()))?;
            io::stdout().write_all(&r.stdout)?;
            io::stdout().flush()?;
            io::stderr().write_all(&r.stderr)?;
            failed += u32::from(r.failed);
        }
        io::Result::Ok(failed)
    })??;
    Ok(ExitCode::from(failed.min(101) as u8))
}
