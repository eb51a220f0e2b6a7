//! Electrophysiology ground truth and values.
//!
//! Each type sits at a point in a hidden three-dimensional space: its family's
//! centre plus a smaller type offset. A feature's type centre is a nonlinear
//! function of that point (a tanh of one projection plus the square of
//! another), standardised across types so the between-type spread is 1. A
//! cell's latent value is its type centre, plus a per-feature function of its
//! state (linear, sigmoid or quadratic), plus Gaussian noise of sd
//! `ephys_noise`. The latent value is then put on a realistic scale: affine for
//! most features, exponential for the positive skewed ones (`R_input`, `Tau`,
//! `Rheobase`), and a Poisson count for `Max AP num`.

use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson, StandardNormal};

use super::{SimulateError, SimulatedCell, SimulationConfig};
use crate::data::FeatureTable;

/// Dimension of the hidden space the types live in.
const LATENT_DIM: usize = 3;
/// Standard deviation of a type's offset from its family centre (family centres have sd 1).
const TYPE_OFFSET_SD: f64 = 0.5;
/// Range of the magnitude of a feature's state effect, in latent units.
const STATE_EFFECT: (f64, f64) = (1.0, 1.5);
/// Significant digits kept in written values (roughly a recording's precision).
const SIGNIFICANT_DIGITS: i32 = 5;

/// How a feature's latent value becomes the recorded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EphysKind {
    /// `centre + scale * z`.
    Gaussian,
    /// `centre * exp(scale * z)`: positive and right-skewed (log it before modelling).
    Skewed,
    /// A Poisson count with mean `centre * exp(scale * z)`.
    Count,
}

/// How a feature depends on the within-type state `s` in [0, 1] (each centred near 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateShape {
    /// `s - 1/2`.
    Linear,
    /// A steep logistic step at `s = 1/2`, minus 1/2.
    Sigmoid,
    /// `s^2 - 1/3`.
    Quadratic,
}

impl StateShape {
    /// The shape's value at state `s`.
    pub fn at(self, s: f64) -> f64 {
        match self {
            Self::Linear => s - 0.5,
            Self::Sigmoid => 1.0 / (1.0 + (-10.0 * (s - 0.5)).exp()) - 0.5,
            Self::Quadratic => s * s - 1.0 / 3.0,
        }
    }
}

/// The ground truth of one ephys feature.
#[derive(Debug, Clone, PartialEq)]
pub struct EphysFeature {
    /// Feature name, as in the M1 Patch-seq data where possible.
    pub name: String,
    /// How the latent value is recorded.
    pub kind: EphysKind,
    /// Location of the recorded value (mean, or median for skewed and count features).
    pub centre: f64,
    /// Scale of the recorded value per latent unit.
    pub scale: f64,
    /// Latent centre of each type (standardised across types).
    pub type_centres: Vec<f64>,
    /// How the state enters.
    pub state_shape: StateShape,
    /// Multiplier of the state shape, in latent units.
    pub state_effect: f64,
}

/// Name, kind, centre and scale of the named features, in output order.
const FEATURES: [(&str, EphysKind, f64, f64); 16] = [
    ("AP amp", EphysKind::Gaussian, 75.0, 8.0),
    ("AP width", EphysKind::Gaussian, 1.0, 0.15),
    ("AP thresh", EphysKind::Gaussian, -38.0, 4.0),
    ("AHP", EphysKind::Gaussian, -12.0, 3.0),
    ("R_input", EphysKind::Skewed, 180.0, 0.45),
    ("Tau", EphysKind::Skewed, 14.0, 0.4),
    ("V_rest", EphysKind::Gaussian, -65.0, 4.0),
    ("Rheobase", EphysKind::Skewed, 120.0, 0.5),
    ("Sag", EphysKind::Gaussian, 1.1, 0.06),
    ("Max AP num", EphysKind::Count, 20.0, 0.4),
    ("ISI CV", EphysKind::Gaussian, 0.3, 0.08),
    ("AI", EphysKind::Gaussian, 0.1, 0.08),
    ("AP amp adapt", EphysKind::Gaussian, 0.85, 0.06),
    ("Rebound", EphysKind::Gaussian, 5.0, 2.0),
    ("UDR", EphysKind::Gaussian, 2.5, 0.5),
    ("AP amp CV", EphysKind::Gaussian, 0.05, 0.02),
];

const SHAPES: [StateShape; 3] = [
    StateShape::Linear,
    StateShape::Sigmoid,
    StateShape::Quadratic,
];

/// Draws the ground truth of every feature for `types` (each with its family index).
pub fn build_ephys_truth(
    config: &SimulationConfig,
    type_families: &[usize],
    rng: &mut ChaCha8Rng,
) -> Vec<EphysFeature> {
    let family_centres: Vec<[f64; LATENT_DIM]> =
        (0..config.families).map(|_| gaussian(1.0, rng)).collect();
    let positions: Vec<[f64; LATENT_DIM]> = type_families
        .iter()
        .map(|&f| {
            let offset = gaussian(TYPE_OFFSET_SD, rng);
            let centre = family_centres.get(f).copied().unwrap_or_default();
            std::array::from_fn(|d| centre[d] + offset[d])
        })
        .collect();
    let projection_sd = (1.0 / LATENT_DIM as f64).sqrt();
    (0..config.ephys_features)
        .map(|f| {
            let (name, kind, centre, scale) = FEATURES.get(f).map_or_else(
                || (format!("Ephys {}", f + 1), EphysKind::Gaussian, 0.0, 1.0),
                |&(n, k, c, s)| (n.to_string(), k, c, s),
            );
            let w = gaussian(projection_sd, rng);
            let v = gaussian(projection_sd, rng);
            let raw: Vec<f64> = positions
                .iter()
                .map(|u| 1.5 * dot(&w, u).tanh() + 0.5 * dot(&v, u).powi(2))
                .collect();
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let state_effect = sign * rng.random_range(STATE_EFFECT.0..=STATE_EFFECT.1);
            EphysFeature {
                name,
                kind,
                centre,
                scale,
                type_centres: standardise(&raw),
                state_shape: SHAPES[f % SHAPES.len()],
                state_effect,
            }
        })
        .collect()
}

/// A point with independent N(0, sd^2) coordinates.
fn gaussian(sd: f64, rng: &mut ChaCha8Rng) -> [f64; LATENT_DIM] {
    std::array::from_fn(|_| {
        let z: f64 = StandardNormal.sample(rng);
        sd * z
    })
}

fn dot(a: &[f64; LATENT_DIM], b: &[f64; LATENT_DIM]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Shifts and scales to mean 0 and standard deviation 1; all zeros when constant.
fn standardise(values: &[f64]) -> Vec<f64> {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    values
        .iter()
        .map(|v| if sd > 1e-12 { (v - mean) / sd } else { 0.0 })
        .collect()
}

/// Draws the ephys values of every cell that has them, in cell order.
pub fn draw_ephys(
    config: &SimulationConfig,
    features: &[EphysFeature],
    cells: &[SimulatedCell],
    rng: &mut ChaCha8Rng,
) -> Result<FeatureTable, SimulateError> {
    let measured: Vec<&SimulatedCell> = cells.iter().filter(|c| c.has_e).collect();
    let mut values = Array2::zeros((measured.len(), features.len()));
    for (mut row, cell) in values.rows_mut().into_iter().zip(&measured) {
        for (value, feature) in row.iter_mut().zip(features) {
            let noise: f64 = StandardNormal.sample(rng);
            let centre = feature
                .type_centres
                .get(cell.cell_type)
                .copied()
                .unwrap_or_default();
            let z = centre
                + feature.state_effect * feature.state_shape.at(cell.state)
                + config.ephys_noise * noise;
            *value = record(feature, z, rng)?;
        }
    }
    Ok(FeatureTable {
        cells: measured.iter().map(|c| c.cell_id.clone()).collect(),
        features: features.iter().map(|f| f.name.clone()).collect(),
        values,
    })
}

/// The recorded value of `feature` at latent value `z`.
fn record(feature: &EphysFeature, z: f64, rng: &mut ChaCha8Rng) -> Result<f64, SimulateError> {
    let value = match feature.kind {
        EphysKind::Gaussian => round_significant(feature.centre + feature.scale * z),
        EphysKind::Skewed => round_significant(feature.centre * (feature.scale * z).exp()),
        EphysKind::Count => {
            let mean = feature.centre * (feature.scale * z).exp();
            Poisson::new(mean)
                .map_err(|e| {
                    SimulateError::Numeric(format!("{} count with mean {mean}: {e}", feature.name))
                })?
                .sample(rng)
        }
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(SimulateError::Numeric(format!(
            "{} is not finite at latent value {z}",
            feature.name
        )))
    }
}

/// Rounds to [`SIGNIFICANT_DIGITS`] significant digits so files stay small.
fn round_significant(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let decimals = SIGNIFICANT_DIGITS - 1 - value.abs().log10().floor() as i32;
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn rounding_keeps_five_significant_digits() {
        assert_eq!(round_significant(183.27649), 183.28);
        assert_eq!(round_significant(-0.0123456), -0.012346);
        assert_eq!(round_significant(0.0), 0.0);
        assert_eq!(round_significant(123456.0), 123460.0);
    }

    #[test]
    fn standardised_centres_have_unit_spread() {
        let s = standardise(&[1.0, 2.0, 4.0, 9.0]);
        let mean = s.iter().sum::<f64>() / 4.0;
        let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        assert_eq!(standardise(&[3.0]), [0.0]);
    }

    #[test]
    fn features_beyond_the_named_ones_get_generic_names() {
        let config = SimulationConfig {
            ephys_features: 18,
            ..SimulationConfig::default()
        };
        let features = build_ephys_truth(&config, &[0, 1, 2], &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(features.len(), 18);
        assert_eq!(features[4].name, "R_input");
        assert_eq!(features[4].kind, EphysKind::Skewed);
        assert_eq!(features[9].kind, EphysKind::Count);
        assert_eq!(features[17].name, "Ephys 18");
        assert!(
            features
                .iter()
                .all(|f| f.state_effect.abs() >= 1.0 && f.type_centres.len() == 3)
        );
    }

    #[test]
    fn state_shapes_are_monotone_on_the_unit_interval() {
        for shape in SHAPES {
            let values: Vec<f64> = (0..=20).map(|i| shape.at(f64::from(i) / 20.0)).collect();
            assert!(values.windows(2).all(|w| w[1] > w[0]), "{shape:?}");
        }
    }
}
