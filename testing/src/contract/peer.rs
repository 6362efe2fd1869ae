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
