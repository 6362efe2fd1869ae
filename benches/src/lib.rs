//! torsion's side-by-side benchmarks (issue 7): torsion against the raw floor (the same
//! work written directly on mio/libc), tokio's current-thread runtime, calloop and Twisted.
//!
//! Run everything with `cargo run -p torsion-benches --release --features compare --bin report`;
//! it writes `BENCHMARKS.md` at the repository root and one SVG chart per benchmark under
//! `benches/charts/`. `--only B5` runs one benchmark, `--quick` a short smoke run (both
//! write under `target/bench-report/` so the committed report is not overwritten).
//!
//! The layers:
//!
//! - [`harness`]: contenders run alternately within each round after a warm-up; medians,
//!   spreads, per-round ratios torsion / contender, goals with MET/MISSED.
//! - [`report`] and `chart`: the Markdown report and the plotters SVG charts.
//! - [`twisted`]: the Python venv and the scripts in `benches/python/`.
//! - One module per benchmark: `spawn` (B1, B2), `pipes` (B3), `tcp` (B4), `scale` (B4 at
//!   1k and 10k connections, with B8's heap per busy connection), [`timers`] (B5), `wake`
//!   (B6), `pty` (B7), `memory` (B8), `lines` (B9), `tasks` (B10: async), `udp` (B11),
//!   `multicore` (B12), `tls` (B13), `latency` (B14, open-loop tail latency). The unlinked
//!   ones need the `compare` feature (below), so a link to them would break the default
//!   docs.
//! - `probe` and the `probe` binary: one contender of one case, once, for profilers
//!   (`valgrind --tool=callgrind target/release/probe b3-sink-torsion 64`).
//!
//! Suites: `--suite full` (default, the committed report, under 10 minutes on a 2-core
//! machine), `--suite fast` (mid-size inputs, 3 rounds, no 10k cell) and `--quick` (CI:
//! short inputs, 2 rounds, no Python contenders).
//!
//! # Features
//!
//! The comparator stacks (tokio, calloop) and the chart library (plotters) are behind the
//! `compare` feature, so `cargo test --workspace` does not build them (issue 10). Without it
//! only the harness, the report text, the B5 timer contenders and the load client are
//! built; the `report` binary requires the feature.

pub mod alloc;
#[cfg(feature = "compare")]
pub mod chart;
pub mod client;
pub mod harness;
#[cfg(feature = "compare")]
pub mod latency;
#[cfg(feature = "compare")]
pub mod lines;
pub mod machine;
#[cfg(feature = "compare")]
pub mod memory;
#[cfg(feature = "compare")]
pub mod multicore;
#[cfg(feature = "compare")]
pub mod pipes;
#[cfg(feature = "compare")]
pub mod probe;
// No comparator of its own, but B7 shares `spawn::with_big_heap` with B1/B2.
#[cfg(feature = "compare")]
pub mod pty;
pub mod raw_heap;
pub mod raw_wheel;
pub mod rawproc;
pub mod report;
#[cfg(feature = "compare")]
pub mod scale;
#[cfg(feature = "compare")]
pub mod spawn;
#[cfg(feature = "compare")]
pub mod tasks;
#[cfg(feature = "compare")]
pub mod tcp;
pub mod timers;
#[cfg(feature = "compare")]
pub mod tls;
pub mod twisted;
#[cfg(feature = "compare")]
pub mod udp;
pub mod util;
#[cfg(feature = "compare")]
pub mod wake;

pub use report::Report;

/// Which suite a run is: `--quick` (CI smoke run), `--suite fast`, `--suite full` (default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Short inputs, 2 rounds, no Python contenders: proves the benchmarks run (CI).
    Quick,
    /// Mid-size inputs, 3 rounds, the heaviest cells left out: a few minutes.
    Fast,
    /// Everything at full size, 5 rounds: the committed report (under 10 minutes here).
    Full,
}

impl Suite {
    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Quick => "quick",
            Suite::Fast => "fast",
            Suite::Full => "full",
        }
    }
}

/// How a run is configured.
#[derive(Debug)]
pub struct Config {
    /// Which suite this is.
    pub suite: Suite,
    /// Short inputs and fewer rounds, for smoke testing (`suite == Suite::Quick`).
    pub quick: bool,
    /// Measured rounds per comparison.
    pub rounds: usize,
    /// Warm-up rounds thrown away.
    pub warmup: usize,
    /// The Twisted contender, if its venv could be set up.
    pub twisted: Option<twisted::Twisted>,
}

impl Config {
    /// The value for this run's suite: `quick`, `fast` or `full`.
    pub fn pick<T>(&self, quick: T, fast: T, full: T) -> T {
        match self.suite {
            Suite::Quick => quick,
            Suite::Fast => fast,
            Suite::Full => full,
        }
    }
}
