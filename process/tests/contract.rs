//! The shared contract suite (CONTRACT D, E) against the pipe selectables, through
//! `StandardIo` over two pipes whose other ends the test holds.

// Unix only: the pipe selectables and `StandardIo` are the POSIX back end (fds).
#![cfg(unix)]

use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::Duration;

use torsion_process::StandardIo;
use torsion_reactor::Reactor;
use torsion_testing::contract::peer::FdPeer;
use torsion_testing::contract::{Claims, ContractHarness};
use torsion_transport::Protocol;

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (OwnedFd::from(r), OwnedFd::from(w))
}

fn nonblocking(fd: &OwnedFd) {
    use std::os::fd::AsFd;
    torsion_process::raw::set_nonblocking(fd.as_fd(), true).unwrap();
}

struct PipeHarness {
    reactor: Reactor,
    /// Reads what our transport writes; writes what it reads.
    peer: Option<FdPeer<File, File>>,
}

impl PipeHarness {
    fn new() -> Self {
        PipeHarness {
            reactor: Reactor::new().unwrap(),
            peer: None,
        }
    }

    fn peer(&mut self) -> &mut FdPeer<File, File> {
        self.peer.as_mut().expect("connected")
    }
}

impl ContractHarness for PipeHarness {
    fn claims(&self) -> Claims {
        Claims::all()
    }

    fn connect(&mut self, protocol: Box<dyn Protocol>) {
        let (our_read, peer_write) = pipe();
        let (peer_read, our_write) = pipe();
        nonblocking(&peer_write);
        nonblocking(&peer_read);
        self.peer = Some(FdPeer::new(File::from(peer_read), File::from(peer_write)));
        StandardIo::start(&self.reactor, our_read, our_write, protocol).unwrap();
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
        self.peer().writer.take();
    }

    fn peer_closed(&mut self) -> bool {
        self.peer().closed()
    }

    fn set_peer_reading(&mut self, reading: bool) {
        self.peer().set_reading(reading);
    }
}

torsion_testing::contract_suite!(PipeHarness::new());
