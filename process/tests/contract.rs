//! The shared contract suite (CONTRACT D, E) against the pipe selectables, through
//! `StandardIo` over two pipes whose other ends the test holds.

// Unix only: the pipe selectables and `StandardIo` are the POSIX back end (fds).
#![cfg(unix)]

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use torsion_process::StandardIo;
use torsion_reactor::Reactor;
use torsion_testing::contract::peer::{self, PeerOp};
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
    /// The peer writes here (our transport reads the other end).
    to_us: Option<File>,
    /// The peer reads here (our transport writes the other end).
    from_us: Option<File>,
    received: Vec<u8>,
    reading: bool,
    closed: bool,
}

impl PipeHarness {
    fn new() -> Self {
        PipeHarness {
            reactor: Reactor::new().unwrap(),
            to_us: None,
            from_us: None,
            received: Vec::new(),
            reading: true,
            closed: false,
        }
    }

    fn read_peer(&mut self) {
        if let Some(r) = self.from_us.as_mut() {
            self.closed |= peer::read_available(r, &mut self.received);
        }
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
        self.to_us = Some(File::from(peer_write));
        self.from_us = Some(File::from(peer_read));
        StandardIo::start(&self.reactor, our_read, our_write, protocol).unwrap();
    }

    fn step(&mut self) {
        self.reactor.iterate(Duration::from_millis(1)).unwrap();
        if self.reading {
            self.read_peer();
        }
    }

    fn peer_received(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.received)
    }

    fn peer_write(&mut self, data: &[u8]) {
        peer::write_all(data, |op| match op {
            PeerOp::Write(chunk) => match self.to_us.as_mut() {
                Some(w) => w.write(chunk),
                None => Err(ErrorKind::NotConnected.into()),
            },
            PeerOp::Step => {
                self.step();
                Ok(0)
            }
        });
    }

    fn peer_close(&mut self) {
        self.to_us.take();
    }

    fn peer_closed(&mut self) -> bool {
        if self.reading {
            self.read_peer();
        }
        self.closed
    }

    fn set_peer_reading(&mut self, reading: bool) {
        self.reading = reading;
    }
}

torsion_testing::contract_suite!(PipeHarness::new());
