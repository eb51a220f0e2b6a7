//! Steps on a sparse (CSR) table, so a 10^5-cell count matrix is normalised,
//! logged, filtered and ranked without a dense copy: every step here touches
//! only the stored (non-zero) entries, and each gives the numbers its dense
//! counterpart gives up to the order of floating-point sums and the storage
//! of each value as `f32`: a value is computed in `f64` from the stored one
//! widened, and sums are taken in `f64`, but what is stored again is rounded
//! to the nearest `f32` (a relative change of at most 2^-24). A log of
//! `x + 1` keeps zeros at zero, so the matrix stays sparse throughout.

use rayon::prelude::*;
use regex::Regex;

use super::columns::first_stored_sparse;
use super::subset::Outcome;
use super::transform::median_of_sorted;
use super::{PrepError, StepDetail, StepId};
use crate::data::{LoadedTable, SparseTable};

/// Calls `visit(cell, feature, value)` on every entry a table stores: every
/// entry of a dense table (row by row), the non-zero ones of a sparse table.
pub(super) fn for_each_stored(
    table: &LoadedTable,
    mut visit: impl FnMut(usize, usize, f64) -> Result<(), PrepError>,
) -> Result<(), PrepError> {
    match table {
        LoadedTable::Dense(t) => {
            for (i, row) in t.values.rows().into_iter().enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    visit(i, j, v)?;
                }
            }
        }
        LoadedTable::Sparse(t) => {
            for (i, row) in t.values.outer_iterator().enumerate() {
                for (j, &v) in row.iter() {
                    visit(i, j, f64::from(v))?;
                }
            }
        }
    }
    Ok(())
}

/// The error for `value` at cell `i`, feature `j` of `table`.
pub(super) fn bad_stored_value(
    table: &LoadedTable,
    step: StepId,
    (i, j, value): (usize, usize, f64),
    expected: &'static str,
) -> PrepError {
    PrepError::BadValue {
        step,
        cell: table.cells().get(i).cloned().unwrap_or_default(),
        feature: table.features().get(j).cloned().unwrap_or_default(),
        value,
        expected,
    }
}

/// The table back if no stored value is `bad`, else the first such value as an error.
fn check_values(
    table: SparseTable,
    step: StepId,
    expected: &'static str,
    bad: impl Fn(f64) -> bool + Sync,
) -> Result<SparseTable, PrepError> {
    match first_stored_sparse(&table, bad) {
        Some((i, j, value)) => Err(PrepError::BadValue {
            step,
            cell: table.cells.get(i).cloned().unwrap_or_default(),
            feature: table.features.get(j).cloned().unwrap_or_default(),
            value,
            expected,
        }),
        None => Ok(table),
    }
}

/// Each cell's sum over the stored entries, in storage order, in `f64`.
fn row_sums(table: &SparseTable) -> Vec<f64> {
    let data = table.values.data();
    table
        .values
        .indptr()
        .raw_storage()
        .par_windows(2)
        .map(|w| data[w[0]..w[1]].iter().map(|&v| f64::from(v)).sum())
        .collect()
}

/// Cells per block of a parallel pass over the stored values.
const BLOCK_ROWS: usize = 1024;

/// Calls `visit(cell, values)` on every cell's stored values, blocks of cells in parallel.
fn par_rows_mut(table: &mut SparseTable, visit: impl Fn(usize, &mut [f32]) + Sync) {
    let indptr = table.values.indptr().raw_storage().to_vec();
    let data = table.values.data_mut();
    let mut blocks = Vec::with_capacity(indptr.len() / BLOCK_ROWS + 1);
    let mut rest = data;
    for first in (0..indptr.len().saturating_sub(1)).step_by(BLOCK_ROWS) {
        let last = (first + BLOCK_ROWS).min(indptr.len() - 1);
        let (block, tail) = rest.split_at_mut(indptr[last] - indptr[first]);
        blocks.push((first, last, block));
        rest = tail;
    }
    blocks.into_par_iter().for_each(|(first, last, block)| {
        let offset = indptr[first];
        for i in first..last {
            visit(i, &mut block[indptr[i] - offset..indptr[i + 1] - offset]);
        }
    });
}

/// `LibrarySizeNormalise` on CSR: each cell divided by its sum, times the median sum.
pub(super) fn library_size_normalise(
    table: SparseTable,
    step: StepId,
) -> Result<(LoadedTable, Outcome), PrepError> {
    let mut table = check_values(table, step, "a finite, non-negative count", |v| {
        !(v.is_finite() && v >= 0.0)
    })?;
    let sums = row_sums(&table);
    if let Some(i) = sums.iter().position(|&s| s == 0.0) {
        return Err(PrepError::ZeroLibrary {
            step,
            cell: table.cells.get(i).cloned().unwrap_or_default(),
            features: table.features.len(),
        });
    }
    let mut sorted = sums.clone();
    sorted.sort_by(f64::total_cmp);
    let median = median_of_sorted(&sorted);
    par_rows_mut(&mut table, |i, row| {
        for v in row {
            *v = (f64::from(*v) / sums[i] * median) as f32;
        }
    });
    let min = sorted.first().copied().unwrap_or(f64::NAN);
    let max = sorted.last().copied().unwrap_or(f64::NAN);
    Ok((
        LoadedTable::Sparse(table),
        Outcome::detail(StepDetail::LibrarySize { median, min, max }),
    ))
}

/// A log of `x + 1` (`log` maps `x + 1`), applied to the stored values; values must exceed -1.
pub(super) fn log_plus_one(
    table: SparseTable,
    step: StepId,
    expected: &'static str,
    log: fn(f64) -> f64,
) -> Result<(LoadedTable, Outcome), PrepError> {
    let mut table = check_values(table, step, expected, |v| v <= -1.0)?;
    par_rows_mut(&mut table, |_, row| {
        for v in row {
            *v = log(f64::from(*v) + 1.0) as f32;
        }
    });
    Ok((LoadedTable::Sparse(table), Outcome::nothing()))
}

/// `ExcludeFeatures` on CSR.
pub(super) fn exclude_features(
    table: SparseTable,
    pattern: &str,
    step: StepId,
) -> Result<(LoadedTable, Outcome), PrepError> {
    let regex = Regex::new(pattern).map_err(|e| PrepError::InvalidRegex {
        step,
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let keep: Vec<bool> = table.features.iter().map(|f| !regex.is_match(f)).collect();
    let dropped_features = table
        .features
        .iter()
        .zip(&keep)
        .filter(|&(_, &k)| !k)
        .map(|(f, _)| f.clone())
        .collect();
    Ok((
        LoadedTable::Sparse(table.keep_columns(&keep)),
        Outcome {
            dropped_cells: Vec::new(),
            dropped_features,
            detail: StepDetail::None,
        },
    ))
}

/// `DropZeroLibrary` on CSR.
pub(super) fn drop_zero_library(table: SparseTable) -> (LoadedTable, Outcome) {
    let sums = row_sums(&table);
    let rows: Vec<usize> = (0..sums.len()).filter(|&i| sums[i] != 0.0).collect();
    let dropped_cells = sums
        .iter()
        .zip(&table.cells)
        .filter(|&(&s, _)| s == 0.0)
        .map(|(_, c)| c.clone())
        .collect();
    (
        LoadedTable::Sparse(table.keep_rows(&rows)),
        Outcome {
            dropped_cells,
            dropped_features: Vec::new(),
            detail: StepDetail::None,
        },
    )
}
