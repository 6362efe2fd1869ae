//! Listening and connecting through endpoint strings, for real: Unix clients (and their
//! lock-file check), UDP, SO_REUSEPORT binds, wrong kinds.
#![cfg(unix)]

mod util;

use std::net::UdpSocket;
use std::rc::Rc;
use std::time::Duration;

use torsion_daemon::endpoints::{self, BindOptions, ServerEndpoint};
use torsion_reactor::Reactor;
use torsion_transport::{Address, DatagramProtocol, DatagramTransport, factory_fn};
use util::{Quiet, TempDir, assert_refused, connect, listen_quiet};

#[test]
fn unix_client_endpoint() {
    let d = TempDir::new("ep-unix");
    let path = d.join("s.sock");
    let reactor = Reactor::new().unwrap();
    let port = listen_quiet(&reactor, &format!("unix:{}", path.display()));
    let t = connect(
        &reactor,
        &format!("unix:path={}:lockfile=1", path.display()),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    t.lose_connection();
    port.stop_listening();
    // Nobody there: refused, typed.
    assert_refused(&reactor, &format!("unix:path={}", path.display()));
    // A server without the lock file: lockfile=1 refuses to connect.
    let port = listen_quiet(&reactor, &format!("unix:{}:lockfile=0", path.display()));
    assert_refused(
        &reactor,
        &format!("unix:path={}:lockfile=1", path.display()),
    );
    port.stop_listening();
}

struct UdpEcho(Option<Rc<dyn DatagramTransport>>);
impl DatagramProtocol for UdpEcho {
    fn start_protocol(&mut self, t: Rc<dyn DatagramTransport>) {
        self.0 = Some(t);
    }
    fn datagram_received(&mut self, data: &[u8], from: Address) {
        if let Some(t) = &self.0 {
            let _ = t.write(data, &from);
        }
    }
}

#[test]
fn udp_endpoint_echoes() {
    let reactor = Reactor::new().unwrap();
    let port = endpoints::listen_datagram(
        &reactor,
        "udp:0:interface=127.0.0.1",
        Box::new(UdpEcho(None)),
    )
    .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_nonblocking(true).unwrap();
    client.send_to(b"ping", addr).unwrap();
    let mut buf = [0u8; 16];
    let mut got = None;
    reactor
        .run_until(
            || {
                if let Ok((n, _)) = client.recv_from(&mut buf) {
                    got = Some(buf[..n].to_vec());
                }
                got.is_some()
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(got.as_deref(), Some(&b"ping"[..]));
    let err = endpoints::listen_datagram(&reactor, "tcp:0", Box::new(UdpEcho(None))).unwrap_err();
    assert!(err.to_string().contains("not a datagram endpoint"), "{err}");
}

#[test]
fn reuse_port_binds_twice_and_plain_binds_do_not() {
    let first = ServerEndpoint::parse("tcp:0:interface=127.0.0.1")
        .unwrap()
        .bind(&BindOptions::new().with_reuse_port(true))
        .unwrap();
    let n = first.local_address().port().unwrap();
    let again = ServerEndpoint::parse(&format!("tcp:{n}:interface=127.0.0.1")).unwrap();
    let second = again
        .bind(&BindOptions::new().with_reuse_port(true))
        .unwrap();
    assert_eq!(second.local_address().port(), Some(n));
    let err = again.bind(&BindOptions::new()).unwrap_err();
    assert!(err.to_string().contains("cannot listen"), "{err}");
    // Each reactor adopts its own.
    let reactor = Reactor::new().unwrap();
    let p1 = first
        .listen(&reactor, factory_fn(|_| Box::new(Quiet)))
        .unwrap();
    let p2 = second
        .listen(&reactor, factory_fn(|_| Box::new(Quiet)))
        .unwrap();
    assert_eq!(p1.host(), p2.host());
    p1.stop_listening();
    p2.stop_listening();
}
