//! The Windows back end (CONTRACT M), run under Wine in CI (`.ci/windows.sh`).
//!
//! The children are `cmd /c ...` and this test binary itself: run with
//! `TORSION_TEST_CHILD=<mode>` it acts as a small helper (see [`child_helper`]) and writes
//! what it saw to **stderr** (stdout carries the test harness's own lines).
//!
//! Not tested here, because Wine 8 cannot do it: console control events
//! (`GenerateConsoleCtrlEvent` is unimplemented), and `TerminateProcess` failing on an
//! exited process (Wine reports success; the transport handles both).
#![cfg(windows)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::rc::Rc;
use std::time::Duration;

use torsion_process::{ProcessBuilderExt, ReactorProcess};
use torsion_reactor::Reactor;
use torsion_testing::{AccumulatingProcessProtocol, ProcessRecord};
use torsion_transport::{
    ChildFd, ExitReason, ProcessBuilder, ProcessError, ProcessProtocol, ProcessTransport, Signal,
    SpawnStep,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// The helper child. In a normal test run (no `TORSION_TEST_CHILD`) it does nothing.
///
/// Modes: `args` prints each argument after `--` as hex of its UTF-8, one per line;
/// `env` prints `NAME=value` lines, sorted; `exit:N` exits with N; `cat` copies stdin to
/// stderr until EOF; `sleep` sleeps for a minute; `split` writes `out` to stdout and `err`
/// to stderr, then exits.
#[test]
fn child_helper() {
    use std::io::{Read, Write};
    let Some(mode) = std::env::var_os("TORSION_TEST_CHILD") else {
        return;
    };
    let mode = mode.to_string_lossy().into_owned();
    let mut err = std::io::stderr();
    match mode.as_str() {
        "args" => {
            let args: Vec<String> = std::env::args().collect();
            let start = args
                .iter()
                .position(|a| a == "--")
                .map_or(args.len(), |i| i + 1);
            for a in &args[start..] {
                let hex: String = a.bytes().map(|b| format!("{b:02x}")).collect();
                let _ = writeln!(err, "[{hex}]");
            }
        }
        "env" => {
            let mut vars: Vec<String> = std::env::vars()
                .filter(|(k, _)| k != "TORSION_TEST_CHILD")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            vars.sort();
            for v in vars {
                let _ = writeln!(err, "{v}");
            }
        }
        "cat" => {
            let mut buf = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut buf);
            let _ = err.write_all(&buf);
        }
        "sleep" => std::thread::sleep(Duration::from_secs(60)),
        "split" => {
            let _ = std::io::stdout().write_all(b"out");
            let _ = err.write_all(b"err");
        }
        m => {
            if let Some(code) = m.strip_prefix("exit:") {
                let _ = err.flush();
                std::process::exit(code.parse().unwrap_or(99));
            }
        }
    }
    let _ = err.flush();
    std::process::exit(0);
}

/// This binary as a child in `mode`, with `args` after `--`.
fn helper(mode: &str, args: &[&str]) -> ProcessBuilder {
    let exe = std::env::current_exe().unwrap();
    ProcessBuilder::new(&exe)
        .args([
            "child_helper",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--",
        ])
        .args(args)
        .env("TORSION_TEST_CHILD", mode)
}

fn run(builder: &ProcessBuilder) -> (Reactor, Rc<torsion_process::Process>, ProcessRecord) {
    let r = Reactor::new().unwrap();
    let (proto, rec) = AccumulatingProcessProtocol::new();
    let p = (*builder).spawn(&r, Box::new(proto)).unwrap();
    let rc = rec.clone();
    r.run_until(|| rc.ended().is_some(), DEADLINE).unwrap();
    rec.check_order().unwrap();
    (r, p, rec)
}

fn stderr_text(rec: &ProcessRecord) -> String {
    String::from_utf8_lossy(&rec.output(2)).replace("\r\n", "\n")
}

#[test]
fn m1_cmd_echo_three_pipes_then_process_ended() {
    let b = ProcessBuilder::new("cmd").args(["/c", "echo hello"]);
    let (_r, p, rec) = run(&b);
    assert!(
        String::from_utf8_lossy(&rec.output(1)).contains("hello"),
        "{rec:?}"
    );
    assert_eq!(rec.ended(), Some(ExitReason::ProcessDone));
    assert_eq!(rec.exited(), Some(ExitReason::ProcessDone));
    let mut lost = rec.lost_fds();
    lost.sort();
    assert_eq!(
        lost,
        [0, 1, 2],
        "M5: all three pipes closed before process_ended"
    );
    assert!(p.ended());
    assert_eq!(p.pid(), None, "F3: no pid after the exit");
    assert_ne!(p.original_pid(), 0);
}

#[test]
fn m5_exit_codes() {
    for code in [0, 1, 3, 255] {
        let (_r, _p, rec) = run(&helper(&format!("exit:{code}"), &[]));
        let want = if code == 0 {
            ExitReason::ProcessDone
        } else {
            ExitReason::ProcessTerminated {
                exit_code: Some(code),
                signal: None,
                core_dumped: false,
                status: code,
            }
        };
        assert_eq!(rec.ended(), Some(want), "exit {code}");
    }
    let (_r, _p, rec) = run(&ProcessBuilder::new("cmd").args(["/c", "exit 7"]));
    assert!(
        matches!(
            rec.ended(),
            Some(ExitReason::ProcessTerminated {
                exit_code: Some(7),
                ..
            })
        ),
        "{rec:?}"
    );
}

#[test]
fn m2_arguments_round_trip() {
    let args = [
        "plain",
        "two words",
        "",
        r#"quote"inside"#,
        r#"trailing\"#,
        r#"spaced and trailing\"#,
        r#"\\server\share\"#,
        r#"a\\"b"#,
        "tab\there",
        "ünïcödé ✓",
        "%PATH%",
        "^&|<>",
        "--not-an-option",
    ];
    let (_r, _p, rec) = run(&helper("args", &args));
    let want: String = args
        .iter()
        .map(|a| {
            let hex: String = a.bytes().map(|b| format!("{b:02x}")).collect();
            format!("[{hex}]\n")
        })
        .collect();
    assert_eq!(stderr_text(&rec), want);
}

#[test]
fn m2_environment_is_exactly_what_the_builder_says() {
    // Cleared, plus two variables.
    let b = helper("env", &[])
        .env_clear()
        .env("TORSION_TEST_CHILD", "env")
        .env("ALPHA", "1")
        .env("Beta", "two words=yes");
    let (_r, _p, rec) = run(&b);
    let got: Vec<String> = stderr_text(&rec).lines().map(str::to_owned).collect();
    // Wine's loader adds its own variables (WINE*, and SystemDrive/SystemRoot when
    // missing) to every child; everything else must be exactly ours.
    let added_by_wine = |l: &str| {
        l.starts_with("WINE") || l.starts_with("SystemDrive=") || l.starts_with("SystemRoot=")
    };
    let ours: Vec<&String> = got.iter().filter(|l| !added_by_wine(l)).collect();
    assert_eq!(ours, ["ALPHA=1", "Beta=two words=yes"], "{got:?}");

    // Inherited, with a change and a removal (by case-insensitive name).
    let key = "TORSION_WIN_ENV_PROBE";
    let b = helper("env", &[]).env(key, "changed").env_remove("PATH");
    let (_r, _p, rec) = run(&b);
    let text = stderr_text(&rec);
    assert!(
        text.lines().any(|l| l == format!("{key}=changed")),
        "{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.to_ascii_uppercase().starts_with("PATH=")),
        "{text}"
    );
    let parent_has = std::env::vars().any(|(k, _)| k.eq_ignore_ascii_case("SYSTEMROOT"));
    if parent_has {
        assert!(
            text.lines()
                .any(|l| l.to_ascii_uppercase().starts_with("SYSTEMROOT=")),
            "inherited variables are kept: {text}"
        );
    }
}

#[test]
fn m4_stdin_round_trip_and_write_to_child_only_fd_0() {
    let r = Reactor::new().unwrap();
    let (proto, rec) = AccumulatingProcessProtocol::new();
    let p = (helper("cat", &[])).spawn(&r, Box::new(proto)).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    p.write_to_child(0, b"hello ").unwrap();
    p.write_to_child(0, &big).unwrap();
    assert!(matches!(
        p.write_to_child(1, b"x"),
        Err(ProcessError::NotWritable { fd: 1 })
    ));
    assert!(matches!(
        p.write_to_child(3, b"x"),
        Err(ProcessError::NotWritable { fd: 3 })
    ));
    p.close_stdin().unwrap();
    let rc = rec.clone();
    r.run_until(|| rc.ended().is_some(), DEADLINE).unwrap();
    rec.check_order().unwrap();
    let out = rec.output(2);
    assert_eq!(out.len(), 6 + big.len());
    assert_eq!(&out[..6], b"hello ");
    assert!(out[6..] == big[..], "stdin arrived intact");
    assert_eq!(rec.ended(), Some(ExitReason::ProcessDone));
}

#[test]
fn m1_output_on_both_pipes() {
    let (_r, _p, rec) = run(&helper("split", &[]));
    assert!(
        rec.output(1).ends_with(b"out") || String::from_utf8_lossy(&rec.output(1)).contains("out")
    );
    assert_eq!(rec.output(2), b"err");
}

#[test]
fn m3_kill_term_int_terminate_with_exit_code_1_others_are_refused() {
    for sig in [Signal::Kill, Signal::Term, Signal::Int] {
        let r = Reactor::new().unwrap();
        let (proto, rec) = AccumulatingProcessProtocol::new();
        let p = (helper("sleep", &[])).spawn(&r, Box::new(proto)).unwrap();
        assert!(matches!(
            p.signal_process(Signal::Hup),
            Err(ProcessError::UnsupportedSignal(Signal::Hup))
        ));
        assert!(matches!(
            p.signal_process(Signal::Usr1),
            Err(ProcessError::UnsupportedSignal(Signal::Usr1))
        ));
        p.signal_process(sig).unwrap();
        let rc = rec.clone();
        r.run_until(|| rc.ended().is_some(), DEADLINE).unwrap();
        rec.check_order().unwrap();
        assert_eq!(
            rec.ended(),
            Some(ExitReason::ProcessTerminated {
                exit_code: Some(1),
                signal: None,
                core_dumped: false,
                status: 1
            }),
            "{sig}"
        );
        assert!(matches!(
            p.signal_process(sig),
            Err(ProcessError::ExitedAlready)
        ));
    }
}

#[test]
fn m1_what_windows_cannot_do_is_a_spawn_error() {
    let r = Reactor::new().unwrap();
    let cases: Vec<(ProcessBuilder, SpawnStep)> = vec![
        (ProcessBuilder::new("cmd").uid(0), SpawnStep::Unsupported),
        (ProcessBuilder::new("cmd").gid(0), SpawnStep::Unsupported),
        (
            ProcessBuilder::new("cmd").pty(Default::default()),
            SpawnStep::Unsupported,
        ),
        (
            ProcessBuilder::new("cmd").child_fd(3, ChildFd::Read),
            SpawnStep::Unsupported,
        ),
        (
            ProcessBuilder::new("cmd").child_fd(1, ChildFd::Write),
            SpawnStep::Unsupported,
        ),
        (
            ProcessBuilder::new("cmd").child_fd(0, ChildFd::Inherit(5)),
            SpawnStep::Unsupported,
        ),
        (
            ProcessBuilder::new("cmd").arg("a\0b"),
            SpawnStep::InvalidInput,
        ),
        (
            ProcessBuilder::new("cmd").arg0("has\"quote"),
            SpawnStep::InvalidInput,
        ),
        (
            ProcessBuilder::new("torsion-no-such-program-xyz"),
            SpawnStep::Exec,
        ),
        (
            ProcessBuilder::new("cmd").cwd(r"C:\torsion\no\such\dir"),
            SpawnStep::Chdir,
        ),
    ];
    for (b, step) in cases {
        let (proto, rec) = AccumulatingProcessProtocol::new();
        match b.spawn(&r, Box::new(proto)) {
            Ok(_) => panic!("{b:?} spawned"),
            Err(e) => {
                assert_eq!(e.step, step, "{b:?}: {e}");
                assert!(!e.to_string().is_empty());
            }
        }
        assert!(rec.events().is_empty(), "no callback for a failed spawn");
    }
}

#[test]
fn m1_null_and_missing_handles_and_inherited_ones() {
    let mut map = BTreeMap::new();
    map.insert(0, ChildFd::Null);
    map.insert(1, ChildFd::Read);
    map.insert(2, ChildFd::Inherit(2));
    let b = ProcessBuilder::new("cmd")
        .args(["/c", "echo only-stdout"])
        .child_fds(map);
    let (_r, _p, rec) = run(&b);
    assert!(String::from_utf8_lossy(&rec.output(1)).contains("only-stdout"));
    assert_eq!(
        rec.lost_fds(),
        [1],
        "only the pipe the reactor made is reported"
    );
    assert_eq!(rec.ended(), Some(ExitReason::ProcessDone));
}

#[test]
fn f6_callbacks_come_from_the_loop_and_reactor_process_works() {
    let r = Reactor::new().unwrap();
    let (proto, rec) = AccumulatingProcessProtocol::new();
    let t = r
        .spawn_process(
            &ProcessBuilder::new("cmd").args(["/c", "exit 0"]),
            Box::new(proto),
        )
        .unwrap();
    assert!(t.pid().is_some(), "F1: pid set in connection_made");
    assert_eq!(rec.events().len(), 1, "only connection_made inside spawn");
    let rc = rec.clone();
    r.run_until(|| rc.ended().is_some(), DEADLINE).unwrap();
    assert_eq!(rec.ended(), Some(ExitReason::ProcessDone));
}

/// A protocol that closes stdout as soon as it is connected: its loss is reported from
/// the loop, nothing arrives on it afterwards, and `process_ended` still comes.
struct CloseStdout(Rc<RefCell<Vec<String>>>);

impl ProcessProtocol for CloseStdout {
    fn connection_made(&mut self, t: Rc<dyn ProcessTransport>) {
        t.close_stdout().unwrap();
        t.close_child_fd(1).unwrap();
        t.close_child_fd(7).unwrap();
        self.0.borrow_mut().push("made".into());
    }
    fn child_data_received(&mut self, fd: i32, _data: &[u8]) {
        self.0.borrow_mut().push(format!("data {fd}"));
    }
    fn child_connection_lost(&mut self, fd: i32) {
        self.0.borrow_mut().push(format!("lost {fd}"));
    }
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.borrow_mut().push("ended".into());
    }
}

#[test]
fn i3_close_child_fd_on_an_output_pipe() {
    let r = Reactor::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let b = helper("split", &[]);
    let _p = b.spawn(&r, Box::new(CloseStdout(log.clone()))).unwrap();
    let l = log.clone();
    r.run_until(|| l.borrow().last().is_some_and(|s| s == "ended"), DEADLINE)
        .unwrap();
    let got = log.borrow().clone();
    assert_eq!(got.first().map(String::as_str), Some("made"));
    assert!(!got.iter().any(|s| s == "data 1"), "{got:?}");
    assert_eq!(got.iter().filter(|s| *s == "lost 1").count(), 1, "{got:?}");
}

#[test]
fn g2_non_utf8_free_arguments_survive() {
    // Lone surrogates are the Windows analogue of non-UTF-8 bytes: they cannot be read by
    // the helper's `std::env::args` (which wants Unicode), so this checks only that
    // quoting such an argument does not fail.
    use std::os::windows::ffi::OsStringExt;
    let odd = OsString::from_wide(&[0xD800, b'a' as u16]);
    let r = Reactor::new().unwrap();
    let (proto, rec) = AccumulatingProcessProtocol::new();
    (ProcessBuilder::new("cmd")
        .args([OsString::from("/c"), OsString::from("exit 0")])
        .arg(odd))
    .spawn(&r, Box::new(proto))
    .unwrap();
    let rc = rec.clone();
    r.run_until(|| rc.ended().is_some(), DEADLINE).unwrap();
}
