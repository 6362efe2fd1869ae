//! The peer's side of a harness over a real fd (a socket, a pipe end, a PTY slave): the
//! non-blocking reading and writing every such harness does the same way.

use std::io::{self, ErrorKind, Read};

/// Read everything `r` has now into `into`, until it would block. Returns `true` once the
/// peer's side is closed: end-of-file, or an error (a reset, `EIO` from a hung-up terminal).
pub fn read_available(r: &mut impl Read, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// One thing [`write_all`] asks the harness to do.
#[derive(Debug)]
pub enum PeerOp<'a> {
    /// Write these bytes to the peer's fd (non-blocking): how many were taken.
    Write(&'a [u8]),
    /// The fd is full: make progress (one [`step`](super::ContractHarness::step)).
    Step,
}

/// Write all of `data` to a non-blocking peer fd, stepping the harness whenever the fd is
/// full, through `op` (one closure, so it can borrow the harness mutably). Gives up quietly
/// on an error (the peer's side is gone) or after 10,000 tries.
pub fn write_all(data: &[u8], mut op: impl FnMut(PeerOp<'_>) -> io::Result<usize>) {
    let mut rest = data;
    for _ in 0..10_000 {
        if rest.is_empty() {
            return;
        }
        match op(PeerOp::Write(rest)) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let _ = op(PeerOp::Step);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// The peer of a harness over real fds: what it read, whether it is reading, whether it saw
/// the close. `R` and `W` are its two ends (the same socket twice, through `try_clone`, or a
/// pipe pair); a harness keeps its reactor beside it and lends it to [`write`](Self::write).
#[derive(Debug)]
pub struct FdPeer<R, W> {
    /// The end the peer reads (what the transport under test wrote).
    pub reader: Option<R>,
    /// The end the peer writes (what the transport under test reads).
    pub writer: Option<W>,
    received: Vec<u8>,
    reading: bool,
    closed: bool,
}

impl<R: Read, W: io::Write> FdPeer<R, W> {
    /// A peer on these (non-blocking) ends, reading.
    pub fn new(reader: R, writer: W) -> Self {
        FdPeer {
            reader: Some(reader),
            writer: Some(writer),
            received: Vec::new(),
            reading: true,
            closed: false,
        }
    }

    /// Read what has arrived, if the peer is reading
    /// ([`set_peer_reading`](super::ContractHarness::set_peer_reading)).
    pub fn poll(&mut self) {
        if let (true, Some(r)) = (self.reading, self.reader.as_mut()) {
            self.closed |= read_available(r, &mut self.received);
        }
    }

    /// The bytes read since the last call.
    pub fn take_received(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.received)
    }

    /// Stop or restart reading.
    pub fn set_reading(&mut self, reading: bool) {
        self.reading = reading;
    }

    /// True while the peer reads.
    pub fn is_reading(&self) -> bool {
        self.reading
    }

    /// True once the peer read end-of-file (or an error).
    pub fn closed(&mut self) -> bool {
        self.poll();
        self.closed
    }

    /// Record that the peer has seen the close by other means (a transport's state).
    pub fn mark_closed(&mut self) {
        self.closed = true;
    }

    /// Write all of `data`; while the fd is full, `iterate` runs the reactor once and the
    /// peer reads, so both sides make progress.
    pub fn write(&mut self, data: &[u8], mut iterate: impl FnMut()) {
        write_all(data, |op| match op {
            PeerOp::Write(chunk) => match self.writer.as_mut() {
                Some(w) => w.write(chunk),
                None => Err(ErrorKind::NotConnected.into()),
            },
            PeerOp::Step => {
                iterate();
                self.poll();
                Ok(0)
            }
        });
    }
}
