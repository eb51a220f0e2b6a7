//! Column statistics and z-scoring over all cells, as the sBNN paper did:
//! subtract each feature's mean and divide by its population standard
//! deviation (ddof = 0). A feature counts as constant when its SD is at most
//! 1e-12 times its largest absolute value, so round-off in a constant column
//! does not pass for variation. Constant features are an error here; a
//! `DropConstantFeatures` step removes them explicitly beforehand.
//!
//! A table kept sparse is not z-scored in place (its zeros would become
//! non-zero): its statistics are computed on the CSR matrix
//! ([`sparse_column_stats`]) and stored with it, and the model's row
//! gathering applies them ([`crate::data::SparseInput::push_row`]).

use ndarray::Array2;
use rayon::prelude::*;

use super::PrepError;
use crate::data::{ColumnScaling, FeatureTable, PreparedTable, SparseInput, SparseTable};

/// Mean, population SD and largest absolute value of one column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ColumnStats {
    pub mean: f64,
    pub sd: f64,
    pub max_abs: f64,
}

/// Per-column statistics, computed in two passes over the rows (mean, then
/// squared deviations) so a row-major matrix is read contiguously. A column
/// with a NaN gets NaN statistics.
pub(super) fn column_stats(values: &Array2<f64>) -> Vec<ColumnStats> {
    let (rows, columns) = values.dim();
    let mut sums = vec![0.0; columns];
    let mut max_abs = vec![0.0_f64; columns];
    for row in values.rows() {
        for ((s, m), &v) in sums.iter_mut().zip(max_abs.iter_mut()).zip(row) {
            *s += v;
            *m = m.max(v.abs());
        }
    }
    let count = rows.max(1) as f64;
    let means: Vec<f64> = sums.iter().map(|s| s / count).collect();
    let mut squares = vec![0.0; columns];
    for row in values.rows() {
        for ((q, m), &v) in squares.iter_mut().zip(&means).zip(row) {
            *q += (v - m) * (v - m);
        }
    }
    stats_from_sums(&means, &squares, &max_abs, count)
}

/// Per-column statistics from the means, the sums of squared deviations
/// over `count` cells and the largest magnitudes.
fn stats_from_sums(
    means: &[f64],
    squares: &[f64],
    max_abs: &[f64],
    count: f64,
) -> Vec<ColumnStats> {
    means
        .iter()
        .zip(squares)
        .zip(max_abs)
        .map(|((&mean, &q), &max_abs)| ColumnStats {
            mean,
            sd: (q / count).sqrt(),
            max_abs,
        })
        .collect()
}

/// Columns per block of [`sparse_column_stats`]'s parallel passes.
const STATS_BLOCK: usize = 256;

/// [`column_stats`] of a CSR table, absent entries counted as zeros, equal
/// to the dense table's bit for bit: each column's sums run over its cells
/// in row order as the dense passes do (an absent entry adds nothing to the
/// mean's sum and `mean²` to the squared deviations). Blocks of columns run
/// in parallel; each pass reads every row's stored entries in the block.
pub(super) fn sparse_column_stats(table: &SparseTable) -> Vec<ColumnStats> {
    let (rows, columns) = table.values.shape();
    let count = rows.max(1) as f64;
    let indptr = table.values.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (table.values.indices(), table.values.data());
    // Calls `visit(column - first, stored value or None)` for every column
    // of the block starting at `first`, cell by cell in row order.
    let each_cell = |first: usize, width: usize, visit: &mut dyn FnMut(usize, Option<f32>)| {
        for span in indptr.windows(2) {
            let (row_indices, row_data) = (&indices[span[0]..span[1]], &data[span[0]..span[1]]);
            let mut k = row_indices.partition_point(|&j| (j as usize) < first);
            for c in 0..width {
                let stored = row_indices.get(k).is_some_and(|&j| j as usize == first + c);
                if stored {
                    visit(c, row_data.get(k).copied());
                    k += 1;
                } else {
                    visit(c, None);
                }
            }
        }
    };
    let mut means = vec![0.0; columns];
    let mut max_abs = vec![0.0_f64; columns];
    means
        .par_chunks_mut(STATS_BLOCK)
        .zip(max_abs.par_chunks_mut(STATS_BLOCK))
        .enumerate()
        .for_each(|(b, (sums, maxima))| {
            each_cell(b * STATS_BLOCK, sums.len(), &mut |c, v| {
                if let Some(v) = v {
                    let v = f64::from(v);
                    sums[c] += v;
                    maxima[c] = maxima[c].max(v.abs());
                }
            });
            sums.iter_mut().for_each(|s| *s /= count);
        });
    let mut squares = vec![0.0; columns];
    squares
        .par_chunks_mut(STATS_BLOCK)
        .zip(means.par_chunks(STATS_BLOCK))
        .enumerate()
        .for_each(|(b, (squares, means))| {
            each_cell(b * STATS_BLOCK, squares.len(), &mut |c, v| {
                let d = v.map_or(0.0, f64::from) - means[c];
                squares[c] += d * d;
            });
        });
    stats_from_sums(&means, &squares, &max_abs, count)
}

/// The column statistics of a prepared table, dense or kept sparse.
pub(super) fn prepared_column_stats(table: &PreparedTable) -> Vec<ColumnStats> {
    match table {
        PreparedTable::Dense(t) => column_stats(&t.values),
        PreparedTable::Sparse(s) => sparse_column_stats(&s.table),
    }
}

/// Whether a column is constant up to round-off.
pub(super) fn is_constant(stats: &ColumnStats) -> bool {
    stats.sd <= 1e-12 * stats.max_abs
}

/// Z-scores every column of `table` over all its cells: a dense table in
/// place, a table kept sparse by storing the scaling its rows get as they
/// are gathered.
pub(super) fn zscore_prepared(table: &mut PreparedTable) -> Result<(), PrepError> {
    match table {
        PreparedTable::Dense(t) => zscore_all_cells(t),
        PreparedTable::Sparse(s) => zscore_sparse(s),
    }
}

/// Refuses statistics that overflowed (finite values whose mean or spread
/// is not) or that mark a constant feature.
fn check_stats(
    stats: &[ColumnStats],
    features: &[String],
    cells: usize,
    column_finite: impl Fn(usize) -> bool,
) -> Result<(), PrepError> {
    let overflowed = |(j, s): &(usize, &ColumnStats)| {
        !(s.mean.is_finite() && s.sd.is_finite()) && column_finite(*j)
    };
    if let Some((j, s)) = stats.iter().enumerate().find(overflowed) {
        return Err(PrepError::TooLarge {
            feature: features.get(j).cloned().unwrap_or_default(),
            max_abs: s.max_abs,
        });
    }
    if let Some(j) = stats.iter().position(is_constant) {
        return Err(PrepError::ZeroVariance {
            feature: features.get(j).cloned().unwrap_or_default(),
            cells,
        });
    }
    Ok(())
}

/// Z-scores a table kept sparse: its statistics, computed on the CSR
/// matrix (whose stored values are finite), become its row scaling.
fn zscore_sparse(input: &mut SparseInput) -> Result<(), PrepError> {
    let stats = sparse_column_stats(&input.table);
    check_stats(
        &stats,
        &input.table.features,
        input.table.cells.len(),
        |_| true,
    )?;
    input.scaling = Some(ColumnScaling::new(
        stats.iter().map(|s| s.mean).collect(),
        stats.iter().map(|s| s.sd).collect(),
    ));
    Ok(())
}

/// Z-scores every column of `table` in place over all its cells.
pub(super) fn zscore_all_cells(table: &mut FeatureTable) -> Result<(), PrepError> {
    let stats = column_stats(&table.values);
    check_stats(&stats, &table.features, table.cells.len(), |j| {
        table.values.column(j).iter().all(|v| v.is_finite())
    })?;
    for mut row in table.values.rows_mut() {
        for (v, s) in row.iter_mut().zip(&stats) {
            *v = (*v - s.mean) / s.sd;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn stats_use_the_population_sd() {
        let stats = column_stats(&array![[1.0, -4.0], [3.0, 0.0]]);
        assert_eq!(
            stats[0],
            ColumnStats {
                mean: 2.0,
                sd: 1.0,
                max_abs: 3.0
            }
        );
        assert_eq!(
            stats[1],
            ColumnStats {
                mean: -2.0,
                sd: 2.0,
                max_abs: 4.0
            }
        );
    }

    /// A table with empty rows, an empty column and columns past one block.
    fn sparse_example() -> FeatureTable {
        let (rows, columns) = (37, STATS_BLOCK + 9);
        let values = Array2::from_shape_fn((rows, columns), |(i, j)| {
            let hash = (i * 7919 + j * 104_729) % 23;
            if j == 3 || i % 5 == 0 || hash > 4 {
                0.0
            } else {
                f64::from(((i * j) % 11) as f32 * 0.37 + 0.1)
            }
        });
        FeatureTable {
            cells: (0..rows).map(|i| format!("c{i}")).collect(),
            features: (0..columns).map(|j| format!("g{j}")).collect(),
            values,
        }
    }

    #[test]
    fn sparse_stats_equal_the_dense_stats_bit_for_bit() {
        let table = sparse_example();
        let sparse = SparseTable::from_dense(&table);
        assert!(sparse.values.nnz() > 0 && sparse.values.nnz() < table.values.len() / 3);
        let dense = column_stats(&table.values);
        let from_csr = sparse_column_stats(&sparse);
        assert_eq!(dense.len(), from_csr.len());
        for (j, (d, s)) in dense.iter().zip(&from_csr).enumerate() {
            assert_eq!(d.mean.to_bits(), s.mean.to_bits(), "mean of column {j}");
            assert_eq!(d.sd.to_bits(), s.sd.to_bits(), "sd of column {j}");
            assert_eq!(
                d.max_abs.to_bits(),
                s.max_abs.to_bits(),
                "max of column {j}"
            );
        }
    }

    #[test]
    fn a_sparse_table_is_zscored_by_its_row_scaling() {
        let mut table = sparse_example();
        table.features.truncate(3);
        table.values = table.values.slice(ndarray::s![.., ..3]).to_owned();
        let mut sparse = PreparedTable::Sparse(SparseInput {
            table: SparseTable::from_dense(&table),
            scaling: None,
        });
        zscore_prepared(&mut sparse).unwrap();
        let mut dense = PreparedTable::Dense(table.clone());
        zscore_prepared(&mut dense).unwrap();
        let (PreparedTable::Sparse(input), Some(z)) = (&sparse, dense.dense()) else {
            panic!("the forms changed")
        };
        let mut row = Vec::new();
        for i in 0..table.cells.len() {
            row.clear();
            input.push_row(i, &mut row);
            let want: Vec<f32> = z.values.row(i).iter().map(|&v| v as f32).collect();
            assert_eq!(row, want, "row {i}");
        }
    }

    #[test]
    fn a_sparse_column_of_zeros_is_refused_by_name() {
        let mut sparse = PreparedTable::Sparse(SparseInput {
            table: SparseTable::from_dense(&sparse_example()),
            scaling: None,
        });
        let err = zscore_prepared(&mut sparse).unwrap_err();
        assert!(
            err.to_string()
                .contains("feature \"g3\" is constant over all 37 cells"),
            "{err}"
        );
    }

    #[test]
    fn roundoff_in_a_constant_column_counts_as_constant() {
        let v = 0.1 + 0.2;
        let stats = column_stats(&array![[v], [v], [v]]);
        assert!(is_constant(&stats[0]));
        let tiny = column_stats(&array![[1e-20], [3e-20]]);
        assert!(!is_constant(&tiny[0]));
    }

    #[test]
    fn zscore_gives_hand_checked_values() {
        let mut table = FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into()],
            features: vec!["x".into()],
            values: array![[1.0], [2.0], [6.0]],
        };
        zscore_all_cells(&mut table).unwrap();
        // mean 3, population variance (4 + 1 + 9) / 3 = 14/3.
        let sd = (14.0_f64 / 3.0).sqrt();
        let expected = [-2.0 / sd, -1.0 / sd, 3.0 / sd];
        for (got, want) in table.values.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn zscore_rejects_a_constant_feature_by_name() {
        let mut table = FeatureTable {
            cells: vec!["a".into(), "b".into()],
            features: vec!["x".into(), "flat".into()],
            values: array![[1.0, 5.0], [2.0, 5.0]],
        };
        let err = zscore_all_cells(&mut table).unwrap_err();
        assert!(
            err.to_string()
                .contains("feature \"flat\" is constant over all 2 cells"),
            "{err}"
        );
    }
}
