//! SVG plots of a report: throughput over time and latency percentiles.

use crate::stats::Report;
use plotters::prelude::*;

pub fn draw(report: &Report, path: &std::path::Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(380);
    let title = format!("{} — {} ({})", report.scenario, report.label, report.target);

    // Throughput over time.
    let longest = report.timeline.values().map(|v| v.len()).max().unwrap_or(1).max(1);
    let peak = report.timeline.values().flat_map(|v| v.iter().copied()).max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{title}: per second"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(70)
        .build_cartesian_2d(0usize..longest, 0u64..peak + peak / 10 + 1)?;
    chart.configure_mesh().x_desc("seconds").y_desc("count / s").draw()?;
    for (i, (name, series)) in report.timeline.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(series.iter().enumerate().map(|(x, y)| (x, *y)), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;

    // Latency percentiles.
    let labels = ["p50", "p90", "p99", "p99.9", "max"];
    let worst = report
        .latency
        .values()
        .map(|l| l.max_ms)
        .fold(1.0f64, f64::max);
    let mut chart = ChartBuilder::on(&bottom)
        .caption("latency percentiles (ms, log scale)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(70)
        .build_cartesian_2d(0usize..labels.len(), (0.01f64..worst * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(labels.len())
        .x_label_formatter(&|x| labels.get(*x).copied().unwrap_or("").to_owned())
        .y_desc("ms")
        .draw()?;
    for (i, (name, l)) in report.latency.iter().enumerate() {
        if l.count == 0 {
            continue;
        }
        let color = Palette99::pick(i + 3).to_rgba();
        let pts = [l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms];
        chart
            .draw_series(LineSeries::new(pts.iter().enumerate().map(|(x, y)| (x, y.max(0.01))), color.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(pts.iter().enumerate().map(|(x, y)| Circle::new((x, y.max(0.01)), 3, color.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}
