//! Column statistics and z-scoring over all cells, as the sBNN paper did:
//! subtract each feature's mean and divide by its population standard
//! deviation (ddof = 0). A feature counts as constant when its SD is at most
//! 1e-12 times its largest absolute value, so round-off in a constant column
//! does not pass for variation. Constant features are an error here; a
//! `DropConstantFeatures` step removes them explicitly beforehand.

use ndarray::Array2;

use super::PrepError;
use crate::data::FeatureTable;

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
    means
        .iter()
        .zip(&squares)
        .zip(&max_abs)
        .map(|((&mean, &q), &max_abs)| ColumnStats {
            mean,
            sd: (q / count).sqrt(),
            max_abs,
        })
        .collect()
}

/// Whether a column is constant up to round-off.
pub(super) fn is_constant(stats: &ColumnStats) -> bool {
    stats.sd <= 1e-12 * stats.max_abs
}

/// Z-scores every column of `table` in place over all its cells.
pub(super) fn zscore_all_cells(table: &mut FeatureTable) -> Result<(), PrepError> {
    let stats = column_stats(&table.values);
    // Finite values whose mean or spread is not: the sums overflowed.
    let overflowed = |(j, s): &(usize, &ColumnStats)| {
        !(s.mean.is_finite() && s.sd.is_finite())
            && table.values.column(*j).iter().all(|v| v.is_finite())
    };
    if let Some((j, s)) = stats.iter().enumerate().find(overflowed) {
        return Err(PrepError::TooLarge {
            feature: table.features.get(j).cloned().unwrap_or_default(),
            max_abs: s.max_abs,
        });
    }
    if let Some(j) = stats.iter().position(is_constant) {
        return Err(PrepError::ZeroVariance {
            feature: table.features.get(j).cloned().unwrap_or_default(),
            cells: table.cells.len(),
        });
    }
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
