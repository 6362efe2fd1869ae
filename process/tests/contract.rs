//! The shared contract suite (CONTRACT D, E) against the pipe selectables, through
//! `StandardIo` over two pipes whose other ends the test holds.

// Unix only: the pipe selectables and `StandardIo` are the POSIX back end (fds).
#![cfg(unix)]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::time::Duration;

use torsion_process::StandardIo;
use torsion_reactor::Reactor;
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
        let Some(f) = self.from_us.as_mut() else {
            return;
        };
        let mut buf = [0u8; 65536];
        loop {
            match f.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    return;
                }
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed = true;
                    return;
                }
            }
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
        self.reactor.iterate(Duration::from_millis(5)).unwrap();
        if self.reading {
            self.read_peer();
        }
    }

    fn peer_received(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.received)
    }

    fn peer_write(&mut self, data: &[u8]) {
        let mut rest = data;
        for _ in 0..10_000 {
            if rest.is_empty() {
                return;
            }
            let Some(f) = self.to_us.as_mut() else { return };
            match f.write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.step(),
                Err(_) => return,
            }
        }
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
