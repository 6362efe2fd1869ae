//! Socket activation for real, under `systemd-socket-activate` (Debian's `systemd`
//! package): the test re-runs itself as the activated service, which reports what it
//! found. `harness = false`: the child removes environment variables and owns fd 3.

#[cfg(not(unix))]
fn main() {
    println!("activation: SKIPPED: socket activation is Unix only");
}

#[cfg(unix)]
use std::io::{Read, Write};
#[cfg(unix)]
use std::net::TcpStream;
#[cfg(unix)]
use std::process::{Command, Stdio};
#[cfg(unix)]
use std::time::{Duration, Instant};

#[cfg(unix)]
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
#[cfg(unix)]
use torsion_daemon::endpoints;
#[cfg(unix)]
use torsion_daemon::systemd::ListenFds;
#[cfg(unix)]
use torsion_transport::{Protocol, factory_fn};

#[cfg(unix)]
const CHILD: &str = "TORSION_ACTIVATION_CHILD";

#[cfg(unix)]
struct Quiet;
#[cfg(unix)]
impl Protocol for Quiet {
    fn data_received(&mut self, _: &[u8]) {}
}

#[cfg(unix)]
/// The activated service: print what it found, one `key=value` a line.
fn child() -> Result<(), Box<dyn std::error::Error>> {
    let fds = ListenFds::from_env()?;
    println!("count={} names={}", fds.len(), fds.names().join(","));
    println!(
        "env={}",
        if std::env::var_os("LISTEN_FDS").is_none() && std::env::var_os("LISTEN_PID").is_none() {
            "removed"
        } else {
            "present"
        }
    );
    let flags = FdFlag::from_bits_truncate(fcntl(3, FcntlArg::F_GETFD)?);
    println!("cloexec={}", flags.contains(FdFlag::FD_CLOEXEC));
    let out = Command::new("sh")
        .args([
            "-c",
            "echo \"${LISTEN_FDS:-none}\"; [ -e /proc/self/fd/3 ] && echo open || echo closed",
        ])
        .output()?;
    println!(
        "child_sees={}",
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(",")
    );
    let reactor = torsion_reactor::Reactor::new()?;
    let port = endpoints::listen(
        &reactor,
        "systemd:domain=INET:name=web",
        factory_fn(|_| Box::new(Quiet)),
    )?;
    println!("listen={}", port.host());
    let err = endpoints::listen(
        &reactor,
        "systemd:domain=INET6:index=0",
        factory_fn(|_| Box::new(Quiet)),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    println!("wrong_domain={err}");
    let err = endpoints::listen(
        &reactor,
        "systemd:domain=INET:name=nope",
        factory_fn(|_| Box::new(Quiet)),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    println!("wrong_name={err}");
    port.stop_listening();
    Ok(())
}

#[cfg(unix)]
fn main() {
    if std::env::var_os(CHILD).is_some() {
        if let Err(e) = child() {
            println!("error={e}");
        }
        return;
    }
    let ok = Command::new("systemd-socket-activate")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!(
            "activation: SKIPPED: systemd-socket-activate not found (Debian package systemd; .ci/run installs it)"
        );
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exe = std::env::current_exe().unwrap();
    let mut sa = Command::new("systemd-socket-activate")
        .args([
            "-l",
            &format!("127.0.0.1:{port}"),
            "--fdname=web",
            "-E",
            &format!("{CHILD}=1"),
        ])
        .arg(&exe)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn systemd-socket-activate");
    // It starts the service on the first connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no listener: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let mut out = String::new();
    sa.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    drop(conn);
    let status = sa.wait().unwrap();
    let _ = std::io::stdout().flush();
    let expect = [
        "count=1 names=web",
        "env=removed",
        "cloexec=true",
        "child_sees=none,closed",
        &format!("listen=tcp:127.0.0.1:{port}"),
        "wrong_domain=endpoint \"systemd:domain=INET6:index=0\": fd 3 is an INET socket, not INET6",
        "wrong_name=endpoint \"systemd:domain=INET:name=nope\": name \"nope\": systemd passed no socket of that name (names: web)",
    ];
    for line in expect {
        assert!(
            out.lines().any(|l| l == line),
            "missing {line:?} in:\n{out}"
        );
    }
    assert!(status.success(), "{status}");
    println!("activation: ok ({} checks)", expect.len());
}
