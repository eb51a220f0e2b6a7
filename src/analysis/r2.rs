//! Coefficients of determination as the sBNN paper defines them.
//!
//! The multivariate R² is `1 − ‖Y − Ŷ‖²_F / ‖Y‖²_F` with `Y` already centred
//! by the training means (paper Eq. 3), so no mean is subtracted here; the
//! per-feature R² applies the same formula to each column (Eq. 4). Fold
//! summaries use the population SD (ddof = 0), as the paper's `np.std`.

use ndarray::{ArrayView2, Zip};
use serde::{Deserialize, Serialize};

/// Why an R² could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum R2Error {
    /// Truth and prediction differ in shape.
    #[error("R² needs matching shapes: truth is {truth:?}, prediction is {prediction:?}")]
    ShapeMismatch {
        /// Shape of the truth.
        truth: (usize, usize),
        /// Shape of the prediction.
        prediction: (usize, usize),
    },
    /// The truth is identically zero, so R² is undefined.
    #[error("R² is undefined: the true values{} are all zero", column.map(|c| format!(" of column {c}")).unwrap_or_default())]
    ZeroDenominator {
        /// The column, for per-feature R².
        column: Option<usize>,
    },
    /// A value is NaN or infinite.
    #[error("R² input has a non-finite value at row {row}, column {column}")]
    NonFinite {
        /// Row of the value.
        row: usize,
        /// Column of the value.
        column: usize,
    },
}

/// Mean and population standard deviation (ddof = 0) of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanSd {
    /// Arithmetic mean.
    pub mean: f64,
    /// Standard deviation with ddof = 0.
    pub sd: f64,
}

/// Mean ± SD (ddof = 0) of `values`; `None` for an empty slice.
pub fn mean_sd(values: &[f64]) -> Option<MeanSd> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some(MeanSd {
        mean,
        sd: variance.sqrt(),
    })
}

fn check(y_true: ArrayView2<'_, f64>, y_pred: ArrayView2<'_, f64>) -> Result<(), R2Error> {
    if y_true.dim() != y_pred.dim() {
        return Err(R2Error::ShapeMismatch {
            truth: y_true.dim(),
            prediction: y_pred.dim(),
        });
    }
    for matrix in [y_true, y_pred] {
        if let Some(((row, column), _)) = matrix.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(R2Error::NonFinite { row, column });
        }
    }
    Ok(())
}

/// Multivariate R² `1 − ‖Y − Ŷ‖²_F / ‖Y‖²_F` (paper Eq. 3).
pub fn r2(y_true: ArrayView2<'_, f64>, y_pred: ArrayView2<'_, f64>) -> Result<f64, R2Error> {
    check(y_true, y_pred)?;
    let mut residual = 0.0;
    let mut total = 0.0;
    Zip::from(&y_true).and(&y_pred).for_each(|t, p| {
        residual += (t - p).powi(2);
        total += t * t;
    });
    if total == 0.0 {
        return Err(R2Error::ZeroDenominator { column: None });
    }
    Ok(1.0 - residual / total)
}

/// R² of each column separately (paper Eq. 4).
pub fn r2_per_feature(
    y_true: ArrayView2<'_, f64>,
    y_pred: ArrayView2<'_, f64>,
) -> Result<Vec<f64>, R2Error> {
    check(y_true, y_pred)?;
    y_true
        .columns()
        .into_iter()
        .zip(y_pred.columns())
        .enumerate()
        .map(|(column, (t, p))| {
            let total: f64 = t.iter().map(|v| v * v).sum();
            if total == 0.0 {
                return Err(R2Error::ZeroDenominator {
                    column: Some(column),
                });
            }
            let residual: f64 = t.iter().zip(p).map(|(a, b)| (a - b).powi(2)).sum();
            Ok(1.0 - residual / total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn r2_matches_hand_computed_values() {
        let truth = array![[1.0, 2.0], [-1.0, 0.0]];
        let pred = array![[1.0, 1.0], [0.0, 0.0]];
        // residual 1 + 1 = 2, total 1 + 4 + 1 = 6
        assert!((r2(truth.view(), pred.view()).unwrap() - (1.0 - 2.0 / 6.0)).abs() < 1e-15);
        let per = r2_per_feature(truth.view(), pred.view()).unwrap();
        // column 0: residual 1, total 2; column 1: residual 1, total 4
        assert!((per[0] - 0.5).abs() < 1e-15);
        assert!((per[1] - 0.75).abs() < 1e-15);
        // A zero prediction scores 0, a perfect one 1, and worse than zero is negative.
        assert_eq!(r2(truth.view(), (truth.clone() * 0.0).view()).unwrap(), 0.0);
        assert_eq!(r2(truth.view(), truth.view()).unwrap(), 1.0);
        assert!(r2(truth.view(), (truth.clone() * -1.0).view()).unwrap() < 0.0);
    }

    #[test]
    fn mean_sd_uses_ddof_zero() {
        let summary = mean_sd(&[1.0, 3.0]).unwrap();
        assert_eq!(summary, MeanSd { mean: 2.0, sd: 1.0 });
        assert_eq!(mean_sd(&[]), None);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let truth = array![[0.0, 1.0], [0.0, 2.0]];
        let pred = array![[0.0, 1.0]];
        assert!(matches!(
            r2(truth.view(), pred.view()),
            Err(R2Error::ShapeMismatch { .. })
        ));
        assert_eq!(
            r2_per_feature(truth.view(), truth.view()),
            Err(R2Error::ZeroDenominator { column: Some(0) })
        );
        let nan = array![[0.0, f64::NAN], [0.0, 2.0]];
        assert_eq!(
            r2(truth.view(), nan.view()),
            Err(R2Error::NonFinite { row: 0, column: 1 })
        );
        assert_eq!(
            r2(array![[0.0]].view(), array![[1.0]].view()),
            Err(R2Error::ZeroDenominator { column: None })
        );
    }
}
