//! Runs the `parallel` example as a user would: stdin lines in, ordered output and an exit
//! code out.
#![cfg(unix)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `parallel ARGS` with `input` on stdin; bounded in time (the child is killed).
fn parallel(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parallel"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn parallel");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!(
                "parallel did not finish in 30 s: {:?}",
                child.wait_with_output()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn output_is_in_input_order_even_when_later_jobs_finish_first() {
    let o = parallel(
        &[
            "-j",
            "4",
            "--",
            "sh",
            "-c",
            "sleep 0.$1; echo out $1; echo err $1 >&2",
            "sh",
            "{}",
        ],
        "3\n2\n1\n0\n",
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "out 3\nout 2\nout 1\nout 0\n");
    assert_eq!(stderr(&o), "err 3\nerr 2\nerr 1\nerr 0\n");
}

#[test]
fn braces_are_replaced_everywhere_or_the_line_is_appended() {
    let o = parallel(&["echo", "<{}>", "{}{}"], "a b\nc\n");
    assert_eq!(stdout(&o), "<a b> a ba b\n<c> cc\n");
    let o = parallel(&["--", "echo", "-n", "x"], "1\n2\n");
    assert_eq!(stdout(&o), "x 1x 2");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn the_exit_code_counts_failed_jobs_capped_at_101() {
    let o = parallel(&["sh", "-c", "exit $0"], "0\n1\n0\n7\n");
    assert_eq!(o.status.code(), Some(2));
    let many = "x\n".repeat(150);
    let o = parallel(&["-j", "8", "false"], &many);
    assert_eq!(o.status.code(), Some(101));
}

#[test]
fn a_timeout_kills_the_job_and_counts_it_failed() {
    let start = Instant::now();
    let o = parallel(
        &[
            "--timeout",
            "0.3",
            "--",
            "sh",
            "-c",
            "echo started; sleep $0",
            "{}",
        ],
        "10\n0\n",
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "the job was not killed in time"
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "started\nstarted\n");
    assert!(
        stderr(&o).contains("timed out after 0.3s"),
        "{}",
        stderr(&o)
    );
}

/// True while process `pid` exists and is not a zombie (a killed orphan waits for init,
/// or whichever reaper the system has, but is dead already).
fn alive(pid: &str) -> bool {
    let exists = Command::new("kill")
        .args(["-0", pid])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    });
    exists && !zombie
}

#[test]
fn a_timeout_kills_the_jobs_grandchildren_too() {
    // The job's shell starts a background sleep (a grandchild of parallel) and prints the
    // pids of both, then waits in a foreground sleep.
    let o = parallel(
        &[
            "--timeout",
            "0.3",
            "--",
            "sh",
            "-c",
            "sleep 100 & echo $! $$; sleep 100",
        ],
        "x\n",
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    let pids: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(pids.len(), 2, "{out:?}");
    // Once killed, orphans are reaped by init: allow it a moment, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(p)) {
        assert!(
            Instant::now() < deadline,
            "a process of the job survived the timeout: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_missing_program_is_a_failed_job_with_a_clear_message() {
    let o = parallel(&["/nonexistent/torsion-prog"], "a\nb\n");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("cannot run /nonexistent/torsion-prog"),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn at_most_n_jobs_run_at_once() {
    let dir = std::env::temp_dir().join(format!("torsion-parallel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "touch {d}/run.$0; ls {d} | grep -c run; sleep 0.3; rm {d}/run.$0",
        d = dir.display()
    );
    let o = parallel(
        &["-j", "3", "--", "sh", "-c", &script, "{}"],
        "1\n2\n3\n4\n5\n6\n7\n",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let counts: Vec<u32> = stdout(&o)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 7);
    assert!(counts.iter().all(|&c| (1..=3).contains(&c)), "{counts:?}");
    assert!(
        counts.iter().any(|&c| c >= 2),
        "jobs never overlapped: {counts:?}"
    );
}

#[test]
fn bad_arguments_are_an_error_with_exit_2() {
    for args in [
        &["-j", "0", "echo"][..],
        &["--timeout", "-1", "echo"],
        &["--timeout", "abc", "echo"],
        &[],
    ] {
        let o = parallel(args, "");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    }
}
