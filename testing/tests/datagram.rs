//! The fake datagram transport and MemoryReactor's listen_udp (CONTRACT O7).

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use torsion_testing::{FakeDatagramTransport, MAX_UDP_PAYLOAD, MemoryReactor, SentDatagram};
use torsion_transport::{
    Address, DatagramError, DatagramProtocol, DatagramTransport, MulticastInterface, ReactorUdp,
};

#[derive(Default)]
struct Seen {
    started: usize,
    got: Vec<(Vec<u8>, Address)>,
    truncated: Vec<(Vec<u8>, Option<usize>)>,
    refused: usize,
    stopped: usize,
}

struct Recorder {
    seen: Rc<RefCell<Seen>>,
    transport: Option<Rc<dyn DatagramTransport>>,
    echo: bool,
    stop_on: Option<Vec<u8>>,
}

impl Recorder {
    fn new(echo: bool) -> (Self, Rc<RefCell<Seen>>) {
        let seen = Rc::new(RefCell::new(Seen::default()));
        let r = Recorder {
            seen: seen.clone(),
            transport: None,
            echo,
            stop_on: None,
        };
        (r, seen)
    }
}

impl DatagramProtocol for Recorder {
    fn start_protocol(&mut self, transport: Rc<dyn DatagramTransport>) {
        self.seen.borrow_mut().started += 1;
        self.transport = Some(transport);
    }
    fn datagram_received(&mut self, data: &[u8], from: Address) {
        self.seen
            .borrow_mut()
            .got
            .push((data.to_vec(), from.clone()));
        let t = self.transport.as_ref().unwrap();
        if self.echo {
            t.write(data, &from).unwrap();
        }
        if self.stop_on.as_deref() == Some(data) {
            t.stop_listening();
        }
    }
    fn datagram_truncated(&mut self, data: &[u8], size: Option<usize>, _: Address) {
        self.seen.borrow_mut().truncated.push((data.to_vec(), size));
    }
    fn connection_refused(&mut self) {
        self.seen.borrow_mut().refused += 1;
    }
    fn stop_protocol(&mut self) {
        self.seen.borrow_mut().stopped += 1;
    }
}

fn mem(label: &str) -> Address {
    Address::Memory(label.into())
}

#[test]
fn o7_records_writes_with_addresses_and_delivers() {
    let port = FakeDatagramTransport::new(mem("server"));
    let (p, seen) = Recorder::new(true);
    port.start(Box::new(p));
    assert_eq!(seen.borrow().started, 1);
    assert!(port.deliver(b"a", mem("x")));
    assert!(port.deliver(b"b", mem("y")));
    assert_eq!(
        port.sent(),
        vec![
            SentDatagram {
                data: b"a".to_vec(),
                to: mem("x")
            },
            SentDatagram {
                data: b"b".to_vec(),
                to: mem("y")
            },
        ]
    );
    assert_eq!(seen.borrow().got[1], (b"b".to_vec(), mem("y")));
    port.clear();
    assert!(port.sent().is_empty());
}

#[test]
fn o7_connected_mode_filters_and_checks_addresses() {
    let port = FakeDatagramTransport::new(mem("me"));
    let (p, seen) = Recorder::new(false);
    port.start(Box::new(p));
    let e = port.write_connected(b"x").unwrap_err();
    assert_eq!(DatagramError::of(&e), Some(&DatagramError::NotConnected));
    port.connect(&mem("peer")).unwrap();
    let e = port.connect(&mem("other")).unwrap_err();
    assert_eq!(
        DatagramError::of(&e),
        Some(&DatagramError::AlreadyConnected)
    );
    assert_eq!(port.peer(), Some(mem("peer")));
    port.write_connected(b"1").unwrap();
    port.write(b"2", &mem("peer")).unwrap();
    let e = port.write(b"3", &mem("other")).unwrap_err();
    assert!(matches!(
        DatagramError::of(&e),
        Some(DatagramError::ConnectedElsewhere { .. })
    ));
    assert_eq!(port.sent().len(), 2);
    assert!(port.sent().iter().all(|d| d.to == mem("peer")));
    assert!(!port.deliver(b"from elsewhere", mem("other")));
    assert!(port.deliver(b"from peer", mem("peer")));
    assert_eq!(seen.borrow().got.len(), 1);
}

#[test]
fn o7_refusal_only_when_connected() {
    let port = FakeDatagramTransport::new(mem("me"));
    let (p, seen) = Recorder::new(false);
    port.start(Box::new(p));
    assert!(!port.refuse());
    port.connect(&mem("peer")).unwrap();
    assert!(port.refuse());
    assert_eq!(seen.borrow().refused, 1);
    port.set_refusing(true);
    let e = port.write_connected(b"x").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    assert!(port.sent().is_empty());
}

#[test]
fn o7_oversize_write_is_an_error_and_truncation_is_delivered() {
    let port = FakeDatagramTransport::new(mem("me"));
    let (p, seen) = Recorder::new(false);
    port.start(Box::new(p));
    let e = port
        .write(&vec![0; MAX_UDP_PAYLOAD + 1], &mem("x"))
        .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    port.write(&vec![0; MAX_UDP_PAYLOAD], &mem("x")).unwrap();
    assert!(port.deliver_truncated(b"abc", 100_000, mem("x")));
    assert_eq!(
        seen.borrow().truncated,
        vec![(b"abc".to_vec(), Some(100_000))]
    );
    assert!(seen.borrow().got.is_empty());
}

#[test]
fn o7_stop_inside_a_callback_is_delivered_after_it() {
    let port = FakeDatagramTransport::new(mem("me"));
    let (mut p, seen) = Recorder::new(false);
    p.stop_on = Some(b"bye".to_vec());
    port.start(Box::new(p));
    assert!(port.deliver(b"bye", mem("x")));
    assert!(port.stopped());
    assert!(port.protocol_stopped());
    assert_eq!(seen.borrow().stopped, 1);
    assert!(!port.deliver(b"late", mem("x")));
    let e = port.write(b"late", &mem("x")).unwrap_err();
    assert_eq!(DatagramError::of(&e), Some(&DatagramError::Closed));
    port.stop_listening();
    assert_eq!(seen.borrow().stopped, 1);
}

#[test]
fn o7_multicast_options_are_recorded() {
    let port = FakeDatagramTransport::new(mem("me"));
    let g = IpAddr::V4(Ipv4Addr::new(239, 1, 2, 3));
    port.join_group(g, MulticastInterface::Any).unwrap();
    assert_eq!(
        port.join_group(g, MulticastInterface::Any)
            .unwrap_err()
            .kind(),
        io::ErrorKind::AddrInUse
    );
    assert_eq!(port.groups(), vec![(g, MulticastInterface::Any)]);
    port.leave_group(g, MulticastInterface::Any).unwrap();
    assert!(port.leave_group(g, MulticastInterface::Any).is_err());
    port.set_multicast_ttl(5).unwrap();
    assert_eq!(port.multicast_ttl().unwrap(), 5);
    port.set_multicast_loopback(false).unwrap();
    assert!(!port.multicast_loopback().unwrap());
    port.set_broadcast_allowed(true).unwrap();
    assert!(port.broadcast_allowed().unwrap());
    port.set_multicast_interface(MulticastInterface::V4(Ipv4Addr::LOCALHOST))
        .unwrap();
    assert_eq!(
        port.multicast_interface(),
        MulticastInterface::V4(Ipv4Addr::LOCALHOST)
    );
}

/// Generic over the capability: runs on MemoryReactor here, on the reactor in its tests.
fn start_echo<R: ReactorUdp>(reactor: &R) -> Rc<dyn DatagramTransport> {
    let (p, _) = Recorder::new(true);
    reactor
        .listen_udp("127.0.0.1:0".parse().unwrap(), Box::new(p))
        .unwrap()
}

#[test]
fn o5_memory_reactor_records_listen_udp() {
    let reactor = MemoryReactor::new();
    let port = start_echo(&reactor);
    let listens = reactor.udp_listens();
    assert_eq!(listens.len(), 1);
    assert_eq!(listens[0].addr.port(), 0);
    assert_eq!(port.host().port(), Some(torsion_testing::FIRST_FAKE_PORT));
    let fake = &listens[0].transport;
    assert!(fake.deliver(b"hi", mem("c")));
    assert_eq!(fake.sent()[0].data, b"hi");
}

/// The fake plays by the same contract as the reactor's ports.
struct FakeHarness {
    port: Option<Rc<FakeDatagramTransport>>,
}

impl torsion_testing::contract::DatagramHarness for FakeHarness {
    fn start(&mut self, protocol: Box<dyn DatagramProtocol>) -> Rc<dyn DatagramTransport> {
        let port = FakeDatagramTransport::new(mem("me"));
        port.start(protocol);
        self.port = Some(port.clone());
        port
    }
    fn peer_address(&mut self) -> Address {
        mem("peer")
    }
    fn other_address(&mut self) -> Address {
        mem("other")
    }
    fn peer_send(&mut self, data: &[u8]) {
        assert!(self.port.as_ref().unwrap().deliver(data, mem("peer")));
    }
    fn peer_received(&mut self) -> Vec<Vec<u8>> {
        let port = self.port.as_ref().unwrap();
        let got = port
            .sent()
            .into_iter()
            .filter(|d| d.to == mem("peer"))
            .map(|d| d.data)
            .collect();
        port.clear();
        got
    }
    fn step(&mut self) {}
}

#[test]
fn o7_the_fake_keeps_the_datagram_contract() {
    torsion_testing::contract::check_datagram_transport(&mut FakeHarness { port: None });
}
