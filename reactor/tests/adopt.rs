//! Adopting sockets opened elsewhere (CONTRACT Q5), and SO_REUSEPORT for TCP listeners.
#![cfg(unix)]

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::rc::Rc;

use torsion_reactor::{AdoptError, Reactor};
use torsion_transport::{
    Address, DatagramProtocol, DatagramTransport, Factory, ListenOptions, ListeningPort, Protocol,
    Transport, factory_fn,
};
use util::{DEADLINE, TempDir, open_fds};

/// The tests count this process's open descriptors: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Echoes and records what it saw.
struct Echo(Rc<RefCell<Vec<u8>>>, Option<Rc<dyn Transport>>);

impl Protocol for Echo {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.1 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().extend_from_slice(data);
        if let Some(t) = &self.1 {
            t.write(data);
        }
    }
}

fn echo_factory() -> (Rc<dyn Factory>, Rc<RefCell<Vec<u8>>>) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    (factory_fn(move |_| Box::new(Echo(g.clone(), None))), got)
}

struct Collect(Rc<RefCell<Vec<Vec<u8>>>>, Option<Rc<dyn DatagramTransport>>);

impl DatagramProtocol for Collect {
    fn start_protocol(&mut self, t: Rc<dyn DatagramTransport>) {
        self.1 = Some(t);
    }
    fn datagram_received(&mut self, data: &[u8], from: Address) {
        self.0.borrow_mut().push(data.to_vec());
        if let (Some(t), Address::Ipv4(_)) = (&self.1, &from) {
            let _ = t.write(data, &from);
        }
    }
}

/// Run the reactor while a blocking std client on another thread connects with
/// `connect`, sends `msg` and reads the echo back.
fn round_trip<S: Read + Write>(
    reactor: &Reactor,
    connect: impl FnOnce() -> std::io::Result<S> + Send + 'static,
    msg: [u8; 4],
) {
    let client = std::thread::spawn(move || {
        let mut s = connect().unwrap();
        s.write_all(&msg).unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    reactor
        .run_until(|| client.is_finished(), DEADLINE)
        .unwrap();
    assert_eq!(client.join().unwrap(), msg);
}

/// [`round_trip`] of "ping" over TCP to `addr`.
fn round_trip_tcp(reactor: &Reactor, addr: SocketAddr) {
    round_trip(
        reactor,
        move || std::net::TcpStream::connect(addr),
        *b"ping",
    );
}

#[test]
fn q5_adopt_tcp_listening_port() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let before = open_fds();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (factory, got) = echo_factory();
    let port = reactor
        .adopt_stream_port(OwnedFd::from(listener), factory)
        .unwrap();
    assert_eq!(port.host().socket_addr(), Some(addr));
    round_trip_tcp(&reactor, addr);
    assert_eq!(&*got.borrow(), b"ping");
    port.stop_listening();
    // The accepted connection ends when the client's socket closes.
    reactor
        .run_until(|| reactor.selectable_count() == 0, DEADLINE)
        .unwrap();
    if cfg!(target_os = "linux") {
        assert_eq!(
            open_fds(),
            before,
            "the adopted listener and its connection are closed"
        );
    }
    // Closed: the address is free again.
    std::net::TcpListener::bind(addr).unwrap();
}

#[test]
fn q5_adopt_unix_listening_port() {
    let _serial = serial();
    let d = TempDir::new("adopt-ulisten");
    let path = d.join("sock");
    let reactor = Reactor::new().unwrap();
    let listener = UnixListener::bind(&path).unwrap();
    let (factory, got) = echo_factory();
    let port = reactor
        .adopt_stream_port(OwnedFd::from(listener), factory)
        .unwrap();
    assert_eq!(port.host(), Address::Unix(Some(path.clone())));
    let p = path.clone();
    round_trip(&reactor, move || UnixStream::connect(p), *b"unix");
    assert_eq!(&*got.borrow(), b"unix");
    port.stop_listening();
}

#[test]
fn q5_adopt_stream_connections_tcp_and_unix() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    // Unix: one end of a socket pair.
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let (factory, got) = echo_factory();
    reactor
        .adopt_stream_connection(OwnedFd::from(ours), factory)
        .unwrap();
    theirs.write_all(b"pair").unwrap();
    reactor
        .run_until(|| got.borrow().len() == 4, DEADLINE)
        .unwrap();
    let mut buf = [0u8; 4];
    theirs.set_nonblocking(false).unwrap();
    // The echo went out on the reactor's thread already.
    reactor.iterate(std::time::Duration::ZERO).unwrap();
    theirs.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pair");
    // TCP: a connection accepted by other code.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (accepted, _) = listener.accept().unwrap();
    let (factory, got) = echo_factory();
    reactor
        .adopt_stream_connection(OwnedFd::from(accepted), factory)
        .unwrap();
    client.write_all(b"tcp!").unwrap();
    reactor
        .run_until(|| got.borrow().len() == 4, DEADLINE)
        .unwrap();
    reactor.iterate(std::time::Duration::ZERO).unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"tcp!");
}

#[test]
fn q5_adopt_datagram_ports_udp_and_unix() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let port = reactor
        .adopt_datagram_port(OwnedFd::from(sock), Box::new(Collect(got.clone(), None)))
        .unwrap();
    assert_eq!(port.host().socket_addr(), Some(addr));
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"dgram", addr).unwrap();
    reactor
        .run_until(|| !got.borrow().is_empty(), DEADLINE)
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"dgram"[..], addr));
    port.stop_listening();

    let d = TempDir::new("adopt-udgram");
    let path = d.join("sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let port = reactor
        .adopt_datagram_port(OwnedFd::from(sock), Box::new(Collect(got.clone(), None)))
        .unwrap();
    assert_eq!(port.host(), Address::Unix(Some(path.clone())));
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"unix dgram", &path)
        .unwrap();
    reactor
        .run_until(|| !got.borrow().is_empty(), DEADLINE)
        .unwrap();
    assert_eq!(got.borrow()[0], b"unix dgram");
    port.stop_listening();
}

/// Check that adopting `fd` fails with `expected`, and that the descriptor was closed.
fn refused(
    what: &str,
    expected: AdoptError,
    fd: OwnedFd,
    adopt: impl FnOnce(OwnedFd) -> std::io::Result<()>,
) {
    let before = open_fds();
    let e = adopt(fd).expect_err(what);
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{what}: {e}");
    assert_eq!(AdoptError::of(&e), Some(&expected), "{what}: {e}");
    assert!(!e.to_string().is_empty());
    if cfg!(target_os = "linux") {
        assert_eq!(
            open_fds(),
            before - 1,
            "{what}: the refused fd is closed, nothing else opened"
        );
    }
}

#[test]
fn q5_bad_descriptors_are_typed_errors_and_closed() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let (factory, _) = echo_factory();
    let d = TempDir::new("adopt-bad");
    let file = std::fs::File::create(d.join("file")).unwrap();
    let port = |fd| reactor.adopt_stream_port(fd, factory.clone()).map(drop);
    let conn = |fd| reactor.adopt_stream_connection(fd, factory.clone());
    let dgram = |fd| {
        reactor
            .adopt_datagram_port(fd, Box::new(Collect(Rc::default(), None)))
            .map(drop)
    };

    refused(
        "a file as a port",
        AdoptError::NotASocket,
        OwnedFd::from(file),
        port,
    );
    let (r, _w) = std::io::pipe().unwrap();
    refused(
        "a pipe as a connection",
        AdoptError::NotASocket,
        OwnedFd::from(r),
        conn,
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    refused(
        "UDP as a stream port",
        AdoptError::WrongType {
            expected: "stream",
            found: "datagram".into(),
        },
        OwnedFd::from(udp),
        port,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    refused(
        "a listener as a connection",
        AdoptError::Listening,
        OwnedFd::from(listener.try_clone().unwrap()),
        conn,
    );
    refused(
        "TCP as a datagram port",
        AdoptError::WrongType {
            expected: "datagram",
            found: "stream".into(),
        },
        OwnedFd::from(listener),
        dgram,
    );
    let (a, _b) = UnixStream::pair().unwrap();
    refused(
        "a connection as a port",
        AdoptError::NotListening,
        OwnedFd::from(a),
        port,
    );
    let _ = addr;
}

/// A netlink socket: a family torsion does not drive (std cannot make one).
#[cfg(target_os = "linux")]
fn netlink_socket() -> OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: socket(2) with constant arguments; a non-negative result is a new descriptor
    // nobody else owns.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: as above.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[cfg(target_os = "linux")]
#[test]
fn q5_another_family_is_refused() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let fd = netlink_socket();
    refused(
        "a netlink socket",
        AdoptError::UnsupportedFamily(libc::AF_NETLINK),
        fd,
        |fd| {
            reactor
                .adopt_datagram_port(fd, Box::new(Collect(Rc::default(), None)))
                .map(drop)
        },
    );
}

#[test]
fn listen_options_reuse_port_two_tcp_listeners_on_one_port() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let options = ListenOptions::new().with_reuse_port(true).with_backlog(16);
    let (f1, got1) = echo_factory();
    let first = reactor
        .listen_tcp_with("127.0.0.1:0".parse().unwrap(), options.clone(), f1)
        .unwrap();
    let addr = first.host().socket_addr().unwrap();
    let (f2, got2) = echo_factory();
    let second = reactor.listen_tcp_with(addr, options, f2).unwrap();
    assert_eq!(second.host().socket_addr(), Some(addr));
    // Without SO_REUSEPORT the port is taken.
    let (f3, _) = echo_factory();
    let e = reactor
        .listen_tcp_with(addr, ListenOptions::default(), f3)
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    // Connections reach one listener or the other.
    for _ in 0..8 {
        round_trip_tcp(&reactor, addr);
    }
    assert_eq!(got1.borrow().len() + got2.borrow().len(), 32);
    first.stop_listening();
    second.stop_listening();
}

#[test]
fn listen_options_ipv6_only() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let (f, _) = echo_factory();
    let options = ListenOptions::new().with_ipv6_only(Some(true));
    match reactor.listen_tcp_with("[::1]:0".parse().unwrap(), options, f) {
        Ok(port) => {
            assert!(matches!(port.host(), Address::Ipv6(_)));
            port.stop_listening();
        }
        Err(e) => eprintln!("SKIPPED: no IPv6 loopback here ({e})"),
    }
}
