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
        let (right, bottom) = (WIDTH - 160.0, HEIGHT - MARGIN);
        let _ = write!(
            self.body,
            r#"<rect x="{MARGIN}" y="{MARGIN}" width="{}" height="{}" fill="none" stroke="black"/>
<text x="{MARGIN}" y="{}" >{:.3}</text><text x="{right}" y="{}" text-anchor="end">{:.3}</text>
<text x="{}" y="{}" text-anchor="end">{:.3}</text><text x="{}" y="{MARGIN}" text-anchor="end" dy="10">{:.3}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>
"#,
            right - MARGIN,
            bottom - MARGIN,
            bottom + 16.0,
            x[0],
            bottom + 16.0,
            x[1],
            MARGIN - 4.0,
            bottom,
            y[0],
            MARGIN - 4.0,
            y[1],
            (MARGIN + right) / 2.0,
            bottom + 34.0,
            escape(x_title),
            (MARGIN + bottom) / 2.0,
            escape(y_title)
        );
    }

    fn legend(&mut self, entries: &[(String, usize)]) {
        for (i, (label, color)) in entries.iter().enumerate() {
            let y = MARGIN + 10.0 + 18.0 * i as f64;
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

/// Maps data coordinates into the plot frame.
fn projector(x: [f64; 2], y: [f64; 2]) -> impl Fn(f64, f64) -> (f64, f64) {
    let (right, bottom) = (WIDTH - 160.0, HEIGHT - MARGIN);
    move |a, b| {
        let px = MARGIN + (a - x[0]) / (x[1] - x[0]).max(1e-12) * (right - MARGIN);
        let py = bottom - (b - y[0]) / (y[1] - y[0]).max(1e-12) * (bottom - MARGIN);
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

/// Curves as SVG polylines with a legend.
pub fn curves_svg(title: &str, curves: &[(String, Vec<(f64, f64)>)]) -> String {
    let x = plot::bounds(curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)));
    let y = plot::bounds(curves.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)));
    let mut svg = Svg::new(title);
    svg.axes(x, y, "step", "value");
    let project = projector(x, y);
    for (i, (_, points)) in curves.iter().enumerate() {
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
            rgb(i),
            path.join(" ")
        );
    }
    let entries: Vec<_> = curves
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.clone(), i))
        .collect();
    svg.legend(&entries);
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
