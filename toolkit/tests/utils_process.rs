//! `get_process_output` and friends with real children on the real reactor, each bounded
//! in time (the reactor runs until the result or a deadline).
#![cfg(unix)]

mod util;

use std::time::{Duration, Instant};

use torsion_reactor::Reactor;
use torsion_toolkit::utils::{
    OutputRequest, ProcessOutputError, get_process_output, get_process_output_and_value,
    get_process_value,
};
use torsion_transport::defer::Failure;
use torsion_transport::{ExitReason, ProcessBuilder, Signal, SpawnStep};
use util::wait;

const DEADLINE: Duration = Duration::from_secs(30);

fn sh(script: &str) -> ProcessBuilder {
    ProcessBuilder::new("sh").args(["-c", script])
}

fn output_error<T: std::fmt::Debug>(r: Result<T, Failure>) -> (String, Failure) {
    let f = r.expect_err("a failure");
    let e = f
        .downcast_ref::<ProcessOutputError>()
        .unwrap_or_else(|| panic!("not a ProcessOutputError: {f:?}"));
    (format!("{e:?}"), f)
}

#[test]
fn p8_ten_mib_on_both_streams_at_once_with_ten_mib_of_input_does_not_deadlock() {
    // The child writes 10 MiB to stdout and 10 MiB to stderr while we write it 10 MiB:
    // every pipe fills many times over, so a collector that did one thing at a time
    // would block forever.
    let reactor = Reactor::new().unwrap();
    const MIB10: usize = 10 << 20;
    let input: Vec<u8> = (0..MIB10).map(|i| (i % 253) as u8).collect();
    let script = "head -c 10485760 /dev/zero >&2 & head -c 10485760 /dev/zero; \
                  wc -c >&2; wait";
    let request = OutputRequest::new(sh(script)).input(input);
    let (out, err, reason) = wait(
        &reactor,
        get_process_output_and_value(&reactor, request),
        DEADLINE,
    )
    .unwrap();
    assert_eq!(reason, ExitReason::ProcessDone);
    assert_eq!(out.len(), MIB10);
    assert!(out.iter().all(|&b| b == 0));
    // stderr: 10 MiB of zeros and `wc -c`'s count of our input, in some order.
    let zeros = err.iter().filter(|&&b| b == 0).count();
    assert_eq!(zeros, MIB10);
    let text: String = err
        .iter()
        .filter(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    assert_eq!(
        text.trim(),
        MIB10.to_string(),
        "the child read all our input"
    );
}

#[test]
fn p8_stdin_input_reaches_the_child_and_stdout_comes_back() {
    let reactor = Reactor::new().unwrap();
    let request = OutputRequest::new(ProcessBuilder::new("tr").args(["a-z", "A-Z"]))
        .input(b"hello, torsion\n".to_vec());
    let out = wait(&reactor, get_process_output(&reactor, request), DEADLINE).unwrap();
    assert_eq!(out, b"HELLO, TORSION\n");
}

#[test]
fn p8_without_input_the_child_sees_eof_instead_of_hanging() {
    let reactor = Reactor::new().unwrap();
    let out = wait(
        &reactor,
        get_process_output(&reactor, ProcessBuilder::new("cat")),
        DEADLINE,
    )
    .unwrap();
    assert!(out.is_empty());
}

#[test]
fn p8_stderr_fails_get_process_output_and_err_too_collects_it() {
    let reactor = Reactor::new().unwrap();
    let r = wait(
        &reactor,
        get_process_output(&reactor, sh("echo out; echo oops >&2")),
        DEADLINE,
    );
    let (debug, f) = output_error(r);
    assert!(debug.starts_with("UnexpectedStderr"), "{debug}");
    assert!(f.to_string().contains("oops"), "{f}");
    let request = OutputRequest::new(sh("echo out; echo oops >&2")).err_too(true);
    let out = wait(&reactor, get_process_output(&reactor, request), DEADLINE).unwrap();
    assert_eq!(out, b"out\noops\n");
}

#[test]
fn p8_value_is_the_exit_reason() {
    let reactor = Reactor::new().unwrap();
    let r = wait(
        &reactor,
        get_process_value(&reactor, sh("echo x; exit 7")),
        DEADLINE,
    )
    .unwrap();
    assert_eq!(r.shell_code(), 7);
}

#[test]
fn p8_timeout_kills_a_child_that_ignores_term() {
    let reactor = Reactor::new().unwrap();
    // SIG_IGN survives exec: `sleep` is the child itself and ignores SIGTERM.
    let request = OutputRequest::new(sh("trap '' TERM; echo started; exec sleep 30"))
        .timeout(Duration::from_millis(300))
        .kill_grace(Duration::from_millis(300));
    let started = Instant::now();
    let r = wait(&reactor, get_process_output(&reactor, request), DEADLINE);
    let took = started.elapsed();
    let (debug, f) = output_error(r);
    let Some(ProcessOutputError::TimedOut { killed, output, .. }) = f.downcast_ref() else {
        panic!("{debug}");
    };
    assert!(*killed, "SIGTERM was ignored, so SIGKILL was needed");
    assert_eq!(output.reason, ExitReason::killed(Signal::Kill, false));
    assert_eq!(output.stdout, b"started\n");
    assert!(f.to_string().contains("timed out"), "{f}");
    assert!(
        took < Duration::from_secs(10),
        "not the 30 s sleep: {took:?}"
    );
}

#[test]
fn p8_timeout_ends_a_child_that_honours_term_without_kill() {
    let reactor = Reactor::new().unwrap();
    let request = OutputRequest::new(ProcessBuilder::new("sleep").arg("30"))
        .timeout(Duration::from_millis(200));
    let (debug, f) = output_error(wait(
        &reactor,
        get_process_value(&reactor, request),
        DEADLINE,
    ));
    let Some(ProcessOutputError::TimedOut { killed, output, .. }) = f.downcast_ref() else {
        panic!("{debug}");
    };
    assert!(!killed);
    assert_eq!(output.reason, ExitReason::killed(Signal::Term, false));
}

#[test]
fn p8_output_over_the_limit_is_a_typed_error_and_the_child_is_killed() {
    let reactor = Reactor::new().unwrap();
    // `yes` writes forever: only the limit ends it.
    let request = OutputRequest::new(ProcessBuilder::new("yes")).max_output(1 << 20);
    let (debug, f) = output_error(wait(
        &reactor,
        get_process_output(&reactor, request),
        DEADLINE,
    ));
    let Some(ProcessOutputError::OutputLimitExceeded { limit, output }) = f.downcast_ref() else {
        panic!("{debug}");
    };
    assert_eq!(*limit, 1 << 20);
    assert_eq!(output.stdout.len(), 1 << 20, "exactly the limit is kept");
    assert!(output.stdout.starts_with(b"y\ny\n"));
    assert_eq!(output.reason, ExitReason::killed(Signal::Kill, false));
}

#[test]
fn p8_a_missing_program_fails_with_its_spawn_error() {
    let reactor = Reactor::new().unwrap();
    let builder = ProcessBuilder::new("/nonexistent/torsion-no-such-program");
    let (debug, f) = output_error(wait(
        &reactor,
        get_process_output(&reactor, builder),
        DEADLINE,
    ));
    let Some(ProcessOutputError::Spawn(e)) = f.downcast_ref() else {
        panic!("{debug}");
    };
    assert_ne!(e.step, SpawnStep::InvalidInput);
    assert_eq!(
        e.source.as_ref().map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound)
    );
    assert!(f.to_string().contains("torsion-no-such-program"), "{f}");
}
