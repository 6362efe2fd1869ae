//! TCP: listening, connecting, and CONTRACT D/E over real loopback sockets.

mod util;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_reactor::tcp::{self, TcpOptions};
use torsion_reactor::{Reactor, TcpTransport};
use torsion_transport::{
    Connector, Consumer, ListeningPort, Producer, ProducerError, ReactorTcp, Reason, Transport,
    factory_fn,
};
use util::*;

fn reactor() -> Reactor {
    Reactor::new().expect("reactor")
}

fn echo_server(r: &Reactor) -> (Rc<dyn ListeningPort>, SocketAddr) {
    let port = r
        .listen_tcp(
            "127.0.0.1:0".parse().unwrap(),
            factory_fn(|_| Recorder::new(&shared()).echo().boxed()),
        )
        .expect("listen");
    let addr = port.host().socket_addr().expect("tcp address");
    (port, addr)
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A pair of connected TCP transports: (client, server).
fn pair(
    r: &Reactor,
    a: Box<dyn torsion_transport::Protocol>,
    b: Box<dyn torsion_transport::Protocol>,
) -> (Rc<TcpTransport>, Rc<TcpTransport>) {
    let (c, s) = tcp_sockets();
    start_pair(r, c, s, a, b)
}

#[test]
fn listen_port_zero_reports_the_real_port_and_echoes() {
    let r = reactor();
    let (port, addr) = echo_server(&r);
    assert_ne!(addr.port(), 0);
    let log = shared();
    let l2 = log.clone();
    let client = Client::new(move || {
        Recorder::new(&l2)
            .on_made(|t, _| t.write(b"hello"))
            .on_data(|t, _, log| {
                if log.borrow().data.len() == 5 {
                    t.lose_connection();
                }
            })
            .boxed()
    });
    let connector = r.connect_tcp(addr, client.clone(), Some(DEADLINE));
    assert_eq!(connector.destination(), addr.into());
    assert_eq!(client.started.get(), 1);
    r.run_until(|| !client.lost.borrow().is_empty(), DEADLINE)
        .unwrap();
    assert_eq!(log.borrow().data, b"hello");
    assert_eq!(log.borrow().lost.len(), 1);
    assert!(log.borrow().lost[0].is_clean());
    assert!(client.lost.borrow()[0].is_clean());
    assert_eq!(client.failed_count(), 0);
    port.stop_listening();
}

#[test]
fn d1_write_after_lose_connection_is_flushed() {
    let r = reactor();
    let (client, server) = (shared(), shared());
    pair(
        &r,
        Recorder::new(&client).boxed(),
        Recorder::new(&server)
            .on_made(|t, _| {
                t.write(b"before ");
                t.lose_connection();
                t.write(b"after");
            })
            .boxed(),
    );
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(client.borrow().data, b"before after");
    assert!(client.borrow().lost[0].is_clean());
    r.run_until(|| server.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert!(server.borrow().lost[0].is_clean());
}

/// A read shorter than the buffer ends the read loop (issue 15) unless the peer's close was
/// seen: data and FIN that are already queued when the connection is accepted, and data
/// then FIN arriving later, both end in `connection_lost` after every byte.
#[test]
fn short_reads_still_reach_eof_with_data_and_fin_together_or_apart() {
    use std::io::Write;
    let r = reactor();
    let log = shared();
    let l2 = log.clone();
    let port = r
        .listen_tcp(
            "127.0.0.1:0".parse().unwrap(),
            factory_fn(move |_| Recorder::new(&l2).boxed()),
        )
        .expect("listen");
    let addr = port.host().socket_addr().expect("tcp address");
    // Together: written and closed before the reactor accepts.
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"one ").unwrap();
    c.write_all(b"two").unwrap();
    drop(c);
    r.run_until(|| log.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(log.borrow().data, b"one two");
    assert!(log.borrow().lost[0].is_clean());
    // Apart: a short read first, then more data and the FIN in a later event.
    log.borrow_mut().data.clear();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"three").unwrap();
    r.run_until(|| log.borrow().data == b"three", DEADLINE)
        .unwrap();
    c.write_all(b" four").unwrap();
    drop(c);
    r.run_until(|| log.borrow().lost.len() == 2, DEADLINE)
        .unwrap();
    assert_eq!(log.borrow().data, b"three four");
    assert!(log.borrow().lost[1].is_clean());
    port.stop_listening();
}

#[test]
fn d10_owned_and_shared_writes_arrive_in_order_with_copied_ones() {
    use std::rc::Rc;
    use torsion_transport::SharedBytes;
    // Big enough that the kernel leaves some of it queued (the no-copy path), and mixed
    // with copied writes to check the order.
    let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let reply = SharedBytes::from(Rc::<[u8]>::from(&b"<shared reply>"[..]));
    let mut expected = b"head ".to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(b"<shared reply>");
    expected.extend_from_slice(b"reply>");
    expected.extend_from_slice(b" tail");
    let r = reactor();
    let (client, server) = (shared(), shared());
    let sent = (big.clone(), reply);
    pair(
        &r,
        Recorder::new(&client).boxed(),
        Recorder::new(&server)
            .on_made(move |t, _| {
                t.write(b"head ");
                t.write_owned(sent.0.clone());
                t.write_shared(sent.1.clone());
                t.write_shared(sent.1.get(8..).expect("in range"));
                t.write_owned(Vec::new());
                t.write(b" tail");
                t.lose_connection();
            })
            .boxed(),
    );
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    let got = client.borrow().data.clone();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes differ from the copied-write order");
}

#[test]
fn d4_streaming_producer_paused_over_buffer_size_and_resumed() {
    let r = reactor();
    let server = shared();
    let (client_t, _server_t) = pair(
        &r,
        Recorder::new(&shared()).boxed(),
        Recorder::new(&server).discard().boxed(),
    );
    let p = PatternProducer::new(256 * 1024, 256 * 1024, false);
    *p.consumer.borrow_mut() = client_t.as_transport();
    client_t
        .register_producer(Producer::Push(p.clone()))
        .unwrap();
    let size = client_t.file_descriptor().buffer_size();
    assert_eq!(size, 64 * 1024);
    // One write that takes the buffer over its size pauses the producer inside `write`.
    p.produce();
    assert_eq!(p.pauses.get(), 1, "paused synchronously inside write");
    assert_eq!(p.resumes.get(), 0);
    r.run_until(|| p.resumes.get() == 1, DEADLINE).unwrap();
    assert_eq!(
        client_t.file_descriptor().unsent(),
        0,
        "resumed when drained"
    );
    r.run_until(
        || server.borrow().chunks > 0 && p.sent.get() == p.total,
        DEADLINE,
    )
    .unwrap();
    client_t.unregister_producer();
    client_t.lose_connection();
    r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
}

#[test]
fn d5_no_data_delivered_after_lose_connection() {
    let r = reactor();
    let server = shared();
    let (client_t, _s) = pair(
        &r,
        Recorder::new(&shared()).boxed(),
        Recorder::new(&server)
            .discard()
            .on_data(|t, _, log| {
                closing(log);
                t.lose_connection();
            })
            .boxed(),
    );
    for _ in 0..64 {
        client_t.write(&[7u8; 16 * 1024]);
    }
    r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    assert_eq!(server.borrow().chunks, 1);
    assert!(!server.borrow().data_after_close);
    assert!(server.borrow().lost[0].is_clean());
}

#[test]
fn d5_abort_drops_buffer_and_connection_lost_from_loop() {
    let r = reactor();
    let (client, server) = (shared(), shared());
    let lost_inside = Rc::new(Cell::new(false));
    let li = lost_inside.clone();
    pair(
        &r,
        Recorder::new(&client).boxed(),
        Recorder::new(&server)
            .on_made(move |t, log| {
                t.write(&vec![1u8; 1 << 20]);
                t.abort_connection();
                // connection_lost is never called from inside abort_connection.
                li.set(!log.borrow().lost.is_empty());
            })
            .boxed(),
    );
    assert!(!lost_inside.get());
    assert!(server.borrow().lost.is_empty());
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(
        server.borrow().lost[..],
        [Reason::ConnectionAborted]
    ));
    assert_eq!(client.borrow().data.len(), 0, "the buffer was dropped");
}

#[test]
fn d6_half_close() {
    let r = reactor();
    let (client, server) = (shared(), shared());
    let (client_t, _s) = pair(
        &r,
        Recorder::new(&client).half_closeable().boxed(),
        Recorder::new(&server)
            .on_read_lost(|t, log| {
                // The peer finished writing; we finish ours and close.
                let n = log.borrow().data.len();
                t.write(format!("got {n}").as_bytes());
                t.lose_connection();
            })
            .boxed(),
    );
    client_t.write(b"hello");
    client_t.lose_write_connection();
    client_t.write(b"dropped");
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(server.borrow().data, b"hello");
    assert_eq!(server.borrow().read_lost, 1);
    assert_eq!(client.borrow().write_lost, 1);
    assert_eq!(client.borrow().data, b"got 5");
    assert!(client.borrow().lost[0].is_clean());
    r.run_until(|| server.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
}

#[test]
fn d7_connection_lost_exactly_once_and_producer_stopped() {
    let r = reactor();
    let client = shared();
    let (client_t, server_t) = pair(
        &r,
        Recorder::new(&client).boxed(),
        Recorder::new(&shared()).boxed(),
    );
    let p = PatternProducer::new(1024, 0, false);
    client_t
        .register_producer(Producer::Push(p.clone()))
        .unwrap();
    server_t.lose_connection();
    client_t.lose_connection();
    client_t.abort_connection();
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    for _ in 0..5 {
        r.iterate(Duration::ZERO).unwrap();
    }
    assert_eq!(client.borrow().lost.len(), 1);
    assert_eq!(p.stops.get(), 1);
    assert!(client_t.file_descriptor().producer().is_none());
}

#[test]
fn e1_second_producer_is_error() {
    let r = reactor();
    let (t, _s) = pair(
        &r,
        Recorder::new(&shared()).boxed(),
        Recorder::new(&shared()).boxed(),
    );
    let p = PatternProducer::new(1, 0, false);
    t.register_producer(Producer::Push(p.clone())).unwrap();
    assert_eq!(
        t.register_producer(Producer::Push(p.clone())),
        Err(ProducerError::AlreadyRegistered)
    );
    t.unregister_producer();
    t.register_producer(Producer::Push(p)).unwrap();
}

#[test]
fn e1_register_on_disconnected_stops_producer() {
    let r = reactor();
    let client = shared();
    let (t, _s) = pair(
        &r,
        Recorder::new(&client).boxed(),
        Recorder::new(&shared()).boxed(),
    );
    t.abort_connection();
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    let p = PatternProducer::new(1, 0, false);
    assert_eq!(t.register_producer(Producer::Push(p.clone())), Ok(()));
    assert_eq!(p.stops.get(), 1);
    assert!(t.file_descriptor().producer().is_none());
}

#[test]
fn e2_pull_producer_keeps_connection_open() {
    let r = reactor();
    let (client, server) = (shared(), shared());
    let (t, _s) = pair(
        &r,
        Recorder::new(&client).boxed(),
        Recorder::new(&server).boxed(),
    );
    let p = Rc::new(PullChunks {
        consumer: std::cell::RefCell::new(t.as_transport()),
        left: Cell::new(20),
        resumes: Cell::new(0),
        stops: Cell::new(0),
        unregister_when_done: true,
    });
    t.register_producer(Producer::Pull(p.clone())).unwrap();
    assert_eq!(p.resumes.get(), 1, "a pull producer is resumed at once");
    t.lose_connection();
    r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    assert_eq!(server.borrow().data.len(), 20 * 1000);
    assert!(p.resumes.get() >= 21);
    assert!(client.borrow().lost[0].is_clean());
}

#[test]
fn e3_push_producer_writing_from_resume_is_paused_again() {
    let r = reactor();
    let server = shared();
    let (t, _s) = pair(
        &r,
        Recorder::new(&shared()).boxed(),
        Recorder::new(&server).discard().boxed(),
    );
    let p = PatternProducer::new(100 * 1024, 4 << 20, true);
    *p.consumer.borrow_mut() = t.as_transport();
    let tc = t.clone();
    *p.unsent.borrow_mut() = Some(Box::new(move || tc.file_descriptor().unsent()));
    t.register_producer(Producer::Push(p.clone())).unwrap();
    p.produce();
    r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    assert!(p.pauses.get() > 1);
    // Balanced: every pause but possibly the last was followed by a resume.
    assert!(p.pauses.get() - p.resumes.get() <= 1);
    assert!(p.max_unsent.get() <= 64 * 1024 + 100 * 1024);
}

#[test]
fn e4_unregister_completes_pending_lose() {
    let r = reactor();
    let server = shared();
    let (t, _s) = pair(
        &r,
        Recorder::new(&shared()).boxed(),
        Recorder::new(&server).boxed(),
    );
    let p = Rc::new(PullChunks {
        consumer: std::cell::RefCell::new(None),
        left: Cell::new(0),
        resumes: Cell::new(0),
        stops: Cell::new(0),
        unregister_when_done: false,
    });
    t.register_producer(Producer::Pull(p.clone())).unwrap();
    t.write(b"data");
    t.lose_connection();
    r.run_until(|| server.borrow().data.len() == 4, DEADLINE)
        .unwrap();
    for _ in 0..20 {
        r.iterate(Duration::from_millis(1)).unwrap();
    }
    assert!(
        server.borrow().lost.is_empty(),
        "held open by the pull producer"
    );
    t.unregister_producer();
    r.run_until(|| !server.borrow().lost.is_empty(), DEADLINE)
        .unwrap();
    assert!(server.borrow().lost[0].is_clean());
    assert_eq!(p.stops.get(), 0, "unregistered, not stopped");
}

/// 64 MiB each way at once through an echo server that pauses its reads while its own
/// buffer is full, to a client that reads slowly.
#[test]
fn echo_64_mib_each_way_with_slow_reader_stays_bounded() {
    const TOTAL: u64 = 64 << 20;
    const CHUNK: usize = 64 * 1024;
    let r = reactor();
    let (client, server) = (shared(), shared());
    let pattern = Pattern::new(1 << 20);
    let received = Rc::new(Cell::new(0u64));
    let corrupt = Rc::new(Cell::new(false));
    let max_server = Rc::new(Cell::new(0usize));
    let server_t: Rc<std::cell::RefCell<Option<Rc<TcpTransport>>>> = Rc::default();
    let (ms, st_cell) = (max_server.clone(), server_t.clone());
    let (rc, cc, rr) = (received.clone(), corrupt.clone(), r.clone());
    let (ct, st) = pair(
        &r,
        Recorder::new(&client)
            .discard()
            .on_data(move |t, data, _| {
                let pos = rc.get();
                if !pattern.check(pos, data) {
                    cc.set(true);
                }
                rc.set(pos + data.len() as u64);
                // A slow reader: every MiB, stop reading for a millisecond.
                if (pos >> 20) != (rc.get() >> 20) {
                    t.pause_producing();
                    let t = t.clone();
                    rr.call_later(Duration::from_millis(1), move || t.resume_producing());
                }
                if rc.get() == TOTAL {
                    t.lose_connection();
                }
            })
            .boxed(),
        Recorder::new(&server)
            .discard()
            .echo()
            .on_data(move |_, _, _| {
                if let Some(t) = st_cell.borrow().as_ref() {
                    ms.set(ms.get().max(t.file_descriptor().unsent()));
                }
            })
            .on_made(|t, _| {
                // The transport is the producer of its own reads: echoing pauses reading
                // while the write buffer is full.
                let p: Rc<dyn torsion_transport::PushProducer> = t.clone();
                t.register_producer(Producer::Push(p)).unwrap();
            })
            .boxed(),
    );
    let p = PatternProducer::new(CHUNK, TOTAL, false);
    *p.consumer.borrow_mut() = ct.as_transport();
    let ct2 = ct.clone();
    *p.unsent.borrow_mut() = Some(Box::new(move || ct2.file_descriptor().unsent()));
    ct.register_producer(Producer::Push(p.clone())).unwrap();
    *server_t.borrow_mut() = Some(st.clone());
    let start = Instant::now();
    p.produce();
    r.run_until(|| !client.borrow().lost.is_empty(), Duration::from_secs(40))
        .unwrap();
    eprintln!(
        "64 MiB each way over TCP in {:?}: {} pauses, {} resumes, max unsent client {} server {}",
        start.elapsed(),
        p.pauses.get(),
        p.resumes.get(),
        p.max_unsent.get(),
        max_server.get()
    );
    assert_eq!(received.get(), TOTAL);
    assert!(!corrupt.get(), "the echo came back byte for byte");
    assert!(p.pauses.get() > 0 && p.resumes.get() > 0);
    let size = ct.file_descriptor().buffer_size();
    assert!(p.max_unsent.get() <= size + CHUNK, "{}", p.max_unsent.get());
    // The server's backlog: under the limit plus one read (64 KiB).
    // (It may stay 0: when the client reads fast enough, every echo goes straight to the
    // socket. The bound is the point; the client side's pauses show the flow control ran.)
    assert!(max_server.get() <= size + 64 * 1024, "{}", max_server.get());
    server_t.borrow_mut().take();
    drop(st);
}

#[test]
fn thousand_concurrent_connections() {
    let limit = raise_fd_limit();
    let n: usize = if limit >= 2200 {
        1000
    } else {
        (limit as usize / 3).max(10)
    };
    if n < 1000 {
        eprintln!("fd limit {limit}: running {n} connections instead of 1000");
    }
    let r = reactor();
    let (port, addr) = echo_server(&r);
    let done = Rc::new(Cell::new(0usize));
    let bad = Rc::new(Cell::new(0usize));
    let mut clients = Vec::new();
    for i in 0..n {
        let (d, b) = (done.clone(), bad.clone());
        let msg = format!("connection {i}").into_bytes();
        let client = Client::new(move || {
            let (d, b, m1, m2) = (d.clone(), b.clone(), msg.clone(), msg.clone());
            Recorder::new(&shared())
                .on_made(move |t, _| t.write(&m1))
                .on_data(move |t, _, log| {
                    if log.borrow().data.len() >= m2.len() {
                        if log.borrow().data != m2 {
                            b.set(b.get() + 1);
                        }
                        t.lose_connection();
                    }
                })
                .on_lost(move |_, _| d.set(d.get() + 1))
                .boxed()
        });
        r.connect_tcp(addr, client.clone(), Some(DEADLINE));
        clients.push(client);
    }
    r.run_until(|| done.get() == n, Duration::from_secs(30))
        .unwrap();
    assert_eq!(bad.get(), 0);
    assert!(clients.iter().all(|c| c.failed_count() == 0));
    port.stop_listening();
}

#[test]
fn connect_to_closed_port_is_refused_from_the_loop() {
    let r = reactor();
    let addr = free_port();
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    r.connect_tcp(addr, client.clone(), None);
    assert_eq!(client.started.get(), 1);
    assert_eq!(client.failed_count(), 0, "never synchronously");
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(
        client.first_failure(),
        Some(Reason::ConnectionRefused)
    ));
    assert_eq!(client.built.get(), 0);
}

#[test]
fn immediate_connect_error_is_reported_from_the_loop() {
    let r = reactor();
    // Connecting to port 0 fails inside connect(2) itself.
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    r.connect_tcp("127.0.0.1:0".parse().unwrap(), client.clone(), None);
    assert_eq!(client.failed_count(), 0, "never synchronously");
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
}

/// A listener whose accept queue is full (backlog 0, on a reactor that never runs, so
/// nothing is accepted) drops further SYNs: the attempt can only end by its timeout.
#[test]
fn connect_timeout_fires_when_the_backlog_is_full() {
    let idle = reactor();
    let port = tcp::listen_tcp(
        &idle,
        "127.0.0.1:0".parse().unwrap(),
        factory_fn(|_| Recorder::new(&shared()).boxed()),
        &TcpOptions::new().with_backlog(0),
    )
    .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let r = reactor();
    let mut outcome = None;
    for _ in 0..8 {
        let client = Client::new(|| Recorder::new(&shared()).boxed());
        r.connect_tcp(addr, client.clone(), Some(Duration::from_millis(100)));
        r.run_until(
            || client.built.get() == 1 || client.failed_count() == 1,
            DEADLINE,
        )
        .unwrap();
        if let Some(reason) = client.first_failure() {
            outcome = Some(reason);
            break;
        }
    }
    assert!(matches!(outcome, Some(Reason::TimedOut)), "{outcome:?}");
    port.stop_listening();
}

#[test]
fn stop_connecting_cancels_from_the_loop() {
    let idle = reactor();
    let port = tcp::listen_tcp(
        &idle,
        "127.0.0.1:0".parse().unwrap(),
        factory_fn(|_| Recorder::new(&shared()).boxed()),
        &TcpOptions::new().with_backlog(0),
    )
    .unwrap();
    let addr = port.host().socket_addr().unwrap();
    let r = reactor();
    // Fill the queue, then attempt one that cannot complete.
    let mut clients = Vec::new();
    let mut pending = None;
    for _ in 0..8 {
        let client = Client::new(|| Recorder::new(&shared()).boxed());
        let c = tcp::connect_tcp(&r, addr, client.clone(), None, &TcpOptions::new());
        let _ = r.run_until(|| client.built.get() == 1, Duration::from_millis(50));
        if client.built.get() == 0 {
            pending = Some((c, client));
            break;
        }
        clients.push(client);
    }
    let (c, client) = pending.expect("an attempt that does not complete");
    c.stop_connecting();
    assert_eq!(client.failed_count(), 0, "never synchronously");
    c.stop_connecting();
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(client.first_failure(), Some(Reason::Cancelled)));
    for _ in 0..3 {
        r.iterate(Duration::ZERO).unwrap();
    }
    assert_eq!(client.failed_count(), 1);
    port.stop_listening();
}

#[test]
fn zero_timeout_times_out_before_the_connect_completes() {
    let r = reactor();
    let (port, addr) = echo_server(&r);
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    r.connect_tcp(addr, client.clone(), Some(Duration::ZERO));
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(client.first_failure(), Some(Reason::TimedOut)));
    assert_eq!(client.built.get(), 0);
    port.stop_listening();
}

#[test]
fn stop_listening_frees_the_port_and_keeps_connections() {
    let r = reactor();
    let (port, addr) = echo_server(&r);
    let log = shared();
    let l2 = log.clone();
    let client = Client::new(move || Recorder::new(&l2).boxed());
    let connector = tcp::connect_tcp(&r, addr, client.clone(), None, &TcpOptions::new());
    r.run_until(|| log.borrow().made == 1, DEADLINE).unwrap();
    port.stop_listening();
    port.stop_listening();
    let again = std::net::TcpListener::bind(addr).expect("the port is free again");
    drop(again);
    // The existing connection still works.
    let t = connector.transport().expect("connected");
    t.write(b"still here");
    r.run_until(|| log.borrow().data.len() == 10, DEADLINE)
        .unwrap();
    t.lose_connection();
    r.run_until(|| client.lost.borrow().len() == 1, DEADLINE)
        .unwrap();
}

#[test]
fn refusing_factory_closes_the_connection() {
    let r = reactor();
    struct Refuse;
    impl torsion_transport::Factory for Refuse {
        fn build_protocol(
            &self,
            _: &torsion_transport::Address,
        ) -> Option<Box<dyn torsion_transport::Protocol>> {
            None
        }
    }
    let port = r
        .listen_tcp("127.0.0.1:0".parse().unwrap(), Rc::new(Refuse))
        .unwrap();
    let log = shared();
    let l2 = log.clone();
    let client = Client::new(move || Recorder::new(&l2).boxed());
    r.connect_tcp(port.host().socket_addr().unwrap(), client.clone(), None);
    r.run_until(|| log.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(log.borrow().made, 1);
    port.stop_listening();
}

/// The keepalive idle time; `None` (after saying why) where the system cannot report it
/// (`Unsupported`: Windows before 10 1709, and Wine 8, refuse `TCP_KEEPIDLE`).
fn keepalive_or_skip(t: &TcpTransport) -> Option<Option<Duration>> {
    match t.keepalive() {
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            eprintln!("SKIPPED: reading the keepalive idle time back: {e}");
            None
        }
        other => Some(other.unwrap()),
    }
}

#[test]
fn nodelay_and_keepalive_options() {
    let r = reactor();
    let (t, _s) = pair(
        &r,
        Recorder::new(&shared()).boxed(),
        Recorder::new(&shared()).boxed(),
    );
    assert!(!t.nodelay().unwrap(), "off by default, as in Twisted");
    assert_eq!(t.keepalive().unwrap(), None);
    t.set_nodelay(true).unwrap();
    assert!(t.nodelay().unwrap());
    t.set_keepalive(Some(Duration::from_secs(30))).unwrap();
    if let Some(k) = keepalive_or_skip(&t) {
        assert_eq!(k, Some(Duration::from_secs(30)));
    }
    t.set_keepalive(None).unwrap();
    assert_eq!(t.keepalive().unwrap(), None);

    // Options given to connect_tcp apply to the connected socket.
    let (port, addr) = echo_server(&r);
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    let c = tcp::connect_tcp(
        &r,
        addr,
        client.clone(),
        None,
        &TcpOptions::new()
            .with_nodelay(true)
            .with_keepalive(Some(Duration::from_secs(60))),
    );
    r.run_until(|| c.transport().is_some(), DEADLINE).unwrap();
    let ct = c.transport().unwrap();
    assert!(ct.nodelay().unwrap());
    if let Some(k) = keepalive_or_skip(&ct) {
        assert_eq!(k, Some(Duration::from_secs(60)));
    }
    ct.abort_connection();
    r.run_until(|| client.lost.borrow().len() == 1, DEADLINE)
        .unwrap();
    assert!(ct.nodelay().is_err(), "closed");
    port.stop_listening();
}

#[test]
fn ipv6_echo() {
    let r = reactor();
    let port = match r.listen_tcp(
        "[::1]:0".parse().unwrap(),
        factory_fn(|_| Recorder::new(&shared()).echo().boxed()),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipping ipv6_echo: cannot listen on [::1]: {e}");
            return;
        }
    };
    let addr = port.host().socket_addr().unwrap();
    assert!(addr.is_ipv6());
    let log = shared();
    let l2 = log.clone();
    let client = Client::new(move || {
        Recorder::new(&l2)
            .on_made(|t, _| t.write(b"over six"))
            .boxed()
    });
    r.connect_tcp(addr, client.clone(), Some(DEADLINE));
    r.run_until(|| log.borrow().data.len() == 8, DEADLINE)
        .unwrap();
    assert_eq!(log.borrow().data, b"over six");
    let t = log.borrow().transport.clone().unwrap();
    assert!(matches!(t.peer(), torsion_transport::Address::Ipv6(_)));
    t.lose_connection();
    r.run_until(|| log.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    port.stop_listening();
}
