//! `get_process_output` and friends on the test kit's `MemoryReactor`: the child is a
//! `FakeProcessTransport` the test scripts, time is its `Clock`.

mod util;

use std::rc::Rc;
use std::time::Duration;

use torsion_testing::{FakeProcessTransport, MemoryReactor};
use torsion_toolkit::utils::{
    OutputRequest, ProcessOutputError, get_process_output, get_process_output_and_value,
    get_process_value,
};
use torsion_transport::defer::Failure;
use torsion_transport::{ExitReason, ProcessBuilder, ReactorTime, Signal, SpawnError, SpawnStep};
use util::{Seen, settle, watch};

fn child(reactor: &MemoryReactor) -> Rc<FakeProcessTransport> {
    reactor.spawns().last().expect("a spawn").transport.clone()
}

/// The child closes its pipes and exits with `reason`.
fn end(child: &FakeProcessTransport, reason: ExitReason) {
    child.close_all_child_fds();
    child.end_with(reason);
}

fn error<T: std::fmt::Debug>(seen: &Seen<T>) -> String {
    match &*seen.borrow() {
        Some(Err(f)) => {
            let e = f
                .downcast_ref::<ProcessOutputError>()
                .unwrap_or_else(|| panic!("not a ProcessOutputError: {f:?}"));
            format!("{e:?}")
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn p8_stdout_is_the_result_and_the_exit_code_does_not_matter() {
    let reactor = MemoryReactor::new();
    let builder = ProcessBuilder::new("ls").arg("-l");
    let out = watch(get_process_output(&reactor, &builder));
    assert_eq!(reactor.spawns()[0].builder, builder, "spawned as built");
    let c = child(&reactor);
    assert_eq!(c.closed_fds(), [0], "no input: stdin is closed at once");
    c.child_output(1, b"total 0\n");
    c.child_output(1, b"x\n");
    end(&c, ExitReason::exited(3));
    settle(&reactor);
    assert_eq!(seen_ok(&out), b"total 0\nx\n");
}

fn seen_ok<T: Clone + std::fmt::Debug>(seen: &Seen<T>) -> T {
    match &*seen.borrow() {
        Some(Ok(v)) => v.clone(),
        other => panic!("expected a value, got {other:?}"),
    }
}

#[test]
fn p8_input_is_written_then_stdin_closed() {
    let reactor = MemoryReactor::new();
    let request = OutputRequest::new(ProcessBuilder::new("cat")).input(b"hello".to_vec());
    let out = watch(get_process_output(&reactor, request));
    let c = child(&reactor);
    assert_eq!(c.stdin(), b"hello");
    assert_eq!(c.closed_fds(), [0]);
    c.child_output(1, b"hello");
    end(&c, ExitReason::ProcessDone);
    settle(&reactor);
    assert_eq!(seen_ok(&out), b"hello");
}

#[test]
fn p8_stderr_fails_get_process_output_with_all_of_it_unless_err_too() {
    let reactor = MemoryReactor::new();
    let out = watch(get_process_output(&reactor, ProcessBuilder::new("p")));
    let c = child(&reactor);
    c.child_output(1, b"out1 ");
    c.child_output(2, b"warn1 ");
    c.child_output(2, b"warn2");
    end(&c, ExitReason::ProcessDone);
    settle(&reactor);
    let failure = out.borrow_mut().take().unwrap().unwrap_err();
    let Some(ProcessOutputError::UnexpectedStderr { output }) = failure.downcast_ref() else {
        panic!("{failure:?}");
    };
    assert_eq!(
        output.stderr, b"warn1 warn2",
        "all of stderr, not just the first chunk"
    );
    assert_eq!(output.stdout, b"out1 ");
    let msg = failure.to_string();
    assert!(
        msg.contains("wrote to stderr") && msg.contains("err_too"),
        "{msg}"
    );

    let out = watch(get_process_output(
        &reactor,
        OutputRequest::new(ProcessBuilder::new("p")).err_too(true),
    ));
    let c = child(&reactor);
    c.child_output(1, b"a");
    c.child_output(2, b"b");
    c.child_output(1, b"c");
    end(&c, ExitReason::ProcessDone);
    settle(&reactor);
    assert_eq!(seen_ok(&out), b"abc", "stderr mixed in, in arrival order");
}

#[test]
fn p8_output_and_value_keeps_the_streams_apart_and_a_signal_is_a_value() {
    let reactor = MemoryReactor::new();
    let out = watch(get_process_output_and_value(
        &reactor,
        ProcessBuilder::new("p"),
    ));
    let c = child(&reactor);
    c.child_output(1, b"out");
    c.child_output(2, b"err");
    end(&c, ExitReason::killed(Signal::Int, false));
    settle(&reactor);
    let (o, e, reason) = seen_ok(&out);
    assert_eq!((&o[..], &e[..]), (&b"out"[..], &b"err"[..]));
    assert_eq!(reason, ExitReason::killed(Signal::Int, false));
}

#[test]
fn p8_value_is_the_exit_reason() {
    let reactor = MemoryReactor::new();
    let out = watch(get_process_value(&reactor, ProcessBuilder::new("false")));
    let c = child(&reactor);
    c.child_output(1, b"ignored");
    end(&c, ExitReason::exited(1));
    settle(&reactor);
    assert_eq!(seen_ok(&out).shell_code(), 1);
}

#[test]
fn p8_timeout_sends_term_then_kill_after_the_grace_and_says_it_timed_out() {
    let reactor = MemoryReactor::new();
    let request = OutputRequest::new(ProcessBuilder::new("stubborn"))
        .timeout(Duration::from_secs(5))
        .kill_grace(Duration::from_secs(1));
    let out = watch(get_process_output(&reactor, request));
    let c = child(&reactor);
    c.child_output(1, b"partial");
    reactor.clock().advance(Duration::from_millis(4999));
    assert!(c.signals().is_empty());
    reactor.clock().advance(Duration::from_millis(1));
    assert_eq!(c.signals(), [Signal::Term]);
    assert_eq!(c.lose_connection_calls(), 0, "pipes stay open after TERM");
    reactor.clock().advance(Duration::from_secs(1));
    assert_eq!(c.signals(), [Signal::Term, Signal::Kill]);
    assert_eq!(c.lose_connection_calls(), 1, "pipes closed with KILL");
    end(&c, ExitReason::killed(Signal::Kill, false));
    settle(&reactor);
    let failure = out.borrow_mut().take().unwrap().unwrap_err();
    let Some(ProcessOutputError::TimedOut {
        timeout,
        killed,
        output,
    }) = failure.downcast_ref()
    else {
        panic!("{failure:?}");
    };
    assert_eq!((*timeout, *killed), (Duration::from_secs(5), true));
    assert_eq!(
        output.stdout, b"partial",
        "what came before the kill is kept"
    );
    let msg = failure.to_string();
    assert!(
        msg.contains("timed out") && msg.contains("SIGKILL"),
        "{msg}"
    );
}

#[test]
fn p8_a_child_that_ends_on_term_is_not_killed_and_no_timer_is_left() {
    let reactor = MemoryReactor::new();
    let request = OutputRequest::new(ProcessBuilder::new("p")).timeout(Duration::from_secs(1));
    let out = watch(get_process_value(&reactor, request));
    let c = child(&reactor);
    reactor.clock().advance(Duration::from_secs(1));
    end(&c, ExitReason::killed(Signal::Term, false));
    settle(&reactor);
    assert!(
        reactor.delayed_calls().is_empty(),
        "the KILL timer is cancelled"
    );
    reactor.clock().advance(Duration::from_secs(10));
    assert_eq!(c.signals(), [Signal::Term]);
    assert!(error(&out).contains("killed: false"));
}

#[test]
fn p8_a_child_that_ends_in_time_cancels_both_timers() {
    let reactor = MemoryReactor::new();
    let request = OutputRequest::new(ProcessBuilder::new("p")).timeout(Duration::from_secs(1));
    let out = watch(get_process_value(&reactor, request));
    assert_eq!(reactor.delayed_calls().len(), 2);
    end(&child(&reactor), ExitReason::ProcessDone);
    settle(&reactor);
    assert!(reactor.delayed_calls().is_empty());
    assert_eq!(seen_ok(&out), ExitReason::ProcessDone);
}

#[test]
fn p8_output_over_the_limit_kills_the_child_and_keeps_the_first_bytes() {
    let reactor = MemoryReactor::new();
    let request = OutputRequest::new(ProcessBuilder::new("yes")).max_output(10);
    let out = watch(get_process_output_and_value(&reactor, request));
    let c = child(&reactor);
    c.child_output(1, b"y\ny\ny\n");
    c.child_output(2, b"e\n");
    assert!(c.signals().is_empty(), "8 bytes: within the limit");
    c.child_output(1, b"y\ny\n");
    assert_eq!(c.signals(), [Signal::Kill]);
    assert_eq!(c.lose_connection_calls(), 1);
    c.child_output(1, b"more that is dropped");
    end(&c, ExitReason::killed(Signal::Kill, false));
    settle(&reactor);
    let failure = out.borrow_mut().take().unwrap().unwrap_err();
    let Some(ProcessOutputError::OutputLimitExceeded { limit, output }) = failure.downcast_ref()
    else {
        panic!("{failure:?}");
    };
    assert_eq!(*limit, 10);
    assert_eq!(output.stdout, b"y\ny\ny\ny\n");
    assert_eq!(output.stderr, b"e\n");
    assert!(failure.to_string().contains("10-byte output limit"));
}

#[test]
fn p8_a_spawn_failure_is_a_spawn_error_in_the_deferred() {
    let reactor = MemoryReactor::new();
    reactor.fail_next_spawn(SpawnError::os(
        SpawnStep::Exec,
        "nope",
        std::io::Error::from(std::io::ErrorKind::NotFound),
    ));
    let out = watch(get_process_output(&reactor, ProcessBuilder::new("nope")));
    settle(&reactor);
    assert!(error(&out).starts_with("Spawn("));
    // An invalid builder too (a NUL byte in an argument, CONTRACT G1).
    let out = watch(get_process_value(
        &reactor,
        ProcessBuilder::new("p").arg("a\0b"),
    ));
    settle(&reactor);
    let failure = out.borrow_mut().take().unwrap().unwrap_err();
    let Some(ProcessOutputError::Spawn(e)) = failure.downcast_ref() else {
        panic!("{failure:?}");
    };
    assert_eq!(e.step, SpawnStep::InvalidInput);
    assert!(failure.to_string().starts_with("cannot start the child"));
}

#[test]
fn p8_cancelling_kills_the_child() {
    let reactor = MemoryReactor::new();
    let d = get_process_output(&reactor, ProcessBuilder::new("p"));
    let seen = watch(d.clone());
    d.cancel();
    let c = child(&reactor);
    assert_eq!(c.signals(), [Signal::Kill]);
    end(&c, ExitReason::killed(Signal::Kill, false));
    settle(&reactor);
    assert!(matches!(*seen.borrow(), Some(Err(Failure::Cancelled))));
}

#[test]
fn p8_input_for_a_child_without_a_stdin_pipe_is_a_typed_error_and_nothing_is_spawned() {
    use torsion_transport::ChildFd;
    let reactor = MemoryReactor::new();
    let builder = ProcessBuilder::new("p")
        .child_fd(0, ChildFd::Null)
        .child_fd(1, ChildFd::Read);
    let request = OutputRequest::new(builder).input(b"lost?".to_vec());
    let out = watch(get_process_output(&reactor, request));
    settle(&reactor);
    assert!(reactor.spawns().is_empty());
    let failure = out.borrow_mut().take().unwrap().unwrap_err();
    let Some(ProcessOutputError::Spawn(e)) = failure.downcast_ref() else {
        panic!("{failure:?}");
    };
    assert_eq!(e.step, SpawnStep::InvalidInput);
    assert!(
        failure.to_string().contains("fd 0 is not a pipe"),
        "{failure}"
    );
}
