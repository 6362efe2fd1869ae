//! One contender of one case, once: the driver for profilers (`callgrind`, `strace -c`,
//! `perf stat`), which must see a single run and nothing else.
//!
//! ```text
//! cargo build -p torsion-benches --release --features compare --bin probe
//! valgrind --tool=callgrind target/release/probe b3-sink-torsion 64
//! strace -f -c target/release/probe b1-torsion 500
//! ```
//!
//! Each case prints its sample (`name = value unit`) on stdout. `N` is the size: MiB for
//! B3, children for B1, iterations for B6, connections for B4 (16 KiB messages, 1 s).

use std::ffi::CString;
use std::rc::Rc;

use crate::harness::Sample;
use crate::pipes::Feed;

/// The cases and what `N` means for each.
pub const CASES: &[(&str, &str)] = &[
    (
        "b3-sink-torsion",
        "MiB to cat > /dev/null, default pipes, write_shared chunks",
    ),
    ("b3-sink-torsion-copy", "the same with write(&[u8]) chunks"),
    (
        "b3-sink-torsion-static",
        "the same with Process::write_static (vmsplice) chunks",
    ),
    ("b3-sink-raw", "the same, raw mio"),
    ("b3-sink-raw-vmsplice", "the same, raw mio with vmsplice(2)"),
    ("b1-torsion", "children spawned and reaped"),
    ("b1-raw", "children, raw posix_spawn"),
    ("b1-tokio", "children, tokio::process"),
    (
        "b5-churn-torsion",
        "cancel + call_later operations, 10k live",
    ),
    ("b5-churn-torsion-reset", "reset operations, 10k live"),
    ("b5-churn-heap", "cancel + insert, raw indexed heap"),
    ("b5-churn-wheel", "cancel + insert, raw timer wheel"),
    ("b6-idle-torsion", "idle iterations"),
    ("b6-idle-raw", "idle polls, raw mio"),
    ("b4-torsion", "connections × 64 B echo for 1 s"),
    ("b4-raw", "connections × 64 B echo for 1 s, raw mio"),
    ("b4-tokio", "connections × 64 B echo for 1 s, tokio"),
    (
        "b4-scale-torsion",
        "connections × 64 B for 0.6 s, with heap per connection",
    ),
    ("b4-scale-raw", "the same, raw mio"),
    ("b4-scale-tokio", "the same, tokio"),
];

/// Run case `name` with size `n`.
///
/// # Errors
///
/// An unknown case, or the run failed.
pub fn run(name: &str, n: usize) -> Sample {
    const MIB: usize = 1024 * 1024;
    let chunk = || Rc::new(vec![b'x'; 256 * 1024]);
    let cat = || -> Result<CString, String> {
        let p = crate::pipes::find_cat()?;
        CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())
    };
    match name {
        "b3-sink-torsion" => {
            crate::pipes::torsion_pipe(n * MIB, false, None, &chunk(), Feed::Shared)
        }
        "b3-sink-torsion-static" => {
            crate::pipes::torsion_pipe(n * MIB, false, None, &chunk(), Feed::Static)
        }
        "b3-sink-torsion-copy" => {
            crate::pipes::torsion_pipe(n * MIB, false, None, &chunk(), Feed::Copy)
        }
        "b3-sink-raw" => crate::pipes::raw_pipe(&cat()?, n * MIB, false, None, &chunk(), false),
        "b3-sink-raw-vmsplice" => {
            crate::pipes::raw_pipe(&cat()?, n * MIB, false, None, &chunk(), true)
        }
        "b1-torsion" => crate::spawn::torsion_spawn(&crate::spawn::static_true()?, n),
        "b1-raw" => crate::spawn::raw_spawn(&crate::spawn::static_true()?, n),
        "b1-tokio" => crate::spawn::tokio_spawn(&crate::spawn::static_true()?, n),
        "b6-idle-torsion" => crate::wake::torsion_idle(n as u64),
        "b6-idle-raw" => crate::wake::mio_idle(n as u64),
        "b4-torsion" => crate::tcp::rust_contender(crate::tcp::torsion_server, n, 64, 1.0),
        "b4-raw" => crate::tcp::rust_contender(crate::tcp::mio_server, n, 64, 1.0),
        "b4-tokio" => crate::tcp::rust_contender(crate::tcp::tokio_server, n, 64, 1.0),
        "b4-scale-torsion" | "b4-scale-raw" | "b4-scale-tokio" => {
            let start = match name {
                "b4-scale-torsion" => crate::tcp::torsion_server,
                "b4-scale-raw" => crate::tcp::mio_server,
                _ => crate::tcp::tokio_server,
            };
            crate::rawproc::raise_fd_limit().map_err(|e| e.to_string())?;
            let t0 = std::time::Instant::now();
            let server = start()?;
            let r = crate::scale::measure(&server, n, 0.6);
            let t1 = t0.elapsed();
            server.stop()?;
            eprintln!("{name}: run {t1:?}, stopped at {:?}", t0.elapsed());
            let (rate, heap) = r?;
            eprintln!("{name}: heap per connection {heap:.0} bytes");
            Ok(rate)
        }
        "b5-churn-torsion" => crate::timers::torsion_churn(10_000, n, false),
        "b5-churn-torsion-reset" => crate::timers::torsion_churn(10_000, n, true),
        "b5-churn-heap" => crate::timers::heap_churn(10_000, n),
        "b5-churn-wheel" => crate::timers::wheel_churn(10_000, n),
        other => Err(format!("unknown case {other:?}")),
    }
}
