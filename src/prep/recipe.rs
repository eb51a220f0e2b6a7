//! The recipe as stored in the RON session: an ordered list of steps and a
//! standardisation scope, and [`Recipe::apply`], which runs the steps in
//! order on a [`FeatureTable`] and records what each did.

use serde::{Deserialize, Serialize};

use super::columns::column_sums;
use super::filter::{
    drop_cells, drop_cells_with_missing, drop_constant_features, drop_features_with_missing,
    drop_zero_library, exclude_features, restrict_to_features, restricted_columns,
};
use super::fitted::{FittedRecipe, Recorder, input_summary};
use super::memory::{densify, densify_columns};
use super::select::{select_genes, select_genes_with};
use super::sparse;
use super::standardise::zscore_prepared;
use super::subset::Outcome;
use super::transform::{library_size_normalise, ln_features, log_plus_one, scale};
use super::{PrepError, Report, StepDetail, StepId, StepReport};
use crate::data::{FeatureTable, LoadedTable, PreparedTable, SparseInput, first_stored_where};

/// A preprocessing recipe: steps run in order, then optional z-scoring.
///
/// Both fields may be left out of the RON text (no steps; `AllCells`). The
/// sBNN paper's M1 expression pipeline from the full count table, with
/// ERCC spike-ins removed first, reads:
///
/// ```
/// use patchbench::prep::{GeneSelection, Recipe, Standardise, Step};
///
/// let recipe: Recipe = ron::from_str(
///     r#"(
///         steps: [
///             ExcludeFeatures(pattern: "^ERCC-"),
///             SelectGenes(n: 1000, method: MeanDropout(threshold: 30)),
///             LibrarySizeNormalise,
///             Log2p1,
///         ],
///         standardise: AllCells,
///     )"#,
/// )?;
/// let select = &recipe.steps[1];
/// let expected = Step::SelectGenes {
///     n: 1000,
///     method: GeneSelection::MeanDropout { threshold: 30.0, at_least: 10, decay: 1.5, y_offset: 0.02 },
/// };
/// assert_eq!(select, &expected);
/// assert_eq!(recipe.standardise, Standardise::AllCells);
/// # Ok::<(), ron::error::SpannedError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// The steps, applied in this order.
    pub steps: Vec<Step>,
    /// How the prepared values are z-scored.
    pub standardise: Standardise,
    /// Hands a sparse table (CSR from an `.h5ad` or `.mtx`) to the model as
    /// it is instead of making it dense at the end of the recipe: the
    /// mixture VAE and the coupled autoencoder gather each mini-batch's
    /// rows from it and make only those dense (z-scored with statistics
    /// computed on the CSR matrix under `AllCells`), so all genes of 10^5
    /// cells can train without a dense copy. Models that need the whole
    /// dense table (sBNN, sRRR) refuse such a modality. A dense input stays
    /// dense. Off by default (and then left out of a saved session).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_sparse: bool,
}

/// One preprocessing step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Step {
    /// Drops every cell with a missing value (NaN) in any feature.
    DropCellsWithMissing,
    /// Drops every feature with a missing value (NaN) in any cell.
    DropFeaturesWithMissing,
    /// Drops every cell whose values sum to zero over the current features.
    DropZeroLibrary,
    /// Drops every feature that is constant over the current cells (which
    /// `Standardise::AllCells` would reject).
    DropConstantFeatures,
    /// Drops the listed cells (e.g. cells excluded by hand); every id must
    /// be present.
    DropCells {
        /// Cell ids to remove.
        cells: Vec<String>,
    },
    /// Drops every feature whose name matches a regular expression.
    ExcludeFeatures {
        /// A regular expression (`regex` crate syntax), e.g. `"^ERCC-"`.
        pattern: String,
    },
    /// Keeps exactly these features in this order, so a model trained on one
    /// dataset can be applied to another; every name must be present.
    RestrictToFeatures {
        /// Feature names, unique.
        features: Vec<String>,
    },
    /// Keeps `n` features chosen by `method`, in their current order.
    SelectGenes {
        /// How many features to keep.
        n: usize,
        /// How to rank them.
        method: GeneSelection,
    },
    /// Divides each cell by its sum over the current features and multiplies
    /// by the median of those sums. Put it after `SelectGenes` to sum over the
    /// selected genes (the sBNN code), before it to sum over all genes.
    LibrarySizeNormalise,
    /// Multiplies every value by `factor` (finite, positive), e.g. `1 / 255`
    /// to put 8-bit pixel intensities on [0, 1] as image models expect.
    Scale {
        /// The multiplier.
        factor: f64,
    },
    /// Replaces every value `x` by `log2(x + 1)`.
    Log2p1,
    /// Replaces every value `x` by `ln(x + 1)` (scanpy's `log1p`, what the
    /// `Seurat` gene selection expects).
    Log1p,
    /// Replaces the values of the named features by their natural log.
    LnFeatures {
        /// Feature names; their values must be positive.
        features: Vec<String>,
    },
}

/// How `SelectGenes` ranks features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum GeneSelection {
    /// The `n` features with the largest variance of their current values.
    Variance,
    /// The mean-dropout heuristic of Kobak & Berens (2019) on raw counts;
    /// see the `select` module documentation. Fields left out of the RON
    /// text take the reference defaults shown.
    MeanDropout {
        /// A count at or below this is "not detected" (default 0; sBNN M1: 30).
        #[serde(default)]
        threshold: f64,
        /// Genes detected in fewer cells are never selected (default 10).
        #[serde(default = "default_at_least")]
        at_least: usize,
        /// Steepness of the selection curve (default 1.5).
        #[serde(default = "default_decay")]
        decay: f64,
        /// Vertical offset of the selection curve (default 0.02).
        #[serde(default = "default_y_offset")]
        y_offset: f64,
    },
    /// scanpy's `highly_variable_genes(flavor="seurat", n_top_genes=n)` on
    /// `ln(x + 1)` normalised values (after `LibrarySizeNormalise, Log1p`):
    /// dispersion z-scored within bins of mean expression; see the `hvg`
    /// module. Genes tied at the cut-off are all kept, as scanpy does.
    Seurat {
        /// Number of mean-expression bins (default 20).
        #[serde(default = "default_n_bins")]
        n_bins: usize,
    },
    /// scanpy's `highly_variable_genes(flavor="seurat_v3", n_top_genes=n)`
    /// on raw counts (before normalisation): the variance of counts clipped
    /// and standardised by a LOESS fit of log variance on log mean; exactly
    /// `n` genes. See the `hvg_v3` module.
    SeuratV3 {
        /// The LOESS span, the share of genes in each local fit (default 0.3).
        #[serde(default = "default_span")]
        span: f64,
    },
}

fn default_span() -> f64 {
    0.3
}

fn default_n_bins() -> usize {
    20
}

fn default_at_least() -> usize {
    10
}

fn default_decay() -> f64 {
    1.5
}

fn default_y_offset() -> f64 {
    0.02
}

/// Over which cells the prepared features are z-scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Standardise {
    /// Values are left as the steps made them.
    None,
    /// Every feature is z-scored over all cells (population SD), as the sBNN
    /// paper did. A constant feature is an error; drop it explicitly with
    /// `DropConstantFeatures`.
    #[default]
    AllCells,
    /// Values are left unscaled here; the cross-validation code z-scores with
    /// each training fold's statistics.
    TrainingFold,
}

/// A prepared table and the record of how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The model matrix: finite, z-scored if the recipe says so; dense,
    /// or CSR with its z-scoring beside it if the recipe keeps it sparse.
    pub table: PreparedTable,
    /// What every step did.
    pub report: Report,
}

impl Recipe {
    /// The sBNN paper's M1 expression recipe for `gene_counts.csv`, which
    /// already holds the 1000 selected genes: library size over those genes,
    /// `log2(x + 1)`, z-score over all cells.
    ///
    /// ```
    /// use patchbench::prep::Recipe;
    ///
    /// let text = "(steps: [LibrarySizeNormalise, Log2p1], standardise: AllCells)";
    /// assert_eq!(ron::from_str::<Recipe>(text)?, Recipe::sbnn_m1_expression());
    /// # Ok::<(), ron::error::SpannedError>(())
    /// ```
    pub fn sbnn_m1_expression() -> Self {
        Recipe {
            steps: vec![Step::LibrarySizeNormalise, Step::Log2p1],
            standardise: Standardise::AllCells,
            keep_sparse: false,
        }
    }

    /// The sBNN paper's M1 ephys recipe for `ephys_values.csv`, whose logs
    /// are already applied: z-score over all cells only.
    ///
    /// ```
    /// use patchbench::prep::Recipe;
    ///
    /// let text = "(steps: [], standardise: AllCells)";
    /// assert_eq!(ron::from_str::<Recipe>(text)?, Recipe::sbnn_m1_ephys());
    /// # Ok::<(), ron::error::SpannedError>(())
    /// ```
    pub fn sbnn_m1_ephys() -> Self {
        Recipe {
            steps: Vec::new(),
            standardise: Standardise::AllCells,
            keep_sparse: false,
        }
    }

    /// Runs the steps in order on `table`, checks that every value left is
    /// finite, and z-scores if `standardise` is `AllCells`. Fails if the
    /// input or any step leaves no cells or no features.
    pub fn apply(&self, table: FeatureTable) -> Result<Prepared, PrepError> {
        self.apply_loaded(LoadedTable::Dense(table))
    }

    /// [`Recipe::apply`] on a table as a reader returned it. A sparse table
    /// stays sparse through the steps that have a sparse form (library size,
    /// logs, `ExcludeFeatures`, `DropZeroLibrary`, `SelectGenes`);
    /// `RestrictToFeatures` densifies only the features it keeps, any other
    /// step densifies what is left, and so does the end of the recipe: the
    /// dense matrix a model sees holds only the features the steps kept.
    pub fn apply_loaded(&self, table: LoadedTable) -> Result<Prepared, PrepError> {
        self.run_recipe(table, None)
    }

    /// [`Recipe::apply_loaded`] that also returns the [`FittedRecipe`]: what
    /// prepares other cells the same way (feature lists, library-size target,
    /// z-scoring statistics of these cells).
    pub fn apply_fitted(&self, table: LoadedTable) -> Result<(Prepared, FittedRecipe), PrepError> {
        let (means, max) = match &table {
            LoadedTable::Dense(t) => input_summary(&t.values),
            LoadedTable::Sparse(t) => sparse_input_summary(t),
        };
        let mut recorder = Recorder::new(table.features().to_vec(), means, max);
        let prepared = self.run_recipe(table, Some(&mut recorder))?;
        let fitted = recorder.finish(&prepared.table, self.standardise);
        let mut table = prepared.table;
        if self.standardise == Standardise::AllCells {
            zscore_prepared(&mut table)?;
        }
        Ok((
            Prepared {
                table,
                report: prepared.report,
            },
            fitted,
        ))
    }

    fn run_recipe(
        &self,
        table: LoadedTable,
        mut recorder: Option<&mut Recorder>,
    ) -> Result<Prepared, PrepError> {
        let (table, report) = self.run_steps(table, recorder.as_deref_mut())?;
        let mut table = table;
        if recorder.is_none() && self.standardise == Standardise::AllCells {
            zscore_prepared(&mut table)?;
        }
        Ok(Prepared { table, report })
    }

    /// The steps and the finiteness check; z-scoring is left to the caller.
    fn run_steps(
        &self,
        table: LoadedTable,
        mut recorder: Option<&mut Recorder>,
    ) -> Result<(PreparedTable, Report), PrepError> {
        let (cells, features) = (table.cells().len(), table.features().len());
        let (rows, columns) = match &table {
            LoadedTable::Dense(t) => t.values.dim(),
            LoadedTable::Sparse(t) => t.values.shape(),
        };
        if rows != cells || columns != features {
            return Err(PrepError::Shape {
                cells,
                features,
                rows,
                columns,
            });
        }
        ensure_not_empty(&table, || "the input".to_string())?;
        let (input_cells, input_features) = (rows, columns);
        let mut table = table;
        let mut reports = Vec::with_capacity(self.steps.len());
        // The per-gene sums of the values before a `Log1p`, for the `Seurat`
        // selection that follows it.
        let mut before_log = None;
        for (index, step) in self.steps.iter().enumerate() {
            let id = StepId {
                index,
                kind: step.kind(),
            };
            let (cells_before, features_before) = (table.cells().len(), table.features().len());
            // `Seurat` right after `Log1p` on CSR takes the per-gene sums of
            // `expm1` of the logged values: the values before the log give
            // them (up to rounding) without an `expm1` per stored value.
            let seurat_next = matches!(
                self.steps.get(index + 1),
                Some(Step::SelectGenes {
                    method: GeneSelection::Seurat { .. },
                    ..
                })
            );
            let sums_of_input = (matches!(step, Step::Log1p)
                && seurat_next
                && matches!(table, LoadedTable::Sparse(_)))
            .then(|| column_sums(&table, |_, v| v));
            let (next, outcome) = match (step, before_log.take()) {
                (Step::SelectGenes { n, method }, Some(sums)) => {
                    select_genes_with(table, *n, method, id, Some(&sums))?
                }
                _ => step.run(table, id)?,
            };
            before_log = sums_of_input;
            ensure_not_empty(&next, || id.to_string())?;
            if let Some(recorder) = recorder.as_deref_mut() {
                let median = match &outcome.detail {
                    StepDetail::LibrarySize { median, .. } => Some(*median),
                    _ => None,
                };
                recorder.step(step, next.features(), median);
            }
            reports.push(StepReport {
                index,
                kind: id.kind.to_string(),
                cells_before,
                cells_after: next.cells().len(),
                features_before,
                features_after: next.features().len(),
                dropped_cells: outcome.dropped_cells,
                dropped_features: outcome.dropped_features,
                detail: outcome.detail,
            });
            table = next;
        }
        let table = match table {
            LoadedTable::Dense(t) => PreparedTable::Dense(t),
            LoadedTable::Sparse(t) if self.keep_sparse => PreparedTable::Sparse(SparseInput {
                table: t,
                scaling: None,
            }),
            LoadedTable::Sparse(t) => {
                PreparedTable::Dense(densify(&t, || "the end of the recipe".to_string())?)
            }
        };
        ensure_finite(&table)?;
        let report = Report {
            input_cells,
            input_features,
            steps: reports,
            standardise: self.standardise,
            output_cells: table.cells().len(),
            output_features: table.features().len(),
        };
        Ok((table, report))
    }
}

/// Training mean and maximum of each column of a sparse table (absent entries are zeros).
fn sparse_input_summary(table: &crate::data::SparseTable) -> (Vec<f64>, Vec<f64>) {
    let columns = table.features.len();
    let mut sums = vec![0.0; columns];
    let mut stored = vec![0_usize; columns];
    let mut max = vec![f64::NEG_INFINITY; columns];
    for (&v, (_, j)) in table.values.iter() {
        let (v, j) = (f64::from(v), j as usize);
        sums[j] += v;
        stored[j] += 1;
        max[j] = max[j].max(v);
    }
    let n = table.cells.len();
    for (m, &count) in max.iter_mut().zip(&stored) {
        if count < n {
            *m = m.max(0.0);
        }
    }
    (sums.iter().map(|s| s / n.max(1) as f64).collect(), max)
}

impl Step {
    /// The variant name, as written in RON and in reports and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::DropCellsWithMissing => "DropCellsWithMissing",
            Step::DropFeaturesWithMissing => "DropFeaturesWithMissing",
            Step::DropZeroLibrary => "DropZeroLibrary",
            Step::DropConstantFeatures => "DropConstantFeatures",
            Step::DropCells { .. } => "DropCells",
            Step::ExcludeFeatures { .. } => "ExcludeFeatures",
            Step::RestrictToFeatures { .. } => "RestrictToFeatures",
            Step::SelectGenes { .. } => "SelectGenes",
            Step::LibrarySizeNormalise => "LibrarySizeNormalise",
            Step::Scale { .. } => "Scale",
            Step::Log2p1 => "Log2p1",
            Step::Log1p => "Log1p",
            Step::LnFeatures { .. } => "LnFeatures",
        }
    }

    /// Runs the step on a sparse table where it has a sparse form, else on the dense table.
    fn run(&self, table: LoadedTable, id: StepId) -> Result<(LoadedTable, Outcome), PrepError> {
        let table = match (self, table) {
            (Step::SelectGenes { n, method }, table) => {
                return select_genes(table, *n, method, id);
            }
            (_, LoadedTable::Dense(t)) => t,
            (step, LoadedTable::Sparse(t)) => match step {
                Step::LibrarySizeNormalise => return sparse::library_size_normalise(t, id),
                Step::Log2p1 => return sparse::log_plus_one(t, id, LOG2P1_EXPECTS, f64::log2),
                Step::Log1p => return sparse::log_plus_one(t, id, LOG1P_EXPECTS, f64::ln),
                Step::ExcludeFeatures { pattern } => {
                    return sparse::exclude_features(t, pattern, id);
                }
                Step::DropZeroLibrary => return Ok(sparse::drop_zero_library(t)),
                Step::RestrictToFeatures { features } => {
                    let columns = restricted_columns(&t.features, features, id)?;
                    let dense = densify_columns(&t, &columns, || id.to_string())?;
                    return Ok((
                        LoadedTable::Dense(dense.unwrap_or_default()),
                        Outcome::nothing(),
                    ));
                }
                _ => densify(&t, || format!("{id}, which has no sparse form,"))?,
            },
        };
        let (table, outcome) = self.run_dense(table, id)?;
        Ok((LoadedTable::Dense(table), outcome))
    }

    fn run_dense(
        &self,
        table: FeatureTable,
        id: StepId,
    ) -> Result<(FeatureTable, Outcome), PrepError> {
        match self {
            Step::DropCellsWithMissing => Ok(drop_cells_with_missing(table)),
            Step::DropFeaturesWithMissing => Ok(drop_features_with_missing(table)),
            Step::DropZeroLibrary => Ok(drop_zero_library(table)),
            Step::DropConstantFeatures => Ok(drop_constant_features(table)),
            Step::DropCells { cells } => drop_cells(table, cells, id),
            Step::ExcludeFeatures { pattern } => exclude_features(table, pattern, id),
            Step::RestrictToFeatures { features } => restrict_to_features(table, features, id),
            Step::SelectGenes { n, method } => {
                let (table, outcome) = select_genes(LoadedTable::Dense(table), *n, method, id)?;
                Ok((table.into_dense(), outcome))
            }
            Step::LibrarySizeNormalise => library_size_normalise(table, id),
            Step::Scale { factor } => scale(table, *factor, id),
            Step::Log2p1 => log_plus_one(table, id, LOG2P1_EXPECTS, f64::log2),
            Step::Log1p => log_plus_one(table, id, LOG1P_EXPECTS, f64::ln),
            Step::LnFeatures { features } => ln_features(table, features, id),
        }
    }
}

/// What `Log2p1` expects of a value.
const LOG2P1_EXPECTS: &str = "a value above -1 (log2(x + 1) is applied)";
/// What `Log1p` expects of a value.
const LOG1P_EXPECTS: &str = "a value above -1 (ln(x + 1) is applied)";

fn ensure_not_empty(table: &LoadedTable, stage: impl Fn() -> String) -> Result<(), PrepError> {
    if table.cells().is_empty() || table.features().is_empty() {
        return Err(PrepError::Empty {
            stage: stage(),
            cells: table.cells().len(),
            features: table.features().len(),
        });
    }
    Ok(())
}

fn ensure_finite(table: &PreparedTable) -> Result<(), PrepError> {
    let table = match table {
        PreparedTable::Dense(t) => t,
        PreparedTable::Sparse(s) => {
            return match first_stored_where(&s.table.values, |v| !v.is_finite()) {
                None => Ok(()),
                Some((row, column, value)) => Err(PrepError::NotFinite {
                    cell: s.table.cells.get(row).cloned().unwrap_or_default(),
                    feature: s.table.features.get(column).cloned().unwrap_or_default(),
                    value,
                }),
            };
        }
    };
    for (row, cell) in table.values.rows().into_iter().zip(&table.cells) {
        if let Some((value, feature)) = row
            .iter()
            .zip(&table.features)
            .find(|(v, _)| !v.is_finite())
        {
            return Err(PrepError::NotFinite {
                cell: cell.clone(),
                feature: feature.clone(),
                value: *value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prep::StepDetail;
    use ndarray::array;

    fn table() -> FeatureTable {
        FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            features: vec!["Gad1".into(), "ERCC-1".into(), "Sst".into()],
            values: array![
                [1.0, 9.0, 3.0],
                [2.0, 0.0, 2.0],
                [f64::NAN, 1.0, 1.0],
                [7.0, 5.0, 9.0]
            ],
        }
    }

    fn recipe(steps: Vec<Step>, standardise: Standardise) -> Recipe {
        Recipe {
            steps,
            standardise,
            keep_sparse: false,
        }
    }

    #[test]
    fn keep_sparse_is_written_only_when_set_and_reads_back() {
        let mut recipe = Recipe::sbnn_m1_expression();
        let text = ron::to_string(&recipe).unwrap();
        assert!(!text.contains("keep_sparse"), "{text}");
        recipe.keep_sparse = true;
        let text = ron::to_string(&recipe).unwrap();
        assert!(text.contains("keep_sparse:true"), "{text}");
        assert_eq!(ron::from_str::<Recipe>(&text).unwrap(), recipe);
    }

    #[test]
    fn steps_run_in_order_and_are_reported() {
        let steps = vec![
            Step::DropCellsWithMissing,
            Step::ExcludeFeatures {
                pattern: "^ERCC-".into(),
            },
            Step::LibrarySizeNormalise,
            Step::Log2p1,
        ];
        let prepared = recipe(steps, Standardise::None).apply(table()).unwrap();
        // Sums over Gad1 + Sst: 4, 4, 16 -> median 4; d becomes (1.75, 2.25).
        assert_eq!(prepared.table.cells(), ["a", "b", "d"]);
        assert_eq!(prepared.table.features(), ["Gad1", "Sst"]);
        let expected = array![
            [1.0, 2.0],
            [3f64.log2(), 3f64.log2()],
            [2.75f64.log2(), 3.25f64.log2()]
        ];
        for (got, want) in prepared.table.dense().unwrap().values.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let report = &prepared.report;
        assert_eq!((report.input_cells, report.input_features), (4, 3));
        assert_eq!((report.output_cells, report.output_features), (3, 2));
        assert_eq!(report.steps.len(), 4);
        assert_eq!(report.steps[0].dropped_cells, ["c"]);
        assert_eq!(report.steps[1].dropped_features, ["ERCC-1"]);
        assert_eq!(
            (
                report.steps[1].features_before,
                report.steps[1].features_after
            ),
            (3, 2)
        );
        assert_eq!(
            report.steps[2].detail,
            StepDetail::LibrarySize {
                median: 4.0,
                min: 4.0,
                max: 16.0
            }
        );
        assert_eq!(report.steps[3].kind, "Log2p1");
        assert_eq!(report.standardise, Standardise::None);
    }

    #[test]
    fn library_size_before_selection_sums_over_all_features() {
        let mut t = table();
        t.values[(2, 0)] = 0.0;
        let steps = vec![
            Step::LibrarySizeNormalise,
            Step::RestrictToFeatures {
                features: vec!["Sst".into()],
            },
        ];
        let prepared = recipe(steps, Standardise::None).apply(t).unwrap();
        // Sums over all three: 13, 4, 2, 21 -> median 8.5.
        let expected = [
            3.0 / 13.0 * 8.5,
            2.0 / 4.0 * 8.5,
            1.0 / 2.0 * 8.5,
            9.0 / 21.0 * 8.5,
        ];
        for (got, want) in prepared.table.dense().unwrap().values.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn all_cells_z_scores_and_training_fold_leaves_values() {
        let steps = vec![Step::DropCellsWithMissing];
        let scaled = recipe(steps.clone(), Standardise::AllCells)
            .apply(table())
            .unwrap();
        // Gad1 over a, b, d: 1, 2, 7; mean 10/3, population variance (49 + 16 + 121) / 27.
        let sd = (186.0_f64 / 27.0).sqrt();
        assert!(
            (scaled.table.dense().unwrap().values[(0, 0)] - (1.0 - 10.0 / 3.0) / sd).abs() < 1e-12
        );
        assert_eq!(scaled.report.standardise, Standardise::AllCells);
        let unscaled = recipe(steps, Standardise::TrainingFold)
            .apply(table())
            .unwrap();
        assert_eq!(
            unscaled.table.dense().unwrap().values.column(0).to_vec(),
            [1.0, 2.0, 7.0]
        );
        assert_eq!(unscaled.report.standardise, Standardise::TrainingFold);
        assert!(
            unscaled
                .report
                .lines()
                .iter()
                .any(|l| l.contains("per training fold"))
        );
    }

    #[test]
    fn constant_features_fail_all_cells_unless_dropped_explicitly() {
        let mut t = table();
        t.values.column_mut(2).fill(4.0);
        let err = recipe(vec![Step::DropCellsWithMissing], Standardise::AllCells)
            .apply(t.clone())
            .unwrap_err();
        assert!(
            matches!(err, PrepError::ZeroVariance { ref feature, cells: 3 } if feature == "Sst"),
            "{err}"
        );
        let steps = vec![Step::DropCellsWithMissing, Step::DropConstantFeatures];
        let prepared = recipe(steps, Standardise::AllCells).apply(t).unwrap();
        assert_eq!(prepared.table.features(), ["Gad1", "ERCC-1"]);
        assert_eq!(prepared.report.steps[1].dropped_features, ["Sst"]);
    }

    #[test]
    fn errors_name_the_step_index_and_kind() {
        let steps = vec![
            Step::DropCellsWithMissing,
            Step::LnFeatures {
                features: vec!["ERCC-1".into()],
            },
        ];
        let err = recipe(steps, Standardise::None).apply(table()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "steps[1] (LnFeatures): cell \"b\", feature \"ERCC-1\" has value 0; \
             expected a positive value (the natural log is applied)"
        );
    }

    #[test]
    fn missing_values_left_at_the_end_are_an_error() {
        let err = recipe(vec![Step::Log2p1], Standardise::None)
            .apply(table())
            .unwrap_err();
        assert!(
            matches!(err, PrepError::NotFinite { ref cell, ref feature, .. } if cell == "c" && feature == "Gad1")
        );
        assert!(
            err.to_string().contains("add a DropCellsWithMissing"),
            "{err}"
        );
    }

    #[test]
    fn a_step_that_empties_the_table_is_an_error() {
        let mut t = table();
        t.values[(0, 2)] = f64::NAN;
        t.values[(1, 1)] = f64::NAN;
        t.values[(3, 0)] = f64::NAN;
        let err = recipe(vec![Step::DropCellsWithMissing], Standardise::None)
            .apply(t)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "steps[0] (DropCellsWithMissing) leaves 0 cells and 3 features; \
             a model matrix needs at least one of each"
        );
    }

    #[test]
    fn inconsistent_or_empty_input_is_an_error() {
        let mut t = table();
        t.cells.pop();
        let err = Recipe::default().apply(t).unwrap_err();
        assert!(
            matches!(
                err,
                PrepError::Shape {
                    cells: 3,
                    features: 3,
                    rows: 4,
                    columns: 3
                }
            ),
            "{err}"
        );
        let empty = FeatureTable {
            cells: vec![],
            features: vec![],
            values: ndarray::Array2::zeros((0, 0)),
        };
        let err = Recipe::default().apply(empty).unwrap_err();
        assert!(
            err.to_string().starts_with("the input leaves 0 cells"),
            "{err}"
        );
    }

    #[test]
    fn ron_fields_may_be_left_out_and_unknown_ones_are_rejected() {
        assert_eq!(ron::from_str::<Recipe>("()").unwrap(), Recipe::default());
        assert_eq!(Recipe::default().standardise, Standardise::AllCells);
        let short: Recipe =
            ron::from_str("(steps: [SelectGenes(n: 5, method: MeanDropout())])").unwrap();
        let expected = Step::SelectGenes {
            n: 5,
            method: GeneSelection::MeanDropout {
                threshold: 0.0,
                at_least: 10,
                decay: 1.5,
                y_offset: 0.02,
            },
        };
        assert_eq!(short.steps, [expected]);
        assert!(ron::from_str::<Recipe>("(steps: [], scale: AllCells)").is_err());
        let err =
            ron::from_str::<Recipe>("(steps: [ExcludeFeatures(pattern: \"x\", regex: true)])")
                .unwrap_err();
        assert!(err.to_string().contains("regex"), "{err}");
        let err =
            ron::from_str::<Recipe>("(steps: [SelectGenes(n: 5, method: MeanDropout(decy: 1))])")
                .unwrap_err();
        assert!(err.to_string().contains("decy"), "{err}");
    }
}
