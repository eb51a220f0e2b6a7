//! The V-step and the sign convention.
//!
//! For fixed `W`, the `V` with orthonormal columns that minimises
//! `‖Y − XWVᵀ‖²_F` maximises `tr(Vᵀ YᵀXW)`: the orthogonal Procrustes solution
//! `V = P Qᵀ` from the thin SVD `YᵀXW = P Σ Qᵀ`. Components are then oriented
//! so that each column of `V` has its largest-magnitude entry positive, with
//! the matching column of `W` flipped alongside, as the authors' code does.

use faer::Mat;

use super::SrrrError;

/// `V = P Qᵀ` (q×r, row-major) for the row-major q×r matrix `a = P Σ Qᵀ`.
pub fn procrustes(a: &[f64], q: usize, r: usize) -> Result<Vec<f64>, SrrrError> {
    let matrix = Mat::<f64>::from_fn(q, r, |i, j| a[i * r + j]);
    let svd = matrix.thin_svd().map_err(|e| SrrrError::Decomposition {
        step: "Procrustes SVD",
        reason: format!("{e:?}"),
    })?;
    let (u, v) = (svd.U(), svd.V());
    let mut out = vec![0.0; q * r];
    for i in 0..q {
        for j in 0..r {
            out[i * r + j] = (0..r).map(|k| u[(i, k)] * v[(j, k)]).sum();
        }
    }
    Ok(out)
}

/// Flips columns so that each column of `v` (q×r) has its largest-|value| entry
/// (the first, on ties) positive; flips the same columns of `w` (p×r).
pub fn orient(v: &mut [f64], w: &mut [f64], r: usize) {
    for j in 0..r {
        let mut best = 0.0_f64;
        for value in v.iter().skip(j).step_by(r) {
            if value.abs() > best.abs() {
                best = *value;
            }
        }
        if best < 0.0 {
            v.iter_mut().skip(j).step_by(r).for_each(|x| *x = -*x);
            w.iter_mut().skip(j).step_by(r).for_each(|x| *x = -*x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn procrustes_gives_orthonormal_columns_that_maximise_the_trace() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (q, r) = (6, 3);
        let a: Vec<f64> = (0..q * r).map(|_| rng.random_range(-1.0..1.0)).collect();
        let v = procrustes(&a, q, r).unwrap();
        for j in 0..r {
            for k in 0..r {
                let dot: f64 = (0..q).map(|i| v[i * r + j] * v[i * r + k]).sum();
                let expected = if j == k { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-12);
            }
        }
        let trace = |v: &[f64]| (0..q * r).map(|i| v[i] * a[i]).sum::<f64>();
        let best = trace(&v);
        // No other orthonormal V (here: rotations of the optimum) does better.
        for angle in [0.1_f64, -0.3, 1.0] {
            let (c, s) = (angle.cos(), angle.sin());
            let mut rotated = v.clone();
            for i in 0..q {
                let (x0, x1) = (v[i * r], v[i * r + 1]);
                rotated[i * r] = c * x0 - s * x1;
                rotated[i * r + 1] = s * x0 + c * x1;
            }
            assert!(trace(&rotated) < best);
        }
    }

    #[test]
    fn orientation_makes_the_largest_entry_positive_and_flips_w_too() {
        // Column 0 = (0.2, 0.8) is already positive; column 1 = (-0.9, 0.1) flips.
        let mut v = vec![0.2, -0.9, 0.8, 0.1];
        let mut w = vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        orient(&mut v, &mut w, 2);
        assert_eq!(v, vec![0.2, 0.9, 0.8, -0.1]);
        assert_eq!(w, vec![1.0, -10.0, 2.0, -20.0, 3.0, -30.0]);
    }
}
