//! B7: PTY throughput (a child `cat` of 256 MiB of text through a PTY), and the PTY half
//! of B2 (spawn + reap on a PTY with 1 GiB of touched heap in the parent).

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use torsion_reactor::Reactor;
use torsion_transport::{ExitReason, ProcessBuilder, ProcessProtocol, PtyOptions};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::rawproc;
use crate::spawn::with_big_heap;
use crate::util::work_dir;
use crate::{Config, Report};

/// Bytes read per `read` from the master, for both contenders (torsion's PTY reader reads
/// 16 KiB at a time; a PTY hands out at most a few KiB per read anyway).
const READ_CHUNK: usize = 16 * 1024;

/// Write (once) a text file of `size` bytes: lines of 79 printable characters and `\n`.
fn text_file(size: usize) -> io::Result<PathBuf> {
    let dir = work_dir().join("bench-bin");
    let path = dir.join(format!("pty-text-{}m.txt", size >> 20));
    if std::fs::metadata(&path)
        .map(|m| m.len() as usize == size)
        .unwrap_or(false)
    {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let mut line = [0u8; 80];
    for (i, b) in line.iter_mut().enumerate() {
        *b = b' ' + (i % 94) as u8 + 1;
    }
    line[79] = b'\n';
    let tmp = dir.join("pty-text.tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    let mut left = size;
    while left > 0 {
        let k = left.min(line.len());
        out.write_all(&line[..k])?;
        left -= k;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

struct CountOutput {
    bytes: Rc<Cell<usize>>,
    ended: Rc<Cell<bool>>,
}

impl ProcessProtocol for CountOutput {
    fn child_data_received(&mut self, _fd: i32, data: &[u8]) {
        self.bytes.set(self.bytes.get() + data.len());
    }
    fn process_ended(&mut self, _reason: ExitReason) {
        self.ended.set(true);
    }
}

/// torsion: `builder.spawn` on a PTY of `cat FILE`, count what arrives, iterate until
/// `process_ended`. Bytes read from the master per second.
fn torsion_cat(file: &Path, size: usize) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let bytes = Rc::new(Cell::new(0usize));
    let ended = Rc::new(Cell::new(false));
    let builder = ProcessBuilder::new("cat")
        .arg(file)
        .pty(PtyOptions::default());
    let t0 = Instant::now();
    torsion_process::ProcessBuilderExt::spawn(
        &builder,
        &reactor,
        Box::new(CountOutput {
            bytes: bytes.clone(),
            ended: ended.clone(),
        }),
    )
    .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ended.get() {
        if Instant::now() > deadline {
            return Err("cat did not end within 120 s".to_owned());
        }
        reactor
            .iterate(Duration::from_secs(1))
            .map_err(|e| e.to_string())?;
    }
    let secs = t0.elapsed().as_secs_f64();
    check_size(bytes.get(), size)?;
    Ok(bytes.get() as f64 / secs)
}

/// The line discipline turns each `\n` into `\r\n`: at least `size` bytes must arrive.
fn check_size(got: usize, size: usize) -> Result<(), String> {
    if got < size {
        return Err(format!("read {got} of at least {size} bytes from the PTY"));
    }
    Ok(())
}

/// raw mio: a PTY pair (`posix_openpt` through `torsion_pty::open_pty`, a thin
/// wrapper), `cat` spawned by `std::process::Command` with the slave on 0/1/2, the master
/// non-blocking in one `Poll`, read until `EIO` (every slave fd closed), then `wait`.
fn raw_cat(file: &Path, size: usize) -> Sample {
    let run = || -> io::Result<(usize, f64)> {
        let t0 = Instant::now();
        let (master, slave) = torsion_pty::open_pty()?;
        let mut child = Command::new("cat")
            .arg(file)
            .stdin(Stdio::from(slave.try_clone()?))
            .stdout(Stdio::from(slave.try_clone()?))
            .stderr(Stdio::from(slave))
            .spawn()?;
        rawproc::set_nonblocking(&master)?;
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(8);
        poll.registry().register(
            &mut SourceFd(&master.as_raw_fd()),
            Token(0),
            Interest::READABLE,
        )?;
        let mut master = File::from(master);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut received = 0usize;
        'outer: loop {
            loop {
                match master.read(&mut buf) {
                    Ok(0) => break 'outer,
                    Ok(n) => received += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => break 'outer,
                    Err(e) => return Err(e),
                }
            }
            poll.poll(&mut events, None)?;
        }
        poll.registry()
            .deregister(&mut SourceFd(&master.as_raw_fd()))?;
        drop(OwnedFd::from(master));
        child.wait()?;
        Ok((received, t0.elapsed().as_secs_f64()))
    };
    let (received, secs) = run().map_err(|e| e.to_string())?;
    check_size(received, size)?;
    Ok(received as f64 / secs)
}

struct Ended(Rc<Cell<usize>>);

impl ProcessProtocol for Ended {
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.set(self.0.get() + 1);
    }
}

/// torsion: `builder.spawn` on a PTY of the static `true`, iterate until `process_ended`,
/// next. Children per second.
fn torsion_pty_spawn(program: &Path, n: usize) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let builder = ProcessBuilder::new(program).pty(PtyOptions::default());
    let ended = Rc::new(Cell::new(0usize));
    let t0 = Instant::now();
    for i in 1..=n {
        torsion_process::ProcessBuilderExt::spawn(
            &builder,
            &reactor,
            Box::new(Ended(ended.clone())),
        )
        .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while ended.get() < i {
            if Instant::now() > deadline {
                return Err(format!("PTY child {i} did not end within 10 s"));
            }
            reactor
                .iterate(Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// The PTY half of B2 (called from [`crate::spawn::run`]).
pub fn run_b2(cfg: &Config, report: &mut Report, program: &Path) {
    let n = if cfg.quick { 100 } else { 500 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B2".into(),
            case: format!("PTY: {n} children, 1 GiB touched heap"),
            metric: Metric::rate("children/s"),
            subject: "torsion, 1 GiB parent".into(),
            contenders: vec![
                Contender::new("torsion, 1 GiB parent", || {
                    with_big_heap(|| torsion_pty_spawn(program, n))
                }),
                Contender::new("torsion, empty parent", || torsion_pty_spawn(program, n)),
            ],
            goals: vec![Goal::ratio(
                "≥ 0.9× the same spawn with an empty parent",
                "torsion, empty parent",
                Bound::AtLeast(0.9),
            )],
        },
        cfg.rounds,
        cfg.warmup,
    ));
}

/// Run B7.
pub fn run(cfg: &Config, report: &mut Report) {
    let size = if cfg.quick { 32 << 20 } else { 256 << 20 };
    let case = format!("{} MiB of text from `cat` through a PTY", size >> 20);
    let file = match text_file(size) {
        Ok(f) => f,
        Err(e) => {
            report.skip("B7", &case, &format!("text file: {e}"), "≥ 0.95× raw mio");
            return;
        }
    };
    let f = file.as_path();
    report.add(crate::harness::run(
        Comparison {
            bench: "B7".into(),
            case,
            metric: Metric::rate("B/s"),
            subject: "torsion".into(),
            contenders: vec![
                Contender::new("torsion", move || torsion_cat(f, size)),
                Contender::new("raw mio", move || raw_cat(f, size)),
            ],
            goals: vec![Goal::ratio(
                "≥ 0.95× raw mio",
                "raw mio",
                Bound::AtLeast(0.95),
            )],
        },
        cfg.rounds,
        cfg.warmup,
    ));
}
