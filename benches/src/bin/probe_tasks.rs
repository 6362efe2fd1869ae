//! A profiling probe for B10's sleeping tasks: one contender, one run, so that
//! `valgrind --tool=callgrind` counts only it.
//!
//! `cargo build -p torsion-benches --release --features compare --bin probe_tasks`, then
//! `valgrind --tool=callgrind target/release/probe_tasks torsion|tokio [N]`.

use std::time::Duration;

use torsion_reactor::Reactor;

fn sleeps(n: usize) -> Vec<Duration> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(x % 100_001)
        })
        .collect()
}

fn torsion(n: usize) -> Result<usize, Box<dyn std::error::Error>> {
    let reactor = Reactor::new()?;
    let handles: Vec<_> = sleeps(n)
        .into_iter()
        .map(|d| {
            let r = reactor.clone();
            reactor.spawn_local(async move { r.sleep(d).await })
        })
        .collect();
    Ok(reactor.block_on(async move {
        let mut done = 0usize;
        for h in handles {
            done += usize::from(h.await.is_ok());
        }
        done
    })?)
}

fn tokio(n: usize) -> Result<usize, Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    Ok(local.block_on(&rt, async move {
        let handles: Vec<_> = sleeps(n)
            .into_iter()
            .map(|d| tokio::task::spawn_local(tokio::time::sleep(d)))
            .collect();
        let mut done = 0usize;
        for h in handles {
            done += usize::from(h.await.is_ok());
        }
        done
    }))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "torsion".into());
    let n: usize = args.next().map_or(Ok(100_000), |s| s.parse())?;
    let t0 = std::time::Instant::now();
    let done = match which.as_str() {
        "tokio" => tokio(n)?,
        _ => torsion(n)?,
    };
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{which}: {done} tasks in {secs:.3}s = {:.0}/s",
        n as f64 / secs
    );
    Ok(())
}
