//! `run --pty` in a real terminal: a detached tmux session of a fixed size runs a shell, the
//! test types into it with `send-keys` and reads the screen with `capture-pane`. Polling
//! the screen is the event wait here (tmux has no "screen changed" notification for a
//! client that is not attached): short intervals, a deadline, and the screen in the
//! failure message.
//!
//! Skipped, with a loud message, where tmux is not installed (`.ci/run` installs it).

// Unix only: it drives `run --pty` in a tmux terminal and reads /proc.
#![cfg(unix)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// A tmux server of our own (`-L`, no config file), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session "t" of `cols`×`rows` running `sh` with a plain prompt; `None`
    /// (after a loud message) if tmux is not installed.
    fn start(name: &str, cols: u16, rows: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!();
            eprintln!("##########################################################################");
            eprintln!("SKIPPED {name}: tmux is not installed (apt-get install -y tmux)");
            eprintln!("##########################################################################");
            return None;
        }
        let t = Tmux {
            socket: format!("torsion-{name}-{}", std::process::id()),
        };
        let out = t.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            "env PS1='$ ' sh",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        t.wait_for("the first prompt", |s| s.contains('$'));
        Some(t)
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    /// Type `line` and press Enter.
    fn type_line(&self, line: &str) {
        let out = self.tmux(&["send-keys", "-t", "t", "-l", line]);
        assert!(out.status.success(), "send-keys: {out:?}");
        let out = self.tmux(&["send-keys", "-t", "t", "Enter"]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Poll the screen until `cond` holds; panic with the screen after [`DEADLINE`].
    fn wait_for(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if cond(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{what} did not appear within {DEADLINE:?}; the screen:\n{screen}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Pid of the process running in the pane's shell (the `run` we started), waiting for
    /// it to appear; panics after [`DEADLINE`].
    fn child_of_pane(&self) -> u32 {
        let start = Instant::now();
        loop {
            if let Some(pid) = self.try_child_of_pane() {
                return pid;
            }
            assert!(start.elapsed() < DEADLINE, "no process in the pane's shell");
            std::thread::sleep(POLL);
        }
    }

    fn try_child_of_pane(&self) -> Option<u32> {
        let out = self.tmux(&["display-message", "-p", "-t", "t", "#{pane_pid}"]);
        let shell: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn run_bin() -> &'static str {
    env!("CARGO_BIN_EXE_run")
}

/// Start `run --pty -- sh` in the pane, after saving the terminal's settings to compare
/// at the end; wait for the child's prompt.
fn start_run(t: &Tmux, tag: &str) {
    t.type_line(&format!("stty -g > /tmp/torsion-stty-{tag}"));
    t.type_line(&format!(
        "{} --pty -- env PS1='ch''ild$ ' sh; echo \"code=$?\"",
        run_bin()
    ));
    // The typed line spells the prompt with quotes inside (`ch''ild$`), so only the child's
    // shell printing its prompt matches: matching the echoed command line would let a test
    // signal `run` before it has even started.
    t.wait_for("the child's prompt", |s| s.contains("child$"));
}

/// After `run` exited with `code`: the pane's terminal has its settings back.
fn assert_restored(t: &Tmux, tag: &str, code: i32) {
    t.wait_for(&format!("run's exit code {code}"), |s| {
        s.contains(&format!("code={code}"))
    });
    let file = format!("/tmp/torsion-stty-{tag}");
    t.type_line(&format!(
        "stty -g | cmp -s - {file} && echo \"same-$((40+2))\"; stty -a | tr ' ' '\\n' | grep -x -e -icanon -e icanon -e -echo -e echo | tr '\\n' ' '; echo :flags"
    ));
    t.wait_for("the terminal settings restored", |s| {
        s.contains("same-42") && s.contains("icanon echo :flags")
    });
    let _ = std::fs::remove_file(file);
}

#[test]
fn run_pty_interactive_session_resize_and_restore() {
    let Some(t) = Tmux::start("session", 100, 30) else {
        return;
    };
    start_run(&t, &format!("session-{}", std::process::id()));
    // A command typed into the child's shell runs there, on its own terminal.
    t.type_line("echo \"hello-$((6*7))\"; test -t 0 && echo on-a-tty");
    t.wait_for("the command's output", |s| {
        s.contains("hello-42") && s.contains("on-a-tty")
    });
    // The child's terminal has our window size...
    t.type_line("stty size");
    // The output may follow a prompt on its line when the keys were echoed before it.
    let printed = |size: &'static str| move |s: &str| s.lines().any(|l| l.ends_with(size));
    t.wait_for("30 100 from stty size", printed("30 100"));
    // ...and follows it: tmux resizes the pane, run gets SIGWINCH and resizes the PTY.
    let out = t.tmux(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert!(out.status.success(), "resize-window: {out:?}");
    t.type_line("stty size");
    t.wait_for("40 120 from stty size", printed("40 120"));
    t.type_line("exit 3");
    assert_restored(&t, &format!("session-{}", std::process::id()), 3);
}

#[test]
fn run_pty_restores_the_terminal_when_the_child_is_killed() {
    let Some(t) = Tmux::start("killed", 80, 24) else {
        return;
    };
    let tag = format!("killed-{}", std::process::id());
    start_run(&t, &tag);
    t.type_line("kill -KILL $$");
    assert_restored(&t, &tag, 128 + 9);
}

#[test]
fn run_pty_restores_the_terminal_on_sigterm() {
    let Some(t) = Tmux::start("sigterm", 80, 24) else {
        return;
    };
    let tag = format!("sigterm-{}", std::process::id());
    start_run(&t, &tag);
    let pid = t.child_of_pane();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // An interactive shell ignores SIGTERM; run then hangs the terminal up (SIGHUP).
    assert_restored(&t, &tag, 128 + 1);
}

#[test]
fn issue_10_run_pty_on_a_terminal_reporting_zero_rows_and_cols_uses_24_by_80() {
    let Some(t) = Tmux::start("zero", 100, 30) else {
        return;
    };
    t.type_line(&format!(
        "stty rows 0 cols 0; {} --pty -- sh -c 'echo size=$(stty size)'; echo \"exit=$(($?+1000))\"",
        run_bin()
    ));
    let screen = t.wait_for("run's exit code", |s| s.contains("exit=1"));
    assert!(
        screen.contains("size=24 80") && screen.contains("exit=1000"),
        "the screen:\n{screen}"
    );
}

/// Runs `run` with `args`, `input` on a pipe as its stdin, bounded in time.
fn run_piped(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(run_bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("write run's stdin");
    }
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("run {args:?} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(POLL);
    }
    child.wait_with_output().expect("run's output")
}

#[test]
fn run_pty_with_piped_stdin_relays_and_ends_input_with_the_eof_key() {
    // Not a terminal: no raw mode; our stdin's EOF becomes ^D, which ends `cat`.
    let out = run_piped(
        &[
            "--pty",
            "--rows",
            "5",
            "--cols",
            "7",
            "--",
            "sh",
            "-c",
            "stty size; cat; exit 4",
        ],
        b"abc\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{text:?} {out:?}");
    assert!(text.contains("5 7\r\n"), "the requested size: {text:?}");
    // The terminal echoes the line, then cat writes it back.
    assert_eq!(text.matches("abc\r\n").count(), 2, "{text:?}");
}

#[test]
fn run_pty_exit_codes() {
    let out = run_piped(&["--pty", "--", "sh", "-c", "kill -TERM $$"], b"");
    assert_eq!(out.status.code(), Some(128 + 15), "{out:?}");
    let out = run_piped(&["--pty", "--", "/nonexistent/program"], b"");
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    let out = run_piped(&["--rows", "3", "--", "true"], b"");
    assert_eq!(out.status.code(), Some(2), "--rows without --pty: {out:?}");
}
