//! B3: bulk data through pipes to and from `cat`, default and 1 MiB pipes.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use torsion_reactor::Reactor;
use torsion_transport::{
    ChildFd, ExitReason, ProcessBuilder, ProcessProtocol, ProcessTransport, Producer, PullProducer,
    SharedBytes,
};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::rawproc;
use crate::{Config, Report};

/// Bytes per write, all contenders.
const CHUNK: usize = 256 * 1024;
const MIB: usize = 1024 * 1024;

pub(crate) fn find_cat() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("cat"))
        .find(|p| p.is_file())
        .ok_or_else(|| "no cat on PATH".to_owned())
}

/// How the feeder hands its chunk to torsion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feed {
    /// `write(&[u8])`: copied into the write buffer.
    Copy,
    /// `write_shared(SharedBytes)`: a reference is queued (CONTRACT D10).
    Shared,
    /// `Process::write_static`: a reference is queued and the pipe gets the pages with
    /// `vmsplice(2)` (CONTRACT D11).
    Static,
}

/// The chunk, handed over for good (leaked once per process) for [`Feed::Static`].
fn static_chunk() -> &'static [u8] {
    static CHUNK_PAGES: std::sync::OnceLock<&'static [u8]> = std::sync::OnceLock::new();
    CHUNK_PAGES.get_or_init(|| Box::leak(vec![b'x'; CHUNK].into_boxed_slice()))
}

/// Writes `left` bytes to the child's stdin, one chunk per `resume_producing`, then closes it.
struct Feeder {
    transport: RefCell<Option<Rc<dyn ProcessTransport>>>,
    /// The concrete process, for [`Feed::Static`] (`write_static` is not on the trait).
    process: RefCell<Option<Rc<torsion_process::Process>>>,
    left: Cell<usize>,
    chunk: SharedBytes,
    feed: Feed,
}

impl PullProducer for Feeder {
    fn resume_producing(&self) {
        let Some(t) = self.transport.borrow().clone() else {
            return;
        };
        let left = self.left.get();
        if left > 0 {
            let k = left.min(self.chunk.len());
            self.left.set(left - k);
            match (self.feed, self.chunk.get(..k), &*self.process.borrow()) {
                (Feed::Shared, Some(part), _) => t.write_shared(part),
                (Feed::Static, _, Some(p)) => p.write_static(&static_chunk()[..k]),
                _ => t.write(&self.chunk[..k]),
            }
        } else {
            t.unregister_producer();
            let _ = t.close_stdin();
        }
    }

    fn stop_producing(&self) {
        self.left.set(0);
    }
}

struct Pump {
    feeder: Rc<Feeder>,
    received: Rc<Cell<usize>>,
    ended: Rc<Cell<bool>>,
}

impl ProcessProtocol for Pump {
    fn connection_made(&mut self, transport: Rc<dyn ProcessTransport>) {
        *self.feeder.transport.borrow_mut() = Some(transport.clone());
        // Feed::Static registers once spawn has returned the concrete process.
        if self.feeder.feed != Feed::Static {
            let _ = transport.register_producer(Producer::Pull(self.feeder.clone()));
        }
    }

    fn child_data_received(&mut self, _fd: i32, data: &[u8]) {
        self.received.set(self.received.get() + data.len());
    }

    fn process_ended(&mut self, _reason: ExitReason) {
        self.feeder.transport.borrow_mut().take();
        self.feeder.process.borrow_mut().take();
        self.ended.set(true);
    }
}

fn spawn_on(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
    pipe_size: Option<usize>,
) -> Result<Rc<torsion_process::Process>, String> {
    use torsion_process::ProcessBuilderExt;
    let builder = match pipe_size {
        Some(size) => builder.clone().pipe_size(size),
        None => builder.clone(),
    };
    builder.spawn(reactor, protocol).map_err(|e| e.to_string())
}

pub(crate) fn torsion_pipe(
    total: usize,
    echo: bool,
    pipe_size: Option<usize>,
    chunk: &Rc<Vec<u8>>,
    feed: Feed,
) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let builder = ProcessBuilder::new("cat")
        .child_fd(0, ChildFd::Write)
        .child_fd(1, if echo { ChildFd::Read } else { ChildFd::Null })
        .child_fd(2, ChildFd::Null);
    let received = Rc::new(Cell::new(0));
    let ended = Rc::new(Cell::new(false));
    let feeder = Rc::new(Feeder {
        transport: RefCell::new(None),
        process: RefCell::new(None),
        left: Cell::new(total),
        chunk: SharedBytes::from(chunk.as_slice()),
        feed,
    });
    let t0 = Instant::now();
    let process = spawn_on(
        &reactor,
        &builder,
        Box::new(Pump {
            feeder: feeder.clone(),
            received: received.clone(),
            ended: ended.clone(),
        }),
        pipe_size,
    )?;
    if feed == Feed::Static {
        *feeder.process.borrow_mut() = Some(process.clone());
        torsion_transport::Consumer::register_producer(&*process, Producer::Pull(feeder.clone()))
            .map_err(|e| e.to_string())?;
    }
    drop(process);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ended.get() {
        if Instant::now() > deadline {
            return Err("cat did not end within 60 s".to_owned());
        }
        reactor
            .iterate(Duration::from_secs(1))
            .map_err(|e| e.to_string())?;
    }
    let secs = t0.elapsed().as_secs_f64();
    if echo && received.get() != total {
        return Err(format!("echoed {} of {total} bytes", received.get()));
    }
    Ok(total as f64 / secs)
}

/// `vmsplice`: write with `vmsplice(2)` instead of `write(2)` (the chunk is never changed
/// and outlives the child, so handing the pipe its pages is safe).
pub(crate) fn raw_pipe(
    cat: &CString,
    total: usize,
    echo: bool,
    pipe_size: Option<usize>,
    chunk: &[u8],
    vmsplice: bool,
) -> Sample {
    let run = || -> io::Result<usize> {
        let t0 = Instant::now();
        let devnull = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        let (in_r, in_w) = rawproc::pipe()?;
        let (out_r, out_w): (Option<OwnedFd>, Option<OwnedFd>) = if echo {
            let (r, w) = rawproc::pipe()?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        if let Some(size) = pipe_size {
            rawproc::set_pipe_size(&in_w, size)?;
            if let Some(r) = &out_r {
                rawproc::set_pipe_size(r, size)?;
            }
        }
        let stdout = out_w
            .as_ref()
            .map(|w| w.as_raw_fd())
            .unwrap_or(devnull.as_raw_fd());
        let pid = rawproc::spawn(
            std::slice::from_ref(cat),
            [in_r.as_raw_fd(), stdout, devnull.as_raw_fd()],
        )?;
        drop((in_r, out_w, devnull));
        rawproc::set_nonblocking(&in_w)?;
        let mut poll = Poll::new()?;
        let mut events = Events::with_capacity(8);
        poll.registry().register(
            &mut SourceFd(&in_w.as_raw_fd()),
            Token(0),
            Interest::WRITABLE,
        )?;
        if let Some(r) = &out_r {
            rawproc::set_nonblocking(r)?;
            poll.registry().register(
                &mut SourceFd(&r.as_raw_fd()),
                Token(1),
                Interest::READABLE,
            )?;
        }
        let mut input = Some(std::fs::File::from(in_w));
        let mut output = out_r.map(std::fs::File::from);
        let mut written = 0usize;
        let mut received = 0usize;
        let mut buf = vec![0u8; CHUNK];
        let mut writable = true;
        let mut readable = output.is_some();
        loop {
            if writable {
                if let Some(w) = input.as_mut() {
                    while written < total {
                        let k = (total - written).min(chunk.len());
                        let wrote = if vmsplice {
                            rawproc::vmsplice(w.as_raw_fd(), &chunk[..k])
                        } else {
                            w.write(&chunk[..k])
                        };
                        match wrote {
                            Ok(n) => written += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                    if written == total {
                        let w = input.take().map(OwnedFd::from);
                        if let Some(w) = &w {
                            poll.registry().deregister(&mut SourceFd(&w.as_raw_fd()))?;
                        }
                    }
                }
            }
            if readable {
                if let Some(r) = output.as_mut() {
                    loop {
                        match r.read(&mut buf) {
                            Ok(0) => {
                                output = None;
                                break;
                            }
                            Ok(n) => received += n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            if input.is_none() && output.is_none() {
                break;
            }
            poll.poll(&mut events, None)?;
            writable = false;
            readable = false;
            for ev in events.iter() {
                match ev.token() {
                    Token(0) => writable = true,
                    _ => readable = true,
                }
            }
        }
        rawproc::wait(pid)?;
        let secs = t0.elapsed().as_secs_f64();
        if echo && received != total {
            return Err(io::Error::other(format!("echoed {received} of {total}")));
        }
        Ok((total as f64 / secs) as usize)
    };
    run().map(|r| r as f64).map_err(|e| e.to_string())
}

fn tokio_pipe(total: usize, echo: bool, chunk: &Rc<Vec<u8>>) -> Sample {
    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let chunk = std::sync::Arc::new(chunk.to_vec());
    rt.block_on(async move {
        let t0 = Instant::now();
        let mut child = tokio::process::Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(if echo { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let writer = tokio::spawn(async move {
            let mut left = total;
            while left > 0 {
                let k = left.min(chunk.len());
                stdin.write_all(&chunk[..k]).await?;
                left -= k;
            }
            drop(stdin);
            Ok::<(), io::Error>(())
        });
        let mut received = 0;
        if let Some(mut out) = child.stdout.take() {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = out.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                received += n;
            }
        }
        writer
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        child.wait().await.map_err(|e| e.to_string())?;
        let secs = t0.elapsed().as_secs_f64();
        if echo && received != total {
            return Err(format!("echoed {received} of {total}"));
        }
        Ok(total as f64 / secs)
    })
}

fn bytes_text(n: usize) -> String {
    if n >= 1024 * MIB {
        format!("{} GiB", n / (1024 * MIB))
    } else {
        format!("{} MiB", n / MIB)
    }
}

/// The sink with default pipes also shows what the other write paths give: `write(&[u8])`
/// (a copy per chunk, the path before issue 15), `write_static` (`vmsplice`), and the raw
/// floor with `vmsplice`.
fn extra<'a>(
    echo: bool,
    pipe_size: Option<usize>,
    total: usize,
    chunk: &'a Rc<Vec<u8>>,
    cat: &'a CString,
) -> Vec<Contender<'a>> {
    if echo || pipe_size.is_some() {
        return Vec::new();
    }
    vec![
        Contender::new("torsion write(&[u8])", move || {
            torsion_pipe(total, false, None, chunk, Feed::Copy)
        }),
        Contender::new("torsion write_static (vmsplice)", move || {
            torsion_pipe(total, false, None, chunk, Feed::Static)
        }),
        Contender::new("raw mio vmsplice", move || {
            raw_pipe(cat, total, false, None, chunk, true)
        }),
    ]
}

/// Run B3.
pub fn run(cfg: &Config, report: &mut Report) {
    let cat = match find_cat() {
        Ok(c) => c,
        Err(e) => {
            report.skip("B3", "parent → cat", &e, "≥ 0.95× raw mio");
            return;
        }
    };
    let Ok(cat_c) = CString::new(cat.as_os_str().as_encoded_bytes()) else {
        return;
    };
    let total = if cfg.quick { 64 * MIB } else { 1024 * MIB };
    let chunk = Rc::new(vec![b'x'; CHUNK]);
    for echo in [false, true] {
        for pipe_size in [None, Some(MIB)] {
            let (chunk, cat_c) = (&chunk, &cat_c);
            let size_text = match pipe_size {
                Some(_) => "1 MiB pipes",
                None => "default pipes",
            };
            let shape = if echo {
                "parent → cat → parent"
            } else {
                "parent → cat > /dev/null"
            };
            let mut goals = vec![Goal::ratio(
                "≥ 0.95× raw mio at the same pipe size",
                "raw mio",
                Bound::AtLeast(0.95),
            )];
            if pipe_size.is_some() {
                goals.push(Goal::ratio(
                    "large pipes ≥ 2× tokio's default",
                    "tokio (default pipes)",
                    Bound::AtLeast(2.0),
                ));
            }
            report.add(crate::harness::run(
                Comparison {
                    bench: "B3".into(),
                    case: format!("{} {shape}, {size_text}", bytes_text(total)),
                    metric: Metric::rate("B/s"),
                    subject: "torsion".into(),
                    contenders: vec![
                        Contender::new("torsion", move || {
                            torsion_pipe(total, echo, pipe_size, chunk, Feed::Shared)
                        }),
                        Contender::new("raw mio", move || {
                            raw_pipe(cat_c, total, echo, pipe_size, chunk, false)
                        }),
                        Contender::new("tokio (default pipes)", move || {
                            tokio_pipe(total, echo, chunk)
                        }),
                    ]
                    .into_iter()
                    .chain(extra(echo, pipe_size, total, chunk, cat_c))
                    .collect(),
                    goals,
                },
                cfg.rounds,
                cfg.warmup,
            ));
        }
    }
}
