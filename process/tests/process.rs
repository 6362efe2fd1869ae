//! The process transport on the real reactor (CONTRACT F, G8, I, J), under both reaping
//! paths (pidfd and SIGCHLD).

// Unix only: fork/exec children, pidfd and SIGCHLD reaping are POSIX; the Windows back end
// has tests/windows.rs.
#![cfg(unix)]

mod util;

use std::cell::Cell;
use std::rc::Rc;

use torsion_process::{ProcessBuilderExt, ReactorProcess, ReapMode};
use torsion_transport::{
    ChildFd, Consumer, ExitReason, ProcessBuilder, ProcessError, ProcessTransport, PushProducer,
    Signal,
};
use util::{DEADLINE, Ev, MODES, Recorder, assert_f_order, reactor};

fn sh(script: &str) -> ProcessBuilder {
    ProcessBuilder::new("/bin/sh").args(["-c", script])
}

#[test]
fn i2_ten_mib_through_cat_and_back() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::new();
        let p = (ProcessBuilder::new("cat")).spawn(&r, proto).unwrap();
        let data: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        Consumer::write(&*p, &data);
        p.close_stdin().unwrap();
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        let s = s.borrow();
        assert!(s.output(1) == data, "{mode:?}: echo differs");
        assert_eq!(s.end_reason(), Some(ExitReason::ProcessDone));
        assert_f_order(&s.events);
    }
}

#[test]
fn d10_owned_and_shared_writes_through_cat_come_back_in_order() {
    let r = reactor(MODES[0]);
    let (proto, s) = Recorder::new();
    let p = (ProcessBuilder::new("cat")).spawn(&r, proto).unwrap();
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let shared = torsion_transport::SharedBytes::from(data.as_slice());
    Consumer::write(&*p, b"a");
    p.write_owned(data.clone());
    p.write_shared(shared.clone());
    p.write_shared(shared.get(..100).unwrap());
    Consumer::write(&*p, b"z");
    p.close_stdin().unwrap();
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    let mut expected = b"a".to_vec();
    expected.extend_from_slice(&data);
    expected.extend_from_slice(&data);
    expected.extend_from_slice(&data[..100]);
    expected.push(b'z');
    let s = s.borrow();
    assert_eq!(s.output(1).len(), expected.len());
    assert!(s.output(1) == expected, "echo differs");
}

#[test]
fn d11_write_static_through_cat_comes_back_in_order() {
    // 2 MiB, handed over for good: leaked once for the test binary's lifetime.
    let payload: &'static [u8] = Box::leak(
        (0..2 * 1024 * 1024u32)
            .map(|i| (i % 253) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let r = reactor(MODES[0]);
    let (proto, s) = Recorder::new();
    let p = (ProcessBuilder::new("cat")).spawn(&r, proto).unwrap();
    Consumer::write(&*p, b"<");
    p.write_static(payload);
    Consumer::write(&*p, b"|");
    p.write_static(&payload[..1000]);
    Consumer::write(&*p, b">");
    p.close_stdin().unwrap();
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    let mut expected = b"<".to_vec();
    expected.extend_from_slice(payload);
    expected.push(b'|');
    expected.extend_from_slice(&payload[..1000]);
    expected.push(b'>');
    let s = s.borrow();
    assert_eq!(s.output(1).len(), expected.len());
    assert!(s.output(1) == expected, "echo differs");
}

/// The child echoes a line, closes stdout, waits, closes stderr, waits, exits 23; the test
/// answers each step, so the order is fixed without any timing.
fn staged_child(r: &torsion_reactor::Reactor) -> Rc<std::cell::RefCell<util::Shared>> {
    let (proto, s) = Recorder::with_hook(Box::new(|ev, t| match ev {
        Ev::Data(1, d) if d == b"x\n" => {}
        Ev::Lost(1) => t.write_to_child(0, b"y\n").unwrap(),
        Ev::Lost(2) => t.write_to_child(0, b"z\n").unwrap(),
        _ => {}
    }));
    let p = (sh("read a; echo \"$a\"; exec 1>&-; read b; exec 2>&-; read c; exit 23"))
        .spawn(r, proto)
        .unwrap();
    p.write_to_child(0, b"x\n").unwrap();
    s
}

#[test]
fn f2_f4_losses_in_order_1_2_0_then_terminated_23() {
    for mode in MODES {
        let r = reactor(mode);
        let s = staged_child(&r);
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        let s = s.borrow();
        assert_f_order(&s.events);
        let losses: Vec<i32> = s
            .events
            .iter()
            .filter_map(|e| {
                if let Ev::Lost(fd) = e {
                    Some(*fd)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(losses, vec![1, 2, 0], "{mode:?}: {:?}", s.events);
        assert_eq!(s.output(1), b"x\n");
        let reason = s.end_reason().unwrap();
        assert_eq!(reason.exit_code(), Some(23));
        assert!(matches!(
            reason,
            ExitReason::ProcessTerminated { signal: None, .. }
        ));
    }
}

#[test]
fn f_twenty_five_staged_children_at_once() {
    for mode in MODES {
        let r = reactor(mode);
        let all: Vec<_> = (0..25).map(|_| staged_child(&r)).collect();
        r.run_until(|| all.iter().all(|s| s.borrow().ended()), DEADLINE)
            .unwrap();
        for s in &all {
            let s = s.borrow();
            assert_f_order(&s.events);
            assert_eq!(s.end_reason().and_then(|r| r.exit_code()), Some(23));
        }
    }
}

#[test]
fn g6_six_fd_map_used_by_the_child() {
    let r = reactor(ReapMode::Auto);
    let (proto, s) = Recorder::new();
    let b = sh("read a; read b <&3; read c <&5; echo \"$a$b$c\"; echo four >&4")
        .child_fd(0, ChildFd::Write)
        .child_fd(1, ChildFd::Read)
        .child_fd(2, ChildFd::Inherit(2))
        .child_fd(3, ChildFd::Write)
        .child_fd(4, ChildFd::Read)
        .child_fd(5, ChildFd::Write);
    let p = b.spawn(&r, proto).unwrap();
    p.write_to_child(0, b"zero\n").unwrap();
    p.write_to_child(3, b"three\n").unwrap();
    p.write_to_child(5, b"five\n").unwrap();
    assert!(matches!(
        p.write_to_child(4, b"no"),
        Err(ProcessError::NotWritable { fd: 4 })
    ));
    assert!(matches!(
        p.write_to_child(2, b"no"),
        Err(ProcessError::NotWritable { fd: 2 })
    ));
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    let s = s.borrow();
    assert_eq!(s.output(1), b"zerothreefive\n");
    assert_eq!(s.output(4), b"four\n");
    assert_f_order(&s.events);
    let mut lost: Vec<i32> = s
        .events
        .iter()
        .filter_map(|e| {
            if let Ev::Lost(fd) = e {
                Some(*fd)
            } else {
                None
            }
        })
        .collect();
    lost.sort();
    assert_eq!(
        lost,
        vec![0, 1, 3, 4, 5],
        "Inherit(2) is not a pipe of ours"
    );
}

#[test]
fn f4_child_that_closes_stdio_then_sleeps_still_ends() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::new();
        (sh("exec 0<&- 1>&- 2>&-; sleep 0.2"))
            .spawn(&r, proto)
            .unwrap();
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        let s = s.borrow();
        assert_f_order(&s.events);
        let exited_at = s
            .events
            .iter()
            .position(|e| matches!(e, Ev::Exited(_)))
            .unwrap();
        assert_eq!(
            exited_at, 4,
            "all three losses come before the exit: {:?}",
            s.events
        );
    }
}

#[test]
fn f3_f4_grandchild_holding_the_pipes_delays_ended_not_exited() {
    for mode in MODES {
        let r = reactor(mode);
        let released = Rc::new(Cell::new(false));
        let rel = released.clone();
        let (proto, s) = Recorder::with_hook(Box::new(move |ev, t| {
            if let Ev::Exited(_) = ev {
                // The grandchild still holds stdin/stdout: let it go now.
                rel.set(true);
                t.write_to_child(0, b"go\n").unwrap();
            }
        }));
        // sh gives a background job /dev/null as its stdin, so hand it the pipe as fd 3.
        (sh("exec 3<&0; (read x <&3; echo grandchild done) & exit 0"))
            .spawn(&r, proto)
            .unwrap();
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        let s = s.borrow();
        assert!(released.get());
        assert_f_order(&s.events);
        let exited = s
            .events
            .iter()
            .position(|e| matches!(e, Ev::Exited(_)))
            .unwrap();
        let out_lost = s.events.iter().position(|e| *e == Ev::Lost(1)).unwrap();
        assert!(
            exited < out_lost,
            "exited promptly, stdout closed only later: {:?}",
            s.events
        );
        assert_eq!(s.output(1), b"grandchild done\n");
        assert_eq!(s.end_reason(), Some(ExitReason::ProcessDone));
    }
}

#[test]
fn f5_j1_deaths_by_signal_have_the_right_reason() {
    for mode in MODES {
        for sig in [Signal::Hup, Signal::Int, Signal::Kill, Signal::Term] {
            let r = reactor(mode);
            let (proto, s) = Recorder::new();
            let p = (ProcessBuilder::new("sleep").arg("100"))
                .spawn(&r, proto)
                .unwrap();
            p.signal_process(sig).unwrap();
            r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
            let reason = s.borrow().end_reason().unwrap();
            assert_eq!(reason.signal(), Some(sig), "{mode:?} {sig}: {reason}");
            assert_eq!(reason.exit_code(), None);
            assert_eq!(
                p.signal_process(sig).unwrap_err().to_string(),
                ProcessError::ExitedAlready.to_string()
            );
            assert!(matches!(
                p.signal_process(sig),
                Err(ProcessError::ExitedAlready)
            ));
            assert_eq!(ProcessTransport::pid(&*p), None, "F3: no pid after reaping");
        }
    }
}

#[test]
fn i1_close_stdout_then_child_writes_gets_epipe_not_sigpipe() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::with_hook(Box::new(|ev, t| {
            if *ev == Ev::Lost(1) {
                t.write_to_child(0, b"now\n").unwrap();
            }
        }));
        let p = (sh("trap '' PIPE; read x; echo hi; echo \"status $?\" >&2"))
            .spawn(&r, proto)
            .unwrap();
        p.close_stdout().unwrap();
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        let s = s.borrow();
        assert!(
            String::from_utf8_lossy(&s.output(2)).contains("status 1"),
            "{:?}",
            s.events
        );
        assert_eq!(s.output(1), b"");
        assert_f_order(&s.events);
    }
}

#[test]
fn i1_writer_notices_child_closed_stdin_with_nothing_pending() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::new();
        // The child closes stdin and then waits on its stdout being read... by sleeping
        // until killed; the loss of fd 0 must arrive while it is alive.
        let p = (sh("exec 0<&-; echo closed; exec sleep 100"))
            .spawn(&r, proto)
            .unwrap();
        r.run_until(|| s.borrow().events.contains(&Ev::Lost(0)), DEADLINE)
            .unwrap();
        assert!(
            !s.borrow().exited(),
            "the loss came while the child was alive"
        );
        p.signal_process(Signal::Kill).unwrap();
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    }
}

#[test]
fn f6_child_dead_before_registration_reports_from_the_loop() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::new();
        let p = (ProcessBuilder::new("true").child_fds(Default::default()))
            .spawn(&r, proto)
            .unwrap();
        // Make sure it is dead (a zombie) before the loop runs, without reaping it.
        let pid = ProcessTransport::pid(&*p).unwrap() as i32;
        // SAFETY: siginfo_t is a plain C struct; all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with WNOWAIT only observes the child; `info` is valid for writes.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(rc, 0);
        assert_eq!(
            s.borrow().events,
            vec![Ev::Made],
            "nothing inside spawn but connection_made"
        );
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
    }
}

#[test]
fn j2_child_stolen_by_someone_else_ends_with_unknown() {
    for mode in MODES {
        let r = reactor(mode);
        let (proto, s) = Recorder::new();
        let p = (ProcessBuilder::new("true").child_fds(Default::default()))
            .spawn(&r, proto)
            .unwrap();
        let pid = ProcessTransport::pid(&*p).unwrap() as i32;
        let mut status = 0;
        // SAFETY: plain waitpid on our own child; steals it before the reactor looks.
        let got = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(got, pid);
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        assert_eq!(
            s.borrow().end_reason(),
            Some(ExitReason::Unknown),
            "{mode:?}"
        );
    }
}

#[test]
fn j3_child_spawned_before_run_is_reaped_once_run_starts() {
    let r = reactor(ReapMode::Auto);
    r.set_install_signal_handlers(false);
    let (proto, s) = Recorder::new();
    (ProcessBuilder::new("true")).spawn(&r, proto).unwrap();
    let (r2, s2) = (r.clone(), s.clone());
    r.call_later(std::time::Duration::from_millis(1), move || {
        fn wait(r: torsion_reactor::Reactor, s: Rc<std::cell::RefCell<util::Shared>>) {
            if s.borrow().ended() {
                r.stop().unwrap();
            } else {
                let r2 = r.clone();
                r.call_later(std::time::Duration::from_millis(1), move || wait(r2, s));
            }
        }
        wait(r2, s2);
    });
    let guard = r.call_later(DEADLINE, || panic!("not reaped"));
    r.run().unwrap();
    assert!(!guard.called());
    assert!(s.borrow().ended());
}

#[test]
fn i6_pause_stops_reading_and_resume_delivers_buffered_output() {
    let r = reactor(ReapMode::Auto);
    let (proto, s) = Recorder::new();
    let p = (sh("echo one; read x; echo two")).spawn(&r, proto).unwrap();
    r.run_until(|| s.borrow().output(1) == b"one\n", DEADLINE)
        .unwrap();
    PushProducer::pause_producing(&*p);
    p.write_to_child(0, b"\n").unwrap();
    r.run_until(|| s.borrow().exited(), DEADLINE).unwrap();
    assert_eq!(s.borrow().output(1), b"one\n", "nothing read while paused");
    PushProducer::resume_producing(&*p);
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    assert_eq!(s.borrow().output(1), b"one\ntwo\n");
}

#[test]
fn i4_lose_connection_closes_pipes_but_never_kills() {
    let r = reactor(ReapMode::Auto);
    let (proto, s) = Recorder::new();
    let p = (sh("read x; echo \"got [$x] $?\" >/dev/null; exit 7"))
        .spawn(&r, proto)
        .unwrap();
    ProcessTransport::lose_connection(&*p);
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    let s = s.borrow();
    assert_eq!(
        s.end_reason().and_then(|r| r.exit_code()),
        Some(7),
        "it exited by itself"
    );
    assert_f_order(&s.events);
}

#[test]
fn g9_reactor_process_capability_trait_spawns_with_no_install_step() {
    let r = reactor(ReapMode::Auto);
    for builder in [
        ProcessBuilder::new("true"),
        ProcessBuilder::new("true").pty(torsion_transport::PtyOptions::default()),
    ] {
        let (proto, s) = Recorder::new();
        let t = r.spawn_process(&builder, proto).unwrap();
        assert!(t.pid().is_some());
        r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
        assert_eq!(s.borrow().end_reason(), Some(ExitReason::ProcessDone));
    }
}

#[test]
fn wait_status_and_resource_usage_after_reaping() {
    let r = reactor(ReapMode::Auto);
    let (proto, s) = Recorder::new();
    let p = (sh("exit 3")).spawn(&r, proto).unwrap();
    assert!(p.resource_usage().is_none());
    r.run_until(|| s.borrow().ended(), DEADLINE).unwrap();
    assert_eq!(p.wait_status(), Some(3 << 8));
    assert!(p.resource_usage().unwrap().max_rss_kib > 0);
}
