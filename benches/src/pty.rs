//! B7: PTY throughput. `torsion-pty` is not written yet (its crate is a placeholder), so
//! this benchmark, and the PTY half of B2, are reported as not yet measured.

use crate::{Config, Report};

/// Record B7 as not yet measured.
pub fn run(_cfg: &Config, report: &mut Report) {
    report.skip(
        "B7",
        "256 MiB of text from `cat` through a PTY",
        "torsion-pty missing",
        "≥ 0.95× raw mio",
    );
}
