//! Processes as futures: output, status, spawn_async on pipes and on a PTY, backpressure.
#![cfg(unix)]

mod util;

use std::io;
use std::time::Duration;

use torsion_net::ProcessBuilderAsync;
use torsion_reactor::Reactor;
use torsion_transport::{ExitReason, ProcessBuilder, PtyOptions, Signal, SpawnError, SpawnStep};
use util::run;

#[test]
fn output_collects_stdout_stderr_and_the_exit() {
    let reactor = Reactor::new().unwrap();
    let b = ProcessBuilder::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]);
    let out = run(&reactor, b.output(&reactor)).unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status, ExitReason::exited(3));
}

#[test]
fn output_does_not_deadlock_on_big_stdout_and_stderr() {
    let reactor = Reactor::new().unwrap();
    // 4 MiB on each, interleaved: a reader of one pipe only would block the child.
    let b = ProcessBuilder::new("sh").args([
        "-c",
        "head -c 4194304 /dev/zero; head -c 4194304 /dev/zero >&2; head -c 1000 /dev/zero",
    ]);
    let out = run(&reactor, b.output(&reactor)).unwrap();
    assert_eq!(out.stdout.len(), 4194304 + 1000);
    assert_eq!(out.stderr.len(), 4194304);
    assert_eq!(out.status, ExitReason::ProcessDone);
}

#[test]
fn status_gives_the_exit_reason() {
    let reactor = Reactor::new().unwrap();
    let st = run(
        &reactor,
        ProcessBuilder::new("sh")
            .args(["-c", "exit 7"])
            .status(&reactor),
    );
    assert_eq!(st.unwrap(), ExitReason::exited(7));
    let st = run(&reactor, ProcessBuilder::new("true").status(&reactor));
    assert_eq!(st.unwrap(), ExitReason::ProcessDone);
}

#[test]
fn a_missing_program_is_not_found_with_the_spawn_error_inside() {
    let reactor = Reactor::new().unwrap();
    let err = run(
        &reactor,
        ProcessBuilder::new("/nonexistent/torsion-program").output(&reactor),
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    let spawn = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<SpawnError>())
        .unwrap();
    assert_eq!(spawn.step, SpawnStep::Exec);
    assert!(err.to_string().contains("torsion-program"), "{err}");
}

#[test]
fn spawn_async_streams_stdin_to_stdout_with_backpressure() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    const TOTAL: usize = 8 << 20;
    let (got, status) = run(&reactor, async move {
        let mut child = ProcessBuilder::new("cat").spawn_async(&r)?;
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let writer = r.spawn_local(async move {
            let chunk = vec![b'x'; 100_000];
            let mut sent = 0;
            while sent < TOTAL {
                let n = (TOTAL - sent).min(chunk.len());
                stdin.write_all(&chunk[..n]).await?;
                sent += n;
            }
            io::Result::Ok(())
            // stdin dropped: cat reads EOF.
        });
        let got = stdout.read_to_end().await?;
        writer.await.unwrap()?;
        let status = child.wait().await?;
        io::Result::Ok((got.len(), status))
    })
    .unwrap();
    assert_eq!(got, TOTAL);
    assert_eq!(status, ExitReason::ProcessDone);
}

#[test]
fn kill_and_wait() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    let status = run(&reactor, async move {
        let mut child = ProcessBuilder::new("sleep").arg("60").spawn_async(&r)?;
        assert!(child.id().is_some());
        child.signal(Signal::Term)?;
        let status = child.wait().await?;
        assert!(
            child.kill().is_err(),
            "signalling a reaped child is an error"
        );
        io::Result::Ok(status)
    })
    .unwrap();
    assert!(
        matches!(
            status,
            ExitReason::ProcessTerminated {
                signal: Some(Signal::Term),
                ..
            }
        ),
        "{status:?}"
    );
}

/// The process exists and is not a zombie (an orphan is reaped by init, or whichever
/// reaper the system has, and a zombie is dead already).
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    });
    exists && !zombie
}

#[test]
fn signal_group_needs_a_group_and_reaches_grandchildren() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    run(&reactor, async move {
        let mut plain = ProcessBuilder::new("sleep").arg("60").spawn_async(&r)?;
        let e = plain.signal_group(Signal::Term).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("process_group(0)"), "{e}");
        plain.kill()?;
        plain.wait().await?;

        // A shell in its own group starts a background sleep, says its pid, and waits.
        let mut child = ProcessBuilder::new("sh")
            .args(["-c", "sleep 60 & echo $!; wait"])
            .child_fd(1, torsion_transport::ChildFd::Read)
            .process_group(0)
            .spawn_async(&r)?;
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = vec![0; 64];
        let n = stdout.read(&mut buf).await?;
        let grandchild: i32 = String::from_utf8_lossy(&buf[..n]).trim().parse().unwrap();
        child.signal_group(Signal::Kill)?;
        child.wait().await?;
        // The grandchild is killed too; orphaned, it is reaped by init soon.
        while alive(grandchild) {
            r.sleep(Duration::from_millis(10)).await;
        }
        io::Result::Ok(())
    })
    .unwrap();
}

#[test]
fn spawn_async_on_a_pty() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    let seen = run(&reactor, async move {
        let mut child = ProcessBuilder::new("sh")
            .args(["-c", "read x; echo got:$x; test -t 0 && echo tty"])
            .pty(PtyOptions::default())
            .spawn_async(&r)?;
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = child.stdout.take().unwrap().lines();
        stdin.write_all(b"hello\n").await?;
        let mut seen = Vec::new();
        while let Some(l) = lines.next_line().await? {
            seen.push(l);
            if seen.iter().any(|l| l == "tty") {
                break;
            }
        }
        let status = child.wait().await?;
        assert_eq!(status, ExitReason::ProcessDone);
        io::Result::Ok(seen)
    })
    .unwrap();
    assert!(seen.contains(&"got:hello".to_owned()), "{seen:?}");
    assert!(seen.contains(&"tty".to_owned()), "{seen:?}");
}

#[test]
fn p6_a_child_whose_stdout_is_not_read_is_paused() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    const TOTAL: usize = 64 << 20;
    run(&reactor, async move {
        let mut child = ProcessBuilder::new("head")
            .args(["-c", &TOTAL.to_string(), "/dev/zero"])
            .spawn_async(&r)?;
        let mut stdout = child.stdout.take().unwrap();
        // Not read: once the buffer passes the mark the reactor stops reading the pipe and
        // the child blocks on its writes. Wait until the buffer stops growing.
        let mut last = usize::MAX;
        let mut still = 0;
        while still < 3 || last == 0 {
            r.sleep(Duration::from_millis(50)).await;
            let now = stdout.buffered();
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
        let held = stdout.buffered();
        assert!(
            held >= torsion_net::READ_HIGH_WATER,
            "{held} bytes buffered"
        );
        assert!(
            held <= torsion_net::READ_HIGH_WATER + (1 << 20),
            "{held} bytes buffered"
        );
        assert!(
            child.process().exit_reason().is_none(),
            "the child was not held back"
        );
        let all = stdout.read_to_end().await?;
        assert_eq!(all.len(), TOTAL);
        assert_eq!(child.wait().await?, ExitReason::ProcessDone);
        io::Result::Ok(())
    })
    .unwrap();
}
