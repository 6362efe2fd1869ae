//! Spawning on a PTY: typed spawn errors (CONTRACT G7, G8) and every spawn path taking
//! pipes or a PTY as the builder says (G9).

// Unix only: pseudo-terminals are POSIX (torsion-pty is empty elsewhere).
#![cfg(unix)]

mod util;

use std::ffi::OsString;

use torsion_process::{ProcessBuilderExt, ReactorProcess, ReapMode};
use torsion_transport::{ChildFd, ExitReason, ProcessBuilder, PtyOptions, SpawnError, SpawnStep};
use util::{Recorder, reactor, run_until_ended};

fn spawn_err(b: &ProcessBuilder) -> SpawnError {
    let r = reactor(ReapMode::Auto);
    let (p, s) = Recorder::new();
    match b.spawn(&r, p) {
        Ok(_) => panic!("spawn of {b:?} succeeded"),
        Err(e) => {
            assert!(s.borrow().events.is_empty(), "no callback on failure");
            e
        }
    }
}

#[test]
fn g8_spawn_errors_are_typed() {
    let pty = PtyOptions::default;
    let e = spawn_err(&ProcessBuilder::new("/nonexistent/program").pty(pty()));
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Exec, Some(libc::ENOENT)),
        "{e}"
    );
    assert!(e.to_string().contains("/nonexistent/program"), "{e}");

    let e = spawn_err(&ProcessBuilder::new("torsion-no-such-program").pty(pty()));
    assert_eq!(e.step, SpawnStep::Lookup, "{e}");

    let e = spawn_err(
        &ProcessBuilder::new("true")
            .cwd("/nonexistent/dir")
            .pty(pty()),
    );
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Chdir, Some(libc::ENOENT)),
        "{e}"
    );

    let e = spawn_err(
        &ProcessBuilder::new("true")
            .child_fd(0, ChildFd::Read)
            .pty(pty()),
    );
    assert_eq!(e.step, SpawnStep::InvalidInput, "G7: {e}");

    let e = spawn_err(&ProcessBuilder::new("true").pty(PtyOptions::size(0, 80)));
    assert_eq!(e.step, SpawnStep::InvalidInput, "{e}");

    let e = spawn_err(&ProcessBuilder::new("true").arg("a\0b").pty(pty()));
    assert_eq!(e.step, SpawnStep::InvalidInput, "{e}");

    // A caller's pair that is not open: EBADF at setup, nothing spawned.
    let mut options = pty();
    options.pair = Some((99_999, 99_998));
    let e = spawn_err(&ProcessBuilder::new("true").pty(options));
    assert_eq!(
        (e.step, e.errno()),
        (SpawnStep::Setup, Some(libc::EBADF)),
        "{e}"
    );
}

#[test]
fn g9_every_spawn_path_takes_pipes_or_a_pty_as_the_builder_says() {
    let r = reactor(ReapMode::Auto);
    // No install step: a fresh reactor spawns on a PTY through every entry point.
    let (p, s) = Recorder::new();
    ProcessBuilder::new("sh")
        .args(["-c", "test -t 1 && echo TTY"])
        .pty(PtyOptions::default())
        .spawn(&r, p)
        .unwrap();
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "TTY\r\n", "builder.spawn on a PTY");

    let (p, s) = Recorder::new();
    let args: Vec<OsString> = ["sh", "-c", "test -t 1 && echo TTY"]
        .iter()
        .map(OsString::from)
        .collect();
    torsion_process::spawn_process(&r, p, "sh", &args, None, None, None, None, true, None).unwrap();
    run_until_ended(&r, &s);
    assert_eq!(
        s.borrow().text(),
        "TTY\r\n",
        "use_pty = true runs on a terminal"
    );

    let (p, s) = Recorder::new();
    r.spawn_process(&ProcessBuilder::new("echo").arg("pipe"), p)
        .unwrap();
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "pipe\n", "pipes: no line discipline");
    assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
}
