//! Recalibration for shifted data sets: new cells recorded under other
//! conditions move every feature's level while the relations the model
//! learned still hold. A per-feature offset and scale, fitted by least
//! squares on a few cells with measured targets, maps the predictions onto
//! the new level. It is reported next to the uncalibrated numbers on the
//! remaining cells, never applied to the predictions written out.

use std::str::FromStr;

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::apply::{Scores, score};

/// The seed of the random choice of calibration cells.
pub const CALIBRATION_SEED: u64 = 0;

/// Which cells to calibrate on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CalibrationCells {
    /// This many cells drawn at random (seed [`CALIBRATION_SEED`]).
    Random(usize),
    /// These cells.
    Ids(Vec<String>),
}

impl FromStr for CalibrationCells {
    type Err = String;

    /// A count (`50`) or comma-separated cell ids.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = text.parse::<usize>() {
            return Ok(CalibrationCells::Random(n));
        }
        let ids: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if ids.is_empty() {
            return Err("expected a number of cells or comma-separated cell ids".into());
        }
        Ok(CalibrationCells::Ids(ids))
    }
}

/// A fitted recalibration and how it scores on the cells it was not fitted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The cells it was fitted on.
    pub cells: Vec<String>,
    /// Per output: (name, offset, scale) with calibrated = offset + scale × predicted.
    pub coefficients: Vec<(String, f64, f64)>,
    /// The uncalibrated predictions on the other cells.
    pub uncalibrated: Scores,
    /// The calibrated predictions on the same cells.
    pub calibrated: Scores,
}

/// Fits per-feature offsets and scales on the `chosen` cells of `ids` and
/// scores both versions on the rest.
pub fn calibrate(
    predicted: &Array2<f64>,
    measured: &Array2<f64>,
    ids: &[String],
    chosen: &CalibrationCells,
    outputs: &[String],
) -> Result<Calibration, String> {
    let n = ids.len();
    let fit_rows: Vec<usize> = match chosen {
        CalibrationCells::Random(k) => {
            if *k < 2 || *k + 2 > n {
                return Err(format!(
                    "--calibrate {k}: needs at least 2 cells and leaves at least 2 of the {n} measured cells to score"
                ));
            }
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
                CALIBRATION_SEED,
            ));
            rows.truncate(*k);
            rows.sort_unstable();
            rows
        }
        CalibrationCells::Ids(wanted) => {
            let rows: Vec<usize> = (0..n).filter(|&i| wanted.contains(&ids[i])).collect();
            if let Some(absent) = wanted.iter().find(|w| !ids.contains(w)) {
                return Err(format!(
                    "--calibrate: cell `{absent}` is not among the measured, predicted cells"
                ));
            }
            if rows.len() < 2 || rows.len() + 2 > n {
                return Err(format!(
                    "--calibrate: {} cells given; needs at least 2 and must leave at least 2 of {n} to score",
                    rows.len()
                ));
            }
            rows
        }
    };
    let rest: Vec<usize> = (0..n)
        .filter(|i| fit_rows.binary_search(i).is_err())
        .collect();
    let (p_fit, o_fit) = (
        predicted.select(Axis(0), &fit_rows),
        measured.select(Axis(0), &fit_rows),
    );
    let mut coefficients = Vec::with_capacity(outputs.len());
    for (j, name) in outputs.iter().enumerate() {
        let (p, o) = (p_fit.column(j), o_fit.column(j));
        let (pm, om) = (p.mean().unwrap_or(0.0), o.mean().unwrap_or(0.0));
        let cov: f64 = p.iter().zip(o).map(|(a, b)| (a - pm) * (b - om)).sum();
        let var: f64 = p.iter().map(|a| (a - pm).powi(2)).sum();
        let scale = if var > 0.0 { cov / var } else { 1.0 };
        coefficients.push((name.clone(), om - scale * pm, scale));
    }
    let p_rest = predicted.select(Axis(0), &rest);
    let o_rest = measured.select(Axis(0), &rest);
    let mut adjusted = p_rest.clone();
    for mut row in adjusted.rows_mut() {
        for (v, (_, offset, scale)) in row.iter_mut().zip(&coefficients) {
            *v = offset + scale * *v;
        }
    }
    Ok(Calibration {
        cells: fit_rows.iter().map(|&i| ids[i].clone()).collect(),
        coefficients,
        uncalibrated: score(&p_rest, &o_rest, outputs),
        calibrated: score(&adjusted, &o_rest, outputs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_shifted_and_scaled_output_is_recovered_exactly() {
        let predicted = array![[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]];
        let measured = predicted.mapv(|v| 10.0 + 2.0 * v);
        let ids: Vec<String> = (0..6).map(|i| format!("c{i}")).collect();
        let names = vec!["f".to_string()];
        let chosen = CalibrationCells::Ids(vec!["c0".into(), "c5".into()]);
        let c = calibrate(&predicted, &measured, &ids, &chosen, &names).unwrap();
        assert_eq!(c.coefficients, [("f".to_string(), 10.0, 2.0)]);
        assert!((c.calibrated.r2 - 1.0).abs() < 1e-12);
        assert!(c.uncalibrated.r2 < 0.0);
        assert_eq!(c.calibrated.cells, 4);
        assert_eq!("12".parse(), Ok(CalibrationCells::Random(12)));
        let random = calibrate(
            &predicted,
            &measured,
            &ids,
            &CalibrationCells::Random(3),
            &names,
        )
        .unwrap();
        assert_eq!(random.cells.len(), 3);
        assert!(
            calibrate(
                &predicted,
                &measured,
                &ids,
                &CalibrationCells::Random(5),
                &names
            )
            .is_err()
        );
    }
}
