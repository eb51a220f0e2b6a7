//! Per-fold scaling with training statistics only.
//!
//! The paper z-scores globally and then only re-centres each fold on its
//! training means ([`FoldScaling::CentreOnly`]); [`FoldScaling::ZScore`] also
//! divides by the training standard deviation (ddof = 0). Test rows are always
//! transformed with the training statistics, never their own.

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::cv::Fold;

/// How a fold's columns are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FoldScaling {
    /// Subtract the training means from train and test.
    CentreOnly,
    /// Subtract the training means and divide by the training SD (ddof = 0).
    ZScore,
}

/// Why a fold could not be scaled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScalingError {
    /// The fold has no training rows.
    #[error("the fold has no training rows to take statistics from")]
    EmptyTrain,
    /// A fold index points past the data.
    #[error("fold refers to row {row}, but the matrix has only {rows} rows")]
    RowOutOfRange {
        /// The offending row index.
        row: usize,
        /// Rows in the matrix.
        rows: usize,
    },
    /// A column is constant on the training rows, so it cannot be z-scored.
    #[error(
        "column {column} has zero standard deviation on the training rows and cannot be z-scored"
    )]
    ZeroVariance {
        /// The constant column's index.
        column: usize,
    },
}

/// Scales the rows of `data` selected by `fold` and returns `(train, test)`.
pub fn scale_fold(
    data: ArrayView2<'_, f64>,
    fold: &Fold,
    scaling: FoldScaling,
) -> Result<(Array2<f64>, Array2<f64>), ScalingError> {
    let rows = data.nrows();
    if let Some(&row) = fold.train.iter().chain(&fold.test).find(|&&r| r >= rows) {
        return Err(ScalingError::RowOutOfRange { row, rows });
    }
    if fold.train.is_empty() {
        return Err(ScalingError::EmptyTrain);
    }
    let mut train = data.select(Axis(0), &fold.train);
    let mut test = data.select(Axis(0), &fold.test);
    let (mean, scale) = column_statistics(train.view(), scaling)?;
    for block in [&mut train, &mut test] {
        for mut row in block.rows_mut() {
            row -= &mean;
            if let Some(scale) = &scale {
                row /= scale;
            }
        }
    }
    Ok((train, test))
}

/// Scales every row of `data` with its own statistics: the whole-data analogue
/// of [`scale_fold`], used for final fits on all cells.
pub fn scale_all(
    data: ArrayView2<'_, f64>,
    scaling: FoldScaling,
) -> Result<Array2<f64>, ScalingError> {
    let fold = Fold {
        train: (0..data.nrows()).collect(),
        test: Vec::new(),
    };
    scale_fold(data, &fold, scaling).map(|(train, _)| train)
}

/// Column means, and for z-scoring the population SDs: the statistics
/// [`scale_fold`] takes from the training rows (and a model artifact stores).
pub fn column_statistics(
    train: ArrayView2<'_, f64>,
    scaling: FoldScaling,
) -> Result<(Array1<f64>, Option<Array1<f64>>), ScalingError> {
    let n = train.nrows() as f64;
    let mean = train.sum_axis(Axis(0)) / n;
    match scaling {
        FoldScaling::CentreOnly => Ok((mean, None)),
        FoldScaling::ZScore => {
            let mut sd = Array1::zeros(train.ncols());
            for (column, (values, slot)) in
                train.columns().into_iter().zip(sd.iter_mut()).enumerate()
            {
                let centre = mean[column];
                let variance = values.iter().map(|v| (v - centre).powi(2)).sum::<f64>() / n;
                let deviation = variance.sqrt();
                if deviation.is_nan() || deviation <= 0.0 {
                    return Err(ScalingError::ZeroVariance { column });
                }
                *slot = deviation;
            }
            Ok((mean, Some(sd)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn centring_uses_training_means_for_both_parts() {
        let data = array![[1.0, 10.0], [3.0, 20.0], [5.0, 60.0], [100.0, 0.0]];
        let fold = Fold {
            train: vec![0, 1, 2],
            test: vec![3],
        };
        let (train, test) = scale_fold(data.view(), &fold, FoldScaling::CentreOnly).unwrap();
        assert_eq!(train, array![[-2.0, -20.0], [0.0, -10.0], [2.0, 30.0]]);
        assert_eq!(test, array![[97.0, -30.0]]);
    }

    #[test]
    fn z_scoring_uses_population_sd_of_the_training_rows() {
        let data = array![[1.0], [3.0], [7.0]];
        let fold = Fold {
            train: vec![0, 1],
            test: vec![2],
        };
        let (train, test) = scale_fold(data.view(), &fold, FoldScaling::ZScore).unwrap();
        // mean 2, ddof-0 SD 1
        assert_eq!(train, array![[-1.0], [1.0]]);
        assert_eq!(test, array![[5.0]]);
        let all = scale_all(data.view(), FoldScaling::ZScore).unwrap();
        assert!((all.mapv(|v| v * v).sum() / 3.0 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn constant_column_and_bad_rows_are_reported() {
        let data = array![[1.0, 5.0], [2.0, 5.0], [3.0, 1.0]];
        let fold = Fold {
            train: vec![0, 1],
            test: vec![2],
        };
        assert_eq!(
            scale_fold(data.view(), &fold, FoldScaling::ZScore),
            Err(ScalingError::ZeroVariance { column: 1 })
        );
        assert!(scale_fold(data.view(), &fold, FoldScaling::CentreOnly).is_ok());
        let bad = Fold {
            train: vec![0, 7],
            test: vec![],
        };
        assert_eq!(
            scale_fold(data.view(), &bad, FoldScaling::CentreOnly),
            Err(ScalingError::RowOutOfRange { row: 7, rows: 3 })
        );
    }
}
