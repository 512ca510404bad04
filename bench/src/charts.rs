//! SVG charts: throughput and p99 latency against concurrency, one line per
//! subject.

use std::path::Path;

use plotters::prelude::*;

/// One subject's points: (connections, value).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(120, 120, 120),
    RGBColor(47, 111, 94),
    RGBColor(214, 96, 77),
    RGBColor(244, 165, 130),
    RGBColor(67, 147, 195),
    RGBColor(33, 102, 172),
    RGBColor(146, 82, 161),
    RGBColor(191, 129, 45),
];

/// Draws `series` with a logarithmic x axis (connections) and, when `log_y`,
/// a logarithmic y axis.
pub fn draw(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<(), String> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max) * 1.5;
    let x_min = all.clone().map(|p| p.0).fold(f64::MAX, f64::min).min(x_max) / 1.5;
    let y_max = all.clone().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let y_min = all
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min)
        .min(y_max)
        * 0.8;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72);
    let x_range = (x_min.max(0.5)..x_max).log_scale();
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc("concurrent connections")
                .y_desc(y_label)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| {
                    if *v >= 100.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.2}")
                    }
                })
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| e.to_string())?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| e.to_string())?;
        }};
    }
    if log_y {
        finish!(
            builder
                .build_cartesian_2d(x_range, (y_min.max(1e-6)..y_max).log_scale())
                .map_err(|e| e.to_string())?
        );
    } else {
        finish!(
            builder
                .build_cartesian_2d(x_range, 0f64..y_max)
                .map_err(|e| e.to_string())?
        );
    }
    root.present().map_err(|e| e.to_string())
}
