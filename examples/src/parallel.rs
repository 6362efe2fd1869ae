//! `parallel`'s jobs (see `src/bin/parallel.rs`): building a job's command from the input
//! line and running it to its end with async/await over the process API.

use std::cell::RefCell;
use std::ffi::OsString;
use std::rc::Rc;
use std::time::Duration;

use torsion::net::{Child, ProcessBuilderAsync};
use torsion::prelude::*;
use torsion::reactor::Reactor;

/// What one job printed, and whether it failed.
#[derive(Debug)]
pub struct JobResult {
    /// Everything the job wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr, and our message if it timed out or could not run.
    pub stderr: Vec<u8>,
    /// Timed out, could not run, or did not exit with status 0.
    pub failed: bool,
}

/// The job for `line`: `template[0]` with `template[1..]` as arguments, every `{}` replaced
/// by the line, or the line appended when there is no `{}`. Stdin is `/dev/null`; stdout
/// and stderr are read.
pub fn command_for(template: &[OsString], line: &str) -> ProcessBuilder {
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

/// Run one job to its end and collect its output. With a `limit`, the job runs in a process
/// group of its own, and when the limit passes the whole group gets TERM, then (a second
/// later, or at once when the job has exited) KILL: grandchildren the job started do not
/// outlive it.
pub async fn run_job(
    reactor: &Reactor,
    builder: ProcessBuilder,
    limit: Option<Duration>,
) -> JobResult {
    // Its own group only with a limit: a job in our group still gets the terminal's ^C.
    let builder = if limit.is_some() {
        builder.process_group(0)
    } else {
        builder
    };
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
                let _ = child.signal_group(Signal::Term);
                let status = match reactor.timeout(Duration::from_secs(1), child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        let _ = child.signal_group(Signal::Kill);
                        child.wait().await
                    }
                };
                // What is left of the group (a grandchild that ignored TERM).
                let _ = child.signal_group(Signal::Kill);
                status
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
