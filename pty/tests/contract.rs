//! The shared contract suite (CONTRACT D, E) against the PTY master, through
//! `PtyTransport`: the test holds the slave, in raw mode with echo off, as the peer.

// Unix only: pseudo-terminals are POSIX (torsion-pty is empty elsewhere).
#![cfg(unix)]

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use torsion_pty::PtyTransport;
use torsion_pty::termios::{self, When};
use torsion_reactor::Reactor;
use torsion_testing::contract::peer::FdPeer;
use torsion_testing::contract::{Claims, ContractHarness};
use torsion_transport::{Protocol, Reason, Transport};

struct PtyHarness {
    reactor: Reactor,
    /// Hold a second master fd, so the transport's close does not hang the terminal up.
    hold_master: bool,
    master_copy: Option<OwnedFd>,
    transport: Option<Rc<PtyTransport>>,
    /// The slave, read and written by the peer.
    peer: Option<FdPeer<File, File>>,
}

impl PtyHarness {
    fn new(hold_master: bool) -> Self {
        PtyHarness {
            reactor: Reactor::new().unwrap(),
            hold_master,
            master_copy: None,
            transport: None,
            peer: None,
        }
    }

    fn transport_closed(&self) -> bool {
        self.transport.as_ref().is_some_and(|t| t.is_closed())
    }

    fn peer(&mut self) -> &mut FdPeer<File, File> {
        self.peer.as_mut().expect("connected")
    }

    fn read_peer(&mut self) {
        let (held, closed) = (self.hold_master, self.transport_closed());
        let p = self.peer();
        if !p.is_reading() {
            return;
        }
        p.poll();
        // With our own master fd open there is no hang-up, and once the peer closed the slave
        // it reads nothing: the close then shows as the transport's state.
        if closed && (held || p.reader.is_none()) {
            p.mark_closed();
        }
    }
}

impl ContractHarness for PtyHarness {
    fn claims(&self) -> Claims {
        let mut c = Claims::all();
        c.half_close = false; // a terminal has no half-close
        c
    }

    fn connect(&mut self, protocol: Box<dyn Protocol>) {
        let (master, slave) = torsion_pty::open_pty().unwrap();
        let mut t = termios::get_attributes(&slave).unwrap();
        t.make_raw();
        termios::set_attributes(&slave, When::Now, &t).unwrap();
        set_nonblocking(slave.as_fd());
        if self.hold_master {
            self.master_copy = Some(master.try_clone().unwrap());
        }
        let slave = File::from(slave);
        let writer = slave.try_clone().unwrap();
        self.peer = Some(FdPeer::new(slave, writer));
        self.transport = Some(PtyTransport::start(&self.reactor, master, protocol).unwrap());
    }

    fn step(&mut self) {
        self.reactor.iterate(Duration::from_millis(1)).unwrap();
        self.read_peer();
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
        let p = self.peer();
        p.reader.take();
        p.writer.take();
    }

    fn peer_closed(&mut self) -> bool {
        self.read_peer();
        self.peer().closed()
    }

    fn set_peer_reading(&mut self, reading: bool) {
        self.peer().set_reading(reading);
    }
}

/// Everything the suite claims, with the harness holding a second master fd: the
/// transport's close is then not a hang-up, and the peer reads every byte before it sees
/// the close through the transport's state.
mod held {
    torsion_testing::contract_suite!(super::PtyHarness::new(true), unclaimed: {
        half_close: "a terminal has no half-close: lose_write_connection is lose_connection",
    });
}

/// The real hang-up: the transport's master is the only one, so its close hangs the
/// terminal up and the peer sees end-of-file. The kernel discards the terminal input the
/// peer has not read yet at that moment, so the items that check every byte arrives
/// before the close (D1 write-after-lose, D3, D8 stop_producing, E2) do not apply here;
/// `held` runs them. Everything else runs against the hang-up too.
mod hangup {
    use torsion_testing::contract as c;

    fn h() -> super::PtyHarness {
        super::PtyHarness::new(false)
    }

    macro_rules! items {
        ($($name:ident),* $(,)?) => {
            $(#[test] fn $name() { c::$name(&mut h()); })*
        };
    }

    items!(
        d1_write_after_connection_lost_is_ignored,
        d1_empty_write_does_nothing,
        d2_write_sequence_sends_chunks_in_order,
        d4_streaming_producer_paused_inside_write_and_resumed_on_drain,
        d5_lose_connection_stops_reading_at_once,
        d5_lose_connection_inside_data_received,
        d5_abort_connection_closes_from_the_loop,
        d7_connection_lost_stops_producer_and_is_delivered_once,
        d8_pause_producing_stops_reading,
        e1_second_producer_is_an_error,
        e1_register_on_disconnected_stops_producer,
        e1_pull_producer_resumed_at_once,
        e3_push_producer_writing_from_resume_is_paused_again,
        e4_unregister_completes_pending_lose_connection,
        e4_unregister_resets_paused_flag,
    );
}

/// A protocol that records what it gets.
#[derive(Default)]
struct Record(Rc<std::cell::RefCell<(Vec<u8>, Option<Reason>)>>);

impl Protocol for Record {
    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().0.extend_from_slice(data);
    }
    fn connection_lost(&mut self, reason: Reason) {
        self.0.borrow_mut().1 = Some(reason);
    }
}

/// CONTRACT L4 on the bare transport: the slave's holder writes and closes at once;
/// every byte arrives, then a clean `connection_lost` (EIO on Linux is the end).
#[test]
fn l4_data_then_a_clean_end_when_the_slave_closes() {
    for _ in 0..50 {
        let mut h = PtyHarness::new(false);
        let rec = Record::default();
        let seen = rec.0.clone();
        h.connect(Box::new(rec));
        let payload: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        h.peer_write(&payload);
        h.peer_close();
        h.reactor
            .run_until(|| seen.borrow().1.is_some(), Duration::from_secs(20))
            .unwrap();
        let seen = seen.borrow();
        assert!(
            seen.0 == payload,
            "{} of {} bytes",
            seen.0.len(),
            payload.len()
        );
        assert!(
            matches!(seen.1, Some(Reason::ConnectionDone)),
            "{:?}",
            seen.1
        );
        assert!(h.transport.as_ref().unwrap().is_closed());
    }
}

/// CONTRACT L6 on the bare transport: `lose_connection` on the only master fd hangs the
/// terminal up; the slave's holder sees end-of-file.
#[test]
fn l6_lose_connection_hangs_the_terminal_up() {
    let mut h = PtyHarness::new(false);
    let rec = Record::default();
    let seen = rec.0.clone();
    h.connect(Box::new(rec));
    h.transport.as_ref().unwrap().lose_connection();
    torsion_testing::contract::run_until(&mut h, "the hang-up", 1000, |h| h.peer_closed());
    let reason = seen.borrow().1.clone();
    assert!(matches!(reason, Some(Reason::ConnectionDone)), "{reason:?}");
}

/// Set `O_NONBLOCK` on the test's own end.
fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL/F_SETFL take no pointer; `fd` is open for the borrow.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    // SAFETY: as above.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    assert_eq!(r, 0);
}
