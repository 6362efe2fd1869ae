//! sd_notify to a NOTIFY_SOCKET listener in the test (path and abstract), the watchdog on
//! the test kit's Clock, and unix: endpoints' lock file.
#![cfg(unix)]

mod util;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use torsion_daemon::endpoints::{self, EndpointError};
use torsion_daemon::systemd::{Notifier, Watchdog};
use torsion_testing::Clock;
use torsion_transport::factory_fn;
use util::{Quiet, TempDir, listen_quiet};

fn recv(sock: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 256];
    sock.recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn notify_messages_reach_a_path_socket() {
    let d = TempDir::new("notify");
    let path = d.join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = Notifier::new(path.to_str().unwrap()).unwrap();
    n.ready().unwrap();
    n.status("serving\n3 clients").unwrap();
    n.stopping().unwrap();
    assert_eq!(recv(&sock).as_deref(), Some("READY=1"));
    assert_eq!(recv(&sock).as_deref(), Some("STATUS=serving 3 clients"));
    assert_eq!(recv(&sock).as_deref(), Some("STOPPING=1"));
    drop(sock);
    // Nobody listening: a typed error naming the socket.
    let e = n.ready().unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot notify systemd at {}", path.display())),
        "{e}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn notify_messages_reach_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("torsion-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    Notifier::new(&format!("@{name}")).unwrap().ready().unwrap();
    assert_eq!(recv(&sock).as_deref(), Some("READY=1"));
}

#[test]
fn watchdog_pings_every_half_interval_on_the_clock() {
    let d = TempDir::new("watchdog");
    let path = d.join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let clock = Clock::new();
    let dog = Watchdog::start(
        &clock,
        Notifier::new(path.to_str().unwrap()).unwrap(),
        Duration::from_secs(10),
    );
    assert_eq!(dog.pings(), 1, "one at once");
    clock.advance(Duration::from_millis(4_999));
    assert_eq!(dog.pings(), 1);
    clock.advance(Duration::from_millis(1));
    assert_eq!(dog.pings(), 2, "then every 5 s");
    clock.advance(Duration::from_secs(5));
    assert_eq!(dog.pings(), 3);
    for _ in 0..3 {
        assert_eq!(recv(&sock).as_deref(), Some("WATCHDOG=1"));
    }
    drop(dog);
    clock.advance(Duration::from_secs(60));
    assert_eq!(recv(&sock), None, "no ping after the watchdog is dropped");
    assert!(clock_is_idle(&clock));
}

fn clock_is_idle(clock: &Clock) -> bool {
    torsion_transport::ReactorTime::delayed_calls(clock).is_empty()
}

#[test]
fn unix_endpoint_lock_file_mode_and_cleanup() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("unix");
    let path = d.join("s.sock");
    let reactor = torsion_reactor::Reactor::new().unwrap();
    let desc = format!("unix:{}:mode=0600", path.display());
    let port = listen_quiet(&reactor, &desc);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
    // A second server on the same path: the lock says no, at once.
    let err = endpoints::listen(&reactor, &desc, factory_fn(|_| Box::new(Quiet))).unwrap_err();
    assert!(matches!(err, EndpointError::Listen { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("another server holds the lock file"),
        "{err}"
    );
    port.stop_listening();
    assert!(
        !path.exists(),
        "the socket file is removed when listening stops"
    );
    // A stale socket file (its server died without cleaning up) is replaced under the lock.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let port = listen_quiet(&reactor, &desc);
    port.stop_listening();
    // Without the lock file, as Twisted, an existing file is an error.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = endpoints::listen(
        &reactor,
        &format!("{desc}:lockfile=0"),
        factory_fn(|_| Box::new(Quiet)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot listen"), "{err}");
}

#[test]
fn listen_rejects_the_wrong_kind() {
    let reactor = torsion_reactor::Reactor::new().unwrap();
    let err = endpoints::listen(&reactor, "udp:0", factory_fn(|_| Box::new(Quiet))).unwrap_err();
    assert!(err.to_string().contains("use listen_datagram"), "{err}");
    let err =
        endpoints::listen(&reactor, "tcp:99999", factory_fn(|_| Box::new(Quiet))).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"endpoint "tcp:99999": port: "99999" is not a port number (0-65535)"#
    );
}

/// A plugin whose code panics: caught, reported as typed errors.
#[derive(Debug)]
struct Panicky;

impl endpoints::ServerPlugin for Panicky {
    fn prefix(&self) -> &str {
        "panicky"
    }
    fn check(&self, fields: &endpoints::Fields) -> Result<(), endpoints::ParseProblem> {
        if fields.positional().first().map(String::as_str) == Some("boom") {
            panic!("check exploded");
        }
        Ok(())
    }
    fn listen(
        &self,
        _: &torsion_reactor::Reactor,
        _: &endpoints::Fields,
        _: std::rc::Rc<dyn torsion_transport::Factory>,
    ) -> Result<std::rc::Rc<dyn torsion_transport::ListeningPort>, EndpointError> {
        panic!("listen exploded")
    }
}

#[test]
fn plugins_extend_the_parser_and_their_panics_are_caught() {
    let _ = endpoints::register_server_plugin(std::sync::Arc::new(Panicky));
    assert!(endpoints::register_server_plugin(std::sync::Arc::new(Panicky)).is_err());
    let e = endpoints::ServerEndpoint::parse("panicky:x\\:y:a=1").unwrap();
    assert_eq!(e.to_string(), "panicky:x\\:y:a=1");
    let err = endpoints::ServerEndpoint::parse("panicky:boom").unwrap_err();
    assert!(
        err.to_string().contains("check panicked: check exploded"),
        "{err}"
    );
    let reactor = torsion_reactor::Reactor::new().unwrap();
    let err =
        endpoints::listen(&reactor, "panicky:1", factory_fn(|_| Box::new(Quiet))).unwrap_err();
    assert!(
        err.to_string().contains("listen panicked: listen exploded"),
        "{err}"
    );
}
