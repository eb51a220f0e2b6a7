//! What applying a recipe did, step by step. The report is stored with the
//! results in the session, so every dropped cell and every dropped feature
//! can be traced back to the step that dropped it; nothing is removed
//! silently. Selection steps record only counts, because the features they
//! keep are the output table's features.

use serde::{Deserialize, Serialize};

use super::Standardise;

/// The record of one [`Recipe::apply`](super::Recipe::apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Cells in the input table.
    pub input_cells: usize,
    /// Features in the input table.
    pub input_features: usize,
    /// One entry per recipe step, in order.
    pub steps: Vec<StepReport>,
    /// The standardisation scope that was applied (or left to the CV code).
    pub standardise: Standardise,
    /// Cells in the prepared table.
    pub output_cells: usize,
    /// Features in the prepared table.
    pub output_features: usize,
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// 0-based position in the recipe's `steps`.
    pub index: usize,
    /// The step's variant name, e.g. `SelectGenes`.
    pub kind: String,
    /// Cells before the step.
    pub cells_before: usize,
    /// Cells after the step.
    pub cells_after: usize,
    /// Features before the step.
    pub features_before: usize,
    /// Features after the step.
    pub features_after: usize,
    /// Ids of the cells this step removed, in input order.
    pub dropped_cells: Vec<String>,
    /// Names of the features a dropping step (`ExcludeFeatures`,
    /// `DropFeaturesWithMissing`, `DropConstantFeatures`) removed. Selection
    /// steps (`SelectGenes`, `RestrictToFeatures`) leave this empty and are
    /// described by the feature counts.
    pub dropped_features: Vec<String>,
    /// Step-specific figures.
    pub detail: StepDetail,
}

/// Figures particular to a kind of step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepDetail {
    /// Nothing beyond the counts.
    None,
    /// `SelectGenes` with `MeanDropout`.
    MeanDropout {
        /// The offset of the selection curve at which exactly `n` genes were
        /// selected.
        x0: f64,
        /// Genes detected in at least `at_least` cells (the candidates).
        eligible: usize,
        /// Bisection steps taken.
        iterations: usize,
    },
    /// `SelectGenes` with `Variance`.
    Variance {
        /// The smallest variance among the selected features.
        smallest_selected: f64,
    },
    /// `SelectGenes` with `Seurat` (scanpy's `seurat` flavour).
    Seurat {
        /// The normalised dispersion of the `n`-th gene; every gene at or above it is kept.
        cut_off: f64,
        /// Genes kept (more than `n` when several tie at the cut-off).
        selected: usize,
    },
    /// `SelectGenes` with `SeuratV3` (scanpy's `seurat_v3` flavour).
    SeuratV3 {
        /// The smallest normalised variance among the selected genes.
        smallest_selected: f64,
    },
    /// `LibrarySizeNormalise`: per-cell sums before normalisation.
    LibrarySize {
        /// The median sum; every cell now sums to this.
        median: f64,
        /// The smallest sum.
        min: f64,
        /// The largest sum.
        max: f64,
    },
}

impl Report {
    /// A human summary, one line per step plus input, scaling and output.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "input: {} cells x {} features",
            self.input_cells, self.input_features
        )];
        lines.extend(self.steps.iter().map(StepReport::line));
        lines.push(match self.standardise {
            Standardise::None => "standardise: none (values left unscaled)".to_string(),
            Standardise::AllCells => {
                "standardise: z-scored every feature over all cells (population SD)".to_string()
            }
            Standardise::TrainingFold => {
                "standardise: left to cross-validation (z-scored per training fold)".to_string()
            }
        });
        lines.push(format!(
            "output: {} cells x {} features",
            self.output_cells, self.output_features
        ));
        lines
    }
}

impl StepReport {
    fn line(&self) -> String {
        let mut line = format!("steps[{}] {}:", self.index, self.kind);
        if self.cells_after != self.cells_before {
            line.push_str(&format!(
                " dropped {} of {} cells ({}),",
                self.cells_before - self.cells_after,
                self.cells_before,
                name_sample(&self.dropped_cells)
            ));
        }
        if self.features_after != self.features_before {
            line.push_str(&format!(
                " kept {} of {} features",
                self.features_after, self.features_before
            ));
            if !self.dropped_features.is_empty() {
                line.push_str(&format!(
                    " (dropped {})",
                    name_sample(&self.dropped_features)
                ));
            }
            line.push(',');
        }
        match &self.detail {
            StepDetail::None => {}
            StepDetail::MeanDropout {
                x0,
                eligible,
                iterations,
            } => line.push_str(&format!(
                " mean-dropout offset x0 = {x0:.4} ({eligible} candidate genes, \
                 {iterations} bisection steps),"
            )),
            StepDetail::Variance { smallest_selected } => line.push_str(&format!(
                " smallest selected variance {smallest_selected:.4},"
            )),
            StepDetail::Seurat { cut_off, selected } => line.push_str(&format!(
                " seurat normalised dispersion cut-off {cut_off:.4} ({selected} genes),"
            )),
            StepDetail::SeuratV3 { smallest_selected } => line.push_str(&format!(
                " seurat_v3 smallest selected normalised variance {smallest_selected:.4},"
            )),
            StepDetail::LibrarySize { median, min, max } => line.push_str(&format!(
                " library sizes min {min} / median {median} / max {max}; \
                 every cell scaled to the median,"
            )),
        }
        if line.ends_with(':') {
            line.push_str(" no cells or features removed");
        } else {
            line.pop();
        }
        line
    }
}

/// The first few names and how many there are in all.
fn name_sample(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<&str> = names.iter().take(SHOWN).map(String::as_str).collect();
    if names.len() > SHOWN {
        format!("{}, ... {} in all", shown.join(", "), names.len())
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(kind: &str, cells: (usize, usize), features: (usize, usize)) -> StepReport {
        StepReport {
            index: 0,
            kind: kind.to_string(),
            cells_before: cells.0,
            cells_after: cells.1,
            features_before: features.0,
            features_after: features.1,
            dropped_cells: Vec::new(),
            dropped_features: Vec::new(),
            detail: StepDetail::None,
        }
    }

    #[test]
    fn lines_name_dropped_cells_and_the_offset() {
        let mut drop = step("DropCellsWithMissing", (8, 1), (3, 3));
        drop.dropped_cells = (0..7).map(|i| format!("c{i}")).collect();
        let mut select = step("SelectGenes", (1, 1), (50, 10));
        select.index = 1;
        select.detail = StepDetail::MeanDropout {
            x0: 7.5625,
            eligible: 40,
            iterations: 12,
        };
        let report = Report {
            input_cells: 8,
            input_features: 50,
            steps: vec![drop, select],
            standardise: Standardise::TrainingFold,
            output_cells: 1,
            output_features: 10,
        };
        let lines = report.lines();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "input: 8 cells x 50 features");
        assert_eq!(
            lines[1],
            "steps[0] DropCellsWithMissing: dropped 7 of 8 cells (c0, c1, c2, c3, c4, ... 7 in all)"
        );
        assert!(lines[2].contains("kept 10 of 50 features"), "{}", lines[2]);
        assert!(lines[2].contains("x0 = 7.5625"), "{}", lines[2]);
        assert!(lines[3].contains("per training fold"));
        assert_eq!(lines[4], "output: 1 cells x 10 features");
    }

    #[test]
    fn a_step_that_removes_nothing_says_so() {
        let line = step("Log2p1", (4, 4), (2, 2)).line();
        assert_eq!(line, "steps[0] Log2p1: no cells or features removed");
    }

    #[test]
    fn report_round_trips_through_ron() {
        let mut exclude = step("ExcludeFeatures", (3, 3), (4, 2));
        exclude.dropped_features = vec!["ERCC-1".into(), "ERCC-2".into()];
        exclude.detail = StepDetail::LibrarySize {
            median: 2.5,
            min: 1.0,
            max: 4.0,
        };
        let report = Report {
            input_cells: 3,
            input_features: 4,
            steps: vec![exclude],
            standardise: Standardise::AllCells,
            output_cells: 3,
            output_features: 2,
        };
        let text = ron::to_string(&report).unwrap();
        let back: Report = ron::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}
