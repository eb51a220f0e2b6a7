//! Figures as SVG (written by hand: a few shapes need no plotting crate) and
//! as PNG at twice their size (rasterised by resvg, text in the system's
//! sans-serif font).

use std::fmt::Write as _;

use anyhow::{Context, Result};

use super::plot::{self, PALETTE};
use crate::session::ExperimentResult;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 480.0;
const MARGIN: f64 = 50.0;

/// Font families tried, in order, for the figures' `sans-serif` text.
const SANS_SERIF: [&str; 6] = [
    "Arial",
    "Helvetica",
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "FreeSans",
];

/// How much larger than the SVG's own size the PNG is drawn (for print).
pub const PNG_SCALE: f32 = 2.0;

/// Rasterises `svg` at `scale` times its size on a white background and
/// encodes it as PNG. Text is set in an installed sans-serif font (Arial,
/// Helvetica, DejaVu Sans, ... whichever is found first, else any); with no
/// fonts at all, the figure is drawn without its labels.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // The figures ask for `sans-serif`; point it at an installed family
    // (fontdb's default, Arial, is often missing on Linux).
    let installed = |name: &str| {
        fonts
            .faces()
            .any(|face| face.families.iter().any(|(family, _)| family == name))
    };
    let sans = SANS_SERIF
        .iter()
        .find(|name| installed(name))
        .map(|name| name.to_string())
        .or_else(|| {
            fonts
                .faces()
                .find_map(|face| face.families.first().map(|(family, _)| family.clone()))
        });
    if let Some(family) = sans {
        fonts.set_sans_serif_family(family);
    }
    let tree = usvg::Tree::from_str(svg, &options).context("cannot read the figure's SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .context("the figure has no area to draw")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .context("the figure has no area to draw")?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("cannot encode the PNG")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn rgb(index: usize) -> String {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// An SVG document with a white background and axes frame.
struct Svg {
    body: String,
}

impl Svg {
    fn new(title: &str) -> Svg {
        let mut body = String::new();
        let _ = write!(
            body,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>
"#,
            WIDTH / 2.0,
            escape(title)
        );
        Svg { body }
    }

    fn axes(&mut self, x: [f64; 2], y: [f64; 2], x_title: &str, y_title: &str) {
        self.axes_in(PlotFrame::FULL, x, y, x_title, y_title);
    }

    /// A frame with its bounds at the corners and axis titles, at `frame`.
    fn axes_in(
        &mut self,
        frame: PlotFrame,
        x: [f64; 2],
        y: [f64; 2],
        x_title: &str,
        y_title: &str,
    ) {
        let PlotFrame {
            left,
            top,
            right,
            bottom,
        } = frame;
        let _ = write!(
            self.body,
            r#"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="black"/>
<text x="{left}" y="{}" >{:.3}</text><text x="{right}" y="{}" text-anchor="end">{:.3}</text>
<text x="{}" y="{}" text-anchor="end">{:.3}</text><text x="{}" y="{top}" text-anchor="end" dy="10">{:.3}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>
"#,
            right - left,
            bottom - top,
            bottom + 16.0,
            x[0],
            bottom + 16.0,
            x[1],
            left - 4.0,
            bottom,
            y[0],
            left - 4.0,
            y[1],
            (left + right) / 2.0,
            bottom + 34.0,
            escape(x_title),
            (top + bottom) / 2.0,
            escape(y_title)
        );
    }

    fn legend(&mut self, entries: &[(String, usize)]) {
        self.legend_at(MARGIN, entries);
    }

    /// The legend beside the plot, its first entry at height `top`.
    fn legend_at(&mut self, top: f64, entries: &[(String, usize)]) {
        for (i, (label, color)) in entries.iter().enumerate() {
            let y = top + 10.0 + 18.0 * i as f64;
            let _ = writeln!(
                self.body,
                r#"<circle cx="{}" cy="{y}" r="5" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                WIDTH - 145.0,
                rgb(*color),
                WIDTH - 135.0,
                y + 4.0,
                escape(label)
            );
        }
    }

    fn finish(mut self) -> String {
        self.body.push_str("</svg>\n");
        self.body
    }
}

/// A plot's frame in the figure's coordinates (pixels, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
struct PlotFrame {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl PlotFrame {
    /// The one frame of a single-plot figure (the legend to its right).
    const FULL: PlotFrame = PlotFrame {
        left: MARGIN,
        top: MARGIN,
        right: WIDTH - 160.0,
        bottom: HEIGHT - MARGIN,
    };

    /// The full frame cut into `count` frames stacked top to bottom, with
    /// room between them for the upper frame's axis labels.
    fn stacked(count: usize) -> Vec<PlotFrame> {
        const GAP: f64 = 50.0;
        let full = PlotFrame::FULL;
        let count = count.max(1);
        let height = (full.bottom - full.top - GAP * (count - 1) as f64) / count as f64;
        (0..count)
            .map(|i| {
                let top = full.top + i as f64 * (height + GAP);
                PlotFrame {
                    top,
                    bottom: top + height,
                    ..full
                }
            })
            .collect()
    }
}

/// Maps data coordinates into the plot frame.
fn projector(x: [f64; 2], y: [f64; 2]) -> impl Fn(f64, f64) -> (f64, f64) {
    projector_in(PlotFrame::FULL, x, y)
}

/// Maps data coordinates into `frame`.
fn projector_in(frame: PlotFrame, x: [f64; 2], y: [f64; 2]) -> impl Fn(f64, f64) -> (f64, f64) {
    move |a, b| {
        let px = frame.left + (a - x[0]) / (x[1] - x[0]).max(1e-12) * (frame.right - frame.left);
        let py = frame.bottom - (b - y[0]) / (y[1] - y[0]).max(1e-12) * (frame.bottom - frame.top);
        (px, py)
    }
}

/// The latent scatter as SVG, one colour per label, with a legend.
pub fn scatter_svg(scatter: &plot::Scatter) -> String {
    let mut svg = Svg::new(&format!("latent {}", scatter.name));
    svg.axes(
        scatter.x_bounds,
        scatter.y_bounds,
        &scatter.axes.0,
        &scatter.axes.1,
    );
    let project = projector(scatter.x_bounds, scatter.y_bounds);
    for group in &scatter.groups {
        let _ = writeln!(
            svg.body,
            r#"<g fill="{}" fill-opacity="0.8">"#,
            rgb(group.color)
        );
        for &(a, b) in &group.points {
            let (px, py) = project(a, b);
            if (MARGIN..=WIDTH - 160.0).contains(&px) && (MARGIN..=HEIGHT - MARGIN).contains(&py) {
                let _ = writeln!(svg.body, r#"<circle cx="{px:.1}" cy="{py:.1}" r="2.5"/>"#);
            }
        }
        svg.body.push_str("</g>\n");
    }
    let entries: Vec<_> = scatter
        .groups
        .iter()
        .map(|g| (g.label.clone(), g.color))
        .collect();
    svg.legend(&entries);
    svg.finish()
}

/// Curves as SVG polylines with a legend: losses and scores (R², accuracy,
/// ARI, AMI) on separate panels stacked over one shared step axis, each with
/// its own value axis (see [`plot::curve_panels`]), as the workbench draws
/// them.
pub fn curves_svg(title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> String {
    let x = plot::bounds(curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)));
    let panels = plot::curve_panels(curves.to_vec());
    let mut svg = Svg::new(title);
    let mut colour = 0;
    for ((panel, curves), frame) in panels.iter().zip(PlotFrame::stacked(panels.len())) {
        let y = plot::bounds(curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)));
        svg.axes_in(frame, x, y, "step", panel);
        let project = projector_in(frame, x, y);
        let mut entries = Vec::new();
        for (name, points) in curves {
            let path: Vec<String> = points
                .iter()
                .map(|&(a, b)| {
                    let (px, py) = project(a, b);
                    format!("{px:.1},{py:.1}")
                })
                .collect();
            let _ = writeln!(
                svg.body,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                rgb(colour),
                path.join(" ")
            );
            entries.push((name.clone(), colour));
            colour += 1;
        }
        svg.legend_at(frame.top, &entries);
    }
    svg.finish()
}

/// A metric against a swept parameter: one dot per run (log10 of the
/// parameter on the x axis when the sweep is log-spread).
pub fn sweep_svg(base: &str, plot: &super::compare::SweepPlot) -> String {
    let points = plot.plotted();
    let x = plot::bounds(points.iter().map(|p| p.0));
    let y = plot::bounds(points.iter().map(|p| p.1));
    let mut svg = Svg::new(&format!("{base}: {} vs {}", plot.metric, plot.parameter));
    let x_title = if plot.log_x {
        format!("log10 {}", plot.parameter)
    } else {
        plot.parameter.clone()
    };
    svg.axes(x, y, &x_title, &plot.metric);
    let project = projector(x, y);
    let _ = writeln!(svg.body, r#"<g fill="{}">"#, rgb(0));
    for &(a, b) in &points {
        let (px, py) = project(a, b);
        let _ = writeln!(svg.body, r#"<circle cx="{px:.1}" cy="{py:.1}" r="4"/>"#);
    }
    svg.body.push_str("</g>\n");
    svg.finish()
}

/// The gene ranking as horizontal bars.
pub fn genes_svg(result: &ExperimentResult) -> String {
    let genes: Vec<_> = result.genes.iter().take(40).collect();
    let max = genes
        .iter()
        .map(|g| g.score)
        .fold(0.0_f64, f64::max)
        .max(1e-12);
    let mut svg = Svg::new("selected genes (first-layer row norm)");
    let row = (HEIGHT - 2.0 * MARGIN) / genes.len().max(1) as f64;
    for (i, gene) in genes.iter().enumerate() {
        let y = MARGIN + row * i as f64;
        let width = gene.score / max * (WIDTH - 260.0);
        let _ = writeln!(
            svg.body,
            r#"<text x="115" y="{:.1}" text-anchor="end" font-size="{:.0}">{}</text><rect x="120" y="{y:.1}" width="{width:.1}" height="{:.1}" fill="{}"/>"#,
            y + row * 0.8,
            (row * 0.9).clamp(6.0, 12.0),
            escape(&gene.name),
            row * 0.85,
            rgb(1)
        );
    }
    svg.finish()
}

/// A confusion matrix as a heat grid with counts.
pub fn confusion_svg(confusion: &crate::analysis::confusion::Confusion) -> String {
    let mut svg = Svg::new(&confusion.name);
    let cols = confusion.predicted.len().max(1) as f64;
    let rows = confusion.truth.len().max(1) as f64;
    let cell_w = (WIDTH - 2.0 * MARGIN - 80.0) / cols;
    let cell_h = (HEIGHT - 2.0 * MARGIN - 20.0) / rows;
    for (c, name) in confusion.predicted.iter().enumerate() {
        let _ = writeln!(
            svg.body,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            MARGIN + 80.0 + cell_w * (c as f64 + 0.5),
            MARGIN + 10.0,
            escape(name)
        );
    }
    for (r, (truth, counts)) in confusion.truth.iter().zip(&confusion.counts).enumerate() {
        let total: u64 = counts.iter().sum();
        let y = MARGIN + 20.0 + cell_h * r as f64;
        let _ = writeln!(
            svg.body,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            MARGIN + 75.0,
            y + cell_h / 2.0 + 4.0,
            escape(truth)
        );
        for (c, count) in counts.iter().enumerate() {
            let share = if total == 0 {
                0.0
            } else {
                *count as f64 / total as f64
            };
            let x = MARGIN + 80.0 + cell_w * c as f64;
            let red = (255.0 * share) as u8;
            let _ = writeln!(
                svg.body,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h:.1}" fill="rgb({red},{},{})" stroke="white"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{count}</text>"#,
                90 - red / 3,
                255 - red,
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 4.0
            );
        }
    }
    svg.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames (`<rect ... stroke="black"/>`) of an SVG: (top, bottom).
    fn frames(svg: &str) -> Vec<(f64, f64)> {
        svg.lines()
            .filter(|l| l.starts_with("<rect") && l.contains(r#"stroke="black""#))
            .map(|l| {
                let attr = |name: &str| -> f64 {
                    let start = l.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
                    let end = start + l[start..].find('"').expect("closing quote");
                    l[start..end].parse().expect("a number")
                };
                (attr("y"), attr("y") + attr("height"))
            })
            .collect()
    }

    /// The y pixel range of each polyline: (lowest, highest).
    fn polylines(svg: &str) -> Vec<(f64, f64)> {
        svg.lines()
            .filter(|l| l.starts_with("<polyline"))
            .map(|l| {
                let points = l.split("points=\"").nth(1).expect("points");
                let ys: Vec<f64> = points
                    .trim_end_matches("\"/>")
                    .split(' ')
                    .map(|p| p.split(',').nth(1).expect("x,y").parse().expect("y"))
                    .collect();
                (
                    ys.iter().copied().fold(f64::INFINITY, f64::min),
                    ys.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                )
            })
            .collect()
    }

    fn curve(name: &str, values: impl Iterator<Item = f64>) -> (String, Vec<(f64, f64)>) {
        (
            name.to_string(),
            values.enumerate().map(|(i, v)| (i as f64, v)).collect(),
        )
    }

    #[test]
    fn loss_and_score_curves_get_separate_stacked_axes() {
        let curves = vec![
            curve("loss", (0..50).map(|i| 1000.0 / (1.0 + i as f64))),
            curve("test_r2", (0..50).map(|i| 0.1 + 0.01 * i as f64)),
            curve("train_accuracy", (0..50).map(|i| 0.5 + 0.005 * i as f64)),
        ];
        let svg = curves_svg("run", &curves);
        let frames = frames(&svg);
        assert_eq!(frames.len(), 2, "a loss panel and a score panel: {svg}");
        let (loss_panel, score_panel) = (frames[0], frames[1]);
        assert!(loss_panel.1 < score_panel.0, "stacked, loss on top");
        assert!(svg.contains(">loss</text>") && svg.contains(">score</text>"));
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3);
        let inside = |line: (f64, f64), panel: (f64, f64)| {
            line.0 >= panel.0 - 0.1 && line.1 <= panel.1 + 0.1
        };
        assert!(inside(lines[0], loss_panel));
        assert!(inside(lines[1], score_panel) && inside(lines[2], score_panel));
        // On a shared axis the R² (0.1 to 0.59) would be a flat line under a
        // loss of 1000; on its own axis it spans most of its panel.
        let height = score_panel.1 - score_panel.0;
        assert!(
            lines[1].1 - lines[1].0 > 0.5 * height,
            "R² spans {:?} of a panel {height} high",
            lines[1]
        );
    }

    #[test]
    fn curves_of_one_kind_keep_one_full_frame() {
        let svg = curves_svg("run", &[curve("loss", (0..10).map(f64::from))]);
        let full = PlotFrame::FULL;
        assert_eq!(frames(&svg), vec![(full.top, full.bottom)]);
    }
}
