//! What a recipe fitted on its training cells, in a form that prepares other
//! cells the same way: the feature lists each step worked on, the library-size
//! target, the logs, and the z-scoring means and SDs. [`FittedRecipe::replay`]
//! runs it on a new table whose columns are [`FittedRecipe::inputs`]; values
//! it cannot handle (a zero library size, a missing value) skip the cell and
//! say why, never turn into NaN.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::standardise::prepared_column_stats;
use super::{PrepError, Standardise, Step, StepId};
use crate::data::{FeatureTable, PreparedTable};

/// A recipe as fitted on its training cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedRecipe {
    /// The features the replay reads, in order (the input table's, or the
    /// first selection's when nothing before it looked at the values).
    pub inputs: Vec<String>,
    /// Mean of each input feature over the training cells, as read.
    pub input_means: Vec<f64>,
    /// Largest value of each input feature over the training cells, as read.
    pub input_max: Vec<f64>,
    /// The steps that act on values or cells, and the selections between them.
    pub steps: Vec<FittedStep>,
    /// The prepared features, in the model's order.
    pub features: Vec<String>,
    /// The standardisation scope of the recipe.
    pub standardise: Standardise,
    /// Training means of the prepared features (z-scoring with `AllCells`).
    pub means: Option<Vec<f64>>,
    /// Training population SDs of the prepared features (with `AllCells`).
    pub sds: Option<Vec<f64>>,
}

/// One step of a fitted recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FittedStep {
    /// Keep these features, in this order.
    Select(Vec<String>),
    /// Divide each cell by its sum over the current features, times `target`
    /// (the training cells' median sum).
    LibrarySize {
        /// The training median library size.
        target: f64,
    },
    /// Every value times `factor`.
    Scale {
        /// The multiplier.
        factor: f64,
    },
    /// `log2(x + 1)`.
    Log2p1,
    /// `ln(x + 1)`.
    Log1p,
    /// Natural log of the named features.
    Ln(Vec<String>),
    /// Skip cells whose sum over the current features is zero.
    DropZeroLibrary,
    /// Skip cells with a missing value in the current features.
    DropCellsWithMissing,
}

/// Cells left out by [`FittedRecipe::replay`], and why.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Skipped {
    /// Cells whose library size over the model's features is zero.
    pub zero_library: Vec<String>,
    /// Cells with a missing value (empty, NaN) in a feature the model reads.
    pub missing_values: Vec<String>,
}

impl Skipped {
    /// Number of skipped cells.
    pub fn len(&self) -> usize {
        self.zero_library.len() + self.missing_values.len()
    }

    /// Whether no cell was skipped.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Records the fitted form of a recipe while it runs (see `Recipe::apply_fitted`).
#[derive(Debug, Default)]
pub(super) struct Recorder {
    inputs: Option<(Vec<String>, Vec<f64>, Vec<f64>)>,
    steps: Vec<FittedStep>,
    current: Vec<String>,
}

impl Recorder {
    /// Starts with the input table's features and their training mean and maximum.
    pub fn new(features: Vec<String>, means: Vec<f64>, max: Vec<f64>) -> Self {
        Recorder {
            current: features.clone(),
            inputs: Some((features, means, max)),
            steps: Vec::new(),
        }
    }

    /// Records `step`, which turned a table with the current features into one with `after`.
    pub fn step(&mut self, step: &Step, after: &[String], median: Option<f64>) {
        let fitted = match step {
            Step::LibrarySizeNormalise => median.map(|target| FittedStep::LibrarySize { target }),
            Step::Scale { factor } => Some(FittedStep::Scale { factor: *factor }),
            Step::Log2p1 => Some(FittedStep::Log2p1),
            Step::Log1p => Some(FittedStep::Log1p),
            Step::LnFeatures { features } => Some(FittedStep::Ln(features.clone())),
            Step::DropZeroLibrary => Some(FittedStep::DropZeroLibrary),
            Step::DropCellsWithMissing => Some(FittedStep::DropCellsWithMissing),
            _ => None,
        };
        if let Some(fitted) = fitted {
            self.steps.push(fitted);
        }
        if after != self.current.as_slice() {
            self.current = after.to_vec();
            // A selection before any step that looks at values only narrows what is read.
            if self.steps.is_empty() {
                if let Some((inputs, means, max)) = &mut self.inputs {
                    let index: std::collections::HashMap<&str, usize> = inputs
                        .iter()
                        .enumerate()
                        .map(|(i, f)| (f.as_str(), i))
                        .collect();
                    let keep: Vec<usize> = after
                        .iter()
                        .filter_map(|f| index.get(f.as_str()).copied())
                        .collect();
                    *means = keep.iter().map(|&i| means[i]).collect();
                    *max = keep.iter().map(|&i| max[i]).collect();
                    *inputs = keep.iter().map(|&i| inputs[i].clone()).collect();
                }
            } else {
                self.steps.push(FittedStep::Select(after.to_vec()));
            }
        }
    }

    /// The fitted recipe for the prepared `table` (values before z-scoring).
    pub fn finish(self, table: &PreparedTable, standardise: Standardise) -> FittedRecipe {
        let (inputs, input_means, input_max) = self.inputs.unwrap_or_default();
        let (means, sds) = if standardise == Standardise::AllCells {
            let stats = prepared_column_stats(table);
            (
                Some(stats.iter().map(|s| s.mean).collect()),
                Some(stats.iter().map(|s| s.sd).collect()),
            )
        } else {
            (None, None)
        };
        FittedRecipe {
            inputs,
            input_means,
            input_max,
            steps: self.steps,
            features: table.features().to_vec(),
            standardise,
            means,
            sds,
        }
    }
}

/// Training mean and maximum of each column of `values`, ignoring NaN.
pub(super) fn input_summary(values: &Array2<f64>) -> (Vec<f64>, Vec<f64>) {
    values
        .columns()
        .into_iter()
        .map(|column| {
            let finite: Vec<f64> = column.iter().copied().filter(|v| v.is_finite()).collect();
            let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
            let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (mean, max)
        })
        .unzip()
}

impl FittedRecipe {
    /// Prepares `table` (columns exactly [`FittedRecipe::inputs`], in order) as
    /// the recipe prepared the training cells: the same steps with the
    /// training library-size target and z-scoring statistics. Returns the
    /// prepared table (columns [`FittedRecipe::features`]) and the cells it
    /// skipped. A negative count or a log of a value at or below -1 is an
    /// error naming the cell and feature.
    pub fn replay(&self, table: FeatureTable) -> Result<(FeatureTable, Skipped), PrepError> {
        let mut table = table;
        let mut skipped = Skipped::default();
        for (index, step) in self.steps.iter().enumerate() {
            let id = StepId {
                index,
                kind: "replay",
            };
            table = match step {
                FittedStep::Select(features) => select(&table, features),
                FittedStep::LibrarySize { target } => {
                    let table = drop_cells(table, &mut skipped, missing_row, Reason::Missing);
                    let table = drop_cells(table, &mut skipped, zero_sum, Reason::ZeroLibrary);
                    check_values(&table, id, "a finite, non-negative count", |v| v >= 0.0)?;
                    normalise(table, *target)
                }
                FittedStep::Scale { factor } => {
                    let mut table = table;
                    table.values.mapv_inplace(|v| v * factor);
                    table
                }
                FittedStep::Log2p1 => log(table, id, f64::log2)?,
                FittedStep::Log1p => log(table, id, f64::ln)?,
                FittedStep::Ln(features) => ln(table, features, id)?,
                FittedStep::DropZeroLibrary => {
                    drop_cells(table, &mut skipped, zero_sum, Reason::ZeroLibrary)
                }
                FittedStep::DropCellsWithMissing => {
                    drop_cells(table, &mut skipped, missing_row, Reason::Missing)
                }
            };
        }
        let mut table = select(&table, &self.features);
        table = drop_cells(table, &mut skipped, missing_row, Reason::Missing);
        if let (Some(means), Some(sds)) = (&self.means, &self.sds) {
            for mut row in table.values.rows_mut() {
                for ((v, mean), sd) in row.iter_mut().zip(means).zip(sds) {
                    *v = (*v - mean) / sd;
                }
            }
        }
        Ok((table, skipped))
    }
}

/// Why a cell was skipped.
#[derive(Clone, Copy)]
enum Reason {
    ZeroLibrary,
    Missing,
}

fn zero_sum(row: ndarray::ArrayView1<'_, f64>) -> bool {
    row.sum() == 0.0
}

fn missing_row(row: ndarray::ArrayView1<'_, f64>) -> bool {
    row.iter().any(|v| !v.is_finite())
}

/// Drops the cells for which `bad` holds, recording them under `reason`.
fn drop_cells(
    table: FeatureTable,
    skipped: &mut Skipped,
    bad: fn(ndarray::ArrayView1<'_, f64>) -> bool,
    reason: Reason,
) -> FeatureTable {
    let (keep, dropped): (Vec<usize>, Vec<usize>) =
        (0..table.cells.len()).partition(|&i| !bad(table.values.row(i)));
    if dropped.is_empty() {
        return table;
    }
    let list = match reason {
        Reason::ZeroLibrary => &mut skipped.zero_library,
        Reason::Missing => &mut skipped.missing_values,
    };
    list.extend(dropped.iter().map(|&i| table.cells[i].clone()));
    table.select_cells(&keep).unwrap_or_default()
}

/// The columns `features` of `table` (every one is present by construction).
fn select(table: &FeatureTable, features: &[String]) -> FeatureTable {
    if table.features == features {
        return table.clone();
    }
    let index: std::collections::HashMap<&str, usize> = table
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    let columns: Vec<usize> = features
        .iter()
        .filter_map(|f| index.get(f.as_str()).copied())
        .collect();
    let mut selected = table.select_features(&columns).unwrap_or_default();
    selected.cells = table.cells.clone();
    selected
}

fn check_values(
    table: &FeatureTable,
    step: StepId,
    expected: &'static str,
    good: impl Fn(f64) -> bool,
) -> Result<(), PrepError> {
    super::transform::find_bad_value(table, step, expected, |v| !good(v))
}

/// Each cell divided by its sum and multiplied by `target`, as `LibrarySizeNormalise` does.
fn normalise(mut table: FeatureTable, target: f64) -> FeatureTable {
    for mut row in table.values.rows_mut() {
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum * target);
    }
    table
}

fn log(
    mut table: FeatureTable,
    step: StepId,
    f: fn(f64) -> f64,
) -> Result<FeatureTable, PrepError> {
    check_values(
        &table,
        step,
        "a value above -1 (log(x + 1) is applied)",
        |v| v.is_nan() || v > -1.0,
    )?;
    table.values.mapv_inplace(|v| f(v + 1.0));
    Ok(table)
}

fn ln(
    mut table: FeatureTable,
    features: &[String],
    step: StepId,
) -> Result<FeatureTable, PrepError> {
    let columns: Vec<usize> = features
        .iter()
        .filter_map(|f| table.features.iter().position(|g| g == f))
        .collect();
    for &j in &columns {
        for i in 0..table.cells.len() {
            let v = table.values[(i, j)];
            if v.is_finite() && v <= 0.0 {
                return Err(super::transform::bad_value(
                    &table,
                    step,
                    i,
                    j,
                    "a positive value (the natural log is applied)",
                ));
            }
        }
        table.values.column_mut(j).mapv_inplace(f64::ln);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prep::{GeneSelection, Recipe};
    use ndarray::array;

    fn table() -> FeatureTable {
        FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            features: vec!["Gad1".into(), "ERCC-1".into(), "Sst".into(), "Vip".into()],
            values: array![
                [1.0, 9.0, 3.0, 0.0],
                [2.0, 0.0, 2.0, 5.0],
                [4.0, 1.0, 1.0, 1.0],
                [7.0, 5.0, 9.0, 2.0]
            ],
        }
    }

    #[test]
    fn replaying_on_the_training_cells_gives_the_prepared_table_exactly() {
        let recipe = Recipe {
            steps: vec![
                Step::ExcludeFeatures {
                    pattern: "^ERCC-".into(),
                },
                Step::LibrarySizeNormalise,
                Step::SelectGenes {
                    n: 2,
                    method: GeneSelection::Variance,
                },
                Step::Log2p1,
                Step::Scale { factor: 0.5 },
            ],
            standardise: Standardise::AllCells,
            keep_sparse: false,
        };
        let (prepared, fitted) = recipe
            .apply_fitted(crate::data::LoadedTable::Dense(table()))
            .unwrap();
        assert_eq!(fitted.inputs, ["Gad1", "Sst", "Vip"]);
        assert_eq!(fitted.input_means[0], 3.5);
        let raw = select(&table(), &fitted.inputs);
        let (replayed, skipped) = fitted.replay(raw).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(Some(&replayed), prepared.table.dense());
    }

    #[test]
    fn new_cells_use_the_training_statistics_and_bad_cells_are_skipped() {
        let recipe = Recipe {
            steps: vec![Step::LibrarySizeNormalise, Step::Log2p1],
            standardise: Standardise::AllCells,
            keep_sparse: false,
        };
        let (_, fitted) = recipe
            .apply_fitted(crate::data::LoadedTable::Dense(table()))
            .unwrap();
        let LibrarySizeTarget(target) = target_of(&fitted);
        let new = FeatureTable {
            cells: vec!["x".into(), "empty".into(), "gap".into()],
            features: fitted.inputs.clone(),
            values: array![
                [1.0, 1.0, 1.0, 1.0],
                [0.0, 0.0, 0.0, 0.0],
                [1.0, f64::NAN, 1.0, 1.0]
            ],
        };
        let (replayed, skipped) = fitted.replay(new).unwrap();
        assert_eq!(replayed.cells, ["x"]);
        assert_eq!(skipped.zero_library, ["empty"]);
        assert_eq!(skipped.missing_values, ["gap"]);
        let means = fitted.means.as_ref().unwrap();
        let sds = fitted.sds.as_ref().unwrap();
        let expected = ((target / 4.0 + 1.0).log2() - means[0]) / sds[0];
        assert!((replayed.values[(0, 0)] - expected).abs() < 1e-12);
    }

    struct LibrarySizeTarget(f64);

    fn target_of(fitted: &FittedRecipe) -> LibrarySizeTarget {
        fitted
            .steps
            .iter()
            .find_map(|s| match s {
                FittedStep::LibrarySize { target } => Some(LibrarySizeTarget(*target)),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn a_negative_count_is_an_error_naming_cell_and_feature() {
        let recipe = Recipe {
            steps: vec![Step::LibrarySizeNormalise],
            standardise: Standardise::None,
            keep_sparse: false,
        };
        let (_, fitted) = recipe
            .apply_fitted(crate::data::LoadedTable::Dense(table()))
            .unwrap();
        let mut new = table();
        new.values[(1, 2)] = -3.0;
        let err = fitted.replay(new).unwrap_err().to_string();
        assert!(err.contains("\"b\"") && err.contains("\"Sst\""), "{err}");
    }
}
