//! UDP and Unix datagram ports (CONTRACT Q1–Q4).

mod util;

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::{DATAGRAM_BUDGET, Reactor};
use torsion_transport::{
    Address, DatagramError, DatagramProtocol, DatagramTransport, ListenOptions, MulticastInterface,
    ReactorUdp,
};
use util::DEADLINE;

#[derive(Default)]
struct Seen {
    started: usize,
    got: Vec<(Vec<u8>, Address)>,
    truncated: Vec<(usize, Option<usize>, Address)>,
    refused: usize,
    stopped: usize,
    write_errors: Vec<io::Error>,
}

type Shared = Rc<RefCell<Seen>>;

struct Proto {
    seen: Shared,
    transport: Option<Rc<dyn DatagramTransport>>,
    echo: bool,
    panic_on_start: bool,
}

fn proto(echo: bool) -> (Box<Proto>, Shared) {
    let seen = Shared::default();
    (
        Box::new(Proto {
            seen: seen.clone(),
            transport: None,
            echo,
            panic_on_start: false,
        }),
        seen,
    )
}

impl DatagramProtocol for Proto {
    fn start_protocol(&mut self, transport: Rc<dyn DatagramTransport>) {
        self.seen.borrow_mut().started += 1;
        self.transport = Some(transport);
        if self.panic_on_start {
            panic!("start_protocol fails on purpose");
        }
    }
    fn datagram_received(&mut self, data: &[u8], from: Address) {
        self.seen
            .borrow_mut()
            .got
            .push((data.to_vec(), from.clone()));
        if self.echo {
            if let Some(t) = &self.transport {
                if let Err(e) = t.write(data, &from) {
                    self.seen.borrow_mut().write_errors.push(e);
                }
            }
        }
    }
    fn datagram_truncated(&mut self, data: &[u8], size: Option<usize>, from: Address) {
        self.seen
            .borrow_mut()
            .truncated
            .push((data.len(), size, from));
    }
    fn connection_refused(&mut self) {
        self.seen.borrow_mut().refused += 1;
    }
    fn stop_protocol(&mut self) {
        self.seen.borrow_mut().stopped += 1;
    }
}

fn localhost(v6: bool) -> SocketAddr {
    if v6 {
        "[::1]:0".parse().unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    }
}

fn echo_round_trip(v6: bool) {
    let reactor = Reactor::new().unwrap();
    let (server_p, server_seen) = proto(true);
    let server = match reactor.listen_udp(localhost(v6), server_p) {
        Ok(s) => s,
        Err(e) if v6 => {
            eprintln!("SKIPPED: no IPv6 loopback here ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let (client_p, client_seen) = proto(false);
    let client = reactor.listen_udp(localhost(v6), client_p).unwrap();
    assert_eq!(server_seen.borrow().started, 1);
    for msg in [&b"one"[..], b"two", b""] {
        client.write(msg, &server.host()).unwrap();
    }
    reactor
        .run_until(|| client_seen.borrow().got.len() == 3, DEADLINE)
        .unwrap();
    let got: Vec<Vec<u8>> = client_seen
        .borrow()
        .got
        .iter()
        .map(|g| g.0.clone())
        .collect();
    assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec(), Vec::new()]);
    assert!(
        client_seen
            .borrow()
            .got
            .iter()
            .all(|g| g.1 == server.host())
    );
    assert!(
        server_seen
            .borrow()
            .got
            .iter()
            .all(|g| g.1 == client.host())
    );
    assert_eq!(server.datagrams_received(), 3);
    server.stop_listening();
    client.stop_listening();
}

#[test]
fn q1_echo_over_ipv4() {
    echo_round_trip(false);
}

#[test]
fn q1_echo_over_ipv6() {
    echo_round_trip(true);
}

#[test]
fn q1_generic_over_reactor_udp() {
    fn start<R: ReactorUdp>(r: &R, p: Box<dyn DatagramProtocol>) -> Rc<dyn DatagramTransport> {
        r.listen_udp("127.0.0.1:0".parse().unwrap(), p).unwrap()
    }
    let reactor = Reactor::new().unwrap();
    let (p, seen) = proto(false);
    let port = start(&reactor, p);
    assert_eq!(seen.borrow().started, 1);
    assert!(port.host().port().unwrap() > 0);
    port.stop_listening();
}

#[test]
fn q1_stop_listening_frees_the_port_and_stops_the_protocol_from_the_loop() {
    let reactor = Reactor::new().unwrap();
    let (p, seen) = proto(false);
    let port = reactor.listen_udp(localhost(false), p).unwrap();
    let addr = port.host().socket_addr().unwrap();
    port.stop_listening();
    port.stop_listening();
    assert!(!port.is_listening());
    assert_eq!(
        seen.borrow().stopped,
        0,
        "stop_protocol comes from the loop"
    );
    // The address is free at once.
    let (p2, _) = proto(false);
    let again = reactor.listen_udp(addr, p2).unwrap();
    reactor
        .run_until(|| seen.borrow().stopped == 1, DEADLINE)
        .unwrap();
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(seen.borrow().stopped, 1);
    let e = port.write(b"x", &again.host()).unwrap_err();
    assert_eq!(DatagramError::of(&e), Some(&DatagramError::Closed));
    again.stop_listening();
}

#[test]
fn q1_stop_protocol_comes_even_when_nobody_keeps_the_port() {
    let reactor = Reactor::new().unwrap();
    let seen = Shared::default();
    // A protocol that does not keep its transport.
    struct Forgetful(Shared);
    impl DatagramProtocol for Forgetful {
        fn datagram_received(&mut self, _: &[u8], _: Address) {}
        fn stop_protocol(&mut self) {
            self.0.borrow_mut().stopped += 1;
        }
    }
    let port = reactor
        .listen_udp(localhost(false), Box::new(Forgetful(seen.clone())))
        .unwrap();
    port.stop_listening();
    drop(port);
    reactor
        .run_until(|| seen.borrow().stopped == 1, DEADLINE)
        .unwrap();
}

#[test]
fn q1_wrong_addresses_are_typed_errors() {
    let reactor = Reactor::new().unwrap();
    let (p, _) = proto(false);
    let port = reactor.listen_udp(localhost(false), p).unwrap();
    let e = port
        .write(b"x", &Address::Unix(Some("/tmp/nowhere".into())))
        .unwrap_err();
    assert!(matches!(
        DatagramError::of(&e),
        Some(DatagramError::WrongAddressKind { .. })
    ));
    let e = port.write(
        b"x",
        &"[2001:db8::1]:53".parse::<SocketAddr>().unwrap().into(),
    );
    assert!(matches!(
        DatagramError::of(&e.unwrap_err()),
        Some(DatagramError::WrongAddressKind { .. })
    ));
    let e = port.write_connected(b"x").unwrap_err();
    assert_eq!(DatagramError::of(&e), Some(&DatagramError::NotConnected));
    let e = port
        .join_group(
            IpAddr::V6("ff02::1".parse().unwrap()),
            MulticastInterface::Any,
        )
        .unwrap_err();
    assert!(matches!(
        DatagramError::of(&e),
        Some(DatagramError::WrongAddressKind { .. })
    ));
    // An interface of the other kind is named in words, not in Debug form.
    let e = port
        .set_multicast_interface(MulticastInterface::Index(3))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "this datagram socket needs IPv4 interface addresses, not interface index 3"
    );
    port.stop_listening();
}

#[test]
fn q2_connected_udp_reports_refusal() {
    let reactor = Reactor::new().unwrap();
    // A port nobody listens on: bind, note it, close.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let target: Address = closed.local_addr().unwrap().into();
    drop(closed);
    let (p, seen) = proto(false);
    let port = reactor.listen_udp(localhost(false), p).unwrap();
    port.connect(&target).unwrap();
    assert_eq!(port.peer(), Some(target.clone()));
    let e = port.connect(&target).unwrap_err();
    assert_eq!(
        DatagramError::of(&e),
        Some(&DatagramError::AlreadyConnected)
    );
    let other: Address = "127.0.0.1:9".parse::<SocketAddr>().unwrap().into();
    let e = port.write(b"x", &other).unwrap_err();
    assert!(matches!(
        DatagramError::of(&e),
        Some(DatagramError::ConnectedElsewhere { .. })
    ));
    // The first datagram goes out; the ICMP refusal comes back as ECONNREFUSED on the next
    // receive (or send), and the protocol hears of it from the loop.
    let mut write_errors = 0;
    reactor
        .run_until(
            || {
                if seen.borrow().refused == 0 {
                    match port.write_connected(b"anyone?") {
                        Ok(()) => {}
                        Err(e) => {
                            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
                            write_errors += 1;
                        }
                    }
                }
                seen.borrow().refused > 0
            },
            DEADLINE,
        )
        .unwrap();
    assert!(port.is_listening(), "a refusal does not close the port");
    let _ = write_errors;
    port.stop_listening();
}

#[test]
fn q3_oversized_write_is_an_error() {
    let reactor = Reactor::new().unwrap();
    let (p, _) = proto(false);
    let port = reactor.listen_udp(localhost(false), p).unwrap();
    let e = port.write(&vec![7u8; 70_000], &port.host()).unwrap_err();
    #[cfg(unix)]
    assert_eq!(e.raw_os_error(), Some(libc::EMSGSIZE), "{e}");
    #[cfg(not(unix))]
    let _ = e;
    // The largest IPv4 UDP payload goes.
    port.write(&vec![7u8; 65_507], &port.host()).unwrap();
    port.stop_listening();
}

#[test]
fn q4_read_budget_yields_to_others() {
    let reactor = Reactor::new().unwrap();
    let (p, seen) = proto(false);
    let port = reactor.listen_udp(localhost(false), p).unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = port.host().socket_addr().unwrap();
    let n = DATAGRAM_BUDGET * 4;
    for i in 0..n {
        sender.send_to(&(i as u32).to_be_bytes(), to).unwrap();
    }
    reactor.iterate(Duration::from_secs(5)).unwrap();
    let first = seen.borrow().got.len();
    assert!(first > 0);
    assert!(
        first <= 2 * DATAGRAM_BUDGET,
        "one iteration read {first} datagrams (budget {DATAGRAM_BUDGET} per dispatch, two passes)"
    );
    // Level semantics: the rest comes on later iterations without new readiness.
    reactor
        .run_until(|| seen.borrow().got.len() == n, DEADLINE)
        .unwrap();
    let order: Vec<u32> = seen
        .borrow()
        .got
        .iter()
        .map(|g| u32::from_be_bytes(g.0[..4].try_into().unwrap()))
        .collect();
    assert_eq!(order, (0..n as u32).collect::<Vec<_>>());
    port.stop_listening();
}

#[test]
fn q1_a_panic_in_start_protocol_stops_the_port() {
    let reactor = Reactor::new().unwrap();
    let (mut p, seen) = proto(false);
    p.panic_on_start = true;
    let port = reactor.listen_udp(localhost(false), p).unwrap();
    assert!(!port.is_listening());
    reactor
        .run_until(|| seen.borrow().stopped == 1, DEADLINE)
        .unwrap();
}

#[test]
fn q1_broadcast_option() {
    let reactor = Reactor::new().unwrap();
    let (p, _) = proto(false);
    let port = reactor.listen_udp("0.0.0.0:0".parse().unwrap(), p).unwrap();
    assert!(!port.broadcast_allowed().unwrap());
    let bcast: Address = SocketAddr::new(Ipv4Addr::BROADCAST.into(), 9).into();
    #[cfg(unix)]
    {
        let e = port.write(b"x", &bcast).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    }
    port.set_broadcast_allowed(true).unwrap();
    assert!(port.broadcast_allowed().unwrap());
    match port.write(b"x", &bcast) {
        Ok(()) => {}
        Err(e) => {
            #[cfg(unix)]
            assert_ne!(e.raw_os_error(), Some(libc::EACCES), "{e}");
            eprintln!("broadcast allowed, but this host cannot send one: {e}");
        }
    }
    port.stop_listening();
}

#[test]
fn q1_multicast_on_loopback() {
    let reactor = Reactor::new().unwrap();
    let (p, seen) = proto(false);
    let port = reactor.listen_udp("0.0.0.0:0".parse().unwrap(), p).unwrap();
    let group = Ipv4Addr::new(239, 255, 77, 77);
    let lo = MulticastInterface::V4(Ipv4Addr::LOCALHOST);
    if let Err(e) = port.join_group(group.into(), lo) {
        eprintln!("SKIPPED: the kernel refuses to join {group} on 127.0.0.1: {e}");
        return;
    }
    port.set_multicast_interface(lo).unwrap();
    port.set_multicast_loopback(true).unwrap();
    assert!(port.multicast_loopback().unwrap());
    port.set_multicast_ttl(1).unwrap();
    assert_eq!(port.multicast_ttl().unwrap(), 1);
    let e = port.join_group(group.into(), lo).unwrap_err();
    assert!(e.raw_os_error().is_some(), "joining twice: {e}");
    let to: Address = SocketAddr::new(group.into(), port.host().port().unwrap()).into();
    if let Err(e) = port.write(b"to the group", &to) {
        eprintln!("SKIPPED: the kernel refuses to send to {group} over loopback: {e}");
        return;
    }
    let arrived = reactor.run_until(|| !seen.borrow().got.is_empty(), Duration::from_secs(2));
    if arrived.is_err() {
        eprintln!("SKIPPED: no multicast delivery over this host's loopback (no MULTICAST flag?)");
        return;
    }
    assert_eq!(seen.borrow().got[0].0, b"to the group");
    port.leave_group(group.into(), lo).unwrap();
    port.stop_listening();
}

#[test]
fn listen_options_reuse_port_lets_two_udp_sockets_share_a_port() {
    let reactor = Reactor::new().unwrap();
    let options = ListenOptions::new().with_reuse_port(true);
    let (p1, _) = proto(false);
    let first = match reactor.listen_udp_with(localhost(false), options.clone(), p1) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            eprintln!("SKIPPED: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let addr = first.host().socket_addr().unwrap();
    let (p2, _) = proto(false);
    let second = reactor.listen_udp_with(addr, options, p2).unwrap();
    assert_eq!(second.host(), first.host());
    let (p3, _) = proto(false);
    let e = reactor.listen_udp(addr, p3).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    first.stop_listening();
    second.stop_listening();
}

/// The reactor's UDP port against the shared datagram contract; the peer is a std socket.
struct UdpHarness {
    reactor: Reactor,
    peer: std::net::UdpSocket,
}

/// Every datagram `recv` has waiting (a non-blocking peer socket), in order.
fn drain(mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    got
}

impl torsion_testing::contract::DatagramHarness for UdpHarness {
    fn start(&mut self, protocol: Box<dyn DatagramProtocol>) -> Rc<dyn DatagramTransport> {
        let port = self.reactor.listen_udp(localhost(false), protocol).unwrap();
        self.peer
            .connect(port.host().socket_addr().unwrap())
            .unwrap();
        port
    }
    fn peer_address(&mut self) -> Address {
        self.peer.local_addr().unwrap().into()
    }
    fn other_address(&mut self) -> Address {
        "127.0.0.1:9".parse::<SocketAddr>().unwrap().into()
    }
    fn peer_send(&mut self, data: &[u8]) {
        self.peer.send(data).unwrap();
    }
    fn peer_received(&mut self) -> Vec<Vec<u8>> {
        drain(|buf| self.peer.recv(buf))
    }
    fn step(&mut self) {
        self.reactor.iterate(Duration::from_millis(10)).unwrap();
    }
}

#[test]
fn q1_q2_udp_keeps_the_datagram_contract() {
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_nonblocking(true).unwrap();
    let mut h = UdpHarness {
        reactor: Reactor::new().unwrap(),
        peer,
    };
    torsion_testing::contract::check_datagram_transport(&mut h);
}

#[cfg(unix)]
mod unix_datagram {
    use super::*;
    use torsion_transport::MAX_DATAGRAM_SIZE;
    use util::TempDir;

    #[test]
    fn q1_unix_datagram_echo_and_connected_client() {
        let d = TempDir::new("udg-echo");
        let reactor = Reactor::new().unwrap();
        let server_path = d.join("server");
        let (sp, server_seen) = proto(true);
        let server = reactor.listen_unix_datagram(&server_path, sp).unwrap();
        assert_eq!(server.host(), Address::Unix(Some(server_path.clone())));
        // The path is taken while the server is bound.
        let (again, _) = proto(false);
        let e = reactor
            .listen_unix_datagram(&server_path, again)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        // A bound client gets the echo.
        let (cp, client_seen) = proto(false);
        let client = reactor.listen_unix_datagram(&d.join("client"), cp).unwrap();
        client.write(b"hello", &server.host()).unwrap();
        reactor
            .run_until(|| !client_seen.borrow().got.is_empty(), DEADLINE)
            .unwrap();
        assert_eq!(client_seen.borrow().got[0].0, b"hello");
        // A connected, unbound client: the server sees an unnamed sender.
        let (up, _) = proto(false);
        let unbound = reactor.connect_unix_datagram(&server_path, up).unwrap();
        assert_eq!(
            unbound.peer(),
            Some(Address::Unix(Some(server_path.clone())))
        );
        // An unnamed sender cannot be answered: the echo's write is a typed error.
        server_seen.borrow_mut().got.clear();
        unbound.write_connected(b"anon").unwrap();
        reactor
            .run_until(|| !server_seen.borrow().got.is_empty(), DEADLINE)
            .unwrap();
        assert_eq!(
            server_seen.borrow().got[0],
            (b"anon".to_vec(), Address::Unix(None))
        );
        let errors = &server_seen.borrow().write_errors;
        assert_eq!(errors.len(), 1);
        assert!(matches!(
            DatagramError::of(&errors[0]),
            Some(DatagramError::WrongAddressKind { .. })
        ));
        // Multicast is a UDP option.
        let e = server.set_broadcast_allowed(true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        server.stop_listening();
        client.stop_listening();
        unbound.stop_listening();
        assert!(!server_path.exists(), "the socket file is removed at stop");
    }

    /// The reactor's Unix datagram port against the shared contract.
    struct UnixHarness {
        reactor: Reactor,
        dir: std::path::PathBuf,
        peer: std::os::unix::net::UnixDatagram,
        port_path: std::path::PathBuf,
    }

    impl torsion_testing::contract::DatagramHarness for UnixHarness {
        fn start(&mut self, protocol: Box<dyn DatagramProtocol>) -> Rc<dyn DatagramTransport> {
            self.reactor
                .listen_unix_datagram(&self.port_path, protocol)
                .unwrap()
        }
        fn peer_address(&mut self) -> Address {
            Address::Unix(Some(self.dir.join("peer")))
        }
        fn other_address(&mut self) -> Address {
            Address::Unix(Some(self.dir.join("other")))
        }
        fn peer_send(&mut self, data: &[u8]) {
            self.peer.send_to(data, &self.port_path).unwrap();
        }
        fn peer_received(&mut self) -> Vec<Vec<u8>> {
            drain(|buf| self.peer.recv(buf))
        }
        fn step(&mut self) {
            self.reactor.iterate(Duration::from_millis(10)).unwrap();
        }
    }

    #[test]
    fn q1_q2_unix_datagram_keeps_the_datagram_contract() {
        let d = TempDir::new("udg-contract");
        let peer = std::os::unix::net::UnixDatagram::bind(d.join("peer")).unwrap();
        peer.set_nonblocking(true).unwrap();
        let mut h = UnixHarness {
            reactor: Reactor::new().unwrap(),
            port_path: d.join("port"),
            dir: d.0.clone(),
            peer,
        };
        torsion_testing::contract::check_datagram_transport(&mut h);
    }

    #[test]
    fn q3_oversized_unix_datagram_is_reported_truncated() {
        let d = TempDir::new("udg-big");
        let reactor = Reactor::new().unwrap();
        let path = d.join("server");
        let (sp, seen) = proto(false);
        let server = reactor.listen_unix_datagram(&path, sp).unwrap();
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let big = vec![1u8; MAX_DATAGRAM_SIZE + 4096];
        match sender.send_to(&big, &path) {
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "SKIPPED: this system sends no {}-byte Unix datagram: {e}",
                    big.len()
                );
                return;
            }
        }
        sender.send_to(b"small", &path).unwrap();
        reactor
            .run_until(|| server.datagrams_received() == 2, DEADLINE)
            .unwrap();
        let s = seen.borrow();
        assert_eq!(s.truncated.len(), 1);
        assert_eq!(s.truncated[0].0, MAX_DATAGRAM_SIZE);
        if cfg!(target_os = "linux") {
            assert_eq!(s.truncated[0].1, Some(big.len()));
        }
        assert_eq!(
            s.got.len(),
            1,
            "the truncated datagram is not delivered as data"
        );
        assert_eq!(s.got[0].0, b"small");
        drop(s);
        // A port told to take bigger datagrams receives it whole.
        server.set_max_datagram_size(big.len() + 1);
        assert_eq!(server.max_datagram_size(), big.len() + 1);
        sender.send_to(&big, &path).unwrap();
        reactor
            .run_until(|| server.datagrams_received() == 3, DEADLINE)
            .unwrap();
        assert_eq!(seen.borrow().got.len(), 2);
        assert_eq!(seen.borrow().got[1].0.len(), big.len());
        assert_eq!(seen.borrow().truncated.len(), 1);
        server.stop_listening();
    }
}
