//! The reactor embedded in other loops: a raw poll(2) loop and a tokio current-thread
//! runtime (through `AsyncFd`), each driving torsion tasks with `as_fd()` +
//! `next_timeout()` + `iterate(Duration::ZERO)`.
#![cfg(unix)]

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use torsion_net::{TcpListener, TcpStream};
use torsion_reactor::Reactor;

const DEADLINE: Duration = Duration::from_secs(20);

/// Start torsion tasks: a timer, then a TCP echo round trip between two torsion tasks.
fn start_work(reactor: &Reactor) -> Rc<Cell<Option<Vec<u8>>>> {
    let done = Rc::new(Cell::new(None));
    let listener = TcpListener::bind(reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = reactor.spawn_local(async move {
        let (mut c, _) = listener.accept().await.unwrap();
        let mut buf = [0; 64];
        let n = c.read(&mut buf).await.unwrap();
        c.write_all(&buf[..n]).await.unwrap();
    });
    let r = reactor.clone();
    let d = done.clone();
    let _client = reactor.spawn_local(async move {
        r.sleep(Duration::from_millis(30)).await;
        let mut c = TcpStream::connect(&r, addr).await.unwrap();
        c.write_all(b"embedded").await.unwrap();
        let mut buf = [0; 64];
        let n = c.read(&mut buf).await.unwrap();
        d.set(Some(buf[..n].to_vec()));
    });
    done
}

fn poll_fd(fd: i32, timeout: Option<Duration>) -> bool {
    let ms = timeout.map_or(1000, |d| d.as_millis().min(1000) as i32);
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is a valid pollfd for the duration of the call; nfds is 1.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    n > 0 && p.revents & libc::POLLIN != 0
}

#[test]
fn inside_a_raw_poll_loop() {
    let reactor = Reactor::new().unwrap();
    // Nothing to do: the host may sleep until the fd is readable.
    assert_eq!(reactor.next_timeout(), None);
    let done = start_work(&reactor);
    // Tasks were spawned: work waits, so the host must not sleep.
    assert_eq!(reactor.next_timeout(), Some(Duration::ZERO));
    let deadline = Instant::now() + DEADLINE;
    let mut woke_on_fd = 0;
    let got = loop {
        if let Some(got) = done.take() {
            break got;
        }
        assert!(Instant::now() < deadline, "deadline passed");
        let timeout = reactor.next_timeout();
        if poll_fd(reactor.as_raw_fd(), timeout) {
            woke_on_fd += 1;
        }
        reactor.iterate(Duration::ZERO).unwrap();
    };
    assert_eq!(got, b"embedded");
    assert!(woke_on_fd > 0, "the fd never said there was work");

    // A wake from another thread makes the fd readable.
    let slot: std::sync::Arc<std::sync::Mutex<Option<Waker>>> = Default::default();
    let s = slot.clone();
    let woken = Rc::new(Cell::new(0));
    let w = woken.clone();
    let _t = reactor.spawn_local(std::future::poll_fn(move |cx| {
        w.set(w.get() + 1);
        *s.lock().unwrap() = Some(cx.waker().clone());
        std::task::Poll::<()>::Pending
    }));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(woken.get(), 1);
    assert_eq!(reactor.next_timeout(), None);
    let waker = slot.lock().unwrap().take().unwrap();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    assert!(poll_fd(reactor.as_raw_fd(), Some(Duration::from_secs(5))));
    reactor.iterate(Duration::ZERO).unwrap();
    assert_eq!(woken.get(), 2);
}

#[test]
fn inside_a_tokio_current_thread_runtime() {
    use tokio::io::unix::AsyncFd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let reactor = Reactor::new().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let got = local.block_on(&rt, async {
        // A tokio echo server, served while torsion runs in the same thread.
        let tokio_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tokio_addr = tokio_listener.local_addr().unwrap();
        tokio::task::spawn_local(async move {
            let (mut s, _) = tokio_listener.accept().await.unwrap();
            let mut buf = [0; 64];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(&buf[..n]).await.unwrap();
        });
        let done = start_work(&reactor);
        // A torsion client of the tokio server.
        let from_tokio = Rc::new(Cell::new(None));
        let (r, f) = (reactor.clone(), from_tokio.clone());
        let _c = reactor.spawn_local(async move {
            let mut c = TcpStream::connect(&r, tokio_addr).await.unwrap();
            c.write_all(b"to tokio").await.unwrap();
            let mut buf = [0; 64];
            let n = c.read(&mut buf).await.unwrap();
            f.set(Some(buf[..n].to_vec()));
        });

        // SAFETY: the fd is the reactor's registry (its poller); the clone moved into the
        // AsyncFd keeps the reactor, and so that fd, alive and unchanged until the AsyncFd
        // is dropped.
        let fd = unsafe { AsyncFd::register(reactor.clone()) }.unwrap();
        let deadline = Instant::now() + DEADLINE;
        let mut got = None;
        let mut echoed = None;
        while got.is_none() || echoed.is_none() {
            assert!(Instant::now() < deadline, "deadline passed");
            let wait = reactor.next_timeout().unwrap_or(Duration::from_secs(1));
            tokio::select! {
                guard = fd.readable() => {
                    let mut guard = guard.unwrap();
                    reactor.iterate(Duration::ZERO).unwrap();
                    guard.clear_ready();
                }
                () = tokio::time::sleep(wait) => {
                    reactor.iterate(Duration::ZERO).unwrap();
                }
            }
            got = got.or_else(|| done.take());
            echoed = echoed.or_else(|| from_tokio.take());
        }
        (got.unwrap(), echoed.unwrap())
    });
    assert_eq!(got.0, b"embedded");
    assert_eq!(got.1, b"to tokio");
}
