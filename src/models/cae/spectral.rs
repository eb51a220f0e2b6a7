//! Small dense linear algebra for the couplings: batch covariance, Cholesky
//! solves, the inverse of a symmetric positive-definite matrix and the
//! smallest eigenpair by inverse power iteration (supplement, Algorithm 1).
//!
//! The matrices here are `d × d` with `d` the latent dimension (3 by
//! default), so plain loops in `f64` are faster and steadier than a general
//! solver.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// The centred batch `B = Z − 1μᵀ` and the unbiased covariance `BᵀB / (n − 1)`.
pub fn centred_covariance(z: ArrayView2<'_, f64>) -> (Array2<f64>, Array2<f64>) {
    let n = z.nrows();
    let mean = z
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(z.ncols()));
    let centred = &z - &mean.insert_axis(Axis(0));
    let denom = if n > 1 { (n - 1) as f64 } else { 1.0 };
    let cov = centred.t().dot(&centred) / denom;
    (centred, cov)
}

/// The lower Cholesky factor `L` with `A = L Lᵀ`, or `None` if `A` is not
/// (numerically) positive definite.
pub fn cholesky(a: &Array2<f64>) -> Option<Array2<f64>> {
    let d = a.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= l[[i, k]] * l[[j, k]];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[[i, i]] = s.sqrt();
            } else {
                l[[i, j]] = s / l[[j, j]];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b` given the Cholesky factor `L`.
pub fn cholesky_solve(l: &Array2<f64>, b: &Array1<f64>) -> Array1<f64> {
    let d = l.nrows();
    let mut y = Array1::<f64>::zeros(d);
    for i in 0..d {
        let s: f64 = (0..i).map(|k| l[[i, k]] * y[k]).sum();
        y[i] = (b[i] - s) / l[[i, i]];
    }
    let mut x = Array1::<f64>::zeros(d);
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| l[[k, i]] * x[k]).sum();
        x[i] = (y[i] - s) / l[[i, i]];
    }
    x
}

/// The inverse of a symmetric positive-definite matrix, or `None` if it is not positive definite.
pub fn inverse_spd(a: &Array2<f64>) -> Option<Array2<f64>> {
    let d = a.nrows();
    let l = cholesky(a)?;
    let mut inv = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        let mut e = Array1::<f64>::zeros(d);
        e[j] = 1.0;
        inv.column_mut(j).assign(&cholesky_solve(&l, &e));
    }
    Some(inv)
}

/// Settings of the inverse power iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerIteration {
    /// Stop when successive unit iterates differ by less than this (up to sign).
    pub tolerance: f64,
    /// Upper bound on the number of iterations.
    pub max_iterations: usize,
}

impl Default for PowerIteration {
    fn default() -> Self {
        PowerIteration {
            tolerance: 1e-10,
            max_iterations: 5000,
        }
    }
}

/// The smallest eigenvalue of the symmetric positive-definite `a` and a unit
/// eigenvector, by inverse power iteration: repeatedly solve `A x₊ = x`,
/// normalise, and read the eigenvalue off the Rayleigh quotient `xᵀAx`.
/// Returns `None` when `a` is not positive definite (the smallest eigenvalue
/// is then zero or negative up to rounding).
pub fn smallest_eigenpair(a: &Array2<f64>, settings: PowerIteration) -> Option<(f64, Array1<f64>)> {
    let d = a.nrows();
    if d == 0 || a.ncols() != d {
        return None;
    }
    let l = cholesky(a)?;
    // A fixed, generic start vector keeps the result reproducible.
    let mut x = Array1::from_shape_fn(d, |i| 1.0 + 0.1 * (i as f64 + 1.0).sqrt());
    let norm = x.dot(&x).sqrt();
    x /= norm;
    for _ in 0..settings.max_iterations {
        let mut next = cholesky_solve(&l, &x);
        let norm = next.dot(&next).sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return None;
        }
        next /= norm;
        if next.dot(&x) < 0.0 {
            next.mapv_inplace(|v| -v);
        }
        let change = (&next - &x).mapv(f64::abs).sum();
        x = next;
        if change < settings.tolerance {
            break;
        }
    }
    let value = x.dot(&a.dot(&x));
    Some((value, x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let a = ndarray::array![[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let inv = inverse_spd(&a).unwrap();
        let eye = a.dot(&inv);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((eye[[i, j]] - want).abs() < 1e-12);
            }
        }
        assert!(inverse_spd(&ndarray::array![[1.0, 2.0], [2.0, 1.0]]).is_none());
    }

    #[test]
    fn smallest_eigenpair_of_a_diagonal_matrix() {
        let a = ndarray::array![[3.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 2.0]];
        let (value, vector) = smallest_eigenpair(&a, PowerIteration::default()).unwrap();
        assert!((value - 0.5).abs() < 1e-12);
        assert!((vector[1].abs() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn covariance_is_unbiased() {
        let z = ndarray::array![[1.0, 0.0], [3.0, 2.0]];
        let (centred, cov) = centred_covariance(z.view());
        assert_eq!(centred[[0, 0]], -1.0);
        assert!((cov[[0, 0]] - 2.0).abs() < 1e-12 && (cov[[0, 1]] - 2.0).abs() < 1e-12);
    }
}
