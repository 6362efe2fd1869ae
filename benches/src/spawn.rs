//! B1 and B2: spawn + reap sequential children with three pipes; B2 with 1 GiB of touched
//! heap in the parent.

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use torsion_reactor::Reactor;
use torsion_transport::{ExitReason, ProcessBuilder, ProcessProtocol};

use crate::harness::{Bound, Comparison, Contender, Goal, Metric, Sample};
use crate::rawproc;
use crate::twisted::field;
use crate::util::work_dir;
use crate::{Config, Report};

const TRUE_SOURCE: &str = "/* exit(0) with no libc: the parent's spawn cost is all that shows */\n\
void _start(void) { __asm__ volatile(\"mov $60, %eax\\n xor %edi, %edi\\n syscall\"); }\n";

/// Build (once) the static no-libc `true` with `gcc -nostdlib -static`.
///
/// # Errors
///
/// No gcc, or it failed; the message says which.
pub fn static_true() -> Result<PathBuf, String> {
    let dir = work_dir().join("bench-bin");
    let exe = dir.join("true-static");
    if exe.exists() {
        return Ok(exe);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = dir.join("true-static.c");
    std::fs::write(&src, TRUE_SOURCE).map_err(|e| format!("{}: {e}", src.display()))?;
    let out = Command::new("gcc")
        .args(["-nostdlib", "-static", "-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "gcc failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(exe)
}

struct Counter(Rc<Cell<usize>>);

impl ProcessProtocol for Counter {
    fn process_ended(&mut self, _reason: ExitReason) {
        self.0.set(self.0.get() + 1);
    }
}

fn spawn_on(
    reactor: &Reactor,
    builder: &ProcessBuilder,
    protocol: Box<dyn ProcessProtocol>,
) -> Result<(), String> {
    torsion_process::ProcessBuilderExt::spawn(builder, reactor, protocol)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// torsion: `builder.spawn`, iterate until `process_ended`, next.
pub(crate) fn torsion_spawn(program: &Path, n: usize) -> Sample {
    let reactor = Reactor::new().map_err(|e| e.to_string())?;
    let builder = ProcessBuilder::new(program);
    let ended = Rc::new(Cell::new(0usize));
    let t0 = Instant::now();
    for i in 1..=n {
        spawn_on(&reactor, &builder, Box::new(Counter(ended.clone())))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while ended.get() < i {
            if Instant::now() > deadline {
                return Err(format!("child {i} did not end within 10 s"));
            }
            reactor
                .iterate(Duration::from_secs(1))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// raw posix_spawn: three pipes, `posix_spawn`, read stdout and stderr to EOF, `waitpid`.
pub(crate) fn raw_spawn(program: &Path, n: usize) -> Sample {
    let argv = [CString::new(program.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?];
    let mut buf = [0u8; 4096];
    let t0 = Instant::now();
    for _ in 0..n {
        let mut run = || -> std::io::Result<()> {
            let (in_r, in_w) = rawproc::pipe()?;
            let (out_r, out_w) = rawproc::pipe()?;
            let (err_r, err_w) = rawproc::pipe()?;
            let pid = rawproc::spawn(
                &argv,
                [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
            )?;
            drop((in_r, out_w, err_w));
            rawproc::drain(&out_r, &mut buf)?;
            rawproc::drain(&err_r, &mut buf)?;
            drop(in_w);
            rawproc::wait(pid)?;
            Ok(())
        };
        run().map_err(|e| e.to_string())?;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// tokio: `tokio::process::Command` with three pipes, `spawn` + `wait`.
pub(crate) fn tokio_spawn(program: &Path, n: usize) -> Sample {
    use std::process::Stdio;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let t0 = Instant::now();
        for _ in 0..n {
            let mut child = tokio::process::Command::new(program)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            child.wait().await.map_err(|e| e.to_string())?;
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    })
}

/// Run `f` while this process holds 1 GiB of touched heap.
pub(crate) fn with_big_heap(f: impl FnOnce() -> Sample) -> Sample {
    let big = vec![1u8; 1 << 30];
    let r = f();
    std::hint::black_box(&big);
    drop(big);
    r
}

/// Run B1 and B2.
pub fn run(cfg: &Config, report: &mut Report) {
    let program = match static_true() {
        Ok(p) => p,
        Err(e) => {
            report.skip("B1", "spawn + reap", &e, "≥ 1.0× raw posix_spawn");
            return;
        }
    };
    let n = if cfg.quick { 300 } else { 2000 };
    let p = program.as_path();
    let mut contenders = vec![
        Contender::new("torsion", || torsion_spawn(p, n)),
        Contender::new("raw posix_spawn", || raw_spawn(p, n)),
        Contender::new("tokio", || tokio_spawn(p, n)),
    ];
    let mut goals = vec![
        Goal::ratio(
            "≥ 1.0× raw posix_spawn",
            "raw posix_spawn",
            Bound::AtLeast(1.0),
        ),
        Goal::ratio("≥ 1.2× tokio", "tokio", Bound::AtLeast(1.2)),
    ];
    if let Some(tw) = &cfg.twisted {
        let args = vec![
            program.display().to_string(),
            "--n".to_owned(),
            n.to_string(),
        ];
        contenders.push(Contender::new("Twisted", move || {
            let r = tw.run("spawn.py", &args, Duration::from_secs(120))?;
            field(&r, "per_sec")
        }));
        goals.push(Goal::ratio("≥ 2× Twisted", "Twisted", Bound::AtLeast(2.0)));
    }
    report.add(crate::harness::run(
        Comparison {
            bench: "B1".into(),
            case: format!("{n} children × 3 pipes, static true"),
            metric: Metric::rate("children/s"),
            subject: "torsion".into(),
            contenders,
            goals,
        },
        cfg.rounds,
        cfg.warmup,
    ));

    let n2 = if cfg.quick { 200 } else { 1000 };
    report.add(crate::harness::run(
        Comparison {
            bench: "B2".into(),
            case: format!("pipes: {n2} children, 1 GiB touched heap"),
            metric: Metric::rate("children/s"),
            subject: "torsion, 1 GiB parent".into(),
            contenders: vec![
                Contender::new("torsion, 1 GiB parent", || {
                    with_big_heap(|| torsion_spawn(p, n2))
                }),
                Contender::new("torsion, empty parent", || torsion_spawn(p, n2)),
                Contender::new("raw posix_spawn, 1 GiB parent", || {
                    with_big_heap(|| raw_spawn(p, n2))
                }),
                Contender::new("tokio, 1 GiB parent", || {
                    with_big_heap(|| tokio_spawn(p, n2))
                }),
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
    crate::pty::run_b2(cfg, report, p);
}
