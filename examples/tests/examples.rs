//! Runs the example binaries.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::{Guard, output, wait_bounded};

#[test]
fn tour_runs_and_exits_zero() {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_tour"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tour");
    let mut guard = Guard(child);
    let status = wait_bounded(&mut guard.0, Duration::from_secs(10));
    let mut out = String::new();
    if let Some(mut s) = guard.0.stdout.take() {
        s.read_to_string(&mut out).unwrap();
    }
    assert!(status.success(), "tour failed: {status}\n{out}");
    assert!(out.contains("echo verified byte for byte"), "{out}");
    // It shows a LoopingCall and Deferreds, and ends from a Deferred's callback.
    assert!(out.contains("LoopingCall ticked"), "{out}");
    assert!(out.contains("its callback stopped the reactor"), "{out}");
    assert!(!out.contains("FAILED"));
    eprintln!("tour ran in {:?}", start.elapsed());
}

#[test]
fn echo_server_echoes_and_exits_zero_on_sigterm() {
    let child = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn echo-server");
    let mut guard = Guard(child);
    let mut line = String::new();
    let stdout = guard.0.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on tcp:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"hello, echo").unwrap();
    let mut buf = [0u8; 11];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello, echo");
    drop(s);
    let pid = i32::try_from(guard.0.id()).unwrap();
    // SAFETY: sending SIGTERM to our own child, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_bounded(&mut guard.0, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

const ECHO_SERVER: &str = env!("CARGO_BIN_EXE_echo-server");
const INETD: &str = env!("CARGO_BIN_EXE_inetd");
const TOUR: &str = env!("CARGO_BIN_EXE_tour");

#[test]
fn help_exits_zero_with_usage() {
    for (program, mentions) in [
        (ECHO_SERVER, "--unix"),
        (INETD, "PROGRAM"),
        (TOUR, "Usage: tour"),
    ] {
        let (code, out, err) = output(program, &["--help"]);
        assert_eq!(code, Some(0), "{program} --help: {err}");
        assert!(out.contains("Usage:"), "{program} --help printed {out:?}");
        assert!(out.contains(mentions), "{program} --help printed {out:?}");
    }
}

#[test]
fn an_unknown_option_is_named_and_exits_two() {
    for program in [ECHO_SERVER, INETD, TOUR] {
        let (code, _, err) = output(program, &["--bogus"]);
        assert_eq!(code, Some(2), "{program} --bogus: {err}");
        assert!(
            err.contains("unexpected argument '--bogus'") && err.contains("Usage:"),
            "{program} --bogus printed {err:?}"
        );
        assert!(!err.contains("needs a value"), "{err}");
    }
}

#[test]
fn a_bad_value_or_a_missing_program_is_explained() {
    let (code, _, err) = output(ECHO_SERVER, &["--port", "http"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("invalid value 'http' for '--port <N>'"),
        "{err}"
    );
    let (code, _, err) = output(INETD, &["--port", "0"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("<PROGRAM>"), "{err}");
}

#[test]
fn a_port_in_use_is_reported_in_display_form() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (program, args) in [
        (ECHO_SERVER, vec!["--port", &port]),
        (INETD, vec!["--port", &port, "--", "cat"]),
    ] {
        let (code, out, err) = output(program, &args);
        assert_eq!(code, Some(1), "{program}: {out}{err}");
        // echo-server names the endpoint it was given (`endpoint "tcp:port=N:..."`),
        // inetd the address.
        assert!(
            err.contains("error: ")
                && err.contains("cannot listen")
                && err.contains(port.as_str())
                && err.contains("Address already in use"),
            "{program} printed {err:?}"
        );
        assert!(!err.contains("Os {"), "Debug form: {err}");
    }
}

#[test]
fn tour_ends_by_saying_what_to_read_next() {
    let (code, out, err) = output(TOUR, &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    for doc in [
        "docs/ARCHITECTURE.md",
        "docs/CONTRACT.md",
        "README.md",
        "docs/guides/getting-results-out.md",
    ] {
        assert!(out.contains(doc), "{out}");
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(doc)
                .exists(),
            "the tour points at {doc}, which does not exist"
        );
    }
}
