//! Render a `spotlight run --trace FILE.jsonl` as a PNG or SVG figure.
//!
//! The figure answers "did steering give the highlighted span its share τ of attention, and how
//! hard did it have to push?" at a glance:
//! - left / middle: the span share of the last token of every decode call (the token whose logits
//!   are sampled), averaged over heads, before and after steering — layer on the y axis (layer 0 at
//!   the bottom), step on the x axis, one shared colour scale with τ marked on its colour bar;
//! - right: per layer, the mean over steps of the equivalent logit bias b the correction applied.
//!
//! An unsteered (observe-only, α = 0) trace has nothing "after" and no bias, so only the "before"
//! heatmap is drawn.
//!
//! Text is rasterised with `ab_glyph` from the DejaVu Sans font shipped inside the `dejavu` crate,
//! so rendering needs no system fonts (a bare Debian machine or CI works without fontconfig).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use serde::Deserialize;

/// Size of the rendered figure in pixels (SVG user units for `.svg`).
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 700;

/// More layers than any real model has: a larger index is a corrupt line, and trusting it would
/// allocate a grid row for every index up to it.
const MAX_LAYERS: usize = 4096;

/// Colour of a heatmap cell with no data (layer absent from a line, or no shares recorded).
const MISSING: RGBColor = RGBColor(205, 205, 205);

/// Errors of [`plot_trace`].
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot read trace {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a trace line: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: layer index {layer} is out of range (at most {max} layers)", max = MAX_LAYERS)]
    LayerOutOfRange { path: PathBuf, line: usize, layer: usize },
    #[error("trace {0} has no lines (was it written by `spotlight run --trace`?)")]
    Empty(PathBuf),
    #[error("cannot tell the image format of {0}: use a .png or .svg file name")]
    UnsupportedFormat(PathBuf),
    #[error("the embedded DejaVu Sans font could not be loaded")]
    Font,
    #[error("drawing {path} failed: {message}")]
    Draw { path: PathBuf, message: String },
}

/// What [`plot_trace`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSummary {
    /// Figure size in pixels.
    pub width: u32,
    pub height: u32,
    /// Trace lines (decode calls, the prefill included) = heatmap columns.
    pub steps: usize,
    /// Layers = heatmap rows.
    pub layers: usize,
    /// Whether the trace was steered (α > 0), i.e. whether the "after" and bias panels were drawn.
    pub steered: bool,
}

// ---------------------------------------------------------------------------------------------
// Trace file model. Our own structs rather than the writer's (`spotlight::trace`): those are
// Serialize-only with `&'static str` fields, and the reader must be lenient — traces from older
// or newer builds may lack fields, and serde_json writes a NaN share as `null`.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct TraceLine {
    #[serde(default)]
    step: Option<usize>,
    #[serde(default)]
    alpha: Option<f32>,
    #[serde(default)]
    granularity: Option<String>,
    #[serde(default)]
    layers: Option<Vec<LayerLine>>,
}

impl TraceLine {
    fn layers(&self) -> &[LayerLine] {
        self.layers.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
struct LayerLine {
    layer: usize,
    #[serde(default)]
    bias: Option<Stats>,
    #[serde(default)]
    last_token_before: Option<Vec<Option<f32>>>,
    #[serde(default)]
    last_token_after: Option<Vec<Option<f32>>>,
}

#[derive(Debug, Deserialize)]
struct Stats {
    #[serde(default)]
    mean: Option<f32>,
}

/// The trace reduced to what the figure shows.
#[derive(Debug)]
struct Grid {
    /// Step number of each column (from the file; the line index where a line has none).
    steps: Vec<usize>,
    n_layers: usize,
    /// `[step][layer]` mean-over-heads span share of the last token; `None` = no data.
    before: Vec<Vec<Option<f64>>>,
    after: Vec<Vec<Option<f64>>>,
    /// Per layer: mean over steps of `bias.mean` (a step without bias counts as 0).
    bias: Vec<f64>,
    alpha: f64,
    granularity: String,
}

fn read_trace(path: &Path) -> Result<Vec<TraceLine>, PlotError> {
    let io_err = |source| PlotError::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut lines = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io_err)?;
        // A trailing newline or a hand-edited gap is not an error worth failing a plot over.
        if line.trim().is_empty() {
            continue;
        }
        let parsed: TraceLine = serde_json::from_str(&line).map_err(|source| PlotError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        if let Some(l) = parsed.layers().iter().find(|l| l.layer >= MAX_LAYERS) {
            return Err(PlotError::LayerOutOfRange {
                path: path.to_path_buf(),
                line: i + 1,
                layer: l.layer,
            });
        }
        lines.push(parsed);
    }
    if lines.is_empty() {
        return Err(PlotError::Empty(path.to_path_buf()));
    }
    Ok(lines)
}

/// Mean of the finite entries; `None` when there are none (so a gap shows as "no data", not 0).
fn mean_finite(values: &[Option<f32>]) -> Option<f64> {
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect();
    (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
}

fn build_grid(lines: &[TraceLine]) -> Grid {
    // Layers are indexed by their number, not their position in the line, so a line that skips
    // a layer leaves a gap instead of shifting every row above it.
    let n_layers = lines
        .iter()
        .flat_map(|l| l.layers().iter().map(|x| x.layer + 1))
        .max()
        .unwrap_or(0);
    let mut before = vec![vec![None; n_layers]; lines.len()];
    let mut after = vec![vec![None; n_layers]; lines.len()];
    let mut bias_sum = vec![0.0; n_layers];
    for (s, line) in lines.iter().enumerate() {
        for l in line.layers() {
            before[s][l.layer] = l.last_token_before.as_deref().and_then(mean_finite);
            after[s][l.layer] = l.last_token_after.as_deref().and_then(mean_finite);
            bias_sum[l.layer] += l
                .bias
                .as_ref()
                .and_then(|b| b.mean)
                .filter(|m| m.is_finite())
                .map_or(0.0, f64::from);
        }
    }
    let bias = bias_sum.iter().map(|b| b / lines.len() as f64).collect();
    Grid {
        steps: lines.iter().enumerate().map(|(i, l)| l.step.unwrap_or(i)).collect(),
        n_layers,
        before,
        after,
        bias,
        // τ is fixed for a run; the max guards against a line that lost its `alpha`.
        alpha: lines
            .iter()
            .filter_map(|l| l.alpha)
            .filter(|a| a.is_finite())
            .fold(0.0f32, f32::max)
            .into(),
        granularity: lines
            .iter()
            .find_map(|l| l.granularity.clone())
            .unwrap_or_else(|| "?".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Colour map
// ---------------------------------------------------------------------------------------------

/// Samples of matplotlib's viridis at 0, 1/8, …, 1. Viridis because it is perceptually uniform
/// and stays readable in greyscale and for colour-blind readers; linear interpolation between
/// nine stops is indistinguishable from the full table at heatmap sizes.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Viridis colour of `t` in [0, 1] (clamped).
fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

/// Registers the embedded font once per process; plotters' ab_glyph backend looks fonts up by
/// family name in a global table, and "sans-serif" is the family every default style asks for.
pub(crate) fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ok.then_some(()).ok_or(PlotError::Font)
}

/// Render the trace at `trace` into `out`; the format follows `out`'s extension (`.png`/`.svg`).
pub fn plot_trace(trace: &Path, out: &Path) -> Result<PlotSummary, PlotError> {
    let ext = out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    // Check the format before parsing so a typo fails fast and without touching any file.
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(PlotError::UnsupportedFormat(out.to_path_buf()));
    }
    let grid = build_grid(&read_trace(trace)?);
    ensure_font()?;
    let draw_err = |message: String| PlotError::Draw {
        path: out.to_path_buf(),
        message,
    };
    if ext.as_deref() == Some("png") {
        let root = BitMapBackend::new(out, (WIDTH, HEIGHT)).into_drawing_area();
        draw_figure(&root, &grid).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(e.to_string()))?;
    } else {
        let root = SVGBackend::new(out, (WIDTH, HEIGHT)).into_drawing_area();
        draw_figure(&root, &grid).map_err(draw_err)?;
        root.present().map_err(|e| draw_err(e.to_string()))?;
    }
    Ok(PlotSummary {
        width: WIDTH,
        height: HEIGHT,
        steps: grid.steps.len(),
        layers: grid.n_layers,
        steered: grid.alpha > 0.0,
    })
}

/// Plotters' errors are generic over the backend; the figure only needs their message.
type DrawResult = Result<(), String>;

fn msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

fn title(grid: &Grid) -> String {
    let n = grid.steps.len();
    let steps = format!(
        "{n} step{} (prefill + {} decode)",
        if n == 1 { "" } else { "s" },
        n.saturating_sub(1)
    );
    if grid.alpha > 0.0 {
        format!(
            "SpotLight trace: {} granularity, τ = {}, {steps}",
            grid.granularity,
            fmt_share(grid.alpha)
        )
    } else {
        format!("SpotLight trace: unsteered (observe only), {steps}")
    }
}

/// Shortest decimal for a share such as τ: "0.1", not "0.10000000149" (τ is stored as f32).
fn fmt_share(v: f64) -> String {
    let s = format!("{:.3}", v);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn draw_figure<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, grid: &Grid) -> DrawResult {
    root.fill(&WHITE).map_err(msg)?;
    let body = root
        // `FontDesc::style` keeps the already-resolved glyph data, so bold must be asked for here.
        .titled(
            &title(grid),
            FontDesc::new(FontFamily::SansSerif, 24.0, FontStyle::Bold),
        )
        .map_err(msg)?;
    let steered = grid.alpha > 0.0;

    // One colour scale for both heatmaps so "after" is comparable with "before"; τ is included so
    // its mark is always on the bar even when every share stays below it.
    let vmax = grid
        .before
        .iter()
        .chain(grid.after.iter())
        .flatten()
        .flatten()
        .copied()
        .fold(if steered { grid.alpha } else { 0.0 }, f64::max);
    let vmax = if vmax > 0.0 { vmax } else { 1.0 };
    // Grey cells need a legend entry, but only when there are any.
    let shown = if steered { 2 } else { 1 };
    let has_missing = [&grid.before, &grid.after][..shown]
        .iter()
        .any(|c| c.iter().flatten().any(Option::is_none));

    if steered {
        // before | after | colour bar | bias
        let [a, b, c, d] = split4(&body, [400, 330, 160]);
        heatmap(&a, grid, &grid.before, "span share, before steering", vmax, true)?;
        heatmap(&b, grid, &grid.after, "span share, after steering", vmax, false)?;
        colour_bar(&c, vmax, Some(grid.alpha), has_missing)?;
        bias_bars(&d, grid)?;
    } else {
        let (a, c) = body.split_horizontally(WIDTH as i32 - 170);
        heatmap(&a, grid, &grid.before, "span share (unsteered)", vmax, true)?;
        colour_bar(&c, vmax, None, has_missing)?;
    }
    Ok(())
}

/// Split an area into four columns: three of the given pixel widths and the rest.
fn split4<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, widths: [i32; 3]) -> [DrawingArea<DB, Shift>; 4] {
    let (a, rest) = area.split_horizontally(widths[0]);
    let (b, rest) = rest.split_horizontally(widths[1]);
    let (c, d) = rest.split_horizontally(widths[2]);
    [a, b, c, d]
}

/// Tick label for an integer axis drawn on f64 coordinates: plotters may pick fractional key
/// points when zoomed in, and "2.5" is not a layer or a step.
fn int_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

/// Number of tick labels for `n` integer positions: every one when few, about ten otherwise.
fn n_labels(n: usize) -> usize {
    n.clamp(1, 10)
}

fn heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    grid: &Grid,
    cells: &[Vec<Option<f64>>],
    caption: &str,
    vmax: f64,
    layer_axis: bool,
) -> DrawResult {
    // Cells are centred on integer coordinates so integer ticks sit in the middle of a cell.
    let n_steps = grid.steps.len();
    let x_range = -0.5..n_steps as f64 - 0.5;
    let y_range = -0.5..grid.n_layers.max(1) as f64 - 0.5;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(48)
        .y_label_area_size(if layer_axis { 62 } else { 34 })
        .build_cartesian_2d(x_range, y_range)
        .map_err(msg)?;
    // Step numbers come from the file, so label the columns with them rather than the index.
    let step_label = |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n_steps {
            grid.steps[i as usize].to_string()
        } else {
            String::new()
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_mesh()
        .x_labels(n_labels(n_steps))
        .y_labels(n_labels(grid.n_layers))
        .x_label_formatter(&step_label)
        .y_label_formatter(&int_label)
        .x_desc("step (0 = prompt prefill)")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15));
    if layer_axis {
        mesh.y_desc("layer");
    }
    mesh.draw().map_err(msg)?;

    chart
        .draw_series(cells.iter().enumerate().flat_map(|(s, col)| {
            col.iter().enumerate().map(move |(l, v)| {
                let colour = v.map_or(MISSING, |v| viridis(v / vmax));
                let (x, y) = (s as f64, l as f64);
                Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], colour.filled())
            })
        }))
        .map_err(msg)?;
    Ok(())
}

fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    vmax: f64,
    tau: Option<f64>,
    has_missing: bool,
) -> DrawResult {
    // x in [0, 1]: the gradient fills [0, 0.3]; the τ label sits to its right, inside the plot
    // area, because the left side carries the tick labels.
    let mut chart = ChartBuilder::on(area)
        .caption(" ", ("sans-serif", 18)) // keeps the bar aligned with the heatmaps' plot areas
        .margin(8)
        .x_label_area_size(48)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, 0.0..vmax)
        .map_err(msg)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(8)
        .y_label_formatter(&|v| fmt_share(*v))
        .y_desc("span share of the last token's attention (mean over heads)")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 13))
        .draw()
        .map_err(msg)?;
    let bands = 200;
    chart
        .draw_series((0..bands).map(|i| {
            let (lo, hi) = (i as f64 / bands as f64, (i + 1) as f64 / bands as f64);
            Rectangle::new([(0.0, lo * vmax), (0.3, hi * vmax)], viridis((lo + hi) / 2.0).filled())
        }))
        .map_err(msg)?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (0.3, vmax)],
            BLACK.stroke_width(1),
        )))
        .map_err(msg)?;
    if let Some(tau) = tau {
        // Red stands out against every viridis colour; the line overhangs the bar so it reads as a
        // marker, not as a colour band.
        let red = RGBColor(220, 20, 60);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, tau), (0.38, tau)],
                red.stroke_width(3),
            )))
            .map_err(msg)?;
        let style = ("sans-serif", 15)
            .into_font()
            .color(&red)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(std::iter::once(Text::new(
                format!("τ = {}", fmt_share(tau)),
                (0.42, tau),
                style,
            )))
            .map_err(msg)?;
    }
    if has_missing {
        // Below the bar, in the (otherwise empty) x label strip; the chart's plotting area clips,
        // so draw on the whole column in pixels relative to it.
        let (bx, by) = chart.backend_coord(&(0.0, 0.0));
        let (ox, oy) = area.get_base_pixel();
        let (x, y) = (bx - ox, by - oy + 16);
        area.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], MISSING.filled()))
            .map_err(msg)?;
        let style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new("no data", (x + 20, y + 7), style)).map_err(msg)?;
    }
    Ok(())
}

fn bias_bars<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, grid: &Grid) -> DrawResult {
    let bmax = grid.bias.iter().copied().fold(0.0, f64::max);
    let bmax = if bmax > 0.0 { bmax * 1.08 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption("mean equivalent bias b per layer", ("sans-serif", 18))
        .margin(8)
        .margin_right(20)
        .x_label_area_size(48)
        .y_label_area_size(44)
        .build_cartesian_2d(0.0..bmax, -0.5..grid.n_layers.max(1) as f64 - 0.5)
        .map_err(msg)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_labels(6)
        .y_labels(n_labels(grid.n_layers))
        .y_label_formatter(&int_label)
        .x_label_formatter(&|v| fmt_share(*v))
        .x_desc("b = ln(τ(1−p)/(p(1−τ))), mean over steps")
        .y_desc("layer")
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(msg)?;
    let bar = RGBColor(59, 81, 139);
    chart
        .draw_series(grid.bias.iter().enumerate().filter(|(_, b)| **b > 0.0).map(|(l, &b)| {
            let y = l as f64;
            Rectangle::new([(0.0, y - 0.38), (b, y + 0.38)], bar.filled())
        }))
        .map_err(msg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real traces from `spotlight run --trace` when the checkout has them; otherwise the tests
    /// fall back to synthetic traces in the same format, so they never depend on a model.
    const SAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    const STEPS: usize = 40;
    const LAYERS: usize = 30;
    const HEADS: usize = 9;

    /// A fresh scratch directory per test (std only: the crate has no tempfile dev-dependency).
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spotlight-plot-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Width and height from a PNG's IHDR chunk.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    /// Minimal well-formedness check: every opened element is closed in order.
    fn assert_balanced_xml(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name = |t: &str| t.split_whitespace().next().unwrap_or("").to_string();
            if let Some(closing) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name(closing).as_str()),
                    "mismatched </{closing}>"
                );
            } else {
                stack.push(name(tag));
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    }

    /// Writes `lines` as a trace file and returns its path.
    fn write_trace(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// `tests/data/trace-{granularity}.jsonl` if present, else a synthetic steered trace (τ = 0.1,
    /// 40 steps × 30 layers × 9 heads) written the way `spotlight::trace::summarize` writes one.
    fn sample_trace(dir: &Path, granularity: &str) -> PathBuf {
        let real = Path::new(SAMPLES_DIR).join(format!("trace-{granularity}.jsonl"));
        if real.exists() {
            return real;
        }
        let lines: Vec<String> = (0..STEPS)
            .map(|step| synthetic_line(step, 0.1, granularity).to_string())
            .collect();
        write_trace(dir, &format!("synthetic-{granularity}.jsonl"), &lines)
    }

    /// One synthetic trace line; shares come from a fixed LCG so the figure is reproducible.
    fn synthetic_line(step: usize, alpha: f32, granularity: &str) -> serde_json::Value {
        let mut seed = (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 40) as f32 / (1u64 << 24) as f32
        };
        let layers: Vec<serde_json::Value> = (0..LAYERS)
            .map(|layer| {
                let before: Vec<f32> = (0..HEADS).map(|_| 0.2 * next() / (1.0 + layer as f32 / 4.0)).collect();
                let after: Vec<f32> = before.iter().map(|&p| p.max(alpha)).collect();
                let biases: Vec<f32> = before
                    .iter()
                    .filter(|&&p| p < alpha)
                    .map(|&p| (alpha * (1.0 - p) / (p.max(1e-30) * (1.0 - alpha))).ln())
                    .collect();
                let stats = |v: &[f32]| {
                    (!v.is_empty()).then(|| {
                        serde_json::json!({
                            "mean": v.iter().sum::<f32>() / v.len() as f32,
                            "min": v.iter().copied().fold(f32::INFINITY, f32::min),
                            "max": v.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                        })
                    })
                };
                let steered = alpha > 0.0;
                serde_json::json!({
                    "layer": layer,
                    "units": HEADS,
                    "steered": biases.len(),
                    "before": stats(&before),
                    "after": if steered { stats(&after) } else { None },
                    "bias": if steered { stats(&biases) } else { None },
                    "last_token_before": before,
                    "last_token_after": steered.then_some(after),
                })
            })
            .collect();
        serde_json::json!({
            "step": step,
            "phase": if step == 0 { "prefill" } else { "decode" },
            "n_tokens": if step == 0 { 22 } else { 1 },
            "first_pos": if step == 0 { 0 } else { 21 + step },
            "alpha": alpha,
            "granularity": granularity,
            "layers": layers,
        })
    }

    /// A steered sample turned into an observe-only trace, the way `spotlight run` writes one.
    fn unsteered_copy(dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(sample_trace(dir, "layer")).unwrap();
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["alpha"] = 0.0.into();
                for layer in v["layers"].as_array_mut().unwrap() {
                    layer["after"] = serde_json::Value::Null;
                    layer["bias"] = serde_json::Value::Null;
                    layer["last_token_after"] = serde_json::Value::Null;
                }
                v.to_string()
            })
            .collect();
        write_trace(dir, "unsteered.jsonl", &lines)
    }

    #[test]
    fn samples_render_to_png_and_svg() {
        let dir = scratch("samples");
        for gran in ["layer", "head"] {
            let sample = sample_trace(&dir, gran);
            let png = dir.join(format!("{gran}.png"));
            let s = plot_trace(&sample, &png).unwrap();
            assert_eq!((s.width, s.height), (WIDTH, HEIGHT));
            assert_eq!((s.steps, s.layers, s.steered), (STEPS, LAYERS, true));
            assert_eq!(png_size(&png), (WIDTH, HEIGHT));

            let svg_path = dir.join(format!("{gran}.SVG")); // extension match is case-insensitive
            let s = plot_trace(&sample, &svg_path).unwrap();
            assert_eq!((s.steps, s.layers), (STEPS, LAYERS));
            let svg = std::fs::read_to_string(&svg_path).unwrap();
            assert!(svg.contains("<svg"));
            assert!(
                svg.contains(&format!("SpotLight trace: {gran} granularity, τ = 0.1, 40 steps")),
                "title"
            );
            assert!(svg.contains("span share, after steering"));
            assert!(svg.contains("τ = 0.1"));
            assert_balanced_xml(&svg);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unsteered_trace_draws_only_before() {
        let dir = scratch("unsteered");
        let trace = unsteered_copy(&dir);
        let svg_path = dir.join("u.svg");
        let s = plot_trace(&trace, &svg_path).unwrap();
        assert!(!s.steered);
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.contains("unsteered"));
        assert!(!svg.contains("after steering"));
        assert!(!svg.contains("τ = "));
        let png = dir.join("u.png");
        plot_trace(&trace, &png).unwrap();
        assert_eq!(png_size(&png), (WIDTH, HEIGHT));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_extension_is_rejected_before_reading() {
        // The trace does not exist: the format error must come first.
        for out in ["fig.jpg", "fig", "fig.png.txt"] {
            let err = plot_trace(Path::new("/nonexistent/trace.jsonl"), Path::new(out)).unwrap_err();
            assert!(matches!(err, PlotError::UnsupportedFormat(_)), "{out}: {err}");
            assert!(err.to_string().contains(".png or .svg"));
        }
    }

    #[test]
    fn malformed_line_reports_its_number() {
        let dir = scratch("malformed");
        let first = synthetic_line(0, 0.1, "layer").to_string();
        let trace = write_trace(
            &dir,
            "bad.jsonl",
            &[first, String::new(), "{\"step\": 2, \"layers\": [".into()],
        );
        let err = plot_trace(&trace, &dir.join("x.png")).unwrap_err();
        assert!(matches!(err, PlotError::Parse { line: 3, .. }), "{err}");
        assert!(err.to_string().contains("bad.jsonl:3"), "{err}");
        assert!(!dir.join("x.png").exists());

        let huge = write_trace(&dir, "huge.jsonl", &[r#"{"layers":[{"layer":123456789}]}"#.into()]);
        let err = plot_trace(&huge, &dir.join("x.png")).unwrap_err();
        assert!(matches!(err, PlotError::LayerOutOfRange { line: 1, .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_file_and_empty_trace_are_errors() {
        let dir = scratch("empty");
        let err = plot_trace(&dir.join("nope.jsonl"), &dir.join("x.svg")).unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }), "{err}");
        let empty = write_trace(&dir, "empty.jsonl", &[]);
        assert!(matches!(
            plot_trace(&empty, &dir.join("x.svg")),
            Err(PlotError::Empty(_))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn lenient_about_missing_and_null_fields() {
        let lines = vec![
            // No step / alpha / granularity, a NaN share written as null, a missing bias.
            r#"{"layers":null}"#.to_string(),
            r#"{"layers":[{"layer":0,"last_token_before":[0.2,null,0.4]},{"layer":2,"last_token_before":null}]}"#
                .to_string(),
            r#"{"step":7,"alpha":0.3,"layers":[{"layer":1,"bias":{"mean":1.5},"last_token_before":[0.1],"last_token_after":[0.3]}]}"#
                .to_string(),
        ];
        let grid = build_grid(
            &lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>(),
        );
        assert_eq!(grid.steps, vec![0, 1, 7]);
        assert_eq!(grid.n_layers, 3);
        assert_eq!(grid.before[0], vec![None; 3]);
        assert!((grid.before[1][0].unwrap() - 0.3).abs() < 1e-6);
        assert_eq!(grid.before[1][1], None);
        assert_eq!(grid.before[1][2], None);
        assert!((grid.after[2][1].unwrap() - 0.3).abs() < 1e-6);
        assert!((grid.bias[1] - 0.5).abs() < 1e-6, "mean over steps, 0 where missing");
        assert!((grid.alpha - 0.3).abs() < 1e-6);

        let dir = scratch("lenient");
        let trace = write_trace(&dir, "t.jsonl", &lines);
        let s = plot_trace(&trace, &dir.join("t.png")).unwrap();
        assert_eq!((s.steps, s.layers, s.steered), (3, 3, true));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn viridis_endpoints_and_clamping() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(-3.0), viridis(0.0));
        assert_eq!(viridis(7.0), viridis(1.0));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
        assert_eq!(fmt_share(0.100000001), "0.1");
        assert_eq!(fmt_share(0.25), "0.25");
    }
}
