//! The datagram-transport contract (CONTRACT Q1, Q2), written once and run against the
//! reactor's UDP and Unix datagram ports and the test kit's [`FakeDatagramTransport`]
//! (O7), so the fake cannot drift from the real thing.
//!
//! Implement [`DatagramHarness`] — it starts a protocol on a fresh socket and plays a
//! *peer* the test controls — and call [`check_datagram_transport`].
//!
//! [`FakeDatagramTransport`]: crate::FakeDatagramTransport

use std::cell::RefCell;
use std::rc::Rc;

use torsion_transport::{Address, DatagramError, DatagramProtocol, DatagramTransport};

/// Rounds of [`DatagramHarness::step`] a check waits for something to happen.
pub const MAX_STEPS: usize = 200;

/// Connects the contract's protocol to a socket and plays its peer.
pub trait DatagramHarness {
    /// Start `protocol` on a fresh socket and return its transport.
    fn start(&mut self, protocol: Box<dyn DatagramProtocol>) -> Rc<dyn DatagramTransport>;
    /// The peer's address, as the socket sees it.
    fn peer_address(&mut self) -> Address;
    /// A valid address of this socket's kind that is not the peer.
    fn other_address(&mut self) -> Address;
    /// Send `data` from the peer to the socket.
    fn peer_send(&mut self, data: &[u8]);
    /// The datagrams the peer received since the last call.
    fn peer_received(&mut self) -> Vec<Vec<u8>>;
    /// Let time pass: one loop iteration for a real socket, nothing for a fake.
    fn step(&mut self);
}

/// What the contract's protocol saw.
#[derive(Debug, Default)]
struct Seen {
    started: usize,
    got: Vec<(Vec<u8>, Address)>,
    stopped: usize,
}

struct Probe(Rc<RefCell<Seen>>);

impl DatagramProtocol for Probe {
    fn start_protocol(&mut self, _transport: Rc<dyn DatagramTransport>) {
        self.0.borrow_mut().started += 1;
    }
    fn datagram_received(&mut self, data: &[u8], from: Address) {
        self.0.borrow_mut().got.push((data.to_vec(), from));
    }
    fn stop_protocol(&mut self) {
        self.0.borrow_mut().stopped += 1;
    }
}

fn until<H: DatagramHarness>(h: &mut H, what: &str, mut cond: impl FnMut(&mut H) -> bool) {
    for _ in 0..MAX_STEPS {
        if cond(h) {
            return;
        }
        h.step();
    }
    assert!(cond(h), "{what}: not within {MAX_STEPS} steps");
}

fn kind(e: &std::io::Error) -> Option<DatagramError> {
    DatagramError::of(e).cloned()
}

/// Run the datagram contract on `harness`. Panics naming the first item that fails.
pub fn check_datagram_transport(harness: &mut impl DatagramHarness) {
    let h = harness;
    let seen = Rc::new(RefCell::new(Seen::default()));
    let t = h.start(Box::new(Probe(seen.clone())));
    assert_eq!(
        seen.borrow().started,
        1,
        "Q1: start_protocol once, before start returns"
    );
    let peer = h.peer_address();
    let other = h.other_address();

    // Q1: unconnected, both ways, with the sender's address.
    t.write(b"to peer", &peer).expect("Q1: write to the peer");
    let mut received = Vec::new();
    until(h, "Q1: the peer receives the datagram", |h| {
        received.extend(h.peer_received());
        !received.is_empty()
    });
    assert_eq!(
        received,
        vec![b"to peer".to_vec()],
        "Q1: one datagram, whole"
    );
    h.peer_send(b"from peer");
    until(h, "Q1: datagram_received", |_| {
        !seen.borrow().got.is_empty()
    });
    assert_eq!(
        seen.borrow().got[0],
        (b"from peer".to_vec(), peer.clone()),
        "Q1: the datagram and its sender"
    );
    let e = t
        .write_connected(b"x")
        .expect_err("Q2: write_connected unconnected");
    assert_eq!(kind(&e), Some(DatagramError::NotConnected), "Q2: {e}");

    // Q2: connected.
    t.connect(&peer).expect("Q2: connect");
    assert_eq!(t.peer(), Some(peer.clone()), "Q2: peer()");
    let e = t.connect(&peer).expect_err("Q2: a second connect");
    assert_eq!(kind(&e), Some(DatagramError::AlreadyConnected), "Q2: {e}");
    let e = t.write(b"x", &other).expect_err("Q2: a write elsewhere");
    assert!(
        matches!(kind(&e), Some(DatagramError::ConnectedElsewhere { .. })),
        "Q2: {e}"
    );
    t.write_connected(b"connected")
        .expect("Q2: write_connected");
    t.write(b"to the peer again", &peer)
        .expect("Q2: write to the peer");
    let mut received = Vec::new();
    until(h, "Q2: the peer receives both", |h| {
        received.extend(h.peer_received());
        received.len() == 2
    });
    assert_eq!(
        received,
        vec![b"connected".to_vec(), b"to the peer again".to_vec()]
    );

    // Q1: stopping.
    t.stop_listening();
    t.stop_listening();
    until(h, "Q1: stop_protocol", |_| seen.borrow().stopped > 0);
    for _ in 0..3 {
        h.step();
    }
    assert_eq!(seen.borrow().stopped, 1, "Q1: stop_protocol exactly once");
    let e = t
        .write(b"late", &peer)
        .expect_err("Q1: write after stop_listening");
    assert_eq!(kind(&e), Some(DatagramError::Closed), "Q1: {e}");
}
