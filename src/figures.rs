//! Figures and tables of a result, for papers: plot data shared by the
//! workbench's views and the exports ([`plot`]), SVG and PNG figures
//! ([`svg`]), and [`export`], which writes a result's metrics and latents as
//! CSV, its latents and labels as an `.h5ad` ([`anndata`]) and its figures
//! as SVG and PNG. Both front ends export through it:
//! the workbench's `x` (the current plot) and `--batch --export DIR` (every
//! figure of every finished experiment). Nothing here draws to a terminal.

pub mod anndata;
pub mod compare;
pub mod plot;
pub mod svg;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::runner::PreparedDataset;
use crate::session::{ExperimentResult, Session};

/// One figure of a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// A latent scatter: which space (0 is `latent`, then `latents`), the
    /// dimensions on x and y, and the zoom (1: fit).
    Latent {
        /// Index of the latent space.
        space: usize,
        /// Dimensions on the x and y axes.
        dims: (usize, usize),
        /// Zoom factor around the data's centre.
        zoom: f64,
    },
    /// The training curves (stored, or live while training).
    Curves,
    /// The confusion matrix of this index.
    Confusion(usize),
    /// The ranking of selected genes.
    Genes,
}

impl Figure {
    /// Every figure `result` can give, in their default views.
    pub fn all(result: &ExperimentResult) -> Vec<Figure> {
        let mut figures: Vec<Figure> = (0..plot::latents(result).len())
            .map(|space| Figure::Latent {
                space,
                dims: (0, 1),
                zoom: 1.0,
            })
            .collect();
        figures.push(Figure::Curves);
        figures.extend((0..result.confusions.len()).map(Figure::Confusion));
        figures.push(Figure::Genes);
        figures
    }
}

/// What an export needs besides the result.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions<'a> {
    /// The experiment's dataset, for the cells' labels (none: no labels).
    pub dataset: Option<&'a PreparedDataset>,
    /// The metadata column labelling the cells.
    pub label_column: Option<String>,
    /// The figures to draw (those the result cannot give are skipped).
    pub figures: Vec<Figure>,
    /// Metric values of a run still training, by name: (step, value).
    pub live: Option<&'a BTreeMap<String, Vec<(f64, f64)>>>,
}

/// The label column to use when none is chosen: `rna_family` when present,
/// else the first.
pub fn default_label_column(columns: &[String]) -> Option<String> {
    columns
        .iter()
        .find(|c| c.as_str() == "rna_family")
        .or(columns.first())
        .cloned()
}

/// Writes experiment `name`'s result into `folder`: `NAME-metrics.csv`,
/// `NAME-latent.csv` (one per latent space), `NAME-latents.h5ad` (every
/// latent space and the labels, for scanpy), and each figure as SVG and PNG.
/// Returns the files written.
pub fn export(
    name: &str,
    result: &ExperimentResult,
    options: &ExportOptions,
    folder: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let mut written = Vec::new();
    let mut write = |file: String, bytes: &[u8]| -> Result<()> {
        let path = folder.join(file);
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    write(
        format!("{name}-metrics.csv"),
        metrics_csv(result).as_bytes(),
    )?;
    let column = options.label_column.as_deref();
    for (index, (space, _)) in plot::latents(result).iter().enumerate() {
        let csv = latent_csv(result, index, options.dataset, column);
        write(
            format!("{name}-latent{}.csv", space_suffix(index, space)),
            csv.as_bytes(),
        )?;
    }
    for figure in &options.figures {
        let Some((suffix, svg)) = figure_svg(name, result, figure, options) else {
            continue;
        };
        let png = svg::svg_to_png(&svg, svg::PNG_SCALE)?;
        write(format!("{name}-{suffix}.svg"), svg.as_bytes())?;
        write(format!("{name}-{suffix}.png"), &png)?;
    }
    let h5ad = folder.join(format!("{name}-latents.h5ad"));
    if anndata::write_latents(name, result, options, &h5ad)? {
        written.push(h5ad);
    }
    Ok(written)
}

/// Writes, for every sweep of `session` and each of its parameters but the
/// seed, the main metric against the parameter as SVG and PNG into `folder`:
/// `sweep-BASE-METRIC-vs-PARAMETER.svg` (log x axis for log-spread sweeps).
/// Returns the files written.
pub fn export_sweeps(session: &Session, folder: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let mut written = Vec::new();
    for sweep in &session.sweeps {
        let Some(first) = sweep.runs.first() else {
            continue;
        };
        for (index, dimension) in sweep.dimensions().iter().enumerate() {
            if dimension.parameter == crate::session::SEED {
                continue;
            }
            let Some(plot) = compare::sweep_plot(session, first, index) else {
                continue;
            };
            if plot.points.is_empty() {
                continue;
            }
            let svg = svg::sweep_svg(&sweep.base, &plot);
            let png = svg::svg_to_png(&svg, svg::PNG_SCALE)?;
            let stem = format!("sweep-{}-{}-vs-{}", sweep.base, plot.metric, plot.parameter);
            for (file, bytes) in [
                (format!("{stem}.svg"), svg.as_bytes()),
                (format!("{stem}.png"), &png[..]),
            ] {
                let path = folder.join(file);
                std::fs::write(&path, bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// `""` for the first latent space, `-NAME` for the others.
fn space_suffix(index: usize, space: &str) -> String {
    if index == 0 {
        String::new()
    } else {
        format!("-{space}")
    }
}

/// The file-name suffix and SVG of `figure`, if the result has it.
fn figure_svg(
    name: &str,
    result: &ExperimentResult,
    figure: &Figure,
    options: &ExportOptions,
) -> Option<(String, String)> {
    match figure {
        Figure::Latent { space, dims, zoom } => {
            let scatter = plot::scatter(
                result,
                *space,
                *dims,
                options.dataset,
                options.label_column.as_deref(),
                *zoom,
            )?;
            let suffix = format!("latent{}", space_suffix(*space, &scatter.name));
            Some((suffix, svg::scatter_svg(&scatter)))
        }
        Figure::Curves => {
            let curves = plot::curves(Some(result), options.live);
            (!curves.is_empty()).then(|| ("curves".into(), svg::curves_svg(name, &curves)))
        }
        Figure::Confusion(index) => {
            let confusion = result.confusions.get(*index)?;
            let suffix = match index {
                0 => "confusion".to_string(),
                i => format!("confusion-{}", i + 1),
            };
            Some((suffix, svg::confusion_svg(confusion)))
        }
        Figure::Genes => {
            (!result.genes.is_empty()).then(|| ("genes".into(), svg::genes_svg(result)))
        }
    }
}

/// `cell,LABEL,NAME0,NAME1,...` rows of latent space `index`.
fn latent_csv(
    result: &ExperimentResult,
    index: usize,
    dataset: Option<&PreparedDataset>,
    column: Option<&str>,
) -> String {
    let latents = plot::latents(result);
    let Some((name, latent)) = latents.get(index) else {
        return String::new();
    };
    let labels = match (dataset, column) {
        (Some(d), Some(c)) => d.data.labels(c, &latent.cells),
        _ => None,
    };
    let mut csv = format!("cell,{}", column.unwrap_or("label"));
    for d in 0..latent.dims {
        let _ = write!(csv, ",{name}{d}");
    }
    csv.push('\n');
    let rows = latent.values.chunks(latent.dims.max(1));
    for (cell_index, (cell, row)) in latent.cells.iter().zip(rows).enumerate() {
        let label = labels
            .as_ref()
            .and_then(|l| l.get(cell_index).cloned().flatten())
            .unwrap_or_default();
        let _ = write!(csv, "{},{}", quote(cell), quote(&label));
        for v in row {
            let _ = write!(csv, ",{v}");
        }
        csv.push('\n');
    }
    csv
}

fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `metric,value` rows, then the per-fold and per-feature scores.
pub fn metrics_csv(result: &ExperimentResult) -> String {
    let mut csv = String::from("metric,value\n");
    for (name, value) in &result.metrics {
        let _ = writeln!(csv, "{},{value}", quote(name));
    }
    for (fold, value) in result.per_fold.iter().enumerate() {
        let _ = writeln!(csv, "fold_{fold},{value}");
    }
    for feature in &result.per_feature {
        let _ = writeln!(csv, "feature:{},{}", quote(&feature.name), feature.score);
    }
    csv
}
