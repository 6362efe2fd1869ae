//! The chat-server's room on the test kit's `StringTransport`: no sockets, the test plays
//! every client. A `StringTransport` counts what the test has not taken (`take_value`) as
//! unsent, so a client that never takes its bytes is a client that never reads.

use std::rc::Rc;

use torsion::prelude::*;
use torsion::testing::StringTransport;
use torsion_examples::chat::{MAX_BACKLOG, MAX_LINE, Room};

struct Client {
    protocol: Box<dyn Protocol>,
    transport: Rc<StringTransport>,
}

fn join(room: &Room) -> Client {
    let mut protocol: Box<dyn Protocol> = Box::new(room.protocol());
    let transport = Rc::new(StringTransport::lenient());
    protocol.connection_made(transport.clone());
    Client {
        protocol,
        transport,
    }
}

#[test]
fn a_line_reaches_every_other_client_once_ended_by_lf() {
    let room = Room::new();
    let mut a = join(&room);
    let b = join(&room);
    let c = join(&room);
    assert_eq!(room.len(), 3);
    a.protocol.data_received(b"hello\r\nwor");
    a.protocol.data_received(b"ld\n");
    assert_eq!(b.transport.take_value(), b"hello\nworld\n");
    assert_eq!(c.transport.take_value(), b"hello\nworld\n");
    assert_eq!(a.transport.take_value(), b"", "not echoed to the sender");
}

#[test]
fn lines_keep_their_senders_order() {
    let room = Room::new();
    let mut a = join(&room);
    let mut b = join(&room);
    let c = join(&room);
    a.protocol.data_received(b"a1\na2\n");
    b.protocol.data_received(b"b1\n");
    a.protocol.data_received(b"a3\n");
    assert_eq!(c.transport.take_value(), b"a1\na2\nb1\na3\n");
    assert_eq!(b.transport.take_value(), b"a1\na2\na3\n");
    assert_eq!(a.transport.take_value(), b"b1\n");
}

#[test]
fn a_line_over_16384_bytes_closes_its_sender_only() {
    let room = Room::new();
    let mut a = join(&room);
    let b = join(&room);
    let mut ok = vec![b'x'; MAX_LINE];
    ok.push(b'\n');
    a.protocol.data_received(&ok);
    assert_eq!(b.transport.take_value(), ok, "16,384 bytes pass");
    assert!(!a.transport.disconnecting());
    let mut long = vec![b'y'; MAX_LINE + 1];
    long.extend_from_slice(b"\r\n");
    a.protocol.data_received(&long);
    assert!(a.transport.disconnecting(), "16,385 bytes close the sender");
    assert_eq!(b.transport.take_value(), b"", "and are not relayed");
    assert!(!b.transport.disconnecting());
    a.protocol.connection_lost(Reason::ConnectionDone);
    assert_eq!(room.len(), 1);
}

#[test]
fn a_client_over_1_mib_behind_is_cut_and_the_others_go_on() {
    let room = Room::new();
    let mut talker = join(&room);
    let reader = join(&room);
    let slow = join(&room);
    let line = vec![b'z'; 1000];
    let framed = [&line[..], b"\n"].concat();
    let mut sent = 0;
    while !slow.transport.disconnected() {
        talker.protocol.data_received(&framed);
        sent += 1;
        assert_eq!(reader.transport.take_value(), framed, "line {sent}");
        assert!(sent < 2000, "the slow client was never cut");
    }
    // Cut as soon as its backlog passed 1 MiB, not before.
    assert_eq!(sent, MAX_BACKLOG / framed.len() + 1);
    assert_eq!(room.len(), 2, "the slow client left the room at once");
    // The talker and the reader go on.
    talker.protocol.data_received(b"still here\n");
    assert_eq!(reader.transport.take_value(), b"still here\n");
    assert!(!reader.transport.disconnecting() && !talker.transport.disconnecting());
}

#[test]
fn leaving_removes_the_member() {
    let room = Room::new();
    let mut a = join(&room);
    let mut b = join(&room);
    b.protocol.connection_lost(Reason::ConnectionDone);
    assert_eq!(room.len(), 1);
    a.protocol.data_received(b"anyone?\n");
    assert_eq!(b.transport.take_value(), b"");
    a.protocol.connection_lost(Reason::ConnectionDone);
    assert!(room.is_empty());
}
