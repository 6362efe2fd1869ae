//! Runs the built `chat-server` with real sockets, as a user would: relaying with CR
//! stripped, the 16,384-byte limit, a client that never reads cut without stalling the
//! others, and SIGTERM exiting 0.

// Unix only: SIGTERM.
#![cfg(unix)]

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use util::output;

const CHAT_SERVER: &str = env!("CARGO_BIN_EXE_chat-server");
const LIMIT: Duration = Duration::from_secs(30);

/// Kills the server if the test fails before it exits.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(CHAT_SERVER)
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn chat-server");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read");
        let addr = line
            .trim()
            .strip_prefix("listening on tcp:")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// SIGTERM, then the exit status within `LIMIT`.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with plain integers, to our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                start.elapsed() < LIMIT,
                "no exit within {LIMIT:?} of SIGTERM"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Read exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).expect("read");
    buf
}

/// Wait until the server has registered `n` members: each one proves it by receiving a
/// line from a probe client.
fn wait_members(server: &Server, clients: &mut [&mut TcpStream]) {
    let mut probe = server.connect();
    probe.write_all(b"ping\n").unwrap();
    for c in clients.iter_mut() {
        assert_eq!(read_n(c, 5), b"ping\n");
    }
    drop(probe);
}

#[test]
fn relays_lines_to_the_others_and_exits_zero_on_sigterm() {
    let server = Server::start();
    let mut a = server.connect();
    let mut b = server.connect();
    let mut c = server.connect();
    wait_members(&server, &mut [&mut a, &mut b, &mut c]);
    // Two writes, the second finishing a line the first began (no Nagle merging).
    a.set_nodelay(true).unwrap();
    a.write_all(b"hello\r\nwor").unwrap();
    a.write_all(b"ld\nsecond\n").unwrap();
    assert_eq!(read_n(&mut b, 19), b"hello\nworld\nsecond\n");
    assert_eq!(read_n(&mut c, 19), b"hello\nworld\nsecond\n");
    b.write_all(b"from b\n").unwrap();
    assert_eq!(read_n(&mut a, 7), b"from b\n");
    assert_eq!(read_n(&mut c, 7), b"from b\n");
    // Nothing came back to a from its own lines: "from b" was the first thing it read.
    let status = server.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn a_line_over_16384_bytes_closes_that_client() {
    let server = Server::start();
    let mut long = server.connect();
    let mut other = server.connect();
    wait_members(&server, &mut [&mut long, &mut other]);
    let mut ok = vec![b'x'; 16_384];
    ok.push(b'\n');
    long.write_all(&ok).unwrap();
    assert_eq!(read_n(&mut other, ok.len()), ok, "16,384 bytes pass");
    let mut over = vec![b'y'; 16_385];
    over.push(b'\n');
    long.write_all(&over).unwrap();
    let mut buf = [0u8; 16];
    match long.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected the close, got {n} bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected the close, got {e}"),
    }
    // The other client is still served.
    let mut third = server.connect();
    wait_members(&server, &mut [&mut other, &mut third]);
    assert!(server.terminate().success());
}

#[test]
fn a_client_that_never_reads_is_cut_without_stalling_the_others() {
    let server = Server::start();
    let mut talker = server.connect();
    let mut reader = server.connect();
    let mut slow = server.connect();
    wait_members(&server, &mut [&mut talker, &mut reader, &mut slow]);
    // `slow` reads nothing from here on. The kernel's buffers take a few MiB for it; then
    // the server's backlog passes 1 MiB and it is cut. The reader keeps up by design:
    // the talker sends 128 KiB at a time and waits until the reader has it, so the
    // reader is never more than that behind, however the threads are scheduled.
    let line = [vec![b'm'; 999], b"\n".to_vec()].concat();
    const BATCH: usize = 128;
    let batches = 128; // 16 MiB in all, several times what the kernel buffers for `slow`
    let start = Instant::now();
    let (got_batch, batch_done) = std::sync::mpsc::channel::<usize>();
    let reading = thread::spawn({
        let mut reader = reader.try_clone().unwrap();
        let line = line.clone();
        move || {
            let mut r = BufReader::with_capacity(1 << 16, &mut reader);
            let mut got = Vec::with_capacity(line.len());
            for b in 0..batches {
                for i in 0..BATCH {
                    got.clear();
                    r.read_until(b'\n', &mut got).expect("reader read");
                    assert_eq!(got, line, "batch {b}, line {i} intact and in order");
                }
                if got_batch.send(b).is_err() {
                    return;
                }
            }
        }
    });
    let batch: Vec<u8> = line.repeat(BATCH);
    for b in 0..batches {
        talker.write_all(&batch).unwrap();
        match batch_done.recv_timeout(LIMIT) {
            Ok(done) => assert_eq!(done, b),
            Err(e) => panic!("the reader did not get batch {b} within {LIMIT:?} ({e}): stalled"),
        }
    }
    reading.join().expect("the reader got every line");
    assert!(start.elapsed() < LIMIT, "the others were stalled");
    // The slow client was cut: reading what the kernel kept for it ends in EOF or a
    // reset within a bounded time, well short of everything.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the slow client was not cut ({total} bytes read): {e}"),
        }
    }
    assert!(
        total < batches * batch.len(),
        "the slow client got everything ({total} bytes): it was not cut"
    );
    let _ = talker.shutdown(Shutdown::Both);
    assert!(server.terminate().success());
}

#[test]
fn help_and_bad_arguments() {
    let (code, out, err) = output(CHAT_SERVER, &["--help"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("Usage: chat-server") && out.contains("--port <N>"),
        "{out}"
    );
    let (code, _, err) = output(CHAT_SERVER, &["--bogus"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unexpected argument '--bogus'"), "{err}");
    let (code, _, err) = output(CHAT_SERVER, &["--port", "http"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("invalid value 'http' for '--port <N>'"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_is_reported_in_display_form() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, out, err) = output(CHAT_SERVER, &["--port", &port]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("chat-server: error: cannot listen on 127.0.0.1:")
            && err.contains("Address already in use"),
        "{err}"
    );
}
