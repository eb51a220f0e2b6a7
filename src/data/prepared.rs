//! The table a model gets from a modality's recipe: dense, or kept sparse
//! (`keep_sparse: true` in the recipe) so that a model gathers each
//! mini-batch's rows from the CSR matrix and nothing ever holds all cells x
//! features dense.
//!
//! A kept-sparse table may carry the z-scoring of its columns
//! ([`ColumnScaling`]: means and SDs computed on the CSR matrix). The
//! scaling is applied to a row as it is gathered ([`SparseInput::push_row`]),
//! with the formula the dense z-scoring uses, so a row gathered from a
//! kept-sparse table equals the row of the dense table the same recipe
//! makes without `keep_sparse`, bit for bit (the statistics are computed
//! in the dense pass's order).

use super::{FeatureTable, SparseTable};

/// Per-column z-scoring of a kept-sparse table: `(x - mean) / sd`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnScaling {
    /// Each column's mean over all cells (absent entries are zeros).
    pub means: Vec<f64>,
    /// Each column's population standard deviation over all cells.
    pub sds: Vec<f64>,
    /// Each column's scaled zero, `(0 - mean) / sd` as `f32`: what an
    /// absent entry becomes.
    zeros: Vec<f32>,
}

impl ColumnScaling {
    /// The scaling with these means and SDs (one per column, same length).
    pub fn new(means: Vec<f64>, sds: Vec<f64>) -> Self {
        let zeros = means
            .iter()
            .zip(&sds)
            .map(|(m, s)| ((0.0 - m) / s) as f32)
            .collect();
        Self { means, sds, zeros }
    }

    /// `value` of column `j` scaled, as `f32`.
    fn scale(&self, j: usize, value: f32) -> f32 {
        match (self.means.get(j), self.sds.get(j)) {
            (Some(m), Some(s)) => ((f64::from(value) - m) / s) as f32,
            _ => value,
        }
    }
}

/// A CSR table handed to a model as it is, with optional z-scoring applied
/// row by row as rows are gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseInput {
    /// The prepared values, still sparse.
    pub table: SparseTable,
    /// The z-scoring to apply to gathered rows (`standardise: AllCells`).
    pub scaling: Option<ColumnScaling>,
}

impl SparseInput {
    /// Appends row `r` to `out` as `f32`, dense: absent entries are zeros
    /// (or their scaled value), stored ones widened, scaled and rounded.
    /// A row past the end appends nothing.
    pub fn push_row(&self, r: usize, out: &mut Vec<f32>) {
        let Some(row) = self.table.values.outer_view(r) else {
            return;
        };
        let start = out.len();
        match &self.scaling {
            None => out.resize(start + self.table.features.len(), 0.0),
            Some(scaling) => out.extend_from_slice(&scaling.zeros),
        }
        let slots = &mut out[start..];
        for (j, &v) in row.iter() {
            if let Some(slot) = slots.get_mut(j) {
                *slot = match &self.scaling {
                    None => v,
                    Some(scaling) => scaling.scale(j, v),
                };
            }
        }
    }
}

/// A modality's prepared values: what a model trains on.
#[derive(Debug, Clone, PartialEq)]
pub enum PreparedTable {
    /// A dense `f64` table (every recipe without `keep_sparse`, and any
    /// table that was dense to begin with).
    Dense(FeatureTable),
    /// A CSR table kept sparse by its recipe.
    Sparse(SparseInput),
}

impl From<FeatureTable> for PreparedTable {
    fn from(table: FeatureTable) -> Self {
        Self::Dense(table)
    }
}

impl PreparedTable {
    /// Cell ids, one per row.
    pub fn cells(&self) -> &[String] {
        match self {
            Self::Dense(t) => &t.cells,
            Self::Sparse(s) => &s.table.cells,
        }
    }

    /// Feature names, one per column.
    pub fn features(&self) -> &[String] {
        match self {
            Self::Dense(t) => &t.features,
            Self::Sparse(s) => &s.table.features,
        }
    }

    /// The dense table; `None` for a table kept sparse.
    pub fn dense(&self) -> Option<&FeatureTable> {
        match self {
            Self::Dense(t) => Some(t),
            Self::Sparse(_) => None,
        }
    }

    /// Whether the table was kept sparse.
    pub fn is_sparse(&self) -> bool {
        matches!(self, Self::Sparse(_))
    }

    /// Each column's mean over all cells, of the values a model sees (for a
    /// table kept sparse: absent entries as zeros, z-scoring applied).
    pub fn column_means(&self) -> Vec<f64> {
        match self {
            Self::Dense(t) => t
                .values
                .mean_axis(ndarray::Axis(0))
                .map(|m| m.to_vec())
                .unwrap_or_default(),
            Self::Sparse(s) => {
                let n = s.table.cells.len().max(1) as f64;
                let mut sums = vec![0.0; s.table.features.len()];
                for (&v, (_, j)) in s.table.values.iter() {
                    if let Some(sum) = sums.get_mut(j as usize) {
                        *sum += f64::from(v);
                    }
                }
                let means = sums.into_iter().map(|sum| sum / n);
                match &s.scaling {
                    None => means.collect(),
                    Some(c) => means
                        .zip(c.means.iter().zip(&c.sds))
                        .map(|(mean, (m, sd))| (mean - m) / sd)
                        .collect(),
                }
            }
        }
    }

    /// `(rows, columns)` of the values.
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Self::Dense(t) => t.values.dim(),
            Self::Sparse(s) => s.table.values.shape(),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn table() -> FeatureTable {
        FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into()],
            features: vec!["f0".into(), "f1".into(), "f2".into()],
            values: array![[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [3.0, 0.0, 4.0]],
        }
    }

    #[test]
    fn gathered_rows_are_the_dense_rows() {
        let sparse = SparseInput {
            table: SparseTable::from_dense(&table()),
            scaling: None,
        };
        let mut out = vec![9.0];
        sparse.push_row(2, &mut out);
        sparse.push_row(1, &mut out);
        assert_eq!(out, [9.0, 3.0, 0.0, 4.0, 0.0, 0.0, 0.0]);
        sparse.push_row(3, &mut out);
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn scaling_applies_to_stored_and_absent_entries() {
        let scaling = ColumnScaling::new(vec![1.0, 0.5, 2.0], vec![2.0, 0.5, 4.0]);
        let sparse = SparseInput {
            table: SparseTable::from_dense(&table()),
            scaling: Some(scaling),
        };
        let mut out = Vec::new();
        sparse.push_row(0, &mut out);
        assert_eq!(out, [-0.5, 2.0, -0.5]);
        out.clear();
        sparse.push_row(2, &mut out);
        assert_eq!(out, [1.0, -1.0, 0.5]);
    }

    #[test]
    fn the_table_answers_for_both_forms() {
        let dense = PreparedTable::from(table());
        let sparse = PreparedTable::Sparse(SparseInput {
            table: SparseTable::from_dense(&table()),
            scaling: None,
        });
        for t in [&dense, &sparse] {
            assert_eq!(t.cells(), ["a", "b", "c"]);
            assert_eq!(t.features(), ["f0", "f1", "f2"]);
            assert_eq!(t.shape(), (3, 3));
        }
        assert!(dense.dense().is_some() && !dense.is_sparse());
        assert_eq!(dense.column_means(), [1.0, 0.5, 4.0 / 3.0]);
        assert_eq!(sparse.column_means(), [1.0, 0.5, 4.0 / 3.0]);
        assert!(sparse.dense().is_none() && sparse.is_sparse());
    }
}
