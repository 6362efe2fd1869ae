//! The pump's chunking mode: same bytes, in order, cut at reproducible random points.

use std::cell::RefCell;
use std::rc::Rc;

use torsion_testing::{AccumulatingProtocol, Pump, connect_chunked};
use torsion_transport::{Consumer, Protocol};

/// Records each `data_received` chunk.
struct Chunks(Rc<RefCell<Vec<Vec<u8>>>>);

impl Protocol for Chunks {
    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().push(data.to_vec());
    }
}

fn run(seed: Option<u64>, writes: &[&[u8]]) -> Vec<Vec<u8>> {
    let chunks = Rc::new(RefCell::new(Vec::new()));
    let (client, _) = AccumulatingProtocol::new();
    let pump = Pump::new(Box::new(Chunks(chunks.clone())), Box::new(client));
    pump.set_chunking(seed);
    for w in writes {
        pump.client().write(w);
    }
    pump.flush();
    drop(pump);
    Rc::try_unwrap(chunks).map_or_else(|c| c.borrow().clone(), RefCell::into_inner)
}

const WRITES: &[&[u8]] = &[b"hello\r\n", b"wor", b"ld\r\n", b"a long line of text\r\n"];

fn joined() -> Vec<u8> {
    WRITES.concat()
}

#[test]
fn chunking_delivers_the_same_bytes_in_order() {
    for seed in 0..200 {
        let got = run(Some(seed), WRITES);
        assert_eq!(got.concat(), joined(), "seed {seed}");
        assert!(
            got.iter().all(|c| !c.is_empty()),
            "seed {seed}: no empty chunk"
        );
    }
}

#[test]
fn chunking_cuts_at_varying_points() {
    let plain = run(None, WRITES);
    assert_eq!(
        plain,
        vec![joined()],
        "without chunking, one round moves all pending bytes"
    );
    let mut shapes = std::collections::HashSet::new();
    for seed in 0..50 {
        let got = run(Some(seed), WRITES);
        shapes.insert(got.iter().map(Vec::len).collect::<Vec<_>>());
    }
    assert!(
        shapes.len() > 20,
        "50 seeds gave only {} different segmentations",
        shapes.len()
    );
    assert!(
        shapes.iter().any(|s| s.len() > WRITES.len()),
        "some seed splits inside a write"
    );
}

#[test]
fn chunking_is_reproducible_per_seed() {
    assert_eq!(run(Some(42), WRITES), run(Some(42), WRITES));
}

#[test]
fn chunked_connect_greets_in_pieces() {
    struct Greeter;
    impl Protocol for Greeter {
        fn connection_made(&mut self, t: Rc<dyn torsion_transport::Transport>) {
            t.write(b"welcome to the server\r\n");
        }
        fn data_received(&mut self, _: &[u8]) {}
    }
    let chunks = Rc::new(RefCell::new(Vec::new()));
    let _pump = connect_chunked(Box::new(Greeter), Box::new(Chunks(chunks.clone())), 3);
    let got = chunks.borrow();
    assert_eq!(got.concat(), b"welcome to the server\r\n");
    assert!(got.len() > 1, "the greeting is cut: {got:?}");
}
