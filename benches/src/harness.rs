//! Alternating rounds, statistics and goals.
//!
//! A [`Comparison`] runs its contenders one after the other inside each round
//! (A B C, A B C, ...), after a warm-up round whose samples are thrown away. Absolute numbers
//! on a shared 2-core machine drift from second to second; the ratio of two contenders
//! measured side by side in the same round does not drift nearly as much, so every goal is
//! judged on the **median of the per-round ratios** torsion / contender.

use std::fmt;
use std::time::Instant;

/// What a sample measures.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Unit printed after the numbers (`"msg/s"`, `"ns/timer"`).
    pub unit: &'static str,
    /// True for rates (bigger is faster), false for costs (smaller is faster).
    pub higher_is_better: bool,
}

impl Metric {
    /// A rate: bigger is better.
    pub const fn rate(unit: &'static str) -> Metric {
        Metric {
            unit,
            higher_is_better: true,
        }
    }

    /// A cost: smaller is better.
    pub const fn cost(unit: &'static str) -> Metric {
        Metric {
            unit,
            higher_is_better: false,
        }
    }
}

/// One sample, or why there is none.
pub type Sample = Result<f64, String>;

/// Something that does the work once and returns one sample.
pub struct Contender<'a> {
    /// Name shown in the tables (`"torsion"`, `"raw mio"`, `"tokio"`, `"Twisted"`).
    pub name: String,
    run: Box<dyn FnMut() -> Sample + 'a>,
}

impl fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .finish()
    }
}

impl<'a> Contender<'a> {
    /// A contender named `name` that produces a sample with `run`.
    pub fn new(name: impl Into<String>, run: impl FnMut() -> Sample + 'a) -> Self {
        Contender {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// How a goal is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// The value must be at least this.
    AtLeast(f64),
    /// The value must be at most this.
    AtMost(f64),
}

impl Bound {
    fn holds(self, v: f64) -> bool {
        match self {
            Bound::AtLeast(b) => v >= b,
            Bound::AtMost(b) => v <= b,
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::AtLeast(b) => write!(f, "≥ {}", fmt_num(*b)),
            Bound::AtMost(b) => write!(f, "≤ {}", fmt_num(*b)),
        }
    }
}

/// A goal from the issue.
#[derive(Debug, Clone)]
pub struct Goal {
    /// The goal as the issue words it.
    pub text: String,
    /// What is compared.
    pub target: GoalTarget,
    /// The bound on that.
    pub bound: Bound,
}

/// What a goal bounds.
#[derive(Debug, Clone)]
pub enum GoalTarget {
    /// Median per-round ratio torsion / the best of these contenders in that round.
    RatioToBest(Vec<String>),
    /// Median of torsion's own samples (absolute goals such as bytes per connection).
    Value,
}

impl Goal {
    /// Median per-round ratio torsion / `against` must satisfy `bound`.
    pub fn ratio(text: impl Into<String>, against: &str, bound: Bound) -> Goal {
        Goal {
            text: text.into(),
            target: GoalTarget::RatioToBest(vec![against.to_owned()]),
            bound,
        }
    }

    /// Median per-round ratio torsion / the best of `against` in each round.
    pub fn ratio_to_best(text: impl Into<String>, against: &[&str], bound: Bound) -> Goal {
        Goal {
            text: text.into(),
            target: GoalTarget::RatioToBest(against.iter().map(|s| (*s).to_owned()).collect()),
            bound,
        }
    }

    /// Median of torsion's samples must satisfy `bound`.
    pub fn value(text: impl Into<String>, bound: Bound) -> Goal {
        Goal {
            text: text.into(),
            target: GoalTarget::Value,
            bound,
        }
    }
}

/// One comparison: a case of a benchmark (`B4` with 10 connections and 64-byte messages).
#[derive(Debug)]
pub struct Comparison<'a> {
    /// Benchmark id (`"B4"`).
    pub bench: String,
    /// The case within the benchmark (`"10 conns × 64 B"`).
    pub case: String,
    /// What a sample measures.
    pub metric: Metric,
    /// The contender the ratios are computed for (torsion's).
    pub subject: String,
    /// Everyone, subject included, in the order they run within a round.
    pub contenders: Vec<Contender<'a>>,
    /// Goals from the issue for this case.
    pub goals: Vec<Goal>,
}

/// Median, spread and samples of one contender.
#[derive(Debug, Clone)]
pub struct Series {
    /// The contender's name.
    pub name: String,
    /// One entry per measured round (warm-up excluded); `None` where the run failed.
    pub samples: Vec<Option<f64>>,
    /// The first failure message, if any run failed.
    pub error: Option<String>,
}

impl Series {
    /// The successful samples.
    pub fn values(&self) -> Vec<f64> {
        self.samples.iter().flatten().copied().collect()
    }

    /// Median of the successful samples.
    pub fn median(&self) -> Option<f64> {
        median(&self.values())
    }

    /// Measured rounds in which the run failed (its sample is missing).
    pub fn failures(&self) -> usize {
        self.samples.iter().filter(|s| s.is_none()).count()
    }

    /// `"failed in 2 of 5 rounds: <first error>"`, or `None` if every round succeeded.
    pub fn failure_text(&self) -> Option<String> {
        let failed = self.failures();
        (failed > 0 || self.error.is_some()).then(|| {
            let error = self.error.as_deref().unwrap_or("no sample");
            if failed == 0 {
                format!("failed in the warm-up round: {error}")
            } else {
                format!(
                    "failed in {failed} of {} rounds: {error}",
                    self.samples.len()
                )
            }
        })
    }

    /// Smallest and largest successful sample.
    pub fn min_max(&self) -> Option<(f64, f64)> {
        let v = self.values();
        let min = v.iter().copied().reduce(f64::min)?;
        let max = v.iter().copied().reduce(f64::max)?;
        Some((min, max))
    }
}

/// The per-round ratios of the subject against one contender.
#[derive(Debug, Clone)]
pub struct Ratios {
    /// The contender (or `best of a, b`).
    pub against: String,
    /// torsion / contender, one per round where both have a sample.
    pub per_round: Vec<f64>,
}

impl Ratios {
    /// Median of the per-round ratios.
    pub fn median(&self) -> Option<f64> {
        median(&self.per_round)
    }
}

/// The verdict on a goal.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The goal.
    pub goal: Goal,
    /// The measured value the bound applies to (a median ratio or a median value).
    pub measured: Option<f64>,
    /// `Some(true)` met, `Some(false)` missed, `None` not measurable (a contender failed).
    pub met: Option<bool>,
    /// Measured rounds the verdict rests on (both sides have a sample) and rounds run.
    pub rounds: (usize, usize),
    /// The contenders of this goal (subject included) that failed in some round, with
    /// [`Series::failure_text`]: shown next to the verdict, never silently dropped.
    pub failed: Vec<(String, String)>,
}

/// What a comparison produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Benchmark id.
    pub bench: String,
    /// Case.
    pub case: String,
    /// Metric.
    pub metric: Metric,
    /// The subject's name.
    pub subject: String,
    /// Every contender's samples, in run order.
    pub series: Vec<Series>,
    /// Subject / each other contender, per round.
    pub ratios: Vec<Ratios>,
    /// Goals and their verdicts.
    pub verdicts: Vec<Verdict>,
    /// Wall time the comparison took, seconds.
    pub wall_secs: f64,
}

impl Outcome {
    /// The subject's series.
    pub fn subject_series(&self) -> Option<&Series> {
        self.series.iter().find(|s| s.name == self.subject)
    }
}

/// Median of `v` (mean of the middle two for an even count).
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// A number with three significant digits and a k/M/G suffix where it helps.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let ax = x.abs();
    let digits = if ax >= 100.0 {
        0
    } else if ax >= 10.0 {
        1
    } else if ax >= 1.0 {
        2
    } else if ax >= 0.1 {
        3
    } else {
        4
    };
    format!("{x:.digits$}{suffix}")
}

/// Run `cmp`: one warm-up round, then `rounds` rounds, each contender once per round in
/// order (the order rotates by one each round so no contender always runs first).
pub fn run(cmp: Comparison<'_>, rounds: usize, warmup: usize) -> Outcome {
    let Comparison {
        bench,
        case,
        metric,
        subject,
        mut contenders,
        goals,
    } = cmp;
    let started = Instant::now();
    let n = contenders.len();
    let mut series: Vec<Series> = contenders
        .iter()
        .map(|c| Series {
            name: c.name.clone(),
            samples: Vec::new(),
            error: None,
        })
        .collect();
    eprintln!("  {bench} {case}");
    for round in 0..warmup + rounds {
        let measured = round >= warmup;
        let mut line = if measured {
            format!("    round {}:", round - warmup + 1)
        } else {
            "    warm-up:".to_owned()
        };
        for k in 0..n {
            let i = (k + round) % n;
            let c = &mut contenders[i];
            let s = &mut series[i];
            if !measured && s.error.is_some() {
                continue;
            }
            let sample = (c.run)();
            match &sample {
                Ok(v) => line.push_str(&format!(" {}={}", c.name, fmt_num(*v))),
                Err(e) => {
                    line.push_str(&format!(" {}=ERR", c.name));
                    if s.error.is_none() {
                        s.error = Some(e.clone());
                        eprintln!("    {} failed: {e}", c.name);
                    }
                }
            }
            if measured {
                s.samples.push(sample.ok());
            }
        }
        eprintln!("{line}");
    }
    let ratios = compute_ratios(&series, &subject);
    let verdicts = goals
        .into_iter()
        .map(|goal| judge(goal, &series, &subject, metric))
        .collect();
    Outcome {
        bench,
        case,
        metric,
        subject,
        series,
        ratios,
        verdicts,
        wall_secs: started.elapsed().as_secs_f64(),
    }
}

fn compute_ratios(series: &[Series], subject: &str) -> Vec<Ratios> {
    let Some(sub) = series.iter().find(|s| s.name == subject) else {
        return Vec::new();
    };
    series
        .iter()
        .filter(|s| s.name != subject)
        .map(|other| Ratios {
            against: other.name.clone(),
            per_round: sub
                .samples
                .iter()
                .zip(&other.samples)
                .filter_map(|(a, b)| match (a, b) {
                    (Some(a), Some(b)) if *b != 0.0 => Some(a / b),
                    _ => None,
                })
                .collect(),
        })
        .collect()
}

fn judge(goal: Goal, series: &[Series], subject: &str, metric: Metric) -> Verdict {
    let Some(sub) = series.iter().find(|s| s.name == subject) else {
        return Verdict {
            goal,
            measured: None,
            met: None,
            rounds: (0, 0),
            failed: vec![(subject.to_owned(), "no such contender".to_owned())],
        };
    };
    let involved: Vec<&Series> = series
        .iter()
        .filter(|s| {
            s.name == subject
                || matches!(&goal.target, GoalTarget::RatioToBest(names) if names.contains(&s.name))
        })
        .collect();
    let failed = involved
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.failure_text()?)))
        .collect();
    let total = sub.samples.len();
    let mut used = sub.values().len();
    let measured = match &goal.target {
        GoalTarget::Value => sub.median(),
        GoalTarget::RatioToBest(names) => {
            let others: Vec<&Series> = series.iter().filter(|s| names.contains(&s.name)).collect();
            if others.len() != names.len() {
                None
            } else {
                let per_round: Vec<f64> = (0..sub.samples.len())
                    .filter_map(|r| {
                        let a = sub.samples[r]?;
                        let vals: Option<Vec<f64>> = others
                            .iter()
                            .map(|o| o.samples.get(r).copied().flatten())
                            .collect();
                        let vals = vals?;
                        let best = if metric.higher_is_better {
                            vals.into_iter().reduce(f64::max)?
                        } else {
                            vals.into_iter().reduce(f64::min)?
                        };
                        (best != 0.0).then(|| a / best)
                    })
                    .collect();
                used = per_round.len();
                median(&per_round)
            }
        }
    };
    Verdict {
        met: measured.map(|m| goal.bound.holds(m)),
        goal,
        measured,
        rounds: (used, total),
        failed,
    }
}

/// A benchmark's cases that were not run, with the reason (PTY crate missing, ...).
#[derive(Debug, Clone)]
pub struct Skipped {
    /// Benchmark id.
    pub bench: String,
    /// Case.
    pub case: String,
    /// Why.
    pub reason: String,
    /// The goal that stays unjudged.
    pub goal: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn alternates_and_judges_ratio_to_best() {
        let mut k = 0.0;
        let cmp = Comparison {
            bench: "T".into(),
            case: "c".into(),
            metric: Metric::cost("ns"),
            subject: "s".into(),
            contenders: vec![
                Contender::new("s", || Ok(12.0)),
                Contender::new("a", || Ok(10.0)),
                Contender::new("b", move || {
                    k += 1.0;
                    Ok(8.0 + k)
                }),
            ],
            goals: vec![Goal::ratio_to_best(
                "≤ 1.5× best",
                &["a", "b"],
                Bound::AtMost(1.5),
            )],
        };
        let out = run(cmp, 3, 1);
        assert_eq!(out.series[0].values(), vec![12.0; 3]);
        // b: 10, 11, 12 measured (9 was the warm-up), best per round is always 10.
        assert_eq!(out.verdicts[0].measured, Some(1.2));
        assert_eq!(out.verdicts[0].met, Some(true));
    }

    #[test]
    fn an_erring_contender_is_reported_with_its_rounds() {
        let mut k = 0;
        let cmp = Comparison {
            bench: "T".into(),
            case: "c".into(),
            metric: Metric::rate("x/s"),
            subject: "s".into(),
            contenders: vec![
                Contender::new("s", || Ok(10.0)),
                Contender::new("flaky", move || {
                    k += 1;
                    if k % 2 == 0 {
                        Err("boom".to_owned())
                    } else {
                        Ok(5.0)
                    }
                }),
            ],
            goals: vec![Goal::ratio("≥ 1×", "flaky", Bound::AtLeast(1.0))],
        };
        // Warm-up k=1 ok; rounds k=2..5: fail, ok, fail, ok.
        let out = run(cmp, 4, 1);
        let flaky = &out.series[1];
        assert_eq!(flaky.failures(), 2);
        assert_eq!(
            flaky.failure_text().as_deref(),
            Some("failed in 2 of 4 rounds: boom")
        );
        let v = &out.verdicts[0];
        assert_eq!(v.rounds, (2, 4), "judged only where both had a sample");
        assert_eq!(v.failed.len(), 1);
        assert_eq!(v.failed[0].0, "flaky");
        assert_eq!(v.met, Some(true));
    }

    #[test]
    fn numbers_format_with_suffixes() {
        assert_eq!(fmt_num(165_000.0), "165k");
        assert_eq!(fmt_num(1.25), "1.25");
        assert_eq!(fmt_num(2.1e9), "2.10G");
    }
}
