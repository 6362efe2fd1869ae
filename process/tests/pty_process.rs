//! A child on a pseudo-terminal (CONTRACT F, J, L), on both reap paths.

// Unix only: pseudo-terminals are POSIX (torsion-pty is empty elsewhere).
#![cfg(unix)]

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use torsion_process::{ProcessBuilderExt, ReapMode};
use torsion_transport::{
    Consumer, ExitReason, ProcessBuilder, ProcessError, ProcessTransport, PtyOptions, PushProducer,
    Signal,
};
use util::{DEADLINE, Ev, MODES, Recorder, assert_pty_f_order, reactor, run_until_ended, spawn};

fn sh(script: &str) -> ProcessBuilder {
    ProcessBuilder::new("sh")
        .args(["-c", script])
        .pty(PtyOptions::default())
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, session,
/// tty_nr, tpgid.
fn stat_fields(line: &str) -> Vec<i64> {
    let rest = &line[line.rfind(')').expect("comm") + 2..];
    rest.split(' ')
        .skip(1)
        .take(5)
        .map(|f| f.parse().expect("number"))
        .collect()
}

#[test]
fn l1_child_is_a_session_leader_in_the_foreground_of_its_terminal() {
    for mode in MODES {
        let r = reactor(mode);
        let script = "test -t 0 && test -t 1 && test -t 2 && echo TTY; cat /proc/$$/stat";
        let (t, s) = spawn(&r, &sh(script));
        let pid = i64::from(t.pid().expect("pid before reaping (F1)"));
        run_until_ended(&r, &s);
        let out = s.borrow().text();
        let lines: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(lines[0], "TTY", "isatty(0..2) ({mode:?}): {out:?}");
        let f = stat_fields(lines[1]);
        let (pgrp, session, tty_nr, tpgid) = (f[1], f[2], f[3], f[4]);
        assert_eq!(session, pid, "session leader: {out:?}");
        assert_eq!(pgrp, pid, "process group leader: {out:?}");
        assert_ne!(tty_nr, 0, "has a controlling terminal: {out:?}");
        assert_eq!(tpgid, pgrp, "the terminal's foreground group: {out:?}");
        assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
        assert_pty_f_order(&s.borrow().events);
        assert_eq!(t.pid(), None, "F3: no pid after reaping");
    }
}

#[test]
fn l2_stty_size_reports_the_requested_size_then_the_new_one_after_resize() {
    for mode in MODES {
        let r = reactor(mode);
        let b = ProcessBuilder::new("sh")
            .args(["-c", "stty size; while read line; do stty size; done"])
            .pty(PtyOptions::size(30, 100));
        let (t, s) = spawn(&r, &b);
        util::run_until_output(&r, &s, "30 100\r\n");
        assert_eq!(t.window_size().unwrap(), (30, 100));
        t.resize(40, 120).unwrap();
        assert_eq!(t.window_size().unwrap(), (40, 120));
        t.write(b"\n");
        util::run_until_output(&r, &s, "40 120\r\n");
        // End the read loop with the terminal's EOF key: sh exits 0.
        t.close_stdin().unwrap();
        run_until_ended(&r, &s);
        assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
        assert_pty_f_order(&s.borrow().events);
        assert!(
            t.resize(1, 1).is_err(),
            "no resize once the master is closed"
        );
        assert!(t.window_size().is_err());
    }
}

#[test]
fn l2_resize_sends_the_child_sigwinch() {
    let r = reactor(ReapMode::Auto);
    let script = "trap 'echo WINCH; stty size' WINCH; echo ready; while :; do sleep 0.05; done";
    let (t, s) = spawn(&r, &sh(script));
    util::run_until_output(&r, &s, "ready\r\n");
    assert!(t.resize(0, 10).is_err(), "a zero side is invalid");
    t.resize(33, 77).unwrap();
    util::run_until_output(&r, &s, "WINCH\r\n33 77\r\n");
    t.lose_connection();
    run_until_ended(&r, &s);
    assert_eq!(
        s.borrow().end_reason().and_then(|e| e.signal()),
        Some(Signal::Hup)
    );
}

fn seq_text(n: u32) -> String {
    let mut want = String::with_capacity(n as usize * 8);
    for i in 1..=n {
        want.push_str(&i.to_string());
        want.push_str("\r\n");
    }
    want
}

#[test]
fn l4_seq_200000_is_delivered_in_full_before_process_ended_20_times() {
    let want = seq_text(200_000);
    let start = Instant::now();
    for round in 0..20 {
        let mode = MODES[round % 2];
        let r = reactor(mode);
        let b = ProcessBuilder::new("seq")
            .args(["1", "200000"])
            .pty(PtyOptions::default());
        let (_t, s) = spawn(&r, &b);
        run_until_ended(&r, &s);
        let s = s.borrow();
        let got = s.text();
        assert!(
            got == want,
            "round {round} ({mode:?}): {} bytes of {}; last 40: {:?}",
            got.len(),
            want.len(),
            &got[got.len().saturating_sub(40)..]
        );
        assert_eq!(s.end_reason(), Some(ExitReason::ProcessDone));
        assert_pty_f_order(&s.events);
    }
    eprintln!(
        "20 x seq 1 200000 ({} bytes each) in {:?}",
        want.len(),
        start.elapsed()
    );
}

#[test]
fn l4_a_child_that_writes_and_exits_at_once_loses_nothing() {
    for mode in MODES {
        for i in 0..50 {
            let r = reactor(mode);
            let word = format!("bye{i}");
            let b = ProcessBuilder::new("printf")
                .args(["%s", &word])
                .pty(PtyOptions::default());
            let (_t, s) = spawn(&r, &b);
            run_until_ended(&r, &s);
            assert_eq!(s.borrow().text(), word, "{mode:?}");
            assert_pty_f_order(&s.borrow().events);
        }
    }
}

/// The end of output does not hang up a child that is still running: `sh` closes its
/// terminal fds, then runs on. Closing the master at `EIO` would kill it with SIGHUP.
#[test]
fn l4_end_of_output_does_not_hang_up_a_child_still_running() {
    for mode in MODES {
        let r = reactor(mode);
        let (_t, s) = spawn(
            &r,
            &sh("echo closing; exec 0<&- 1>&- 2>&-; sleep 0.2; exit 7"),
        );
        run_until_ended(&r, &s);
        assert_eq!(s.borrow().text(), "closing\r\n");
        assert_eq!(
            s.borrow().end_reason(),
            Some(ExitReason::exited(7)),
            "{mode:?}: {:?}",
            s.borrow().lifecycle()
        );
        assert_pty_f_order(&s.borrow().events);
    }
}

#[test]
fn l5_process_ended_waits_for_a_grandchild_holding_the_terminal() {
    for mode in MODES {
        let r = reactor(mode);
        // HUP is ignored before the fork, so the grandchild survives the SIGHUP the kernel
        // sends the foreground group when the session leader exits.
        let script = "trap '' HUP; (sleep 0.3; echo late) & echo early";
        let (_t, s) = spawn(&r, &sh(script));
        run_until_ended(&r, &s);
        let s = s.borrow();
        assert!(
            s.text().contains("early\r\n") && s.text().contains("late\r\n"),
            "{mode:?}: {:?} {:?}",
            s.text(),
            s.lifecycle()
        );
        let exited = s.events.iter().position(|e| matches!(e, Ev::Exited(_)));
        let late = s.events.iter().position(
            |e| matches!(e, Ev::Data(_, d) if String::from_utf8_lossy(d).contains("late")),
        );
        assert!(
            exited < late,
            "process_exited comes when the child is reaped, before the grandchild's output: {:?}",
            s.lifecycle()
        );
        assert_eq!(s.end_reason(), Some(ExitReason::ProcessDone));
        assert_pty_f_order(&s.events);
    }
}

#[test]
fn l6_lose_connection_closes_the_master_and_the_child_dies_of_sighup() {
    for mode in MODES {
        let r = reactor(mode);
        let (t, s) = spawn(&r, &sh("echo ready; exec cat"));
        util::run_until_output(&r, &s, "ready\r\n");
        t.write(b"flushed before the close\n");
        t.lose_connection();
        run_until_ended(&r, &s);
        let reason = s.borrow().end_reason().unwrap();
        assert_eq!(reason.signal(), Some(Signal::Hup), "{reason}");
        assert!(t.master_closed());
        assert_eq!(t.unsent(), 0);
        assert_pty_f_order(&s.borrow().events);
    }
}

#[test]
fn l7_a_pty_has_one_channel() {
    let r = reactor(ReapMode::Auto);
    let (t, s) = spawn(&r, &ProcessBuilder::new("cat").pty(PtyOptions::default()));
    for fd in [1, 2, 3] {
        match t.write_to_child(fd, b"x") {
            Err(ProcessError::Unsupported(why)) => assert!(why.contains("one channel"), "{why}"),
            other => panic!("write_to_child({fd}): {other:?}"),
        }
    }
    for fd in [0, 1, 2] {
        assert!(
            matches!(t.close_child_fd(fd), Err(ProcessError::Unsupported(_))),
            "close_child_fd({fd})"
        );
    }
    assert!(matches!(
        t.close_stdout(),
        Err(ProcessError::Unsupported(_))
    ));
    assert!(matches!(
        t.close_stderr(),
        Err(ProcessError::Unsupported(_))
    ));
    t.write_to_child(0, b"hi\n").unwrap();
    // The terminal echoes the line, then cat writes it back.
    util::run_until_output(&r, &s, "hi\r\nhi\r\n");
    t.close_stdin().unwrap();
    run_until_ended(&r, &s);
    assert_eq!(
        s.borrow().end_reason(),
        Some(ExitReason::ProcessDone),
        "{:?} {:?}",
        s.borrow().text(),
        s.borrow().lifecycle()
    );
    assert_pty_f_order(&s.borrow().events);
}

#[test]
fn close_stdin_mid_line_hands_over_the_line_then_ends_the_input() {
    let r = reactor(ReapMode::Auto);
    let (t, s) = spawn(&r, &ProcessBuilder::new("cat").pty(PtyOptions::default()));
    t.set_echo(false).unwrap();
    assert!(!t.termios().unwrap().echo());
    t.write(b"partial");
    t.close_stdin().unwrap();
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "partial", "echo off: only cat's copy");
    assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
    assert!(t.close_stdin().is_ok(), "a no-op once the master is closed");
}

#[test]
fn f6_callbacks_for_a_dead_child_come_from_the_loop() {
    for mode in MODES {
        let r = reactor(mode);
        let (_t, s) = spawn(&r, &ProcessBuilder::new("true").pty(PtyOptions::default()));
        assert_eq!(
            s.borrow().events,
            vec![Ev::Made],
            "only connection_made inside spawn"
        );
        run_until_ended(&r, &s);
        assert_eq!(
            s.borrow().lifecycle().last(),
            Some(&Ev::Ended(ExitReason::ProcessDone))
        );
    }
}

#[test]
fn j1_signal_process_then_exited_already() {
    for mode in MODES {
        let r = reactor(mode);
        let (t, s) = spawn(&r, &ProcessBuilder::new("cat").pty(PtyOptions::default()));
        t.signal_process(Signal::Term).unwrap();
        run_until_ended(&r, &s);
        assert_eq!(
            s.borrow().end_reason().and_then(|e| e.signal()),
            Some(Signal::Term)
        );
        assert_eq!(t.pid(), None);
        assert!(matches!(
            t.signal_process(Signal::Term),
            Err(ProcessError::ExitedAlready)
        ));
        assert_eq!(t.exit_reason().and_then(|e| e.signal()), Some(Signal::Term));
    }
}

#[test]
fn i6_paused_output_waits_and_process_ended_waits_for_it() {
    let r = reactor(ReapMode::Auto);
    let paused = Rc::new(Cell::new(false));
    let p2 = paused.clone();
    let (protocol, s) = Recorder::with_hook(Box::new(move |ev, t| {
        if *ev == Ev::Made {
            t.pause_producing();
            p2.set(true);
        }
    }));
    let b = ProcessBuilder::new("echo")
        .arg("held")
        .pty(PtyOptions::default());
    let t = b.spawn(&r, protocol).unwrap();
    assert!(paused.get());
    r.run_until(|| s.borrow().exited(), DEADLINE).unwrap();
    assert_eq!(s.borrow().all_output(), b"", "nothing is read while paused");
    for _ in 0..10 {
        r.iterate(std::time::Duration::from_millis(5)).unwrap();
    }
    assert!(!s.borrow().ended(), "L5: the master is not closed yet");
    t.resume_producing();
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "held\r\n");
    assert_pty_f_order(&s.borrow().events);
}

#[test]
fn l1_a_callers_pty_pair() {
    let r = reactor(ReapMode::Auto);
    let (master, slave) = torsion_pty::open_pty().unwrap();
    use std::os::fd::AsRawFd;
    let mut options = PtyOptions::size(12, 34);
    options.pair = Some((master.as_raw_fd(), slave.as_raw_fd()));
    let b = ProcessBuilder::new("sh")
        .args(["-c", "stty size; test -t 0 && echo TTY"])
        .pty(options);
    let (t, s) = spawn(&r, &b);
    // The child has its own slave; ours would keep the end of output away.
    drop(slave);
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "12 34\r\nTTY\r\n");
    assert!(t.master_closed());
    // The caller's master is still open and usable.
    assert_eq!(
        torsion_pty::termios::terminal_size(&master).unwrap(),
        (12, 34)
    );
}

#[test]
fn write_and_echo_through_a_registered_producer() {
    use torsion_transport::Producer;
    struct Once(Rc<dyn ProcessTransport>, Cell<bool>);
    impl PushProducer for Once {
        fn pause_producing(&self) {}
        fn resume_producing(&self) {}
        fn stop_producing(&self) {
            self.1.set(true);
        }
    }
    let r = reactor(ReapMode::Auto);
    let (t, s) = spawn(&r, &ProcessBuilder::new("cat").pty(PtyOptions::default()));
    t.set_echo(false).unwrap();
    let as_transport: Rc<dyn ProcessTransport> = t.clone();
    let producer = Rc::new(Once(as_transport, Cell::new(false)));
    t.register_producer(Producer::Push(producer.clone()))
        .unwrap();
    producer.0.write(b"via producer\n");
    util::run_until_output(&r, &s, "via producer\r\n");
    t.lose_connection();
    run_until_ended(&r, &s);
    assert!(
        producer.1.get(),
        "D7: the producer is stopped when the master closes"
    );
}

#[test]
fn l2_terminal_modes_are_set_before_the_child_starts() {
    let r = reactor(ReapMode::Auto);
    // Echo off: the child's first look at its terminal already shows it.
    let b = ProcessBuilder::new("sh")
        .args(["-c", "stty -a | tr ' ' '\\n' | grep -x -- '-echo'"])
        .pty(PtyOptions::default().with_echo(false));
    let (_t, s) = spawn(&r, &b);
    run_until_ended(&r, &s);
    assert!(
        s.borrow().text().contains("-echo"),
        "{:?}",
        s.borrow().text()
    );
    assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));

    // Raw: no "\n" -> "\r\n" translation on output.
    let b = ProcessBuilder::new("printf")
        .arg("a\\nb\\n")
        .pty(PtyOptions::default().with_raw());
    let (_t, s) = spawn(&r, &b);
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "a\nb\n");

    // The default stays cooked.
    let (_t, s) = spawn(
        &r,
        &ProcessBuilder::new("printf")
            .arg("a\\nb\\n")
            .pty(PtyOptions::default()),
    );
    run_until_ended(&r, &s);
    assert_eq!(s.borrow().text(), "a\r\nb\r\n");
}
