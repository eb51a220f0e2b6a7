//! Per-feature sums over the entries a table stores (every entry of a dense
//! table, the non-zero ones of a CSR table, widened from `f32`), computed in
//! `f64` on blocks of cells in parallel and added up in block order, so a
//! result does not depend on the number of threads. Gene selection (variance, `Seurat`, `SeuratV3`) is built
//! on these sums, one implementation for both representations.

use ndarray::Axis;
use rayon::prelude::*;

use super::sparse::bad_stored_value;
use super::{PrepError, StepId};
use crate::data::first_stored_where;
use crate::data::{LoadedTable, SparseTable};

/// The sums of `f(feature, value)` over the stored entries of each feature.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ColumnSums {
    /// Σ f per feature.
    pub sums: Vec<f64>,
    /// Σ f² per feature.
    pub squares: Vec<f64>,
    /// How many entries each feature stores (cells minus its implicit zeros).
    pub stored: Vec<usize>,
}

impl ColumnSums {
    fn zeros(features: usize) -> Self {
        Self {
            sums: vec![0.0; features],
            squares: vec![0.0; features],
            stored: vec![0; features],
        }
    }

    fn add(&mut self, j: usize, value: f64) {
        self.sums[j] += value;
        self.squares[j] += value * value;
        self.stored[j] += 1;
    }

    fn merge(&mut self, other: &Self) {
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a += b;
        }
        for (a, b) in self.squares.iter_mut().zip(&other.squares) {
            *a += b;
        }
        for (a, b) in self.stored.iter_mut().zip(&other.stored) {
            *a += b;
        }
    }
}

/// Cells per block: at least 1024, at most 64 blocks, so the per-block sums
/// stay a small multiple of one row of features.
fn block_rows(cells: usize) -> usize {
    cells.div_ceil(64).max(1024)
}

/// Sums `f(feature, value)` and its square over every stored entry, per feature.
pub(super) fn column_sums(table: &LoadedTable, f: impl Fn(usize, f64) -> f64 + Sync) -> ColumnSums {
    let features = table.features().len();
    let rows = block_rows(table.cells().len());
    let blocks: Vec<ColumnSums> = match table {
        LoadedTable::Dense(t) => {
            let chunks: Vec<_> = t.values.axis_chunks_iter(Axis(0), rows).collect();
            chunks
                .into_par_iter()
                .map(|chunk| {
                    let mut sums = ColumnSums::zeros(features);
                    for row in chunk.rows() {
                        for (j, &v) in row.iter().enumerate() {
                            sums.add(j, f(j, v));
                        }
                    }
                    sums
                })
                .collect()
        }
        LoadedTable::Sparse(t) => {
            let indptr = t.values.indptr();
            let indptr = indptr.raw_storage();
            let (indices, data) = (t.values.indices(), t.values.data());
            let cells = t.cells.len();
            (0..cells.div_ceil(rows))
                .into_par_iter()
                .map(|b| {
                    let (first, last) = (b * rows, ((b + 1) * rows).min(cells));
                    let span = indptr[first]..indptr[last];
                    let mut sums = ColumnSums::zeros(features);
                    for (&j, &v) in indices[span.clone()].iter().zip(&data[span]) {
                        sums.add(j as usize, f(j as usize, f64::from(v)));
                    }
                    sums
                })
                .collect()
        }
    };
    let mut total = ColumnSums::zeros(features);
    for block in &blocks {
        total.merge(block);
    }
    total
}

/// The first stored entry (cell, feature, value), in row-major order, for which `bad` holds.
pub(super) fn first_stored(
    table: &LoadedTable,
    bad: impl Fn(f64) -> bool + Sync,
) -> Option<(usize, usize, f64)> {
    match table {
        LoadedTable::Dense(t) => t
            .values
            .indexed_iter()
            .find(|&(_, &v)| bad(v))
            .map(|((i, j), &v)| (i, j, v)),
        LoadedTable::Sparse(t) => first_stored_sparse(t, bad),
    }
}

/// The first stored entry (cell, feature, value) of a CSR table, in storage order, for which `bad` holds.
pub(super) fn first_stored_sparse(
    table: &SparseTable,
    bad: impl Fn(f64) -> bool + Sync,
) -> Option<(usize, usize, f64)> {
    first_stored_where(&table.values, bad)
}

/// Fails with the first stored entry for which `bad` holds, naming its cell and feature.
pub(super) fn refuse_stored(
    table: &LoadedTable,
    step: StepId,
    expected: &'static str,
    bad: impl Fn(f64) -> bool + Sync,
) -> Result<(), PrepError> {
    match first_stored(table, bad) {
        Some(entry) => Err(bad_stored_value(table, step, entry, expected)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;
    use crate::data::FeatureTable;

    fn tables() -> (LoadedTable, LoadedTable) {
        let dense = FeatureTable {
            cells: (0..3).map(|i| format!("c{i}")).collect(),
            features: (0..3).map(|j| format!("g{j}")).collect(),
            values: array![[0.0, 2.0, 0.0], [1.0, 0.0, -3.0], [4.0, 0.0, 0.0]],
        };
        let sparse = SparseTable::from_dense(&dense);
        (LoadedTable::Dense(dense), LoadedTable::Sparse(sparse))
    }

    #[test]
    fn sparse_sums_skip_the_zeros_dense_sums_count_them() {
        let (dense, sparse) = tables();
        let on_sparse = column_sums(&sparse, |_, v| v + 1.0);
        assert_eq!(on_sparse.sums, [7.0, 3.0, -2.0]);
        assert_eq!(on_sparse.squares, [29.0, 9.0, 4.0]);
        assert_eq!(on_sparse.stored, [2, 1, 1]);
        let on_dense = column_sums(&dense, |j, v| v * j as f64);
        assert_eq!(on_dense.sums, [0.0, 2.0, -6.0]);
        assert_eq!(on_dense.stored, [3, 3, 3]);
    }

    #[test]
    fn first_bad_entry_is_found_in_row_major_order() {
        let (dense, sparse) = tables();
        for table in [&dense, &sparse] {
            assert_eq!(first_stored(table, |v| v < 0.0), Some((1, 2, -3.0)));
            assert_eq!(first_stored(table, |v| v > 3.0), Some((2, 0, 4.0)));
            assert_eq!(first_stored(table, f64::is_nan), None);
        }
    }
}
