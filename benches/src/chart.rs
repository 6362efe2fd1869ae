//! One SVG chart per benchmark, drawn with plotters: a panel per case, a horizontal bar
//! per contender at its median, a whisker from its smallest to its largest sample.

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use crate::harness::{Outcome, fmt_num};

/// Panel data: one bar per contender that has samples.
struct Bar {
    name: String,
    median: f64,
    min: f64,
    max: f64,
}

/// A fixed colour per kind of contender, so torsion is the same red in every chart.
fn colour(name: &str) -> RGBColor {
    let n = name.to_ascii_lowercase();
    if n.starts_with("torsion") {
        RGBColor(214, 39, 40)
    } else if n.starts_with("tokio") {
        RGBColor(31, 119, 180)
    } else if n.starts_with("twisted") {
        RGBColor(44, 160, 44)
    } else if n.starts_with("calloop") {
        RGBColor(148, 103, 189)
    } else if n.contains("wheel") {
        RGBColor(140, 86, 75)
    } else if n.starts_with("raw") || n.contains("heap") {
        RGBColor(110, 110, 110)
    } else {
        RGBColor(255, 127, 14)
    }
}

fn bars(o: &Outcome) -> Vec<Bar> {
    o.series
        .iter()
        .filter_map(|s| {
            let (min, max) = s.min_max()?;
            Some(Bar {
                name: s.name.clone(),
                median: s.median()?,
                min,
                max,
            })
        })
        .collect()
}

macro_rules! draw_panel {
    ($area:expr, $o:expr, $bars:expr, $xrange:expr, $base:expr) => {{
        let o: &Outcome = $o;
        let bars: &[Bar] = $bars;
        let n = bars.len();
        let better = if o.metric.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let names: Vec<String> = bars.iter().map(|b| b.name.clone()).collect();
        let mut chart = ChartBuilder::on($area)
            .caption(&o.case, ("sans-serif", 15))
            .margin(8)
            .margin_right(40)
            .x_label_area_size(36)
            .y_label_area_size(130)
            .build_cartesian_2d($xrange, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n.max(1))
            .y_label_style(("sans-serif", 13))
            .y_label_formatter(&|v: &SegmentValue<usize>| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(5)
            .x_label_formatter(&|v: &f64| fmt_num(*v))
            .x_desc(format!("{} ({better})", o.metric.unit))
            .axis_desc_style(("sans-serif", 12))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let mut r = Rectangle::new(
                    [
                        ($base, SegmentValue::Exact(i)),
                        (b.median, SegmentValue::Exact(i + 1)),
                    ],
                    colour(&b.name).filled(),
                );
                r.set_margin(6, 6, 0, 0);
                r
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                PathElement::new(
                    vec![
                        (b.min, SegmentValue::CenterOf(i)),
                        (b.max, SegmentValue::CenterOf(i)),
                    ],
                    BLACK.stroke_width(2),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                EmptyElement::at((b.max, SegmentValue::CenterOf(i)))
                    + Text::new(fmt_num(b.median), (4, -6), ("sans-serif", 12))
            }))
            .map_err(|e| e.to_string())?;
    }};
}

fn panel(area: &DrawingArea<SVGBackend<'_>, Shift>, o: &Outcome) -> Result<(), String> {
    let bars = bars(o);
    if bars.is_empty() {
        return Ok(());
    }
    let lo = bars.iter().map(|b| b.min).fold(f64::INFINITY, f64::min);
    let hi = bars.iter().map(|b| b.max).fold(0.0, f64::max);
    if lo > 0.0 && hi / lo > 30.0 {
        // Twisted next to a heap of nanosecond timers: a log axis keeps both readable.
        let base = 10f64.powf(lo.log10().floor());
        let top = hi * 3.0;
        draw_panel!(area, o, &bars, (base..top).log_scale(), base);
    } else {
        let top = if hi > 0.0 { hi * 1.25 } else { 1.0 };
        draw_panel!(area, o, &bars, 0f64..top, 0.0);
    }
    Ok(())
}

/// Draw `outcomes` (the cases of one benchmark) into `path`.
///
/// # Errors
///
/// The drawing or the file failed.
pub fn write(path: &Path, title: &str, outcomes: &[&Outcome]) -> Result<(), String> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let cols = outcomes.len().min(2);
    let rows = outcomes.len().div_ceil(cols);
    let width = 560 * cols as u32;
    let height = 60 + rows as u32 * (110 + 34 * max_bars(outcomes) as u32);
    let root = SVGBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((rows, cols));
    for (area, o) in areas.iter().zip(outcomes) {
        panel(area, o)?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

fn max_bars(outcomes: &[&Outcome]) -> usize {
    outcomes
        .iter()
        .map(|o| o.series.len())
        .max()
        .unwrap_or(1)
        .max(2)
}
