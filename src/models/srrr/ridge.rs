//! Pure-ridge reduced-rank regression in closed form (α = 0), used for the
//! relaxed refit on the selected genes.
//!
//! The authors compute `B = P diag(s/(s² + λn)) Uᵀ Y` from the SVD `X = U S Pᵀ`,
//! which is the ridge solution `(XᵀX + λn I)⁻¹ XᵀY = (G + λI)⁻¹ C` in our
//! covariance form; we solve that by Cholesky. `V` is the top-r right singular
//! vectors of `XB`, i.e. the top-r eigenvectors of `Bᵀ G B`, and `W = B V`.

use faer::prelude::Solve;
use faer::{Mat, Side};

use super::SrrrError;
use super::moments::Moments;
use super::procrustes::orient;

/// The ridge coefficients `(G + λI)⁻¹ C` (p×q, row-major).
pub fn ridge_coefficients(moments: &Moments, lambda: f64) -> Result<Vec<f64>, SrrrError> {
    let (p, q) = (moments.p, moments.q);
    let system = Mat::<f64>::from_fn(p, p, |i, j| {
        moments.gram[i * p + j] + if i == j { lambda } else { 0.0 }
    });
    let llt = system
        .llt(Side::Lower)
        .map_err(|e| SrrrError::Decomposition {
            step: "ridge Cholesky factorisation (X'X + lambda n I is not positive definite)",
            reason: format!("{e:?}"),
        })?;
    let rhs = Mat::<f64>::from_fn(p, q, |i, j| moments.cross[i * q + j]);
    let solution = llt.solve(&rhs);
    let mut out = Vec::with_capacity(p * q);
    for i in 0..p {
        out.extend((0..q).map(|j| solution[(i, j)]));
    }
    Ok(out)
}

/// Rank-`rank` ridge RRR: returns `(W, V)`, p×r and q×r row-major, oriented.
pub fn ridge_rrr(
    moments: &Moments,
    rank: usize,
    lambda: f64,
) -> Result<(Vec<f64>, Vec<f64>), SrrrError> {
    let (p, q) = (moments.p, moments.q);
    let b = ridge_coefficients(moments, lambda)?;
    // G B (p×q), then Bᵀ G B (q×q).
    let mut gb = vec![0.0; p * q];
    for i in 0..p {
        for a in 0..p {
            let g = moments.gram[i * p + a];
            for j in 0..q {
                gb[i * q + j] += g * b[a * q + j];
            }
        }
    }
    let scatter = Mat::<f64>::from_fn(q, q, |i, j| {
        (0..p).map(|a| b[a * q + i] * gb[a * q + j]).sum()
    });
    let eigen = scatter
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| SrrrError::Decomposition {
            step: "ridge eigendecomposition",
            reason: format!("{e:?}"),
        })?;
    let vectors = eigen.U();
    // Eigenvalues come in nondecreasing order: take the last `rank`, largest first.
    let mut v = vec![0.0; q * rank];
    for k in 0..rank {
        let column = q - 1 - k;
        for i in 0..q {
            v[i * rank + k] = vectors[(i, column)];
        }
    }
    let mut w = vec![0.0; p * rank];
    for a in 0..p {
        for k in 0..rank {
            w[a * rank + k] = (0..q).map(|j| b[a * q + j] * v[j * rank + k]).sum();
        }
    }
    orient(&mut v, &mut w, rank);
    Ok((w, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn data(n: usize, p: usize, q: usize) -> (Array2<f64>, Array2<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let x = Array2::from_shape_fn((n, p), |_| rng.random_range(-1.0..1.0));
        let y = Array2::from_shape_fn((n, q), |(i, j)| x[[i, j % p]] + rng.random_range(-0.3..0.3));
        (x, y)
    }

    #[test]
    fn closed_form_matches_a_direct_solve_on_the_data() {
        let (n, p, q, lambda) = (40, 6, 4, 0.3);
        let (x, y) = data(n, p, q);
        let moments = Moments::from_data(x.view(), y.view()).unwrap();
        let b = ridge_coefficients(&moments, lambda).unwrap();
        // Direct: (XᵀX + λ n I) B = XᵀY, solved by LU on the raw data.
        let xtx = x.t().dot(&x) + Array2::<f64>::eye(p) * (lambda * n as f64);
        let xty = x.t().dot(&y);
        let lhs = Mat::<f64>::from_fn(p, p, |i, j| xtx[[i, j]]);
        let rhs = Mat::<f64>::from_fn(p, q, |i, j| xty[[i, j]]);
        let direct = lhs.partial_piv_lu().solve(&rhs);
        for i in 0..p {
            for j in 0..q {
                assert!((b[i * q + j] - direct[(i, j)]).abs() < 1e-10);
            }
        }
        // Full rank: W Vᵀ reproduces B exactly, and V is orthonormal.
        let (w, v) = ridge_rrr(&moments, q, lambda).unwrap();
        for i in 0..p {
            for j in 0..q {
                let wv: f64 = (0..q).map(|k| w[i * q + k] * v[j * q + k]).sum();
                assert!((wv - b[i * q + j]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn low_rank_keeps_the_leading_singular_directions_of_xb() {
        let (n, p, q) = (50, 5, 4);
        let (x, y) = data(n, p, q);
        let moments = Moments::from_data(x.view(), y.view()).unwrap();
        let lambda = 0.1;
        let b = ridge_coefficients(&moments, lambda).unwrap();
        let b = Array2::from_shape_vec((p, q), b).unwrap();
        let xb = x.dot(&b);
        let svd = Mat::<f64>::from_fn(n, q, |i, j| xb[[i, j]])
            .thin_svd()
            .unwrap();
        let (_, v) = ridge_rrr(&moments, 2, lambda).unwrap();
        // Same subspace: the projector onto span(V) matches that of the SVD's top 2.
        for i in 0..q {
            for j in 0..q {
                let ours: f64 = (0..2).map(|k| v[i * 2 + k] * v[j * 2 + k]).sum();
                let theirs: f64 = (0..2).map(|k| svd.V()[(i, k)] * svd.V()[(j, k)]).sum();
                assert!((ours - theirs).abs() < 1e-8);
            }
        }
    }
}
