//! torsion's side-by-side benchmarks (issue 7): torsion against the raw floor (the same
//! work written directly on mio/libc), tokio's current-thread runtime, calloop and Twisted.
//!
//! Run everything with `cargo run -p torsion-benches --release --bin report`; it writes
//! `BENCHMARKS.md` at the repository root and one SVG chart per benchmark under
//! `benches/charts/`. `--only B5` runs one benchmark, `--quick` a short smoke run (both
//! write under `target/bench-report/` so the committed report is not overwritten).
//!
//! The layers:
//!
//! - [`harness`]: contenders run alternately within each round after a warm-up; medians,
//!   spreads, per-round ratios torsion / contender, goals with MET/MISSED.
//! - [`report`] and [`chart`]: the Markdown report and the plotters SVG charts.
//! - [`twisted`]: the Python venv and the scripts in `benches/python/`.
//! - One module per benchmark: [`spawn`] (B1, B2), [`pipes`] (B3), [`tcp`] (B4),
//!   [`timers`] (B5), [`wake`] (B6), [`pty`] (B7), [`memory`] (B8).

pub mod alloc;
pub mod chart;
pub mod client;
pub mod harness;
pub mod machine;
pub mod memory;
pub mod pipes;
pub mod pty;
pub mod raw_heap;
pub mod raw_wheel;
pub mod rawproc;
pub mod report;
pub mod spawn;
pub mod tcp;
pub mod timers;
pub mod twisted;
pub mod util;
pub mod wake;

pub use report::Report;

/// How a run is configured.
#[derive(Debug)]
pub struct Config {
    /// Short inputs and fewer rounds, for smoke testing.
    pub quick: bool,
    /// Measured rounds per comparison.
    pub rounds: usize,
    /// Warm-up rounds thrown away.
    pub warmup: usize,
    /// The Twisted contender, if its venv could be set up.
    pub twisted: Option<twisted::Twisted>,
}
