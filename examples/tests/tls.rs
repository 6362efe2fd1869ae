//! echo-server and netcat over TLS as a user runs them: certificates made with the
//! `openssl` command, `echo-server --listen ssl:...`, `netcat tls:...`.
#![cfg(all(unix, feature = "tls"))]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child if the test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("torsion-ex-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian package openssl; .ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`name.pem`) and, signed by it, a certificate for localhost and 127.0.0.1
/// (`cert.pem`, `key.pem`), as an administrator would make them.
fn certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=example CA",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "1",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "the child did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// echo-server on `ssl:0` (127.0.0.1): the guard and the port it printed.
fn tls_echo_server(dir: &Path) -> (Guard, u16) {
    let listen = format!(
        "ssl:0:privateKey={}:certKey={}:interface=127.0.0.1",
        dir.join("key.pem").display(),
        dir.join("cert.pem").display()
    );
    let mut g = Guard(
        Command::new(env!("CARGO_BIN_EXE_echo-server"))
            .args(["--listen", &listen])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(g.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    (g, port)
}

#[test]
fn netcat_over_tls_to_echo_server_verifies_and_relays() {
    let dir = Dir::new("relay");
    certificates(&dir.0);
    let (mut server, port) = tls_echo_server(&dir.0);
    let mut nc = Guard(
        Command::new(env!("CARGO_BIN_EXE_netcat"))
            .arg(format!(
                "tls:host=localhost:port={port}:trustRoots={}",
                dir.0.join("ca.pem").display()
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = nc.0.stdin.take().unwrap();
    let p = payload.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&p));
    let mut out = Vec::new();
    nc.0.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    let status = wait_bounded(&mut nc.0, Duration::from_secs(20));
    let mut err = String::new();
    nc.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "netcat failed: {err}");
    assert_eq!(out.len(), payload.len());
    assert!(out == payload, "the echo came back intact");
    // The same server also answers a trust-roots directory.
    let dir_roots = Dir::new("roots");
    std::fs::copy(dir.0.join("ca.pem"), dir_roots.0.join("ca.pem")).unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_netcat"))
        .arg(format!(
            "tls:host=127.0.0.1:port={port}:trustRoots={}",
            dir_roots.0.display()
        ))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // SAFETY: kill(2) on our own, not yet reaped child.
    let sent = unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);
    assert!(wait_bounded(&mut server.0, Duration::from_secs(10)).success());
}

#[test]
fn netcat_refuses_a_certificate_it_cannot_verify() {
    let dir = Dir::new("unknown-ca");
    certificates(&dir.0);
    let (_server, port) = tls_echo_server(&dir.0);
    // Another CA as the only root, then the system's roots: neither knows this server.
    let other = Dir::new("other-ca");
    openssl(
        &other.0,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "o.key",
            "-out",
            "o.pem",
            "-days",
            "2",
            "-subj",
            "/CN=other CA",
        ],
    );
    for endpoint in [
        format!(
            "tls:host=localhost:port={port}:trustRoots={}",
            other.0.join("o.pem").display()
        ),
        format!("tls:host=localhost:port={port}"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_netcat"))
            .arg(&endpoint)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{endpoint}: {err}");
        assert!(
            err.contains("certificate could not be verified") && err.contains("unknown issuer"),
            "{endpoint}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn ssl_endpoint_errors_name_the_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_echo-server"))
        .args([
            "--listen",
            "ssl:0:privateKey=/nonexistent/key.pem:interface=127.0.0.1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("echo-server: error: ") && err.contains("/nonexistent/key.pem"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_netcat"))
        .arg("tls:host=localhost:port=1:trustRoots=/nonexistent/ca.pem")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ca.pem"));
}
