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
//! to the job's process group (so its own children go too), and counts the job as failed. The exit code is the number of failed jobs (101 when
//! over 100); a program that cannot be run is a failed job with a message naming it.
//! Bad arguments are an error, exit code 2.

use std::cell::Cell;
use std::error::Error;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use torsion::prelude::*;
use torsion::reactor::Reactor;
use torsion_examples::parallel::{JobResult, command_for, run_job};

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
