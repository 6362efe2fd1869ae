//! `write` straight to the socket when nothing is buffered and the fd was last seen
//! writable (`FileDescriptor::write_through`): the CONTRACT items it must keep.
#![cfg(unix)]

mod util;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::Duration;

use torsion_reactor::{Reactor, StreamTransport};
use torsion_transport::{Consumer, Transport};
use util::*;

type Unix = StreamTransport<mio::net::UnixStream>;

/// A pair whose first end has seen its writable edge (one iteration run).
fn ready_pair(
    r: &Reactor,
    log: &Shared,
    peer_log: &Shared,
) -> (std::rc::Rc<Unix>, std::rc::Rc<Unix>) {
    let (a, b) = unix_sockets();
    let (ta, tb) = start_pair(
        r,
        a,
        b,
        Recorder::new(log).boxed(),
        Recorder::new(peer_log).boxed(),
    );
    r.iterate(Duration::from_millis(10)).unwrap();
    (ta, tb)
}

/// D1/D3: a write on an idle, writable connection is sent inside `write`: nothing is
/// buffered and no writer is started.
#[test]
fn d1_write_when_idle_goes_out_inside_write() {
    let r = Reactor::new().unwrap();
    let (log, peer) = (shared(), shared());
    let (ta, _tb) = ready_pair(&r, &log, &peer);
    ta.write(b"hello");
    assert_eq!(ta.file_descriptor().unsent(), 0, "sent at once");
    assert_eq!(r.writer_count(), 0, "no writer needed");
    r.run_until(|| peer.borrow().data == b"hello", DEADLINE)
        .unwrap();
}

/// D1: order is kept: once something is buffered, later writes queue behind it.
#[test]
fn d1_writes_after_a_full_kernel_buffer_queue_in_order() {
    let r = Reactor::new().unwrap();
    let (log, peer) = (shared(), shared());
    let (a, mut b) = unix_sockets();
    let ta = StreamTransport::start(&r, a, Recorder::new(&log).boxed(), None).unwrap();
    r.iterate(Duration::from_millis(10)).unwrap();
    // Fill the kernel buffer: the rest is buffered and the writer waits for writability.
    let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    ta.write(&big);
    let unsent = ta.file_descriptor().unsent();
    assert!(unsent > 0, "the kernel cannot take 4 MiB at once");
    ta.write(b"tail");
    assert_eq!(ta.file_descriptor().unsent(), unsent + 4, "queued behind");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let deadline = std::time::Instant::now() + DEADLINE;
    while got.len() < big.len() + 4 {
        assert!(std::time::Instant::now() < deadline, "timed out");
        match b.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                r.iterate(Duration::from_millis(1)).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(&got[..big.len()], &big[..]);
    assert_eq!(&got[big.len()..], b"tail");
    let _ = peer;
}

/// C2 and ARCHITECTURE rule 4: a direct write that fails does not call `connection_lost`
/// inside `write`; the loop delivers `ConnectionLost`, once, and later writes are dropped.
#[test]
fn c2_direct_write_error_is_reported_from_the_loop() {
    let r = Reactor::new().unwrap();
    let (log, peer) = (shared(), shared());
    let (a, b) = unix_sockets();
    let ta = StreamTransport::start(&r, a, Recorder::new(&log).boxed(), None).unwrap();
    r.iterate(Duration::from_millis(10)).unwrap();
    // The peer is gone: the next write fails with EPIPE.
    drop(b);
    let _ = peer;
    ta.write(b"into the void");
    assert!(log.borrow().lost.is_empty(), "not inside write");
    ta.write(b"dropped");
    r.run_until(|| !log.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    let lost = log.borrow().lost.clone();
    assert_eq!(lost.len(), 1, "exactly once");
    assert!(
        !lost[0].is_clean(),
        "a write error is ConnectionLost, got {}",
        lost[0]
    );
    r.iterate(Duration::from_millis(5)).unwrap();
    assert_eq!(log.borrow().lost.len(), 1);
}

/// D5: `lose_connection` after a failed direct write still ends with the write error,
/// not a clean close.
#[test]
fn d5_lose_connection_after_failed_direct_write_reports_the_error() {
    let r = Reactor::new().unwrap();
    let log = shared();
    let (a, b) = unix_sockets();
    let ta = StreamTransport::start(&r, a, Recorder::new(&log).boxed(), None).unwrap();
    r.iterate(Duration::from_millis(10)).unwrap();
    drop(b);
    ta.write(b"x");
    ta.lose_connection();
    r.run_until(|| !log.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    assert!(!log.borrow().lost[0].is_clean());
    assert!(ta.file_descriptor().disconnected());
    let _ = ta.with_socket(|s| s.as_raw_fd());
}
