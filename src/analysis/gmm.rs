//! Gaussian mixture models with full covariances, fitted by EM from several
//! k-means++ initialisations (the best log-likelihood wins), following
//! scikit-learn's `GaussianMixture(covariance_type="full")`: `reg_covar` is
//! added to every covariance diagonal, EM stops when the mean log-likelihood
//! changes by less than `tol`.

use faer::{Mat, Side};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// GMM settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmmConfig {
    /// Independent initialisations.
    pub inits: usize,
    /// EM iterations per initialisation at most.
    pub max_iter: usize,
    /// Convergence threshold on the change of the mean log-likelihood.
    pub tol: f64,
    /// Added to each covariance diagonal.
    pub reg_covar: f64,
    /// Seed of the initialisations.
    pub seed: u64,
}

impl Default for GmmConfig {
    fn default() -> Self {
        GmmConfig {
            inits: 10,
            max_iter: 300,
            tol: 1e-4,
            reg_covar: 1e-4,
            seed: 0,
        }
    }
}

/// Why a mixture could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GmmError {
    /// Fewer points than components.
    #[error("gmm: {points} points cannot fit {components} components")]
    TooFewPoints {
        /// Number of points.
        points: usize,
        /// Number of components.
        components: usize,
    },
    /// A covariance stayed singular despite the regulariser.
    #[error("gmm: a component covariance is not positive definite")]
    Singular,
}

/// A fitted mixture.
#[derive(Debug, Clone, PartialEq)]
pub struct Gmm {
    /// Mixing weights.
    pub weights: Array1<f64>,
    /// Component means, one row each.
    pub means: Array2<f64>,
    /// Component covariances.
    pub covariances: Vec<Array2<f64>>,
    /// Mean log-likelihood of the training points.
    pub log_likelihood: f64,
    /// Whether the best initialisation converged.
    pub converged: bool,
}

/// Lower Cholesky factor of a component covariance.
fn cholesky(cov: &Array2<f64>) -> Result<Array2<f64>, GmmError> {
    let d = cov.nrows();
    let m = Mat::<f64>::from_fn(d, d, |i, j| cov[[i, j]]);
    let llt = m.llt(Side::Lower).map_err(|_| GmmError::Singular)?;
    let l = llt.L();
    Ok(Array2::from_shape_fn((d, d), |(i, j)| {
        if j <= i { l[(i, j)] } else { 0.0 }
    }))
}

/// `log N(x; μ_k, Σ_k) + log w_k` for every point and component.
fn weighted_log_prob(x: ArrayView2<'_, f64>, gmm: &Gmm) -> Result<Array2<f64>, GmmError> {
    let (n, d) = x.dim();
    let k = gmm.weights.len();
    let mut out = Array2::zeros((n, k));
    let log_2pi = (2.0 * std::f64::consts::PI).ln();
    for c in 0..k {
        let l = cholesky(&gmm.covariances[c])?;
        let log_det: f64 = (0..d).map(|i| l[[i, i]].ln()).sum::<f64>() * 2.0;
        let mean = gmm.means.row(c);
        let mut y = vec![0.0; d];
        for (r, row) in x.rows().into_iter().enumerate() {
            for i in 0..d {
                let s: f64 = (0..i).map(|j| l[[i, j]] * y[j]).sum();
                y[i] = (row[i] - mean[i] - s) / l[[i, i]];
            }
            let maha: f64 = y.iter().map(|v| v * v).sum();
            out[[r, c]] = -0.5 * (d as f64 * log_2pi + log_det + maha) + gmm.weights[c].ln();
        }
    }
    Ok(out)
}

/// Row-wise log-sum-exp.
fn log_sum_exp(a: &Array2<f64>) -> Array1<f64> {
    a.rows()
        .into_iter()
        .map(|row| {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if !m.is_finite() {
                return m;
            }
            m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
        })
        .collect()
}

/// Weights, means and covariances from responsibilities (the M-step).
fn m_step(x: ArrayView2<'_, f64>, resp: &Array2<f64>, reg: f64) -> Gmm {
    let (n, d) = x.dim();
    let k = resp.ncols();
    let nk: Array1<f64> = resp.sum_axis(Axis(0)).mapv(|v| v + 10.0 * f64::EPSILON);
    let means = resp.t().dot(&x) / nk.view().insert_axis(Axis(1));
    let mut covariances = Vec::with_capacity(k);
    for c in 0..k {
        let mut cov = Array2::<f64>::zeros((d, d));
        for r in 0..n {
            let w = resp[[r, c]];
            if w == 0.0 {
                continue;
            }
            for i in 0..d {
                let di = x[[r, i]] - means[[c, i]];
                for j in 0..=i {
                    cov[[i, j]] += w * di * (x[[r, j]] - means[[c, j]]);
                }
            }
        }
        for i in 0..d {
            for j in 0..i {
                cov[[j, i]] = cov[[i, j]];
            }
        }
        cov /= nk[c];
        for i in 0..d {
            cov[[i, i]] += reg;
        }
        covariances.push(cov);
    }
    Gmm {
        weights: &nk / n as f64,
        means,
        covariances,
        log_likelihood: f64::NEG_INFINITY,
        converged: false,
    }
}

/// Hard k-means responsibilities from k-means++ seeds and Lloyd iterations.
fn kmeans_responsibilities(x: ArrayView2<'_, f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let n = x.nrows();
    let dist2 = |a: usize, centre: &Array1<f64>| -> f64 {
        x.row(a)
            .iter()
            .zip(centre.iter())
            .map(|(p, q)| (p - q) * (p - q))
            .sum()
    };
    let mut centres: Vec<Array1<f64>> = vec![x.row(rng.random_range(0..n)).to_owned()];
    let mut best: Vec<f64> = (0..n).map(|r| dist2(r, &centres[0])).collect();
    while centres.len() < k {
        let total: f64 = best.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut chosen = n - 1;
            for (r, &b) in best.iter().enumerate() {
                target -= b;
                if target <= 0.0 {
                    chosen = r;
                    break;
                }
            }
            chosen
        } else {
            rng.random_range(0..n)
        };
        centres.push(x.row(next).to_owned());
        for (r, b) in best.iter_mut().enumerate() {
            *b = b.min(dist2(r, &centres[centres.len() - 1]));
        }
    }
    let mut assign = vec![0usize; n];
    for _ in 0..50 {
        let mut changed = false;
        for (r, a) in assign.iter_mut().enumerate() {
            let nearest = (0..k)
                .min_by(|&p, &q| dist2(r, &centres[p]).total_cmp(&dist2(r, &centres[q])))
                .unwrap_or(0);
            if nearest != *a {
                *a = nearest;
                changed = true;
            }
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<usize> = (0..n).filter(|&r| assign[r] == c).collect();
            if !members.is_empty() {
                *centre = x
                    .select(Axis(0), &members)
                    .mean_axis(Axis(0))
                    .unwrap_or_else(|| centre.clone());
            }
        }
        if !changed {
            break;
        }
    }
    let mut resp = Array2::zeros((n, k));
    for (r, &a) in assign.iter().enumerate() {
        resp[[r, a]] = 1.0;
    }
    resp
}

impl Gmm {
    /// Fits `components` Gaussians to the rows of `x`.
    pub fn fit(
        x: ArrayView2<'_, f64>,
        components: usize,
        config: &GmmConfig,
    ) -> Result<Gmm, GmmError> {
        let n = x.nrows();
        if components == 0 || n < components {
            return Err(GmmError::TooFewPoints {
                points: n,
                components,
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut best: Option<Gmm> = None;
        for _ in 0..config.inits.max(1) {
            let resp = kmeans_responsibilities(x, components, &mut rng);
            let mut gmm = m_step(x, &resp, config.reg_covar);
            let mut previous = f64::NEG_INFINITY;
            for _ in 0..config.max_iter {
                let log_prob = weighted_log_prob(x, &gmm)?;
                let norm = log_sum_exp(&log_prob);
                let ll = norm.mean().unwrap_or(f64::NEG_INFINITY);
                let resp = (&log_prob - &norm.view().insert_axis(Axis(1))).mapv(f64::exp);
                gmm = m_step(x, &resp, config.reg_covar);
                gmm.log_likelihood = ll;
                if (ll - previous).abs() < config.tol {
                    gmm.converged = true;
                    break;
                }
                previous = ll;
            }
            // Score the final parameters.
            let log_prob = weighted_log_prob(x, &gmm)?;
            gmm.log_likelihood = log_sum_exp(&log_prob).mean().unwrap_or(f64::NEG_INFINITY);
            if best
                .as_ref()
                .is_none_or(|b| gmm.log_likelihood > b.log_likelihood)
            {
                best = Some(gmm);
            }
        }
        best.ok_or(GmmError::Singular)
    }

    /// Mean log-likelihood of the rows of `x`.
    pub fn score(&self, x: ArrayView2<'_, f64>) -> Result<f64, GmmError> {
        Ok(log_sum_exp(&weighted_log_prob(x, self)?)
            .mean()
            .unwrap_or(f64::NEG_INFINITY))
    }

    /// The most probable component of every row.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>, GmmError> {
        let log_prob = weighted_log_prob(x, self)?;
        Ok(log_prob
            .rows()
            .into_iter()
            .map(|row| {
                (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0)
            })
            .collect())
    }
}
