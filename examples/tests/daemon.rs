//! echo-server and netcat as a daemon's user runs them: endpoints, systemd activation and
//! readiness, prefork workers, UDP, half-close.
#![cfg(unix)]

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::{Guard, wait_bounded};

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid of a child of ours (or of its children), not yet reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, sig) }, 0);
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

fn server(args: &[&str], env: &[(&str, &str)]) -> (Guard, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echo-server"));
    cmd.args(args).stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut guard = Guard(cmd.spawn().expect("spawn echo-server"));
    let stdout = guard.0.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let want = args
        .iter()
        .filter(|a| a.starts_with("--listen"))
        .count()
        .max(1);
    let mut lines = Vec::new();
    for _ in 0..want {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        lines.push(line.trim().to_owned());
    }
    (guard, lines)
}

fn addr_of(line: &str) -> String {
    line.rsplit_once("tcp:")
        .or_else(|| line.rsplit_once("udp:"))
        .map(|(_, a)| a.to_owned())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
}

fn echo_round_trip(addr: &str) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"half-closed").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(
        got, b"half-closed",
        "the echo is finished after a half-close, then closed"
    );
}

#[test]
fn bad_endpoint_exits_1_naming_the_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--listen", "tcp:port=x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        r#"echo-server: error: endpoint "tcp:port=x": port: "x" is not a port number (0-65535)"#
    );
    let out = Command::new(env!("CARGO_BIN_EXE_netcat"))
        .arg("tcp:host=x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port: missing"));
}

#[test]
fn listen_endpoints_tcp_and_udp_then_sigterm() {
    let (mut g, lines) = server(
        &[
            "--listen",
            "tcp:0:interface=127.0.0.1",
            "--listen",
            "udp:0:interface=127.0.0.1",
        ],
        &[],
    );
    echo_round_trip(&addr_of(&lines[0]));
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    u.send_to(b"datagram", addr_of(&lines[1])).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"datagram");
    signal(g.0.id(), libc::SIGTERM);
    assert!(wait_bounded(&mut g.0, Duration::from_secs(10)).success());
}

#[test]
fn netcat_relays_to_localhost_and_exits_zero() {
    let (mut g, lines) = server(&["--port", "0"], &[]);
    let port = addr_of(&lines[0]).rsplit_once(':').unwrap().1.to_owned();
    let mut nc = Command::new(env!("CARGO_BIN_EXE_netcat"))
        .arg(format!("tcp:host=localhost:port={port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = nc.stdin.take().unwrap();
    let p = payload.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&p));
    let mut out = Vec::new();
    nc.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    let mut nc = Guard(nc);
    assert!(wait_bounded(&mut nc.0, Duration::from_secs(20)).success());
    assert_eq!(out.len(), payload.len());
    assert!(out == payload);
    let refused = Command::new(env!("CARGO_BIN_EXE_netcat"))
        .arg("tcp:host=127.0.0.1:port=1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused"));
    signal(g.0.id(), libc::SIGTERM);
    assert!(wait_bounded(&mut g.0, Duration::from_secs(10)).success());
}

fn notify_listener() -> (tempdir::Dir, UnixDatagram, String) {
    let dir = tempdir::Dir::new("notify");
    let path = dir.0.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    (dir, sock, path.to_string_lossy().into_owned())
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "torsion-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn ready_then_sigterm_right_away_is_graceful_with_stopping() {
    let (_dir, sock, path) = notify_listener();
    let (mut g, _) = server(&["--port", "0"], &[("NOTIFY_SOCKET", &path)]);
    assert_eq!(recv(&sock), "READY=1");
    // At once after READY: the signal handling must already be in place.
    signal(g.0.id(), libc::SIGTERM);
    assert_eq!(recv(&sock), "STOPPING=1");
    let status = wait_bounded(&mut g.0, Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[test]
fn watchdog_pings_when_asked() {
    let (_dir, sock, path) = notify_listener();
    let (mut g, _) = server(
        &["--port", "0"],
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "200000")],
    );
    assert_eq!(recv(&sock), "READY=1");
    for _ in 0..3 {
        assert_eq!(recv(&sock), "WATCHDOG=1");
    }
    signal(g.0.id(), libc::SIGTERM);
    assert!(wait_bounded(&mut g.0, Duration::from_secs(10)).success());
}

fn have_socket_activate() -> bool {
    let ok = Command::new("systemd-socket-activate")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "SKIPPED: systemd-socket-activate not found (Debian package systemd; .ci/run installs it)"
        );
    }
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn under_systemd_socket_activate() {
    if !have_socket_activate() {
        return;
    }
    let (_dir, sock, path) = notify_listener();
    let port = free_port();
    let mut g = Guard(
        Command::new("systemd-socket-activate")
            .args(["-l", &format!("127.0.0.1:{port}"), "--fdname=echo"])
            .args(["-E", &format!("NOTIFY_SOCKET={path}")])
            .arg(env!("CARGO_BIN_EXE_echo-server"))
            .args(["--listen", "systemd:domain=INET:name=echo"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn systemd-socket-activate"),
    );
    // systemd-socket-activate execs the server on the first connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no listener: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"activated").unwrap();
    let mut buf = [0u8; 9];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"activated");
    assert_eq!(recv(&sock), "READY=1");
    signal(g.0.id(), libc::SIGTERM);
    assert_eq!(recv(&sock), "STOPPING=1");
    let status = wait_bounded(&mut g.0, Duration::from_secs(10));
    let mut err = String::new();
    g.0.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status}: {err}");
}

#[test]
fn activation_for_another_pid_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--listen", "systemd:domain=INET:index=0"])
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("are for pid 1, not for this process"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args(["--listen", "systemd:domain=INET:index=0"])
        .env_remove("LISTEN_FDS")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LISTEN_FDS is not set"));
}

fn children(pid: u32) -> Vec<u32> {
    let out = Command::new("ps")
        .args(["--ppid", &pid.to_string(), "-o", "pid="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn prefork_replaces_a_dead_worker_and_stops_all_on_sigterm() {
    let (mut g, lines) = server(
        &["--listen", "tcp:0:interface=127.0.0.1", "--workers", "2"],
        &[],
    );
    let parent = g.0.id();
    wait_for("2 workers", || children(parent).len() == 2);
    let first = children(parent);
    echo_round_trip(&addr_of(&lines[0]));
    signal(first[0], libc::SIGKILL);
    wait_for("a replacement", || {
        let now = children(parent);
        now.len() == 2 && !now.contains(&first[0])
    });
    let workers = children(parent);
    for _ in 0..4 {
        echo_round_trip(&addr_of(&lines[0]));
    }
    signal(parent, libc::SIGTERM);
    assert!(wait_bounded(&mut g.0, Duration::from_secs(15)).success());
    // Reaped by the parent before it exited: neither running nor a zombie.
    for w in workers {
        assert!(!alive(w), "worker {w} outlived the parent");
    }
}

#[test]
fn prefork_workers_die_with_a_killed_parent() {
    let (mut g, _) = server(
        &["--listen", "tcp:0:interface=127.0.0.1", "--workers", "2"],
        &[],
    );
    let parent = g.0.id();
    wait_for("2 workers", || children(parent).len() == 2);
    let workers = children(parent);
    signal(parent, libc::SIGKILL);
    let _ = wait_bounded(&mut g.0, Duration::from_secs(10));
    // PR_SET_PDEATHSIG: SIGTERM to each worker; they exit (and init reaps them).
    wait_for("the workers to end", || workers.iter().all(|w| !alive(*w)));
}

#[test]
fn udp_under_systemd_socket_activate() {
    if !have_socket_activate() {
        return;
    }
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut g = Guard(
        Command::new("systemd-socket-activate")
            .args(["-d", "-l", &format!("127.0.0.1:{port}")])
            .arg(env!("CARGO_BIN_EXE_echo-server"))
            .args(["--listen", "systemd:domain=INET:index=0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn systemd-socket-activate"),
    );
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // The first datagram starts the server; resend until the echo comes back.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64];
    loop {
        let _ = u.send_to(b"activated datagram", ("127.0.0.1", port));
        if let Ok((n, _)) = u.recv_from(&mut buf) {
            assert_eq!(&buf[..n], b"activated datagram");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no UDP echo from the activated server"
        );
    }
    signal(g.0.id(), libc::SIGTERM);
    assert!(wait_bounded(&mut g.0, Duration::from_secs(10)).success());
}
