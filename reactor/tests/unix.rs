//! Unix stream sockets: listening (stale files), connecting, echo, half-close, abort.
//! Unix only (`torsion_reactor::unix` is `cfg(unix)`).
#![cfg(unix)]

mod util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_reactor::unix::{self as unix_sock};
use torsion_reactor::{Reactor, UnixTransport};
use torsion_transport::{
    Consumer, ListeningPort, Producer, ReactorUnix, Reason, Transport, UnixListenOptions,
    factory_fn,
};
use util::*;

fn reactor() -> Reactor {
    Reactor::new().expect("reactor")
}

fn options(remove_stale: bool, unlink_on_stop: bool) -> UnixListenOptions {
    let mut o = UnixListenOptions::default();
    o.remove_stale = remove_stale;
    o.unlink_on_stop = unlink_on_stop;
    o
}

fn echo_factory() -> Rc<dyn torsion_transport::Factory> {
    factory_fn(|_| Recorder::new(&shared()).echo().boxed())
}

fn pair(r: &Reactor, a: Recorder, b: Recorder) -> (Rc<UnixTransport>, Rc<UnixTransport>) {
    let (x, y) = unix_sockets();
    start_pair(r, x, y, a.boxed(), b.boxed())
}

#[test]
fn echo_over_listen_and_connect() {
    let dir = TempDir::new("unix-echo");
    let path = dir.join("s");
    let r = reactor();
    let port = r
        .listen_unix(&path, echo_factory(), options(false, true))
        .unwrap();
    assert_eq!(
        port.host(),
        torsion_transport::Address::Unix(Some(path.clone()))
    );
    let log = shared();
    let l2 = log.clone();
    let client = Client::new(move || {
        Recorder::new(&l2)
            .on_made(|t, _| t.write(b"unix echo"))
            .on_data(|t, _, log| {
                if log.borrow().data.len() == 9 {
                    t.lose_connection();
                }
            })
            .boxed()
    });
    r.connect_unix(path.clone(), client.clone(), Some(DEADLINE));
    r.run_until(|| client.lost.borrow().len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(log.borrow().data, b"unix echo");
    assert!(client.lost.borrow()[0].is_clean());
    port.stop_listening();
    assert!(!path.exists(), "unlink_on_stop");
}

#[test]
fn echo_64_mib_each_way_with_slow_reader_stays_bounded() {
    const TOTAL: u64 = 64 << 20;
    const CHUNK: usize = 64 * 1024;
    let r = reactor();
    let (client, server) = (shared(), shared());
    let pattern = Pattern::new(1 << 20);
    let received = Rc::new(Cell::new(0u64));
    let corrupt = Rc::new(Cell::new(false));
    let (rc, cc, rr) = (received.clone(), corrupt.clone(), r.clone());
    let (ct, st) = pair(
        &r,
        Recorder::new(&client).discard().on_data(move |t, data, _| {
            let pos = rc.get();
            cc.set(cc.get() || !pattern.check(pos, data));
            rc.set(pos + data.len() as u64);
            if (pos >> 20) != (rc.get() >> 20) {
                t.pause_producing();
                let t = t.clone();
                rr.call_later(Duration::from_millis(1), move || t.resume_producing());
            }
            if rc.get() == TOTAL {
                t.lose_connection();
            }
        }),
        Recorder::new(&server).discard().echo().on_made(|t, _| {
            let p: Rc<dyn torsion_transport::PushProducer> = t.clone();
            t.register_producer(Producer::Push(p)).unwrap();
        }),
    );
    let p = PatternProducer::new(CHUNK, TOTAL, false);
    *p.consumer.borrow_mut() = ct.as_transport();
    let ct2 = ct.clone();
    *p.unsent.borrow_mut() = Some(Box::new(move || ct2.file_descriptor().unsent()));
    ct.register_producer(Producer::Push(p.clone())).unwrap();
    let start = Instant::now();
    p.produce();
    r.run_until(|| !client.borrow().lost.is_empty(), Duration::from_secs(40))
        .unwrap();
    eprintln!(
        "64 MiB each way over a Unix socket in {:?}: {} pauses, {} resumes, max unsent {}",
        start.elapsed(),
        p.pauses.get(),
        p.resumes.get(),
        p.max_unsent.get()
    );
    assert_eq!(received.get(), TOTAL);
    assert!(!corrupt.get());
    assert!(p.pauses.get() > 0 && p.resumes.get() > 0);
    assert!(p.max_unsent.get() <= ct.file_descriptor().buffer_size() + CHUNK);
    drop(st);
}

#[test]
fn d6_half_close() {
    let r = reactor();
    let (client, server) = (shared(), shared());
    let (ct, _st) = pair(
        &r,
        Recorder::new(&client).half_closeable(),
        Recorder::new(&server).on_read_lost(|t, _| {
            t.write(b"reply");
            t.lose_connection();
        }),
    );
    ct.write(b"request");
    ct.lose_write_connection();
    r.run_until(|| client.borrow().lost.len() == 1, DEADLINE)
        .unwrap();
    assert_eq!(server.borrow().data, b"request");
    assert_eq!(server.borrow().read_lost, 1);
    assert_eq!(client.borrow().write_lost, 1);
    assert_eq!(client.borrow().data, b"reply");
}

#[test]
fn d5_abort_with_data_pending() {
    let r = reactor();
    let (client, server) = (shared(), shared());
    let (ct, _st) = pair(&r, Recorder::new(&client), Recorder::new(&server).discard());
    // Fill the kernel and our buffer, then abort.
    ct.write(&vec![0u8; 8 << 20]);
    r.run_until(|| server.borrow().chunks > 0, DEADLINE)
        .unwrap();
    assert!(ct.file_descriptor().unsent() > 0);
    ct.abort_connection();
    assert!(client.borrow().lost.is_empty());
    assert_eq!(
        ct.file_descriptor().unsent(),
        0,
        "the buffer is dropped at once"
    );
    r.run_until(
        || client.borrow().lost.len() == 1 && server.borrow().lost.len() == 1,
        DEADLINE,
    )
    .unwrap();
    assert!(matches!(client.borrow().lost[0], Reason::ConnectionAborted));
}

#[test]
fn connect_to_missing_path_or_stale_socket_is_refused() {
    let dir = TempDir::new("unix-refused");
    let r = reactor();
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    r.connect_unix(dir.join("nothing"), client.clone(), None);
    assert_eq!(client.failed_count(), 0, "never synchronously");
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(
        client.first_failure(),
        Some(Reason::ConnectionRefused)
    ));

    let stale = dir.join("stale");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    r.connect_unix(stale, client.clone(), None);
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(
        client.first_failure(),
        Some(Reason::ConnectionRefused)
    ));
}

#[test]
fn zero_timeout_and_stop_connecting() {
    let dir = TempDir::new("unix-timeout");
    let path = dir.join("s");
    let r = reactor();
    let port = r
        .listen_unix(&path, echo_factory(), options(false, true))
        .unwrap();
    let client = Client::new(|| Recorder::new(&shared()).boxed());
    r.connect_unix(path.clone(), client.clone(), Some(Duration::ZERO));
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(client.first_failure(), Some(Reason::TimedOut)));
    assert_eq!(client.built.get(), 0);

    let client = Client::new(|| Recorder::new(&shared()).boxed());
    let c = r.connect_unix(path.clone(), client.clone(), None);
    c.stop_connecting();
    assert_eq!(client.failed_count(), 0);
    r.run_until(|| client.failed_count() == 1, DEADLINE)
        .unwrap();
    assert!(matches!(client.first_failure(), Some(Reason::Cancelled)));
    assert_eq!(client.built.get(), 0);
    port.stop_listening();
}

#[test]
fn existing_path_is_addr_in_use_without_remove_stale() {
    let dir = TempDir::new("unix-inuse");
    let path = dir.join("s");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let r = reactor();
    let err = r
        .listen_unix(&path, echo_factory(), options(false, false))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(path.exists());
}

#[test]
fn stale_socket_removed_only_when_asked() {
    let dir = TempDir::new("unix-stale");
    let path = dir.join("s");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let r = reactor();
    let port = unix_sock::listen_unix(&r, &path, echo_factory(), &options(true, false))
        .expect("a stale socket is replaced");
    port.stop_listening();
    assert!(path.exists(), "no unlink_on_stop: the file stays");
}

#[test]
fn live_server_path_is_never_removed() {
    let dir = TempDir::new("unix-live");
    let path = dir.join("s");
    let r = reactor();
    let live = r
        .listen_unix(&path, echo_factory(), options(false, false))
        .unwrap();
    let err = r
        .listen_unix(&path, echo_factory(), options(true, true))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(path.exists());
    // The live server still serves.
    let log = shared();
    let l2 = log.clone();
    let client = Client::new(move || {
        Recorder::new(&l2)
            .on_made(|t, _| t.write(b"alive?"))
            .boxed()
    });
    r.connect_unix(path.clone(), client.clone(), Some(DEADLINE));
    r.run_until(|| log.borrow().data == b"alive?", DEADLINE)
        .unwrap();
    live.stop_listening();
}

#[test]
fn a_regular_file_is_never_removed() {
    let dir = TempDir::new("unix-file");
    let path = dir.join("f");
    std::fs::write(&path, b"precious").unwrap();
    let r = reactor();
    let err = r
        .listen_unix(&path, echo_factory(), options(true, true))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn many_concurrent_connections() {
    let dir = TempDir::new("unix-many");
    let path = dir.join("s");
    let r = reactor();
    let port = r
        .listen_unix(&path, echo_factory(), options(false, true))
        .unwrap();
    let n = 200;
    let done = Rc::new(Cell::new(0));
    for _ in 0..n {
        let d = done.clone();
        let client = Client::new(move || {
            let d = d.clone();
            Recorder::new(&shared())
                .on_made(|t, _| t.write(b"x"))
                .on_data(|t, _, _| t.lose_connection())
                .on_lost(move |_, _| d.set(d.get() + 1))
                .boxed()
        });
        r.connect_unix(path.clone(), client, Some(DEADLINE));
    }
    r.run_until(|| done.get() == n, DEADLINE).unwrap();
    port.stop_listening();
}
