//! `StandardIo` and `StdoutWriter` on fds shared with other processes (issue 10): the
//! shared open file descriptions stay blocking, other writers are not disturbed, and data
//! flows both ways.

#![cfg(unix)]

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use torsion_process::{StandardIo, StdoutWriter};
use torsion_reactor::Reactor;
use torsion_transport::{Consumer, Producer, Protocol, PushProducer, Reason, Transport};

const DEADLINE: Duration = Duration::from_secs(30);
const TEN_MB: usize = 10 * 1024 * 1024;

fn is_nonblocking(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL takes no argument; `fd` is open for the borrow.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL failed");
    flags & libc::O_NONBLOCK != 0
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

/// Reads `fd` to EOF on a thread.
fn drain(fd: OwnedFd) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut out).unwrap();
        out
    })
}

/// Echoes what it reads; records what happened.
struct Echo {
    transport: Option<Rc<dyn Transport>>,
    got: Rc<RefCell<Vec<u8>>>,
    lost: Rc<RefCell<Option<Reason>>>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.got.borrow_mut().extend_from_slice(data);
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
    fn connection_lost(&mut self, reason: Reason) {
        *self.lost.borrow_mut() = Some(reason);
    }
}

type Seen = (Rc<RefCell<Vec<u8>>>, Rc<RefCell<Option<Reason>>>);

fn echo() -> (Box<Echo>, Seen) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let lost = Rc::new(RefCell::new(None));
    let p = Echo {
        transport: None,
        got: got.clone(),
        lost: lost.clone(),
    };
    (Box::new(p), (got, lost))
}

#[test]
fn issue_10_a_shared_pipe_stays_blocking_and_another_writer_writes_ten_mb() {
    let reactor = Reactor::new().unwrap();
    // Our stdout: a pipe shared with another process that writes 10 MB to it, blocking.
    let (out_r, out_w) = pipe();
    // Our stdin: a pipe the test writes to.
    let (in_r, in_w) = pipe();
    let (p, (got, lost)) = echo();
    let io = StandardIo::start(
        &reactor,
        in_r.try_clone().unwrap(),
        out_w.try_clone().unwrap(),
        p,
    )
    .unwrap();
    assert!(!is_nonblocking(out_w.as_fd()), "our stdout's description");
    assert!(!is_nonblocking(in_r.as_fd()), "our stdin's description");

    let reader = drain(out_r);
    let writer = Command::new("sh")
        .args(["-c", &format!("head -c {TEN_MB} /dev/zero")])
        .stdout(Stdio::from(out_w.try_clone().unwrap()))
        .spawn()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let waiter = std::thread::spawn(move || {
        let mut writer = writer;
        let status = writer.wait().unwrap();
        d.store(true, Ordering::SeqCst);
        status
    });
    // Data flows through StandardIo both ways while the other writer writes.
    std::fs::File::from(in_w).write_all(b"ping\n").unwrap();
    let g = got.clone();
    reactor
        .run_until(
            || g.borrow().len() == 5 && done.load(Ordering::SeqCst),
            DEADLINE,
        )
        .unwrap();
    assert!(waiter.join().unwrap().success(), "the 10 MB writer failed");
    assert!(!is_nonblocking(out_w.as_fd()) && !is_nonblocking(in_r.as_fd()));
    // Our stdin reached EOF (the test's end is closed): the echo is flushed and closed.
    let l = lost.clone();
    reactor
        .run_until(|| l.borrow().is_some(), DEADLINE)
        .unwrap();
    assert!(lost.borrow().as_ref().is_some_and(Reason::is_clean));
    drop(io);
    drop(out_w);
    let out = reader.join().unwrap();
    assert_eq!(out.len(), TEN_MB + 5, "every byte of both writers arrived");
    let text: Vec<u8> = out.into_iter().filter(|&b| b != 0).collect();
    assert_eq!(text, b"ping\n");
}

#[test]
fn issue_10_a_socket_is_used_with_dontwait_and_its_flags_are_left_alone() {
    let reactor = Reactor::new().unwrap();
    let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let ours: OwnedFd = ours.into();
    let (p, (got, _lost)) = echo();
    let _io = StandardIo::start(
        &reactor,
        ours.try_clone().unwrap(),
        ours.try_clone().unwrap(),
        p,
    )
    .unwrap();
    assert!(!is_nonblocking(ours.as_fd()));
    theirs.write_all(b"hello").unwrap();
    let g = got.clone();
    reactor
        .run_until(|| g.borrow().len() == 5, DEADLINE)
        .unwrap();
    // The echo may still sit in our buffer: run the loop until it arrives.
    theirs.set_nonblocking(true).unwrap();
    let mut back = Vec::new();
    reactor
        .run_until(
            || {
                let mut buf = [0u8; 16];
                if let Ok(n) = theirs.read(&mut buf) {
                    back.extend_from_slice(&buf[..n]);
                }
                back.len() >= 5
            },
            DEADLINE,
        )
        .unwrap();
    assert_eq!(&back, b"hello");
    assert!(!is_nonblocking(ours.as_fd()));
}

#[test]
fn issue_10_a_regular_file_is_read_directly() {
    let reactor = Reactor::new().unwrap();
    let path = std::env::temp_dir().join(format!("torsion-stdio-{}", std::process::id()));
    std::fs::write(&path, vec![b'x'; 300_000]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let (out_r, out_w) = pipe();
    let reader = drain(out_r);
    let (p, (got, lost)) = echo();
    let _io = StandardIo::start(&reactor, file.into(), out_w, p).unwrap();
    let l = lost.clone();
    reactor
        .run_until(|| l.borrow().is_some(), DEADLINE)
        .unwrap();
    assert_eq!(got.borrow().len(), 300_000);
    assert_eq!(reader.join().unwrap().len(), 300_000);
}

/// A push producer that counts pauses and resumes.
#[derive(Default)]
struct Counting {
    paused: std::cell::Cell<u32>,
    resumed: std::cell::Cell<u32>,
}

impl PushProducer for Counting {
    fn pause_producing(&self) {
        self.paused.set(self.paused.get() + 1);
    }
    fn resume_producing(&self) {
        self.resumed.set(self.resumed.get() + 1);
    }
    fn stop_producing(&self) {}
}

#[test]
fn issue_10_stdout_writer_flow_control_flush_and_close() {
    let reactor = Reactor::new().unwrap();
    let (r, w) = pipe();
    let out = StdoutWriter::new(&reactor, w.try_clone().unwrap()).unwrap();
    assert!(!is_nonblocking(w.as_fd()));
    let producer = Rc::new(Counting::default());
    out.register_producer(Producer::Push(producer.clone()))
        .unwrap();
    // Nobody reads yet: the pipe fills, the rest is buffered and the producer paused.
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    out.write(&data);
    assert!(out.unsent() > 0);
    assert_eq!(producer.paused.get(), 1);
    let reader = drain(r);
    let o = out.clone();
    reactor.run_until(|| o.unsent() == 0, DEADLINE).unwrap();
    assert_eq!(producer.resumed.get(), 1, "resumed once drained");
    out.unregister_producer();
    out.write(b"tail");
    out.lose_connection();
    let o = out.clone();
    reactor.run_until(|| o.is_closed(), DEADLINE).unwrap();
    assert!(out.close_reason().is_some_and(|r| r.is_clean()));
    drop(w);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), data.len() + 4);
    assert!(got[..data.len()] == data[..] && &got[data.len()..] == b"tail");
}

#[test]
fn issue_10_stdout_writer_reports_a_reader_that_went_away() {
    let reactor = Reactor::new().unwrap();
    let (r, w) = pipe();
    let out = StdoutWriter::new(&reactor, w).unwrap();
    drop(r);
    out.write(b"nobody reads this");
    let o = out.clone();
    reactor.run_until(|| o.is_closed(), DEADLINE).unwrap();
    assert!(!out.close_reason().unwrap().is_clean());
}

#[test]
fn read_only_reads_to_eof_then_connection_lost_and_drops_writes() {
    let reactor = Reactor::new().unwrap();
    let (r, w) = pipe();
    let original = r.try_clone().unwrap();
    let (p, (got, lost)) = echo();
    let io = StandardIo::read_only(&reactor, r, p).unwrap();
    assert!(!is_nonblocking(original.as_fd()));
    let mut w = std::fs::File::from(w);
    w.write_all(b"abc").unwrap();
    drop(w);
    let l = lost.clone();
    reactor
        .run_until(|| l.borrow().is_some(), DEADLINE)
        .unwrap();
    assert_eq!(
        &got.borrow()[..],
        b"abc",
        "echoed writes were dropped, reading went on"
    );
    assert!(lost.borrow().as_ref().is_some_and(Reason::is_clean));
    drop(io);
}

#[test]
fn read_only_stop_producing_only_stops_reading() {
    let reactor = Reactor::new().unwrap();
    let (r, w) = pipe();
    let (p, (_got, lost)) = echo();
    let io = StandardIo::read_only(&reactor, r, p).unwrap();
    io.stop_producing();
    let l = lost.clone();
    reactor
        .run_until(|| l.borrow().is_some(), DEADLINE)
        .unwrap();
    // Our read end is closed: the writer sees EPIPE.
    let err = std::fs::File::from(w).write_all(b"x").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

/// A fresh PTY as `(master, slave)`, both blocking.
#[cfg(target_os = "linux")]
fn open_pty() -> (std::fs::File, OwnedFd) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain flags; the returned fd (checked) is owned by nobody else.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(master >= 0, "posix_openpt");
    // SAFETY: `master` was just opened and is owned by nobody else.
    let master = unsafe { std::fs::File::from_raw_fd(master) };
    use std::os::fd::AsRawFd;
    // SAFETY: `master` is an open PTY master for both calls.
    assert_eq!(unsafe { libc::grantpt(master.as_raw_fd()) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::unlockpt(master.as_raw_fd()) }, 0);
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is valid for writes of its length.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    assert_eq!(rc, 0, "ptsname_r");
    // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    use std::os::unix::fs::OpenOptionsExt;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path.to_str().unwrap())
        .unwrap();
    (master, slave.into())
}

#[cfg(target_os = "linux")]
#[test]
fn issue_10_a_terminal_is_reopened_and_its_description_stays_blocking() {
    let reactor = Reactor::new().unwrap();
    let (mut master, slave) = open_pty();
    let (p, (got, _lost)) = echo();
    let _io = StandardIo::start(
        &reactor,
        slave.try_clone().unwrap(),
        slave.try_clone().unwrap(),
        p,
    )
    .unwrap();
    assert!(!is_nonblocking(slave.as_fd()));
    // Canonical mode: the line is delivered at the newline, and echoed by the terminal
    // and by our protocol.
    master.write_all(b"tty line\n").unwrap();
    let g = got.clone();
    reactor
        .run_until(|| g.borrow().ends_with(b"\n"), DEADLINE)
        .unwrap();
    assert_eq!(&got.borrow()[..], b"tty line\n");
    assert!(!is_nonblocking(slave.as_fd()));
}
