//! The transport and producer contract (CONTRACT D1–D8, E1–E4), one function per item.

use std::rc::Rc;

use torsion_transport::{Producer, ProducerError, Reason, Transport};

use super::{ContractHarness, DEFAULT_MAX_STEPS, Probe, ProbeProducer, ProducerCall, run_until};
use crate::ChunkProducer;

/// Budget for waits that move a lot of data.
pub(super) const BULK_STEPS: usize = DEFAULT_MAX_STEPS * 10;
/// Steps taken to show that something does *not* happen.
pub(super) const QUIET_STEPS: usize = 10;
/// The chunk written while filling a buffer.
pub(super) const FILL_CHUNK: usize = 16 * 1024;
/// At most this many chunks (64 MiB) are written to fill a buffer.
pub(super) const FILL_LIMIT: usize = 4096;

pub(super) fn skip(item: &str, claim: &str) {
    log::info!("contract: {item} skipped: the implementation does not claim {claim}");
}

/// Connect `protocol` and wait for its `connection_made`.
#[track_caller]
pub(super) fn connect<H: ContractHarness + ?Sized>(
    h: &mut H,
    made: (Box<dyn torsion_transport::Protocol>, Probe),
) -> (Probe, Rc<dyn Transport>) {
    let (protocol, probe) = made;
    h.connect(protocol);
    run_until(h, "connection_made", DEFAULT_MAX_STEPS, |_| {
        probe.made() > 0
    });
    assert_eq!(
        probe.made(),
        1,
        "connection_made must be called exactly once"
    );
    let t = probe.transport();
    (probe, t)
}

/// Step until the peer saw the close, collecting what it received.
#[track_caller]
pub(super) fn collect_until_peer_closed<H: ContractHarness + ?Sized>(
    h: &mut H,
    what: &str,
) -> Vec<u8> {
    let mut got = Vec::new();
    run_until(h, what, BULK_STEPS, |h| {
        got.extend(h.peer_received());
        h.peer_closed()
    });
    got.extend(h.peer_received());
    got
}

/// Step until the peer received `n` bytes, returning them.
#[track_caller]
pub(super) fn collect_bytes<H: ContractHarness + ?Sized>(
    h: &mut H,
    what: &str,
    n: usize,
) -> Vec<u8> {
    let mut got = Vec::new();
    run_until(h, what, BULK_STEPS, |h| {
        got.extend(h.peer_received());
        got.len() >= n
    });
    got
}

#[track_caller]
pub(super) fn wait_lost<H: ContractHarness + ?Sized>(
    h: &mut H,
    probe: &Probe,
    what: &str,
) -> Reason {
    run_until(h, what, BULK_STEPS, |_| probe.lost_count() > 0);
    for _ in 0..QUIET_STEPS {
        h.step();
    }
    assert_eq!(
        probe.lost_count(),
        1,
        "D7: connection_lost is delivered exactly once"
    );
    assert!(
        !probe.reentered(),
        "ARCHITECTURE rule 4: a callback ran while another was on the stack"
    );
    match probe.lost_reason() {
        Some(r) => r,
        None => panic!("contract: connection_lost reason missing"),
    }
}

/// Write chunks with the peer not reading until `producer` is paused; returns the bytes
/// written. Fails if the pause comes during a step instead of inside a write (D4).
#[track_caller]
pub(super) fn fill_until_paused<H: ContractHarness + ?Sized>(
    h: &mut H,
    t: &Rc<dyn Transport>,
    producer: &ProbeProducer,
) -> usize {
    let chunk = vec![b'x'; FILL_CHUNK];
    let mut written = 0;
    for _ in 0..FILL_LIMIT {
        t.write(&chunk);
        written += chunk.len();
        if producer.pauses() > 0 {
            break;
        }
        h.step();
        assert_eq!(
            producer.pauses(),
            0,
            "D4: a streaming producer is paused inside the write that fills the buffer, not later"
        );
    }
    assert_eq!(
        producer.pauses(),
        1,
        "D4: a streaming producer is paused once the unsent data goes over the buffer size ({written} bytes written)"
    );
    written
}

/// D1: data written after `lose_connection`, before the close completes, is still sent;
/// the close is clean.
pub fn d1_write_after_lose_connection_is_flushed<H: ContractHarness + ?Sized>(h: &mut H) {
    let made = Probe::protocol(
        false,
        Some(Box::new(|t: &Rc<dyn Transport>| {
            t.write(b"hello");
            t.lose_connection();
            t.write(b" world");
        })),
        None,
    );
    let (probe, _t) = connect(h, made);
    let got = collect_until_peer_closed(h, "D1: the peer to see the close");
    assert_eq!(
        got, b"hello world",
        "D1: writes after lose_connection are flushed before the close"
    );
    let reason = wait_lost(h, &probe, "D1: connection_lost");
    assert!(
        reason.is_clean(),
        "D1/D5: a lose_connection ends cleanly, got {reason}"
    );
}

/// D1: after `connection_lost`, `write` and `write_sequence` are ignored: nothing is
/// sent, nothing panics, no second `connection_lost`.
pub fn d1_write_after_connection_lost_is_ignored<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    h.peer_close();
    wait_lost(h, &probe, "D1: connection_lost after the peer closed");
    t.write(b"late");
    t.write_sequence(&[b"later"]);
    for _ in 0..QUIET_STEPS {
        h.step();
    }
    assert!(
        h.peer_received().is_empty(),
        "D1: a write after the connection is lost is ignored"
    );
    assert_eq!(probe.lost_count(), 1, "D7: connection_lost exactly once");
}

/// D1: an empty write sends nothing and changes nothing; the connection still works.
pub fn d1_empty_write_does_nothing<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    t.write(b"");
    t.write_sequence(&[]);
    t.write_sequence(&[b"", b""]);
    for _ in 0..QUIET_STEPS {
        h.step();
    }
    assert!(
        h.peer_received().is_empty(),
        "D1: an empty write sends nothing"
    );
    assert!(!h.peer_closed(), "D1: an empty write does not close");
    assert_eq!(probe.lost_count(), 0, "D1: an empty write does not close");
    t.write(b"a");
    assert_eq!(collect_bytes(h, "D1: a write after empty ones", 1), b"a");
}

/// D2: `write_sequence` sends its chunks in order, interleaved correctly with `write`.
pub fn d2_write_sequence_sends_chunks_in_order<H: ContractHarness + ?Sized>(h: &mut H) {
    let (_probe, t) = connect(h, Probe::plain());
    t.write(b"<");
    t.write_sequence(&[b"one ", b"two ", b"", b"three"]);
    t.write(b">");
    let got = collect_bytes(h, "D2: the sequence", 15);
    assert_eq!(got, b"<one two three>", "D2: chunks arrive in order");
}

/// D3: a `lose_connection` with a lot of buffered data completes only after a full drain:
/// every byte arrives, then the clean close.
pub fn d3_lose_connection_completes_after_full_drain<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    t.write(&data);
    t.lose_connection();
    let got = collect_until_peer_closed(h, "D3: the peer to see the close after 1 MiB");
    assert_eq!(
        got.len(),
        data.len(),
        "D3: every byte is sent before the close"
    );
    assert!(got == data, "D3: the bytes arrive intact and in order");
    let reason = wait_lost(h, &probe, "D3: connection_lost");
    assert!(reason.is_clean(), "D3: ConnectionDone, got {reason}");
}

/// D4: a streaming producer is paused inside the `write` that takes the buffer over its
/// size, and resumed once the buffer drains; pause and resume are balanced.
pub fn d4_streaming_producer_paused_inside_write_and_resumed_on_drain<
    H: ContractHarness + ?Sized,
>(
    h: &mut H,
) {
    if !h.claims().flow_control {
        return skip("D4", "flow_control");
    }
    let (_probe, t) = connect(h, Probe::plain());
    h.set_peer_reading(false);
    let producer = ProbeProducer::new();
    if let Err(e) = t.register_producer(Producer::Push(producer.clone())) {
        panic!("D4: register_producer failed: {e}");
    }
    let written = fill_until_paused(h, &t, &producer);
    assert_eq!(
        producer.resumes(),
        0,
        "D4: not resumed before the buffer drains"
    );
    h.set_peer_reading(true);
    let mut got = 0;
    run_until(
        h,
        "D4: the buffer to drain and the producer to resume",
        BULK_STEPS,
        |h| {
            got += h.peer_received().len();
            got == written && producer.resumes() > 0
        },
    );
    assert_eq!(
        producer.calls(),
        vec![ProducerCall::Pause, ProducerCall::Resume],
        "D4: one pause, then one resume after the drain"
    );
    t.unregister_producer();
}

/// D9: nothing written, nothing unsent; once the peer has
/// received every byte, the count is back to zero.
pub fn d9_unsent_bytes_zero_once_sent<H: ContractHarness + ?Sized>(h: &mut H) {
    let (_probe, t) = connect(h, Probe::plain());
    assert_eq!(t.unsent_bytes(), 0, "unsent_bytes: nothing was written");
    t.write(b"hello");
    assert!(
        t.unsent_bytes() <= 5,
        "unsent_bytes: never more than was written (got {})",
        t.unsent_bytes()
    );
    assert_eq!(collect_bytes(h, "unsent_bytes: the write", 5), b"hello");
    run_until(
        h,
        "unsent_bytes: zero after the peer got it all",
        DEFAULT_MAX_STEPS,
        |_| t.unsent_bytes() == 0,
    );
}

/// D9: while the peer does not read, the count is the
/// backlog (above zero once a streaming producer is paused, never more than was
/// written); it falls to zero when the peer reads everything.
pub fn d9_unsent_bytes_counts_the_backlog<H: ContractHarness + ?Sized>(h: &mut H) {
    if !h.claims().flow_control {
        return skip("D9 unsent_bytes", "flow_control");
    }
    let (_probe, t) = connect(h, Probe::plain());
    h.set_peer_reading(false);
    let producer = ProbeProducer::new();
    if let Err(e) = t.register_producer(Producer::Push(producer.clone())) {
        panic!("D9: register_producer failed: {e}");
    }
    let written = fill_until_paused(h, &t, &producer);
    let backlog = t.unsent_bytes();
    assert!(
        backlog > 0 && backlog <= written,
        "unsent_bytes: the backlog of a full buffer is in 1..={written}, got {backlog}"
    );
    t.unregister_producer();
    h.set_peer_reading(true);
    let mut got = 0;
    run_until(
        h,
        "unsent_bytes: the backlog to drain to zero",
        BULK_STEPS,
        |h| {
            got += h.peer_received().len();
            got == written && t.unsent_bytes() == 0
        },
    );
}

/// D5: `lose_connection` stops reading at once: data the peer sent is never delivered.
pub fn d5_lose_connection_stops_reading_at_once<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    h.peer_write(b"too late");
    t.lose_connection();
    let reason = wait_lost(h, &probe, "D5: connection_lost after lose_connection");
    assert!(
        probe.data().is_empty(),
        "D5: no data_received after lose_connection, got {:?}",
        probe.data()
    );
    assert!(reason.is_clean(), "D5: ConnectionDone, got {reason}");
}

/// D5 and ARCHITECTURE rule 4: `lose_connection` inside `data_received` marks the transport;
/// `connection_lost` comes later from the loop, once.
pub fn d5_lose_connection_inside_data_received<H: ContractHarness + ?Sized>(h: &mut H) {
    let made = Probe::protocol(
        false,
        None,
        Some(Box::new(|t: &Rc<dyn Transport>, _data: &[u8]| {
            t.lose_connection();
        })),
    );
    let (probe, _t) = connect(h, made);
    h.peer_write(b"bye");
    let reason = wait_lost(
        h,
        &probe,
        "D5: connection_lost after lose_connection in data_received",
    );
    assert!(reason.is_clean(), "D5: ConnectionDone, got {reason}");
    let data = probe.data();
    assert!(
        !data.is_empty() && b"bye".starts_with(&data),
        "D5: only data received before lose_connection, got {data:?}"
    );
}

/// D5: `abort_connection` closes now, but `connection_lost(ConnectionAborted)` comes from
/// the loop; the peer sees the connection end.
pub fn d5_abort_connection_closes_from_the_loop<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    t.write(b"maybe dropped");
    t.abort_connection();
    assert_eq!(
        probe.lost_count(),
        0,
        "D5: connection_lost is not called inside abort_connection"
    );
    let reason = wait_lost(h, &probe, "D5: connection_lost after abort_connection");
    assert!(
        matches!(reason, Reason::ConnectionAborted),
        "D5: abort gives ConnectionAborted, got {reason}"
    );
    run_until(h, "D5: the peer to see the abort", DEFAULT_MAX_STEPS, |h| {
        h.peer_closed()
    });
}

/// D6: `lose_write_connection` flushes, shuts the write side (the peer sees EOF, the
/// protocol gets `write_connection_lost`), drops later writes, and reading goes on.
pub fn d6_lose_write_connection_half_closes<H: ContractHarness + ?Sized>(h: &mut H) {
    if !h.claims().half_close {
        return skip("D6", "half_close");
    }
    let (probe, t) = connect(h, Probe::protocol(true, None, None));
    t.write(b"a");
    t.lose_write_connection();
    t.write(b"b");
    let got = collect_until_peer_closed(h, "D6: the peer to see EOF");
    assert_eq!(
        got, b"a",
        "D6: flushed before the shutdown; later writes dropped"
    );
    run_until(h, "D6: write_connection_lost", DEFAULT_MAX_STEPS, |_| {
        probe.write_lost() > 0
    });
    assert_eq!(
        probe.lost_count(),
        0,
        "D6: the read side goes on after a half-close"
    );
    h.peer_write(b"c");
    run_until(
        h,
        "D6: data after the half-close",
        DEFAULT_MAX_STEPS,
        |_| probe.data() == b"c",
    );
    h.peer_close();
    run_until(h, "D6: the end of the read side", DEFAULT_MAX_STEPS, |_| {
        probe.read_lost() > 0 || probe.lost_count() > 0
    });
    assert!(probe.lost_count() <= 1, "D7: connection_lost at most once");
    assert_eq!(
        probe.write_lost(),
        1,
        "D6: write_connection_lost exactly once"
    );
}

/// D7: `connection_lost` stops and clears the producer and is delivered exactly once.
pub fn d7_connection_lost_stops_producer_and_is_delivered_once<H: ContractHarness + ?Sized>(
    h: &mut H,
) {
    let (probe, t) = connect(h, Probe::plain());
    let producer = ProbeProducer::new();
    if let Err(e) = t.register_producer(Producer::Push(producer.clone())) {
        panic!("D7: register_producer failed: {e}");
    }
    h.peer_close();
    let reason = wait_lost(h, &probe, "D7: connection_lost after the peer closed");
    assert!(
        reason.is_clean(),
        "D7: EOF from the peer is ConnectionDone, got {reason}"
    );
    assert_eq!(producer.stops(), 1, "D7: the producer is stopped");
    let other = ProbeProducer::new();
    assert!(
        t.register_producer(Producer::Push(other)).is_ok(),
        "D7: the producer is cleared"
    );
}

/// D8: the transport as a producer: `pause_producing` stops reading (the data waits),
/// `resume_producing` delivers it.
pub fn d8_pause_producing_stops_reading<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    t.pause_producing();
    h.peer_write(b"held");
    for _ in 0..QUIET_STEPS {
        h.step();
    }
    assert!(probe.data().is_empty(), "D8: nothing is read while paused");
    t.resume_producing();
    run_until(
        h,
        "D8: the held data after resume",
        DEFAULT_MAX_STEPS,
        |_| probe.data() == b"held",
    );
    assert_eq!(probe.lost_count(), 0);
}

/// D8: `stop_producing` is `lose_connection`: flush, then a clean close.
pub fn d8_stop_producing_is_lose_connection<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    t.write(b"bye");
    t.stop_producing();
    let got = collect_until_peer_closed(h, "D8: the close after stop_producing");
    assert_eq!(
        got, b"bye",
        "D8: stop_producing flushes like lose_connection"
    );
    let reason = wait_lost(h, &probe, "D8: connection_lost after stop_producing");
    assert!(reason.is_clean(), "D8: ConnectionDone, got {reason}");
}

/// E1: registering a second producer is an error; after unregistering it works again.
pub fn e1_second_producer_is_an_error<H: ContractHarness + ?Sized>(h: &mut H) {
    let (_probe, t) = connect(h, Probe::plain());
    let first = ProbeProducer::new();
    assert!(t.register_producer(Producer::Push(first)).is_ok());
    let second = ProbeProducer::new();
    assert_eq!(
        t.register_producer(Producer::Push(second.clone())),
        Err(ProducerError::AlreadyRegistered),
        "E1: a second push producer is refused"
    );
    assert_eq!(
        t.register_producer(Producer::Pull(second.clone())),
        Err(ProducerError::AlreadyRegistered),
        "E1: a second pull producer is refused"
    );
    assert_eq!(second.resumes(), 0, "E1: a refused producer is not called");
    t.unregister_producer();
    assert!(t.register_producer(Producer::Push(second)).is_ok());
    t.unregister_producer();
}

/// E1: on a disconnected transport, `register_producer` stops the producer and does not
/// register it (not an error).
pub fn e1_register_on_disconnected_stops_producer<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    h.peer_close();
    wait_lost(h, &probe, "E1: connection_lost");
    let push = ProbeProducer::new();
    assert!(t.register_producer(Producer::Push(push.clone())).is_ok());
    assert_eq!(
        push.calls(),
        vec![ProducerCall::Stop],
        "E1: stopped, nothing else"
    );
    let pull = ProbeProducer::new();
    assert!(
        t.register_producer(Producer::Pull(pull.clone())).is_ok(),
        "E1: the first producer was not registered"
    );
    assert_eq!(
        pull.calls(),
        vec![ProducerCall::Stop],
        "E1: a pull producer is not resumed"
    );
}

/// E1: a pull producer is resumed at once, inside `register_producer`; a push producer
/// is assumed to be running (not resumed).
pub fn e1_pull_producer_resumed_at_once<H: ContractHarness + ?Sized>(h: &mut H) {
    let (_probe, t) = connect(h, Probe::plain());
    let pull = ProbeProducer::new();
    assert!(t.register_producer(Producer::Pull(pull.clone())).is_ok());
    assert_eq!(
        pull.resumes(),
        1,
        "E1: a pull producer is resumed at registration"
    );
    t.unregister_producer();
    let push = ProbeProducer::new();
    assert!(t.register_producer(Producer::Push(push.clone())).is_ok());
    assert!(
        push.calls().is_empty(),
        "E1: a push producer is assumed running"
    );
    t.unregister_producer();
}

/// E2: a pull producer is resumed after each drain and keeps a `lose_connection` open
/// until it unregisters; everything it wrote arrives before the close.
pub fn e2_pull_producer_keeps_connection_open_until_unregistered<H: ContractHarness + ?Sized>(
    h: &mut H,
) {
    let (probe, t) = connect(h, Probe::plain());
    let chunks = ChunkProducer::new(&t);
    assert!(t.register_producer(Producer::Pull(chunks.clone())).is_ok());
    t.lose_connection();
    let got = collect_until_peer_closed(h, "E2: the close after the producer finished");
    assert!(
        chunks.finished(),
        "E2: the producer was resumed until it finished"
    );
    assert_eq!(
        got,
        chunks.expected_output(),
        "E2: every chunk arrives before the close"
    );
    let reason = wait_lost(h, &probe, "E2: connection_lost");
    assert!(reason.is_clean(), "E2: ConnectionDone, got {reason}");
}

/// E3: a push producer that writes again from `resume_producing` is paused again inside
/// that call; pauses and resumes stay balanced.
pub fn e3_push_producer_writing_from_resume_is_paused_again<H: ContractHarness + ?Sized>(
    h: &mut H,
) {
    if !h.claims().flow_control {
        return skip("E3", "flow_control");
    }
    const BIG: usize = 256 * 1024;
    let (_probe, t) = connect(h, Probe::plain());
    h.set_peer_reading(false);
    let weak = Rc::downgrade(&t);
    let producer = ProbeProducer::with_resume_hook(Box::new(move |n| {
        if n <= 2 {
            if let Some(t) = weak.upgrade() {
                t.write(&vec![b'r'; BIG]);
            }
        }
    }));
    assert!(
        t.register_producer(Producer::Push(producer.clone()))
            .is_ok()
    );
    t.write(&vec![b'w'; BIG]);
    assert_eq!(
        producer.pauses(),
        1,
        "D4: paused inside the write over the buffer size"
    );
    h.set_peer_reading(true);
    let mut got = 0;
    run_until(h, "E3: three drains", BULK_STEPS, |h| {
        got += h.peer_received().len();
        got == 3 * BIG && producer.resumes() == 3
    });
    assert_eq!(
        producer.paused_inside_resume(),
        2,
        "E3: a write from resume_producing over the buffer size pauses again at once"
    );
    use ProducerCall::{Pause, Resume};
    assert_eq!(
        producer.calls(),
        vec![Pause, Resume, Pause, Resume, Pause, Resume],
        "E3: pause and resume calls are balanced"
    );
    t.unregister_producer();
}

/// E4 (with E2): a registered pull producer holds a `lose_connection` open;
/// `unregister_producer` lets it complete.
pub fn e4_unregister_completes_pending_lose_connection<H: ContractHarness + ?Sized>(h: &mut H) {
    let (probe, t) = connect(h, Probe::plain());
    let idle = ProbeProducer::new();
    assert!(t.register_producer(Producer::Pull(idle.clone())).is_ok());
    t.lose_connection();
    for _ in 0..QUIET_STEPS {
        h.step();
    }
    assert_eq!(
        probe.lost_count(),
        0,
        "E2: a pull producer keeps the connection open"
    );
    assert!(
        !h.peer_closed(),
        "E2: a pull producer keeps the connection open"
    );
    t.unregister_producer();
    let reason = wait_lost(
        h,
        &probe,
        "E4: the pending lose_connection after unregister",
    );
    assert!(reason.is_clean(), "E4: ConnectionDone, got {reason}");
    run_until(h, "E4: the peer to see the close", DEFAULT_MAX_STEPS, |h| {
        h.peer_closed()
    });
    assert_eq!(
        idle.stops(),
        0,
        "E4: an unregistered producer is not stopped"
    );
}

/// E4 **\[deliberate\]**: unregistering resets the paused flag, so the next producer is not
/// resumed as if it had been paused.
pub fn e4_unregister_resets_paused_flag<H: ContractHarness + ?Sized>(h: &mut H) {
    if !h.claims().flow_control {
        return skip("E4 (paused flag)", "flow_control");
    }
    let (_probe, t) = connect(h, Probe::plain());
    h.set_peer_reading(false);
    let first = ProbeProducer::new();
    assert!(t.register_producer(Producer::Push(first.clone())).is_ok());
    let written = fill_until_paused(h, &t, &first);
    t.unregister_producer();
    let second = ProbeProducer::new();
    assert!(t.register_producer(Producer::Push(second.clone())).is_ok());
    h.set_peer_reading(true);
    collect_bytes(h, "E4: the buffer to drain", written);
    for _ in 0..QUIET_STEPS {
        h.step();
    }
    assert_eq!(
        first.resumes(),
        0,
        "E4: an unregistered producer is not resumed"
    );
    assert!(
        second.calls().is_empty(),
        "E4: the next producer was never paused, so it is not resumed; got {:?}",
        second.calls()
    );
    t.unregister_producer();
}

/// Expands to one `#[test]` per transport contract item (CONTRACT D1–D8, E1–E4), each
/// running against a fresh harness built by the given expression, and one per re-entry
/// scenario (every transport method inside every protocol and producer callback; see
/// [`Method`](crate::contract::Method)), which builds a fresh harness per method.
///
/// Items that need an optional behaviour ([`Claims`](crate::contract::Claims)) run when the
/// invocation claims it — the default claims everything — and the generated test first
/// checks that the harness's `claims()` agrees. An implementation without a behaviour says
/// why, and those items become `#[ignore]`d tests carrying the reason: an item that cannot
/// apply is reported as ignored, never as a pass that checked nothing.
///
/// ```text
/// torsion_testing::contract_suite!(MyHarness::new());
/// torsion_testing::contract_suite!(MyPty::new(), unclaimed: {
///     half_close: "a terminal has no half-close (CONTRACT L6)",
/// });
/// torsion_testing::contract_suite!(MyRelay::new(), unclaimed: {
///     flow_control: "why",
///     half_close: "why",
/// });
/// ```
#[macro_export]
macro_rules! contract_suite {
    ($harness:expr $(,)?) => {
        $crate::contract_suite!(@all $harness; (run); (run));
    };
    ($harness:expr, unclaimed: { flow_control: $fw:literal $(,)? } $(,)?) => {
        $crate::contract_suite!(@all $harness; (ignore $fw); (run));
    };
    ($harness:expr, unclaimed: { half_close: $hw:literal $(,)? } $(,)?) => {
        $crate::contract_suite!(@all $harness; (run); (ignore $hw));
    };
    ($harness:expr, unclaimed: { flow_control: $fw:literal, half_close: $hw:literal $(,)? } $(,)?) => {
        $crate::contract_suite!(@all $harness; (ignore $fw); (ignore $hw));
    };
    (@all $harness:expr; $flow:tt; $half:tt) => {
        $crate::contract_suite!(@tests $harness;
            d1_write_after_lose_connection_is_flushed,
            d1_write_after_connection_lost_is_ignored,
            d1_empty_write_does_nothing,
            d9_unsent_bytes_zero_once_sent,
            d2_write_sequence_sends_chunks_in_order,
            d3_lose_connection_completes_after_full_drain,
            d5_lose_connection_stops_reading_at_once,
            d5_lose_connection_inside_data_received,
            d5_abort_connection_closes_from_the_loop,
            d7_connection_lost_stops_producer_and_is_delivered_once,
            d8_pause_producing_stops_reading,
            d8_stop_producing_is_lose_connection,
            e1_second_producer_is_an_error,
            e1_register_on_disconnected_stops_producer,
            e1_pull_producer_resumed_at_once,
            e2_pull_producer_keeps_connection_open_until_unregistered,
            e4_unregister_completes_pending_lose_connection,
        );
        $crate::contract_suite!(@claimed $harness; $flow; flow_control;
            d4_streaming_producer_paused_inside_write_and_resumed_on_drain,
            d9_unsent_bytes_counts_the_backlog,
            e3_push_producer_writing_from_resume_is_paused_again,
            e4_unregister_resets_paused_flag,
        );
        $crate::contract_suite!(@claimed $harness; $half; half_close;
            d6_lose_write_connection_half_closes,
        );
        $crate::contract_suite!(@fresh $harness;
            d7_every_method_inside_connection_made,
            d7_every_method_inside_data_received,
            d7_every_method_inside_connection_lost,
            d7_every_method_inside_push_stop_producing,
            e2_every_method_inside_pull_resume_producing,
            e1_every_method_inside_pull_resume_at_registration,
            d7_every_method_inside_pull_stop_producing,
        );
        $crate::contract_suite!(@claimed_fresh $harness; $flow; flow_control;
            e3_every_method_inside_push_pause_producing,
            e3_every_method_inside_push_resume_producing,
        );
    };
    (@tests $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut harness = $harness;
                $crate::contract::$name(&mut harness);
            }
        )*
    };
    // Scenarios that need a fresh harness per case get a closure making them.
    (@fresh $harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::contract::$name(&mut || $harness);
            }
        )*
    };
    (@claimed $harness:expr; (run); $claim:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let mut harness = $harness;
                $crate::contract_suite!(@agrees harness; $claim);
                $crate::contract::$name(&mut harness);
            }
        )*
    };
    (@claimed $harness:expr; (ignore $why:literal); $claim:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $why]
            fn $name() {
                let mut harness = $harness;
                $crate::contract::$name(&mut harness);
            }
        )*
    };
    (@claimed_fresh $harness:expr; (run); $claim:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let harness = $harness;
                $crate::contract_suite!(@agrees harness; $claim);
                drop(harness);
                $crate::contract::$name(&mut || $harness);
            }
        )*
    };
    (@claimed_fresh $harness:expr; (ignore $why:literal); $claim:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $why]
            fn $name() {
                $crate::contract::$name(&mut || $harness);
            }
        )*
    };
    (@agrees $harness:ident; $claim:ident) => {
        assert!(
            $crate::contract::ContractHarness::claims(&$harness).$claim,
            concat!(
                "the suite runs the ",
                stringify!($claim),
                " items but the harness does not claim ",
                stringify!($claim),
                ": list it under `unclaimed` with the reason"
            )
        );
    };
}
