//! Coupling functions between the latent codes of two agents (paper §2).
//!
//! Each coupling is a named type implementing [`Coupling`]: it takes the two
//! agents' whole mini-batch codes `Z_a`, `Z_b` (paired and unpaired rows) and
//! the row pairs that belong to the same cell, and returns the cost with its
//! gradients with respect to both batches. The distance term only uses the
//! paired rows; the batch statistics (covariance, smallest eigenvalue) use
//! every row, as in the 2019 reference code.
//!
//! All distances are means over paired rows and latent dimensions (the
//! Keras `mse` convention), so λ keeps the meaning it has in the 2019 code.
//!
//! - [`SquaredDistance`]: `mean ‖z_a − z_b‖²` on raw codes. Shrinks
//!   (Proposition 1).
//! - [`BatchNormDistance`]: the same on per-dimension batch-normalised codes.
//!   Collapses onto a line (Proposition 2).
//! - [`FullCovariance`] (C_FC): Mahalanobis distance under each partner's
//!   batch covariance plus a ridge, summed over both directions (reference
//!   code `coupling_functions.fullcov`; the paper's symmetric whitening has
//!   the same scale invariance).
//! - [`MinSingularValue`] (C_MSV): squared distance divided by the smaller of
//!   the two batches' smallest covariance eigenvalues, floored (Eq. 6),
//!   found by inverse power iteration.

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::spectral::{PowerIteration, centred_covariance, inverse_spd, smallest_eigenpair};

/// A coupling's value and its gradients with respect to both batches.
#[derive(Debug, Clone, PartialEq)]
pub struct CouplingCost {
    /// The cost.
    pub value: f64,
    /// `∂cost/∂Z_a`, same shape as `Z_a`.
    pub grad_a: Array2<f64>,
    /// `∂cost/∂Z_b`, same shape as `Z_b`.
    pub grad_b: Array2<f64>,
}

/// A cost that pulls the codes of the same cell in two agents together.
pub trait Coupling: std::fmt::Debug + Send + Sync {
    /// Short name, for logs and results.
    fn name(&self) -> &'static str;

    /// Whether the latent layer must end in a batch normalisation without
    /// scale or shift (every coupling except the plain squared distance).
    fn needs_batch_norm(&self) -> bool;

    /// The cost between batches `a` and `b` (rows = cells, columns = latent
    /// dimensions); `pairs` lists `(row in a, row in b)` of the same cell.
    fn cost(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        pairs: &[(usize, usize)],
    ) -> CouplingCost;
}

/// Which coupling to use, as written in session files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouplingKind {
    /// [`SquaredDistance`].
    SquaredDistance,
    /// [`BatchNormDistance`].
    BatchNorm,
    /// [`FullCovariance`] (C_FC).
    FullCovariance,
    /// [`MinSingularValue`] (C_MSV).
    MinSingularValue,
}

impl CouplingKind {
    /// The coupling with the given settings.
    pub fn build(self, fc_ridge: f64, msv_floor: f64) -> Box<dyn Coupling> {
        match self {
            CouplingKind::SquaredDistance => Box::new(SquaredDistance),
            CouplingKind::BatchNorm => Box::new(BatchNormDistance),
            CouplingKind::FullCovariance => Box::new(FullCovariance { ridge: fc_ridge }),
            CouplingKind::MinSingularValue => Box::new(MinSingularValue {
                floor: msv_floor,
                power: PowerIteration::default(),
            }),
        }
    }
}

/// `mean_{pairs, dims} (z_a − z_b)²` and its gradients.
fn mean_squared_distance(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    pairs: &[(usize, usize)],
) -> CouplingCost {
    let d = a.ncols();
    let mut grad_a = Array2::zeros(a.dim());
    let mut grad_b = Array2::zeros(b.dim());
    if pairs.is_empty() || d == 0 {
        return CouplingCost {
            value: 0.0,
            grad_a,
            grad_b,
        };
    }
    let scale = 1.0 / (pairs.len() * d) as f64;
    let mut value = 0.0;
    for &(i, j) in pairs {
        for m in 0..d {
            let diff = a[[i, m]] - b[[j, m]];
            value += diff * diff * scale;
            grad_a[[i, m]] += 2.0 * diff * scale;
            grad_b[[j, m]] -= 2.0 * diff * scale;
        }
    }
    CouplingCost {
        value,
        grad_a,
        grad_b,
    }
}

/// Plain squared distance between raw codes (paper Eq. 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SquaredDistance;

impl Coupling for SquaredDistance {
    fn name(&self) -> &'static str {
        "squared_distance"
    }

    fn needs_batch_norm(&self) -> bool {
        false
    }

    fn cost(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        pairs: &[(usize, usize)],
    ) -> CouplingCost {
        mean_squared_distance(a, b, pairs)
    }
}

/// Squared distance between per-dimension batch-normalised codes (paper Eq. 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchNormDistance;

impl Coupling for BatchNormDistance {
    fn name(&self) -> &'static str {
        "batch_norm"
    }

    fn needs_batch_norm(&self) -> bool {
        true
    }

    fn cost(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        pairs: &[(usize, usize)],
    ) -> CouplingCost {
        mean_squared_distance(a, b, pairs)
    }
}

/// Full-covariance coupling C_FC: `L(a→b) + L(b→a)` with
/// `L(a→b) = mean_{pairs} (z_b − z_a)ᵀ S_b⁻¹ (z_b − z_a) / d` and
/// `S_b = cov(Z_b) + ridge · I`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FullCovariance {
    /// Added to the covariance diagonal before inverting.
    pub ridge: f64,
}

impl FullCovariance {
    /// One direction: the distance under `partner`'s covariance. Adds the
    /// gradients to `grad_own` and `grad_partner`; returns the value.
    fn direction(
        &self,
        own: ArrayView2<'_, f64>,
        partner: ArrayView2<'_, f64>,
        pairs: &[(usize, usize)],
        grad_own: &mut Array2<f64>,
        grad_partner: &mut Array2<f64>,
    ) -> Option<f64> {
        let d = own.ncols();
        let (centred, mut cov) = centred_covariance(partner);
        for m in 0..d {
            cov[[m, m]] += self.ridge;
        }
        let inv = inverse_spd(&cov)?;
        let scale = 1.0 / (pairs.len() * d) as f64;
        let n = partner.nrows();
        let mut value = 0.0;
        let mut outer = Array2::<f64>::zeros((d, d));
        for &(i, j) in pairs {
            let diff: Array1<f64> = &partner.row(j) - &own.row(i);
            let solved = inv.dot(&diff);
            value += diff.dot(&solved) * scale;
            for m in 0..d {
                grad_partner[[j, m]] += 2.0 * scale * solved[m];
                grad_own[[i, m]] -= 2.0 * scale * solved[m];
                for q in 0..d {
                    outer[[m, q]] += scale * diff[m] * diff[q];
                }
            }
        }
        // Through the covariance: ∂L/∂S = −S⁻¹ M S⁻¹, ∂L/∂Z = 2/(n−1) B (∂L/∂S).
        let d_cov = -inv.dot(&outer).dot(&inv);
        let bessel = if n > 1 { (n - 1) as f64 } else { 1.0 };
        *grad_partner += &(centred.dot(&d_cov) * (2.0 / bessel));
        Some(value)
    }
}

impl Coupling for FullCovariance {
    fn name(&self) -> &'static str {
        "full_covariance"
    }

    fn needs_batch_norm(&self) -> bool {
        true
    }

    fn cost(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        pairs: &[(usize, usize)],
    ) -> CouplingCost {
        let mut grad_a = Array2::zeros(a.dim());
        let mut grad_b = Array2::zeros(b.dim());
        if pairs.is_empty() || a.ncols() == 0 {
            return CouplingCost {
                value: 0.0,
                grad_a,
                grad_b,
            };
        }
        let swapped: Vec<(usize, usize)> = pairs.iter().map(|&(i, j)| (j, i)).collect();
        let ab = self.direction(a, b, pairs, &mut grad_a, &mut grad_b);
        let ba = self.direction(b, a, &swapped, &mut grad_b, &mut grad_a);
        match (ab, ba) {
            (Some(x), Some(y)) => CouplingCost {
                value: x + y,
                grad_a,
                grad_b,
            },
            // A singular covariance even after the ridge: fall back to the
            // plain distance so training can continue.
            _ => mean_squared_distance(a, b, pairs),
        }
    }
}

/// Minimum-singular-value coupling C_MSV (paper Eq. 6):
/// `mean_{pairs, dims} (z_a − z_b)² / max(min(λ_min(C_a), λ_min(C_b)), floor)`,
/// with `C` the unbiased batch covariance over every row and `λ_min` from
/// inverse power iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinSingularValue {
    /// Lower bound on the denominator (0.01 in the reference code).
    pub floor: f64,
    /// Settings of the power iteration.
    pub power: PowerIteration,
}

impl MinSingularValue {
    /// `λ_min` of the batch covariance and its gradient `2/(n−1) B v vᵀ`,
    /// or `None` when the covariance is singular.
    fn min_variance(&self, z: ArrayView2<'_, f64>) -> Option<(f64, Array2<f64>)> {
        let n = z.nrows();
        if n < 2 {
            return None;
        }
        let (centred, cov) = centred_covariance(z);
        let (value, v) = smallest_eigenpair(&cov, self.power)?;
        let bv = centred.dot(&v);
        let mut grad = Array2::<f64>::zeros(z.dim());
        let factor = 2.0 / (n - 1) as f64;
        for r in 0..n {
            for m in 0..z.ncols() {
                grad[[r, m]] = factor * bv[r] * v[m];
            }
        }
        Some((value, grad))
    }
}

impl Coupling for MinSingularValue {
    fn name(&self) -> &'static str {
        "min_singular_value"
    }

    fn needs_batch_norm(&self) -> bool {
        true
    }

    fn cost(
        &self,
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        pairs: &[(usize, usize)],
    ) -> CouplingCost {
        let distance = mean_squared_distance(a, b, pairs);
        let va = self.min_variance(a);
        let vb = self.min_variance(b);
        let value_of = |v: &Option<(f64, Array2<f64>)>| v.as_ref().map_or(0.0, |(x, _)| *x);
        let (lambda_a, lambda_b) = (value_of(&va), value_of(&vb));
        let (smallest, from_a) = if lambda_a <= lambda_b {
            (lambda_a, true)
        } else {
            (lambda_b, false)
        };
        let denominator = smallest.max(self.floor);
        let mut grad_a = distance.grad_a / denominator;
        let mut grad_b = distance.grad_b / denominator;
        let value = distance.value / denominator;
        if smallest > self.floor {
            // d(N/D) = −N/D² dD through the active eigenvalue.
            let factor = -distance.value / (denominator * denominator);
            let active = if from_a { &va } else { &vb };
            if let Some((_, g)) = active {
                if from_a {
                    grad_a.scaled_add(factor, g);
                } else {
                    grad_b.scaled_add(factor, g);
                }
            }
        }
        CouplingCost {
            value,
            grad_a,
            grad_b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0..1.0))
    }

    /// Central differences of every coupling's value against its gradients.
    fn check(coupling: &dyn Coupling) {
        let a = random(9, 3, 1);
        let b = random(8, 3, 2);
        let pairs = [(0, 1), (2, 2), (3, 0), (5, 7), (8, 4)];
        let cost = coupling.cost(a.view(), b.view(), &pairs);
        let h = 1e-6;
        for (which, base, grad) in [(0, &a, &cost.grad_a), (1, &b, &cost.grad_b)] {
            for idx in 0..base.len() {
                let (r, c) = (idx / 3, idx % 3);
                let eval = |delta: f64| {
                    let mut m = base.clone();
                    m[[r, c]] += delta;
                    if which == 0 {
                        coupling.cost(m.view(), b.view(), &pairs).value
                    } else {
                        coupling.cost(a.view(), m.view(), &pairs).value
                    }
                };
                let numeric = (eval(h) - eval(-h)) / (2.0 * h);
                let analytic = grad[[r, c]];
                assert!(
                    (numeric - analytic).abs() < 1e-5 * (1.0 + numeric.abs()),
                    "{} input {which} [{r},{c}]: {analytic} vs {numeric}",
                    coupling.name()
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        check(&SquaredDistance);
        check(&BatchNormDistance);
        check(&FullCovariance { ridge: 1e-3 });
        check(&MinSingularValue {
            floor: 1e-3,
            power: PowerIteration::default(),
        });
    }

    #[test]
    fn msv_floor_caps_the_denominator() {
        // Rank-one batches: λ_min = 0, so the denominator is the floor.
        let a = Array2::from_shape_fn((6, 2), |(i, j)| (i as f64) * (j as f64 + 1.0));
        let b = a.clone() * 0.5;
        let pairs: Vec<(usize, usize)> = (0..6).map(|i| (i, i)).collect();
        let msv = MinSingularValue {
            floor: 0.01,
            power: PowerIteration::default(),
        };
        let plain = SquaredDistance.cost(a.view(), b.view(), &pairs).value;
        let value = msv.cost(a.view(), b.view(), &pairs).value;
        assert!((value - plain / 0.01).abs() < 1e-9 * value.max(1.0));
    }
}
