//! The shared contract suite (`torsion_testing::contract`) against the real transports:
//! CONTRACT D and E over TCP and Unix sockets, CONTRACT A on the real reactor's timers.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::Duration;

use torsion_reactor::Reactor;
use torsion_testing::contract::peer::FdPeer;
use torsion_testing::contract::{Claims, ContractHarness, TimerHarness};
use torsion_transport::{Address, Factory, ListeningPort, Protocol, ReactorTcp};
#[cfg(unix)]
use torsion_transport::{ReactorUnix, UnixListenOptions};

/// Hands out one protocol, to the first connection.
struct Once(RefCell<Option<Box<dyn Protocol>>>);

impl Factory for Once {
    fn build_protocol(&self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        self.0.borrow_mut().take()
    }
}

/// A blocking-free std socket used as the peer the test controls.
trait PeerSocket: Read + Write {
    fn shutdown_write(&self);
}

impl PeerSocket for std::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

#[cfg(unix)]
impl PeerSocket for std::os::unix::net::UnixStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// The protocol under test is the server side of a real connection; the peer is a plain
/// non-blocking socket.
struct SocketHarness {
    reactor: Reactor,
    unix: bool,
    dir: Option<std::path::PathBuf>,
    port: Option<Rc<dyn ListeningPort>>,
    peer: Option<Peer>,
}

type Peer = FdPeer<Box<dyn PeerSocket>, Box<dyn PeerSocket>>;

/// A peer on a connected socket: one handle reads, a clone writes.
fn peer_on<S: PeerSocket + 'static>(s: S, clone: impl FnOnce(&S) -> S) -> Peer {
    let writer = clone(&s);
    FdPeer::new(Box::new(s), Box::new(writer))
}

impl SocketHarness {
    fn new(unix: bool) -> Self {
        SocketHarness {
            reactor: Reactor::new().unwrap(),
            unix,
            dir: None,
            port: None,
            peer: None,
        }
    }

    fn peer(&mut self) -> &mut Peer {
        self.peer.as_mut().expect("connected")
    }
}

impl Drop for SocketHarness {
    fn drop(&mut self) {
        if let Some(p) = &self.port {
            p.stop_listening();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl SocketHarness {
    #[cfg(unix)]
    fn connect_unix(&mut self, factory: Rc<Once>) {
        let dir = std::env::temp_dir().join(format!(
            "torsion-contract-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        self.port = Some(
            self.reactor
                .listen_unix(&path, factory, UnixListenOptions::default())
                .unwrap(),
        );
        let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        s.set_nonblocking(true).unwrap();
        self.peer = Some(peer_on(s, |s| s.try_clone().unwrap()));
        self.dir = Some(dir);
    }

    /// Unix sockets exist only on Unix; the `unix` suite below is not built elsewhere.
    #[cfg(not(unix))]
    fn connect_unix(&mut self, _factory: Rc<Once>) {
        unreachable!("Unix sockets are Unix-only")
    }
}

impl ContractHarness for SocketHarness {
    fn claims(&self) -> Claims {
        Claims::all()
    }

    fn connect(&mut self, protocol: Box<dyn Protocol>) {
        let factory = Rc::new(Once(RefCell::new(Some(protocol))));
        if self.unix {
            self.connect_unix(factory);
        } else {
            let port = self
                .reactor
                .listen_tcp("127.0.0.1:0".parse().unwrap(), factory)
                .unwrap();
            let addr = port.host().socket_addr().unwrap();
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nonblocking(true).unwrap();
            self.peer = Some(peer_on(s, |s| s.try_clone().unwrap()));
            self.port = Some(port);
        }
    }

    fn step(&mut self) {
        self.reactor.iterate(Duration::from_millis(1)).unwrap();
        self.peer().poll();
    }

    fn peer_received(&mut self) -> Vec<u8> {
        self.peer().take_received()
    }

    fn peer_write(&mut self, data: &[u8]) {
        let r = &self.reactor;
        if let Some(p) = self.peer.as_mut() {
            p.write(data, || r.iterate(Duration::from_millis(1)).unwrap());
        }
    }

    fn peer_close(&mut self) {
        if let Some(w) = &self.peer().writer {
            w.shutdown_write();
        }
    }

    fn peer_closed(&mut self) -> bool {
        self.peer().closed()
    }

    fn set_peer_reading(&mut self, reading: bool) {
        self.peer().set_reading(reading);
    }
}

mod tcp {
    torsion_testing::contract_suite!(super::SocketHarness::new(false));
}

#[cfg(unix)]
mod unix {
    torsion_testing::contract_suite!(super::SocketHarness::new(true));
}

/// The real reactor's timers: time passes for real, in small steps.
struct RealTime(Reactor);

impl TimerHarness for RealTime {
    type Time = Reactor;

    fn time(&self) -> &Reactor {
        &self.0
    }

    fn advance(&mut self, amount: Duration) {
        let target = self.0.now() + amount;
        while self.0.now() < target {
            let left = target - self.0.now();
            self.0.iterate(left).unwrap();
        }
        self.0.iterate(Duration::ZERO).unwrap();
    }

    fn iterate(&mut self) {
        self.0.iterate(Duration::ZERO).unwrap();
    }

    fn separate_passes(&self) -> bool {
        true
    }
}

mod timers {
    torsion_testing::timer_contract_suite!(super::RealTime(
        torsion_reactor::Reactor::new().unwrap()
    ));
}
