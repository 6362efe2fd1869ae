//! Runs the benchmarks of issue 7 and writes `BENCHMARKS.md` plus `benches/charts/*.svg`.
//!
//! ```text
//! cargo run -p torsion-benches --release --features compare --bin report               # full suite, < 10 min
//! cargo run -p torsion-benches --release --features compare --bin report -- --suite fast # mid-size, 3 rounds
//! cargo run -p torsion-benches --release --features compare --bin report -- --only B5   # one benchmark
//! cargo run -p torsion-benches --release --features compare --bin report -- --quick     # CI smoke run
//! ```
//!
//! `--suite full` (the default) is what `BENCHMARKS.md` is made from; `--suite fast` runs
//! mid-size inputs for 3 rounds and leaves out the heaviest cells; `--quick` (CI, after the
//! tests) runs short inputs for 2 rounds without the Python contenders, to prove every
//! benchmark still runs. Anything but the full suite, and `--only`, writes to
//! `target/bench-report/` unless `--out DIR` is given, so a partial run never replaces the
//! committed report. `--rounds N` overrides the rounds; `--no-twisted` skips the Twisted
//! column. The binary needs the `compare` feature (tokio, calloop and plotters are optional
//! dependencies of this package).

use std::path::PathBuf;
use std::time::Instant;

use torsion_benches::alloc::Counting;
use torsion_benches::machine::Machine;
use torsion_benches::report::RunInfo;
use torsion_benches::twisted::Twisted;
use torsion_benches::util::repo_root;
use torsion_benches::{Config, Report, Suite};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

type Bench = fn(&Config, &mut Report);

const BENCHES: &[(&str, Bench)] = &[
    ("B5", torsion_benches::timers::run),
    ("B6", torsion_benches::wake::run),
    ("B4", torsion_benches::tcp::run),
    ("B4", torsion_benches::scale::run),
    ("B14", torsion_benches::latency::run),
    ("B9", torsion_benches::lines::run),
    ("B1", torsion_benches::spawn::run),
    ("B3", torsion_benches::pipes::run),
    ("B8", torsion_benches::memory::run),
    ("B7", torsion_benches::pty::run),
    ("B10", torsion_benches::tasks::run),
    ("B11", torsion_benches::udp::run),
    ("B12", torsion_benches::multicore::run),
    ("B13", torsion_benches::tls::run),
];

fn usage() -> ! {
    eprintln!(
        "usage: report [--quick | --suite fast|full] [--only B1,B5,...] [--rounds N] [--no-twisted] [--out DIR]"
    );
    std::process::exit(2);
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(torsion_benches::multicore::WORKER_COMMAND) {
        std::process::exit(torsion_benches::multicore::worker_main());
    }
    if std::env::args().nth(1).as_deref() == Some("echo-client") {
        std::process::exit(torsion_benches::client::main(
            std::env::args().skip(2).collect(),
        ));
    }
    let started = Instant::now();
    let mut suite = Suite::Full;
    let mut only: Option<Vec<String>> = None;
    let mut rounds: Option<usize> = None;
    let mut no_twisted = false;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => suite = Suite::Quick,
            "--suite" => {
                suite = match args.next().as_deref() {
                    Some("fast") => Suite::Fast,
                    Some("full") => Suite::Full,
                    Some("quick") => Suite::Quick,
                    _ => usage(),
                }
            }
            "--no-twisted" => no_twisted = true,
            "--only" => {
                only = Some(
                    args.next()
                        .unwrap_or_else(|| usage())
                        .split(',')
                        .map(|s| s.trim().to_ascii_uppercase())
                        .collect(),
                )
            }
            "--rounds" => {
                rounds = Some(
                    args.next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            "--out" => out = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            _ => usage(),
        }
    }
    let quick = suite == Suite::Quick;
    // The quick (CI) run leaves Python out: setting up Twisted needs pip and the network.
    let no_twisted = no_twisted || quick;
    let partial = suite != Suite::Full || only.is_some();
    let (report_path, chart_dir, chart_prefix) = match (&out, partial) {
        (Some(dir), _) => (
            dir.join("BENCHMARKS.md"),
            dir.join("charts"),
            "charts/".to_owned(),
        ),
        (None, true) => {
            let dir = repo_root().join("target").join("bench-report");
            (
                dir.join("BENCHMARKS.md"),
                dir.join("charts"),
                "charts/".to_owned(),
            )
        }
        (None, false) => (
            repo_root().join("BENCHMARKS.md"),
            repo_root().join("benches").join("charts"),
            "benches/charts/".to_owned(),
        ),
    };

    let mut machine = Machine::detect();
    let twisted = if no_twisted {
        machine.twisted = if quick {
            "skipped: the quick suite runs no Python contenders".to_owned()
        } else {
            "skipped: --no-twisted was given".to_owned()
        };
        None
    } else {
        match Twisted::setup() {
            Ok(t) => {
                machine.twisted = format!("{} (venv under target/bench-venv)", t.version);
                Some(t)
            }
            Err(reason) => {
                eprintln!("Twisted column skipped: {reason}");
                machine.twisted = format!("skipped: {reason}");
                None
            }
        }
    };
    let cfg = Config {
        suite,
        quick,
        rounds: rounds.unwrap_or(match suite {
            Suite::Quick => 2,
            Suite::Fast => 3,
            Suite::Full => 5,
        }),
        warmup: 1,
        twisted,
    };
    let mut report = Report::default();
    for (id, run) in BENCHES {
        let wanted = only
            .as_ref()
            .is_none_or(|o| o.iter().any(|w| w == id || (*id == "B1" && w == "B2")));
        if wanted {
            let t = Instant::now();
            eprintln!("{id}:");
            run(&cfg, &mut report);
            eprintln!("{id} took {:.1} s", t.elapsed().as_secs_f64());
        }
    }

    let charts = report.write_charts(&chart_dir);
    let mut command =
        "cargo run -p torsion-benches --release --features compare --bin report".to_owned();
    for a in std::env::args().skip(1) {
        command.push(' ');
        command.push_str(&a);
    }
    let md = report.markdown(&RunInfo {
        machine: &machine,
        command: &command,
        rounds: cfg.rounds,
        warmup: cfg.warmup,
        charts: &charts,
        chart_prefix: &chart_prefix,
        total_secs: started.elapsed().as_secs_f64(),
    });
    if let Some(parent) = report_path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(&report_path, md) {
        Ok(()) => eprintln!(
            "wrote {} and {} chart(s) in {} ({:.0} s)",
            report_path.display(),
            charts.len(),
            chart_dir.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("cannot write {}: {e}", report_path.display());
            std::process::exit(1);
        }
    }
}
