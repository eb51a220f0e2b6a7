//! Steps that change values but keep every cell and feature: library-size
//! normalisation, `log2(x + 1)`, and the natural log of named features.
//! Missing values (NaN) stay missing under the logs; normalisation needs
//! complete counts because a cell's sum is undefined otherwise.

use std::collections::HashSet;

use ndarray::Array2;

use super::filter::{unique_index, unknown};
use super::subset::Outcome;
use super::{PrepError, StepDetail, StepId};
use crate::data::FeatureTable;

/// The first value for which `bad` holds, as an error naming cell and feature.
pub(super) fn find_bad_value(
    table: &FeatureTable,
    step: StepId,
    expected: &'static str,
    bad: impl Fn(f64) -> bool,
) -> Result<(), PrepError> {
    for (i, row) in table.values.rows().into_iter().enumerate() {
        if let Some(j) = row.iter().position(|&v| bad(v)) {
            return Err(bad_value(table, step, i, j, expected));
        }
    }
    Ok(())
}

/// The error for the value at cell `i`, feature `j`.
pub(super) fn bad_value(
    table: &FeatureTable,
    step: StepId,
    i: usize,
    j: usize,
    expected: &'static str,
) -> PrepError {
    PrepError::BadValue {
        step,
        cell: table.cells.get(i).cloned().unwrap_or_default(),
        feature: table.features.get(j).cloned().unwrap_or_default(),
        value: table.values.get((i, j)).copied().unwrap_or(f64::NAN),
        expected,
    }
}

/// Divides each cell by its sum over the current features and multiplies by
/// the median of those sums (the mean of the middle two for an even count).
pub(super) fn library_size_normalise(
    mut table: FeatureTable,
    step: StepId,
) -> Result<(FeatureTable, Outcome), PrepError> {
    find_bad_value(&table, step, "a finite, non-negative count", |v| {
        !(v.is_finite() && v >= 0.0)
    })?;
    let sums: Vec<f64> = table.values.rows().into_iter().map(|r| r.sum()).collect();
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
    for (mut row, sum) in table.values.rows_mut().into_iter().zip(&sums) {
        row.mapv_inplace(|v| v / sum * median);
    }
    let min = sorted.first().copied().unwrap_or(f64::NAN);
    let max = sorted.last().copied().unwrap_or(f64::NAN);
    Ok((
        table,
        Outcome::detail(StepDetail::LibrarySize { median, min, max }),
    ))
}

/// The median of sorted values (the mean of the middle two for an even count).
pub(super) fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match (sorted.get(n / 2), n % 2) {
        (Some(&upper), 0) => sorted
            .get(n / 2 - 1)
            .map_or(upper, |&lower| (lower + upper) / 2.0),
        (Some(&middle), _) => middle,
        (None, _) => f64::NAN,
    }
}

/// Replaces every value `x` by `log(x + 1)` (`log` is `log2` or `ln`); values must exceed -1.
pub(super) fn log_plus_one(
    mut table: FeatureTable,
    step: StepId,
    expected: &'static str,
    log: fn(f64) -> f64,
) -> Result<(FeatureTable, Outcome), PrepError> {
    find_bad_value(&table, step, expected, |v| v <= -1.0)?;
    table.values.mapv_inplace(|v| log(v + 1.0));
    Ok((table, Outcome::nothing()))
}

/// Multiplies every value by `factor` (finite and positive, else an error
/// naming the field), e.g. 1/255 to put 8-bit pixel intensities on [0, 1].
pub(super) fn scale(
    mut table: FeatureTable,
    factor: f64,
    step: StepId,
) -> Result<(FeatureTable, Outcome), PrepError> {
    check_scale_factor(factor, step)?;
    table.values.mapv_inplace(|v| v * factor);
    Ok((table, Outcome::nothing()))
}

/// The error of a `Scale` factor that is not finite and positive.
pub(super) fn check_scale_factor(factor: f64, step: StepId) -> Result<(), PrepError> {
    if factor.is_finite() && factor > 0.0 {
        Ok(())
    } else {
        Err(PrepError::InvalidParameter {
            step,
            field: "factor",
            message: format!("must be finite and positive, got {factor}"),
        })
    }
}

/// Replaces the values of the named features by their natural log; values
/// must be positive (NaN stays NaN).
pub(super) fn ln_features(
    mut table: FeatureTable,
    names: &[String],
    step: StepId,
) -> Result<(FeatureTable, Outcome), PrepError> {
    let index = unique_index(&table.features, names, step, "feature")?;
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(names.len());
    let mut missing = Vec::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(PrepError::Duplicate {
                step,
                what: "feature",
                name: name.clone(),
                place: "field `features`",
            });
        }
        match index.get(name.as_str()) {
            Some(&j) => columns.push(j),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(unknown(step, "features", "features", names.len(), missing));
    }
    log_columns(&mut table.values, &columns).map_err(|(i, j)| {
        bad_value(
            &table,
            step,
            i,
            j,
            "a positive value (the natural log is applied)",
        )
    })?;
    Ok((table, Outcome::nothing()))
}

/// Takes `ln` of the given columns, or returns the position of the first
/// non-positive value (leaving the matrix unchanged).
fn log_columns(values: &mut Array2<f64>, columns: &[usize]) -> Result<(), (usize, usize)> {
    for &j in columns {
        let column = values.column(j);
        if let Some(i) = column.iter().position(|&v| v <= 0.0) {
            return Err((i, j));
        }
    }
    for &j in columns {
        values.column_mut(j).mapv_inplace(f64::ln);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    const STEP: StepId = StepId {
        index: 1,
        kind: "Test",
    };

    fn table(values: Array2<f64>) -> FeatureTable {
        FeatureTable {
            cells: (0..values.nrows()).map(|i| format!("cell{i}")).collect(),
            features: (0..values.ncols()).map(|j| format!("f{j}")).collect(),
            values,
        }
    }

    #[test]
    fn library_size_scales_every_cell_to_the_median_sum() {
        // Sums 4, 10, 6 -> median 6.
        let t = table(array![[1.0, 3.0], [5.0, 5.0], [6.0, 0.0]]);
        let (out, outcome) = library_size_normalise(t, STEP).unwrap();
        assert_eq!(out.values, array![[1.5, 4.5], [3.0, 3.0], [6.0, 0.0]]);
        assert_eq!(
            outcome.detail,
            StepDetail::LibrarySize {
                median: 6.0,
                min: 4.0,
                max: 10.0
            }
        );
    }

    #[test]
    fn library_size_median_of_an_even_count_is_the_middle_mean() {
        let t = table(array![[1.0], [2.0], [4.0], [8.0]]);
        let (out, outcome) = library_size_normalise(t, STEP).unwrap();
        assert!(out.values.iter().all(|&v| v == 3.0));
        assert_eq!(
            outcome.detail,
            StepDetail::LibrarySize {
                median: 3.0,
                min: 1.0,
                max: 8.0
            }
        );
    }

    #[test]
    fn library_size_rejects_zero_sums_negative_and_missing_counts() {
        let err = library_size_normalise(table(array![[1.0, 1.0], [0.0, 0.0]]), STEP).unwrap_err();
        assert!(
            err.to_string()
                .contains("cell \"cell1\" has library size 0"),
            "{err}"
        );
        let err = library_size_normalise(table(array![[1.0, -1.0]]), STEP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "steps[1] (Test): cell \"cell0\", feature \"f1\" has value -1; \
             expected a finite, non-negative count"
        );
        let err = library_size_normalise(table(array![[f64::NAN, 1.0]]), STEP).unwrap_err();
        assert!(
            matches!(err, PrepError::BadValue { ref feature, .. } if feature == "f0"),
            "{err}"
        );
    }

    #[test]
    fn log2p1_gives_hand_checked_values_and_keeps_nan() {
        let (out, _) = log_plus_one(
            table(array![[0.0, 1.0], [3.0, f64::NAN], [-0.5, 1023.0]]),
            STEP,
            "above -1",
            f64::log2,
        )
        .unwrap();
        assert_eq!(out.values.row(0).to_vec(), [0.0, 1.0]);
        assert_eq!(out.values[(1, 0)], 2.0);
        assert!(out.values[(1, 1)].is_nan());
        assert_eq!(out.values[(2, 0)], -1.0);
        assert_eq!(out.values[(2, 1)], 10.0);
    }

    #[test]
    fn log2p1_rejects_values_at_or_below_minus_one() {
        let err =
            log_plus_one(table(array![[0.0], [-1.0]]), STEP, "above -1", f64::log2).unwrap_err();
        assert!(
            err.to_string()
                .contains("cell \"cell1\", feature \"f0\" has value -1"),
            "{err}"
        );
    }

    #[test]
    fn scale_multiplies_every_value_and_rejects_bad_factors() {
        let (out, _) = scale(
            table(array![[0.0, 255.0], [51.0, f64::NAN]]),
            1.0 / 255.0,
            STEP,
        )
        .unwrap();
        assert_eq!(out.values.row(0).to_vec(), [0.0, 1.0]);
        assert!((out.values[(1, 0)] - 0.2).abs() < 1e-15);
        assert!(out.values[(1, 1)].is_nan());
        for bad in [0.0, -2.0, f64::NAN, f64::INFINITY] {
            let err = scale(table(array![[1.0]]), bad, STEP).unwrap_err();
            assert!(err.to_string().contains("field `factor`"), "{err}");
        }
    }

    #[test]
    fn ln_features_logs_only_the_named_columns() {
        let e = std::f64::consts::E;
        let t = table(array![[e, 5.0, 1.0], [1.0, 7.0, f64::NAN]]);
        let (out, _) = ln_features(t, &["f2".to_string(), "f0".to_string()], STEP).unwrap();
        assert!((out.values[(0, 0)] - 1.0).abs() < 1e-15);
        assert_eq!(out.values[(1, 0)], 0.0);
        assert_eq!(out.values.column(1).to_vec(), [5.0, 7.0]);
        assert_eq!(out.values[(0, 2)], 0.0);
        assert!(out.values[(1, 2)].is_nan());
    }

    #[test]
    fn ln_features_names_unknown_features_and_non_positive_cells() {
        let t = table(array![[1.0, 0.0], [2.0, 3.0]]);
        let err = ln_features(t.clone(), &["AI".to_string()], STEP).unwrap_err();
        assert!(
            err.to_string()
                .contains("1 of the 1 listed features are not in the table: AI"),
            "{err}"
        );
        let err = ln_features(t, &["f0".to_string(), "f1".to_string()], STEP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "steps[1] (Test): cell \"cell0\", feature \"f1\" has value 0; \
             expected a positive value (the natural log is applied)"
        );
    }
}
