//! torsion::net streams over TCP and Unix sockets: echo, half-close, split, lines, drop,
//! errors and backpressure (CONTRACT P6).

mod util;

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use torsion_net::{NetError, READ_HIGH_WATER, TcpListener, TcpStream};
#[cfg(unix)]
use torsion_net::{UnixListener, UnixStream};
use torsion_reactor::Reactor;
use util::run;

async fn read_to_end(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let mut buf = vec![0; 8192];
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(all);
        }
        all.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn tcp_request_half_close_reply() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    let reply = run(&reactor, async move {
        let server = r.spawn_local(async move {
            let (mut conn, peer) = listener.accept().await?;
            assert!(peer.ip().is_loopback());
            // Read the whole request: the client half-closes.
            let request = read_to_end(&mut conn).await?;
            conn.write_all(&request.to_ascii_uppercase()).await?;
            conn.shutdown().await?;
            io::Result::Ok(())
        });
        let mut client = TcpStream::connect(&r, addr).await?;
        assert_eq!(client.peer_addr()?, addr);
        client.write_all(b"hello ").await?;
        client.write_all(b"world").await?;
        client.shutdown().await?;
        // Writing after shutdown is a typed error.
        let err = client.write_all(b"late").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let typed = err.get_ref().and_then(|e| e.downcast_ref::<NetError>());
        assert_eq!(typed, Some(&NetError::WriteClosed));
        let reply = read_to_end(&mut client).await?;
        server.await.unwrap()?;
        io::Result::Ok(reply)
    })
    .unwrap();
    assert_eq!(reply, b"HELLO WORLD");
}

#[cfg(unix)]
#[test]
fn unix_echo_and_lines() {
    let reactor = Reactor::new().unwrap();
    let dir = std::env::temp_dir().join(format!("torsion-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lines.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&reactor, &path).unwrap();
    let r = reactor.clone();
    let p = path.clone();
    let lines = run(&reactor, async move {
        let server = r.spawn_local(async move {
            let (conn, _) = listener.accept().await?;
            let (read, mut write) = conn.split();
            let mut lines = read.lines();
            let mut n = 0;
            while let Some(line) = lines.next_line().await? {
                n += 1;
                write.write_all(format!("{n}: {line}\n").as_bytes()).await?;
            }
            io::Result::Ok(())
        });
        let mut client = UnixStream::connect(&r, &p).await?;
        client.write_all(b"one\r\ntwo\nthree").await?;
        client.shutdown().await?;
        let mut lines = client.lines();
        let mut got = Vec::new();
        while let Some(l) = lines.next_line().await? {
            got.push(l);
        }
        server.await.unwrap()?;
        io::Result::Ok(got)
    })
    .unwrap();
    assert_eq!(lines, ["1: one", "2: two", "3: three"]);
    assert!(
        !path.exists(),
        "the socket file is removed with the listener"
    );
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn lines_too_long_and_not_utf8_are_typed_errors() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    run(&reactor, async move {
        let writer = r.spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            conn.write_all(b"\xff\xfe\nabcdefghijkl\nok\n")
                .await
                .unwrap();
            conn.shutdown().await.unwrap();
        });
        let client = TcpStream::connect(&r, addr).await.unwrap();
        let mut lines = client.lines().with_max_length(8);
        let e = lines.next_line().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let typed = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<NetError>())
            .cloned();
        assert_eq!(typed, Some(NetError::NotUtf8(vec![0xff, 0xfe])));
        let e = lines.next_line().await.unwrap_err();
        let typed = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<NetError>())
            .cloned();
        assert_eq!(typed, Some(NetError::LineTooLong { limit: 8 }));
        // Nothing is lost: the long line is still there.
        assert_eq!(lines.take_buffer(), b"abcdefghijkl\nok\n");
        writer.await.unwrap();
    });
}

#[test]
fn dropping_a_stream_closes_it() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    let got = run(&reactor, async move {
        let client = r.spawn_local({
            let r = r.clone();
            async move {
                let mut c = TcpStream::connect(&r, addr).await.unwrap();
                c.write_all(b"bye").await.unwrap();
                // Dropped here: what was written is sent, then the connection closes.
            }
        });
        let (mut conn, _) = listener.accept().await.unwrap();
        client.await.unwrap();
        read_to_end(&mut conn).await.unwrap()
    });
    assert_eq!(got, b"bye");
}

#[test]
fn connect_refused_is_connection_refused() {
    let reactor = Reactor::new().unwrap();
    // Bind then drop: nothing listens on the port afterwards.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let r = reactor.clone();
    let err = run(&reactor, async move { TcpStream::connect(&r, addr).await }).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    #[cfg(unix)]
    unix_connect_refused(&reactor);
}

#[cfg(unix)]
fn unix_connect_refused(reactor: &Reactor) {
    let path = std::env::temp_dir().join("torsion-net-nothing-here.sock");
    let r = reactor.clone();
    let err = run(reactor, async move { UnixStream::connect(&r, &path).await }).unwrap_err();
    assert_ne!(err.kind(), io::ErrorKind::Other, "{err}");
}

#[test]
fn split_halves_work_concurrently() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    const TOTAL: usize = 4 << 20;
    let got = run(&reactor, async move {
        // An echo server with its own split halves.
        let _server = r.spawn_local(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let (mut rd, mut wr) = conn.split();
            let mut buf = vec![0; 64 * 1024];
            loop {
                let n = rd.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                wr.write_all(&buf[..n]).await.unwrap();
            }
        });
        let client = TcpStream::connect(&r, addr).await.unwrap();
        let (mut rd, mut wr) = client.split();
        let writer = r.spawn_local(async move {
            let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
            for _ in 0..TOTAL / chunk.len() {
                wr.write_all(&chunk).await.unwrap();
            }
            wr.shutdown().await.unwrap();
        });
        let mut got = 0usize;
        let mut sum = 0u64;
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = rd.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
            got += n;
        }
        writer.await.unwrap();
        (got, sum)
    });
    let chunk_sum: u64 = (0..64 * 1024).map(|i| (i % 251) as u64).sum();
    assert_eq!(got, (TOTAL, chunk_sum * (TOTAL / (64 * 1024)) as u64));
}

#[test]
fn p6_a_slow_reader_pauses_the_writer_and_memory_stays_bounded() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    const TOTAL: usize = 64 << 20;
    let written = Rc::new(Cell::new(0usize));
    let w = written.clone();
    run(&reactor, async move {
        let writer = r.spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let chunk = vec![7u8; 256 * 1024];
            while w.get() < TOTAL {
                let n = conn.write(&chunk).await.unwrap();
                w.set(w.get() + n);
            }
            conn.shutdown().await.unwrap();
        });
        let mut client = TcpStream::connect(&r, addr).await.unwrap();
        // The reader does not read: the writer must stall, not buffer 64 MiB. Wait until
        // its progress stops (three unchanged looks 50 ms apart), bounded by the deadline.
        let mut last = usize::MAX;
        let mut still = 0;
        while still < 3 {
            r.sleep(Duration::from_millis(50)).await;
            let now = written.get();
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
        assert!(last < TOTAL / 4, "the writer ran ahead: {last} bytes");
        assert!(client.is_write_paused() || client.buffered() > 0);
        assert!(
            client.buffered() <= READ_HIGH_WATER + 1024 * 1024,
            "the reader buffered {} bytes",
            client.buffered()
        );
        // Now read everything: the writer resumes and finishes.
        let mut total = 0;
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            assert!(buf[..n].iter().all(|&b| b == 7));
            total += n;
        }
        assert_eq!(total, TOTAL);
        writer.await.unwrap();
    });
}

#[test]
fn a_listener_accepts_many_and_drop_stops_listening() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    run(&reactor, async move {
        let mut clients = Vec::new();
        for i in 0..20u8 {
            let r2 = r.clone();
            clients.push(r.spawn_local(async move {
                let mut c = TcpStream::connect(&r2, addr).await.unwrap();
                c.write_all(&[i]).await.unwrap();
                c
            }));
        }
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut b = [0];
            assert_eq!(conn.read(&mut b).await.unwrap(), 1);
            seen.push(b[0]);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<u8>>());
        for c in clients {
            drop(c.await.unwrap());
        }
        drop(listener);
        let err = TcpStream::connect(&r, addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn a_listener_nobody_accepts_from_stops_accepting() {
    let reactor = Reactor::new().unwrap();
    let listener = TcpListener::bind(&reactor, "127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let r = reactor.clone();
    const CLIENTS: usize = 400;
    run(&reactor, async move {
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let r2 = r.clone();
            clients.push(r.spawn_local(async move {
                let mut c = TcpStream::connect(&r2, addr).await.unwrap();
                c.write_all(&[(i % 251) as u8]).await.unwrap();
                c
            }));
        }
        // Wait until the port stops taking connections (three unchanged looks).
        let mut last = usize::MAX;
        let mut still = 0;
        while still < 3 || last < torsion_net::ACCEPT_QUEUE_MAX {
            r.sleep(Duration::from_millis(50)).await;
            let now = listener.pending();
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
        let held = listener.pending();
        assert!(
            (torsion_net::ACCEPT_QUEUE_MAX..CLIENTS).contains(&held),
            "{held} connections queued"
        );
        // Accepting resumes the port: every client gets through.
        let mut sum = 0usize;
        for _ in 0..CLIENTS {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut b = [0];
            assert_eq!(conn.read(&mut b).await.unwrap(), 1);
            sum += usize::from(b[0]);
        }
        assert_eq!(sum, (0..CLIENTS).map(|i| i % 251).sum::<usize>());
        for c in clients {
            drop(c.await.unwrap());
        }
    });
}

// Unix only: whether closing with unread data resets the connection is the kernel's
// choice (Linux and the BSDs do; Wine's emulation is not something to test here).
#[cfg(unix)]
#[test]
fn a_reset_connection_is_a_typed_read_error() {
    let reactor = Reactor::new().unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    // The peer takes the connection, lets our bytes arrive, and closes without reading
    // them: the kernel answers with a reset.
    let peer = std::thread::spawn(move || {
        let (conn, _) = std_listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(conn);
    });
    let r = reactor.clone();
    let err = run(&reactor, async move {
        let mut c = TcpStream::connect(&r, addr).await.unwrap();
        c.write_all(b"unread").await.unwrap();
        let mut buf = [0u8; 16];
        loop {
            match c.read(&mut buf).await {
                Ok(0) => panic!("a clean EOF instead of a reset"),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    });
    peer.join().unwrap();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    let typed = err.get_ref().and_then(|e| e.downcast_ref::<NetError>());
    assert!(matches!(typed, Some(NetError::ConnectionLost(_))), "{err}");
}
