//! Writing a simulated dataset to disk and describing it.
//!
//! The files follow the layout of the real M1 Patch-seq data:
//! `gene_counts.csv` (genes x cells, header `gene,<cell ids>`),
//! `ephys_values.csv` (cells x features, empty first header cell) and a
//! comma-separated `metadata.csv` with the ground-truth labels, plus a
//! `README.md` from [`SimulatedData::describe`]. Each file is written to a
//! hidden temporary file in the target directory and renamed into place, so a
//! reader never sees half a file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{EphysKind, SimulateError, SimulatedData};
use crate::data::{Orientation, write_table};

/// File names written by [`SimulatedData::write`], in order.
pub const FILE_NAMES: [&str; 4] = [
    "gene_counts.csv",
    "ephys_values.csv",
    "metadata.csv",
    "README.md",
];

impl SimulatedData {
    /// Writes the dataset into `dir` (created if missing) and returns the
    /// paths of `gene_counts.csv`, `ephys_values.csv`, `metadata.csv` and `README.md`.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, SimulateError> {
        std::fs::create_dir_all(dir).map_err(|source| SimulateError::Io {
            path: dir.to_path_buf(),
            cause: source,
        })?;
        let [counts, ephys, metadata, readme] = FILE_NAMES;
        Ok(vec![
            atomically(dir, counts, |tmp| {
                Ok(write_table(
                    &self.expression,
                    tmp,
                    Orientation::FeaturesByCells,
                )?)
            })?,
            atomically(dir, ephys, |tmp| {
                Ok(write_table(&self.ephys, tmp, Orientation::CellsByFeatures)?)
            })?,
            atomically(dir, metadata, |tmp| self.write_metadata(tmp))?,
            atomically(dir, readme, |tmp| {
                std::fs::write(tmp, self.describe()).map_err(|source| SimulateError::Io {
                    path: tmp.to_path_buf(),
                    cause: source,
                })
            })?,
        ])
    }

    fn write_metadata(&self, path: &Path) -> Result<(), SimulateError> {
        let io_err = |source| SimulateError::Io {
            path: path.to_path_buf(),
            cause: source,
        };
        let csv_err = |e: csv::Error| io_err(std::io::Error::other(e));
        let mut writer = csv::Writer::from_path(path).map_err(csv_err)?;
        writer
            .write_record([
                "cell_id",
                "rna_family",
                "rna_type",
                "state",
                "has_t",
                "has_e",
            ])
            .map_err(csv_err)?;
        for cell in &self.metadata {
            let family = self
                .hierarchy
                .families
                .get(cell.family)
                .map_or("", String::as_str);
            let cell_type = self
                .hierarchy
                .types
                .get(cell.cell_type)
                .map_or("", |t| t.name.as_str());
            writer
                .write_record([
                    cell.cell_id.as_str(),
                    family,
                    cell_type,
                    &format!("{:.4}", cell.state),
                    if cell.has_t { "true" } else { "false" },
                    if cell.has_e { "true" } else { "false" },
                ])
                .map_err(csv_err)?;
        }
        writer.flush().map_err(io_err)
    }

    /// A Markdown summary of the config, the ground truth and the counts, for
    /// the `README.md` written next to the data.
    pub fn describe(&self) -> String {
        let config = &self.config;
        let count = |t: bool, e: bool| {
            self.metadata
                .iter()
                .filter(|c| c.has_t == t && c.has_e == e)
                .count()
        };
        let genes = &self.expression_truth.genes;
        let gene_names = |indices: &[usize]| {
            indices
                .iter()
                .filter_map(|&g| genes.get(g).map(String::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut text = String::new();
        // Writing to a String cannot fail, so the fmt::Results below are ignored.
        let seeds = match config.cells_seed {
            Some(cells) => format!("seed {}, cells drawn with seed {cells}", config.seed),
            None => format!("seed {}", config.seed),
        };
        let _ = writeln!(text, "# Simulated Patch-seq dataset ({seeds})\n");
        let _ = writeln!(
            text,
            "Synthetic data with known ground truth, written by `patchbench simulate`. Cells belong to a \
             two-level hierarchy (family -> type) and carry a continuous within-type state in [0, 1]. Gene \
             counts are negative binomial (dispersion {}) around library size x type profile; family markers \
             are up {}x in every type of their family, type markers {}x in their type, and state genes change \
             up to {}x from state 0 to 1. Ephys features are nonlinear in the type, plus a function of the \
             state, plus Gaussian noise (sd {} of the between-type spread). The same config always gives the \
             same files.\n",
            config.dispersion,
            config.marker_fold_change,
            config.marker_fold_change,
            config.state_fold_change,
            config.ephys_noise
        );
        let _ = writeln!(
            text,
            "## Files\n\n| file | shape | content |\n|---|---|---|"
        );
        let _ = writeln!(
            text,
            "| `gene_counts.csv` | {} genes x {} cells | integer counts; header `gene,<cell ids>` |",
            self.expression.features.len(),
            self.expression.cells.len()
        );
        let _ = writeln!(
            text,
            "| `ephys_values.csv` | {} cells x {} features | recorded values; first header cell empty |",
            self.ephys.cells.len(),
            self.ephys.features.len()
        );
        let _ = writeln!(
            text,
            "| `metadata.csv` | {} cells | `cell_id,rna_family,rna_type,state,has_t,has_e` (ground truth) |\n",
            self.metadata.len()
        );
        let _ = writeln!(
            text,
            "## Cells\n\n{} cells: {} paired, {} T-only, {} E-only.\n",
            self.metadata.len(),
            count(true, true),
            count(true, false),
            count(false, true)
        );
        let _ = writeln!(
            text,
            "| family | type | cells | type markers |\n|---|---|---|---|"
        );
        for (t, cell_type) in self.hierarchy.types.iter().enumerate() {
            let family = self
                .hierarchy
                .families
                .get(cell_type.family)
                .map_or("", String::as_str);
            let cells = self.metadata.iter().filter(|c| c.cell_type == t).count();
            let markers = self
                .expression_truth
                .type_markers
                .get(t)
                .map_or_else(String::new, |m| gene_names(m));
            let _ = writeln!(
                text,
                "| {family} | {} | {cells} | {markers} |",
                cell_type.name
            );
        }
        let _ = writeln!(text, "\n## Genes\n");
        for (family, markers) in self
            .hierarchy
            .families
            .iter()
            .zip(&self.expression_truth.family_markers)
        {
            let _ = writeln!(text, "* {family} family markers: {}", gene_names(markers));
        }
        let state_genes: Vec<String> = self
            .expression_truth
            .state_genes
            .iter()
            .filter_map(|s| {
                genes
                    .get(s.gene)
                    .map(|name| format!("{name} (x{:.2})", s.log_fold.exp()))
            })
            .collect();
        let _ = writeln!(
            text,
            "* State genes (fold change from state 0 to 1): {}",
            state_genes.join(", ")
        );
        let _ = writeln!(
            text,
            "* Spike-ins (technical): {}\n",
            gene_names(&self.expression_truth.spike_ins)
        );
        let _ = writeln!(
            text,
            "## Ephys features\n\n| feature | kind | state shape | state effect |\n|---|---|---|---|"
        );
        for feature in &self.ephys_truth {
            let kind = match feature.kind {
                EphysKind::Gaussian => "Gaussian",
                EphysKind::Skewed => "positive, skewed (log it)",
                EphysKind::Count => "integer count",
            };
            let _ = writeln!(
                text,
                "| {} | {kind} | {:?} | {:+.2} |",
                feature.name, feature.state_shape, feature.state_effect
            );
        }
        let _ = writeln!(text, "\n## Config\n\n```ron");
        match ron::ser::to_string_pretty(config, ron::ser::PrettyConfig::default()) {
            Ok(ron) => text.push_str(&ron),
            Err(e) => text.push_str(&format!("// the config could not be written as RON: {e}")),
        }
        text.push_str("\n```\n");
        text
    }
}

/// Runs `write` on a hidden temporary file in `dir`, then renames it to `name`.
fn atomically(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&Path) -> Result<(), SimulateError>,
) -> Result<PathBuf, SimulateError> {
    let target = dir.join(name);
    let temporary = dir.join(format!(".{name}.partial"));
    let result = write(&temporary).and_then(|()| {
        std::fs::rename(&temporary, &target).map_err(|source| SimulateError::Io {
            path: target.clone(),
            cause: source,
        })
    });
    if result.is_err() {
        // Best effort: the write already failed, and a leftover temporary file is harmless.
        let _ = std::fs::remove_file(&temporary);
    }
    result.map(|()| target)
}
