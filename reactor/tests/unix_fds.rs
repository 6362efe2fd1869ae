//! Descriptor passing and peer credentials over Unix stream sockets (CONTRACT Q8, Q9).
#![cfg(unix)]

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use torsion_reactor::Reactor;
use torsion_transport::{
    Credentials, FileDescriptorReceiver, MAX_FDS_PER_MESSAGE, Protocol, Transport,
};
use util::{DEADLINE, TempDir};

/// One test counts this process's open descriptors: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct Got {
    data: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// Bytes seen before each batch of descriptors arrived.
    fds_at: Vec<usize>,
    /// Each `data_received` chunk: (offset, length).
    chunks: Vec<(usize, usize)>,
    creds: Option<std::io::Result<Credentials>>,
    transport: Option<Rc<dyn Transport>>,
}

type Shared = Rc<RefCell<Got>>;

/// Receives descriptors and asks for the peer's credentials.
struct Receiver(Shared);

impl Protocol for Receiver {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        let unix = t.as_unix_socket().expect("a Unix socket has the extras");
        self.0.borrow_mut().creds = Some(unix.peer_credentials());
        self.0.borrow_mut().transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        let mut g = self.0.borrow_mut();
        let at = g.data.len();
        g.chunks.push((at, data.len()));
        g.data.extend_from_slice(data);
    }
    fn as_fd_receiver(&mut self) -> Option<&mut dyn FileDescriptorReceiver> {
        Some(self)
    }
}

impl FileDescriptorReceiver for Receiver {
    fn fds_received(&mut self, fds: Vec<OwnedFd>) {
        let mut g = self.0.borrow_mut();
        let at = g.data.len();
        g.fds_at.push(at);
        g.fds.extend(fds);
    }
}

/// Not a receiver: reads with plain `read`.
struct Plain(Shared);

impl Protocol for Plain {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.0.borrow_mut().transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().data.extend_from_slice(data);
    }
}

/// Close-on-exec, as `/proc/self/fdinfo` says (Linux).
fn cloexec(fd: &OwnedFd) -> Option<bool> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
    Some(u32::from_str_radix(flags, 8).ok()? & 0o2_000_000 != 0)
}

/// Two connected Unix transports on one reactor, from a socket pair: (sender, receiver).
fn pair(reactor: &Reactor, receiver: bool) -> (Shared, Shared) {
    let (a, b) = UnixStream::pair().unwrap();
    let sender = Shared::default();
    let s = sender.clone();
    reactor
        .adopt_stream_connection(
            OwnedFd::from(a),
            torsion_transport::factory_fn(move |_| Box::new(Plain(s.clone()))),
        )
        .unwrap();
    let got = Shared::default();
    let g = got.clone();
    reactor
        .adopt_stream_connection(
            OwnedFd::from(b),
            torsion_transport::factory_fn(move |_| -> Box<dyn Protocol> {
                if receiver {
                    Box::new(Receiver(g.clone()))
                } else {
                    Box::new(Plain(g.clone()))
                }
            }),
        )
        .unwrap();
    (sender, got)
}

#[test]
fn q8_descriptors_round_trip_in_order_with_the_bytes() {
    let _serial = serial();
    let d = TempDir::new("fds-roundtrip");
    let path = d.join("file");
    std::fs::write(&path, b"contents").unwrap();
    let reactor = Reactor::new().unwrap();
    let (sender, got) = pair(&reactor, true);
    let t = sender.borrow().transport.clone().unwrap();
    let unix = t.as_unix_socket().unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let (pr, mut pw) = std::io::pipe().unwrap();
    t.write(b"before|");
    unix.send_fds(b"first|", vec![OwnedFd::from(file)]).unwrap();
    t.write(b"middle|");
    unix.send_fds(b"second|", vec![OwnedFd::from(pr)]).unwrap();
    t.write(b"after");
    let total = b"before|first|middle|second|after".len();
    reactor
        .run_until(
            || got.borrow().data.len() == total && got.borrow().fds.len() == 2,
            DEADLINE,
        )
        .unwrap();
    let g = got.borrow();
    assert_eq!(g.data, b"before|first|middle|second|after");
    // Each batch arrives with its first byte: before the bytes that follow it.
    assert!(g.fds_at[0] <= b"before|".len(), "{:?}", g.fds_at);
    assert!(g.fds_at.last().copied().unwrap() <= b"before|first|middle|".len());
    // The first is the file: same inode.
    let received = std::fs::File::from(g.fds[0].try_clone().unwrap());
    assert_eq!(
        received.metadata().unwrap().ino(),
        std::fs::metadata(&path).unwrap().ino()
    );
    // The second is the pipe's read end: what we write comes out of it.
    pw.write_all(b"through the pipe").unwrap();
    drop(pw);
    let mut out = String::new();
    std::fs::File::from(g.fds[1].try_clone().unwrap())
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!(out, "through the pipe");
    if cfg!(target_os = "linux") {
        for fd in &g.fds {
            assert_eq!(
                cloexec(fd),
                Some(true),
                "received descriptors are close-on-exec"
            );
        }
    }
    drop(g);
}

#[test]
fn q8_a_protocol_that_is_no_receiver_gets_the_bytes_only() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let (sender, got) = pair(&reactor, false);
    let t = sender.borrow().transport.clone().unwrap();
    let before = util::open_fds();
    let (r, _w) = std::io::pipe().unwrap();
    t.as_unix_socket()
        .unwrap()
        .send_fds(b"bytes", vec![OwnedFd::from(r)])
        .unwrap();
    reactor
        .run_until(|| got.borrow().data == b"bytes", DEADLINE)
        .unwrap();
    if cfg!(target_os = "linux") {
        // Our copy of the read end was closed once sent; the kernel dropped the received
        // one; only the write end we kept is new.
        assert_eq!(util::open_fds(), before + 1);
    }
}

#[test]
fn q8_send_fds_errors() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let (sender, _got) = pair(&reactor, true);
    let t = sender.borrow().transport.clone().unwrap();
    let unix = t.as_unix_socket().unwrap();
    let (r, _w) = std::io::pipe().unwrap();
    let e = unix.send_fds(b"", vec![OwnedFd::from(r)]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let many: Vec<OwnedFd> = (0..=MAX_FDS_PER_MESSAGE)
        .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap()))
        .collect();
    let e = unix.send_fds(b"x", many).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    t.write(&vec![0u8; 4 << 20]); // buffered: the half-close below stays pending
    t.lose_write_connection();
    let (r, _w) = std::io::pipe().unwrap();
    let e = unix.send_fds(b"x", vec![OwnedFd::from(r)]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
    t.lose_connection();
    let (r, _w) = std::io::pipe().unwrap();
    let e = unix.send_fds(b"x", vec![OwnedFd::from(r)]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
}

#[test]
fn q9_peer_credentials_are_ours() {
    let _serial = serial();
    let d = TempDir::new("fds-creds");
    let probe = d.join("probe");
    std::fs::write(&probe, b"").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    let reactor = Reactor::new().unwrap();
    let (_sender, got) = pair(&reactor, true);
    let creds = got.borrow_mut().creds.take().unwrap().unwrap();
    assert_eq!(creds.uid, uid);
    if cfg!(any(target_os = "linux", target_os = "macos")) {
        assert_eq!(creds.pid, Some(std::process::id()));
    }
}

#[test]
fn q9_tcp_transports_have_no_unix_extras() {
    let _serial = serial();
    use torsion_transport::{ReactorTcp, factory_fn};
    let reactor = Reactor::new().unwrap();
    let got = Shared::default();
    let g = got.clone();
    let port = reactor
        .listen_tcp(
            "127.0.0.1:0".parse().unwrap(),
            factory_fn(move |_| Box::new(Plain(g.clone()))),
        )
        .unwrap();
    let _client = std::net::TcpStream::connect(port.host().socket_addr().unwrap()).unwrap();
    reactor
        .run_until(|| got.borrow().transport.is_some(), DEADLINE)
        .unwrap();
    assert!(
        got.borrow()
            .transport
            .as_ref()
            .unwrap()
            .as_unix_socket()
            .is_none()
    );
    port.stop_listening();
}

#[test]
fn q8_descriptors_go_with_their_byte_behind_a_full_buffer() {
    let _serial = serial();
    let reactor = Reactor::new().unwrap();
    let (sender, got) = pair(&reactor, true);
    let t = sender.borrow().transport.clone().unwrap();
    let unix = t.as_unix_socket().unwrap();
    let before = vec![b'a'; 3 << 20];
    let after = vec![b'c'; 1 << 20];
    t.write(&before); // more than the socket buffer: most of it waits in ours
    let (r, _w) = std::io::pipe().unwrap();
    unix.send_fds(b"B", vec![OwnedFd::from(r)]).unwrap();
    t.write(&after);
    let total = before.len() + 1 + after.len();
    reactor
        .run_until(|| got.borrow().data.len() == total, DEADLINE)
        .unwrap();
    let g = got.borrow();
    assert_eq!(g.fds.len(), 1);
    assert_eq!(g.data[before.len()], b'B');
    // They arrived with the read that holds their byte: before its `data_received`.
    let at = g.fds_at[0];
    let chunk = g
        .chunks
        .iter()
        .find(|c| c.0 == at)
        .expect("a read starts where they came");
    assert!(
        chunk.0 <= before.len() && before.len() < chunk.0 + chunk.1,
        "descriptors came with the read {chunk:?}, which does not hold byte {}",
        before.len()
    );
}
