//! The accuracy chart (accuracy.png): prompt-level loose accuracy against τ, drawn with plotters.

use super::types::{ConditionReport, Report, ReportError};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// tab10 colours: distinguishable on white and for the common forms of colour blindness.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

const PLOT_SIZE: (u32, u32) = (800, 500);
/// Width of the legend panel right of the chart: a legend inside the chart would hide data
/// whose position is not known in advance.
const LEGEND_WIDTH: u32 = 190;
/// Characters of a legend label that fit in the panel at the legend's font size.
const LEGEND_CHARS: usize = 22;

struct Series {
    label: String,
    color: RGBColor,
    /// (τ, accuracy %, CI low %, CI high %), sorted by τ.
    points: Vec<(f64, f64, f64, f64)>,
}

struct Reference {
    label: String,
    color: RGBColor,
    y: f64,
}

fn legend_label(s: &str) -> String {
    if s.chars().count() > LEGEND_CHARS {
        let mut t: String = s.chars().take(LEGEND_CHARS - 1).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

/// Plot prompt-level loose accuracy against τ: one line per granularity of the spotlight
/// conditions (those with an `alpha`) with bootstrap error bars, and a dashed horizontal line
/// for each other condition (baseline, emphasis, static, ...). Writes an 800×500 PNG.
///
/// Text uses the DejaVu font embedded by [`crate::plot`] (no system fonts needed).
pub fn plot_accuracy(report: &Report, path: &Path) -> Result<(), ReportError> {
    let err = |e: &dyn std::fmt::Display| ReportError::Plot {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    crate::plot::ensure_font().map_err(|e| err(&e))?;

    // Group spotlight conditions by granularity, in order of first appearance.
    let mut groups: Vec<(Option<&str>, Vec<&ConditionReport>)> = Vec::new();
    let mut references = Vec::new();
    for c in &report.conditions {
        match c.alpha {
            Some(_) => match groups.iter_mut().find(|(g, _)| *g == c.granularity.as_deref()) {
                Some((_, cs)) => cs.push(c),
                None => groups.push((c.granularity.as_deref(), vec![c])),
            },
            None => references.push(c),
        }
    }
    let mut colors = PALETTE.iter().copied().cycle();
    let series: Vec<Series> = groups
        .into_iter()
        .map(|(g, mut cs)| {
            cs.sort_by(|a, b| a.alpha.unwrap_or(0.0).total_cmp(&b.alpha.unwrap_or(0.0)));
            let points = cs
                .iter()
                .map(|c| {
                    let x = f64::from(c.alpha.unwrap_or(0.0));
                    (
                        x,
                        100.0 * c.prompt_loose,
                        100.0 * c.prompt_loose_ci.low,
                        100.0 * c.prompt_loose_ci.high,
                    )
                })
                .collect();
            let label = g.map_or("SpotLight".to_string(), |g| format!("SpotLight ({g})"));
            Series {
                label,
                color: colors.next().unwrap_or(BLUE),
                points,
            }
        })
        .collect();
    // The baseline in black: it is the line every other one is read against.
    let references: Vec<Reference> = references
        .into_iter()
        .map(|c| Reference {
            label: c.name.clone(),
            color: if c.name == report.baseline {
                BLACK
            } else {
                colors.next().unwrap_or(BLACK)
            },
            y: 100.0 * c.prompt_loose,
        })
        .collect();

    // Axis ranges from everything drawn, padded so nothing sits on the frame.
    let xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let (mut x0, mut x1) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    });
    if xs.is_empty() {
        (x0, x1) = (0.0, 1.0);
    } else if x1 - x0 < 1e-9 {
        (x0, x1) = (x0 - 0.05, x1 + 0.05);
    } else {
        let pad = 0.06 * (x1 - x0);
        (x0, x1) = (x0 - pad, x1 + pad);
    }
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| [p.2, p.3]))
        .chain(references.iter().map(|r| r.y));
    let (ylo, yhi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (y0, y1) = if ylo.is_finite() {
        ((ylo - 5.0).max(0.0), (yhi + 5.0).min(100.0))
    } else {
        (0.0, 100.0)
    };

    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let body = root
        .titled("IFEval prompt-level loose accuracy vs SpotLight τ", ("sans-serif", 22))
        .map_err(|e| err(&e))?;
    let (chart_area, legend_area) = body.split_horizontally(PLOT_SIZE.0 - LEGEND_WIDTH);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("τ (target attention share of the highlighted span)")
        .y_desc("prompt-level loose accuracy (%)")
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| err(&e))?;

    for r in &references {
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, r.y), (x1, r.y)],
                8,
                5,
                r.color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
    }
    // Series at the same τ are shifted apart a little so their error bars do not overlap.
    let dodge = 0.015 * (x1 - x0);
    let cap = 0.006 * (x1 - x0);
    let k = series.len() as f64;
    for (i, s) in series.iter().enumerate() {
        let shift = (i as f64 - (k - 1.0) / 2.0) * dodge;
        let style = s.color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().map(|p| (p.0 + shift, p.1)), style))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|p| Circle::new((p.0 + shift, p.1), 4, s.color.filled())),
            )
            .map_err(|e| err(&e))?;
        let bars = s.points.iter().flat_map(|&(x, _, lo, hi)| {
            let x = x + shift;
            [
                PathElement::new(vec![(x, lo), (x, hi)], s.color.stroke_width(1)),
                PathElement::new(vec![(x - cap, lo), (x + cap, lo)], s.color.stroke_width(1)),
                PathElement::new(vec![(x - cap, hi), (x + cap, hi)], s.color.stroke_width(1)),
            ]
        });
        chart.draw_series(bars).map_err(|e| err(&e))?;
    }

    // Legend panel: solid lines with a marker for the τ sweeps, dashed for reference conditions.
    let font = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let row = 20;
    let mut y = 20;
    legend_area
        .draw(&Text::new("95% bootstrap CI bars", (8, y), font.clone()))
        .map_err(|e| err(&e))?;
    y += row + 4;
    let rows_fit = ((PLOT_SIZE.1 as i32 - 60 - y) / row).max(1) as usize;
    let total = series.len() + references.len();
    let shown = if total > rows_fit { rows_fit - 1 } else { total };
    for s in series.iter().take(shown) {
        legend_area
            .draw(&PathElement::new(vec![(8, y), (36, y)], s.color.stroke_width(2)))
            .map_err(|e| err(&e))?;
        legend_area
            .draw(&Circle::new((22, y), 4, s.color.filled()))
            .map_err(|e| err(&e))?;
        legend_area
            .draw(&Text::new(legend_label(&s.label), (44, y), font.clone()))
            .map_err(|e| err(&e))?;
        y += row;
    }
    for r in references.iter().take(shown.saturating_sub(series.len())) {
        for (a, b) in [(8, 17), (22, 31)] {
            legend_area
                .draw(&PathElement::new(vec![(a, y), (b, y)], r.color.stroke_width(2)))
                .map_err(|e| err(&e))?;
        }
        legend_area
            .draw(&Text::new(legend_label(&r.label), (44, y), font.clone()))
            .map_err(|e| err(&e))?;
        y += row;
    }
    if shown < total {
        legend_area
            .draw(&Text::new(format!("+{} more", total - shown), (8, y), font))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::report::build_report;
    use crate::eval::report::test_support::*;
    use std::collections::HashSet;

    /// Width and height from a PNG's IHDR chunk, after checking the signature.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    #[test]
    fn plot_writes_a_png_that_decodes() {
        let dir = std::env::temp_dir().join(format!("spotlight-report-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("accuracy.png");
        plot_accuracy(&sample_report(), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&bytes), PLOT_SIZE);
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), PLOT_SIZE);
        // Something was drawn in several colours (lines, text), not a blank canvas.
        let colors: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colors.len() > 20, "{} colours", colors.len());
        // Title text lands in the top band, which no series reaches.
        let dark_in_title = (0..PLOT_SIZE.0)
            .flat_map(|x| (0..30).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(dark_in_title > 100, "{dark_in_title} dark pixels in the title band");

        // Only reference conditions (no τ sweep) still gives a plot.
        let only = build_report("baseline", &[paired("baseline", 5, |i| i > 1)], 0).unwrap();
        let path2 = dir.join("only-baseline.png");
        plot_accuracy(&only, &path2).unwrap();
        assert_eq!(png_size(&std::fs::read(&path2).unwrap()), PLOT_SIZE);

        let err = plot_accuracy(&only, &dir.join("no-such-dir").join("x.png")).unwrap_err();
        assert!(matches!(err, ReportError::Plot { .. }), "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
