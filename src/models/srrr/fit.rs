//! The alternating sRRR algorithm (`elastic_rrr` of the authors' code) and the
//! relaxed refit (`relaxed_elastic_rrr`).
//!
//! V starts at the top-r PLS directions (right singular vectors of `XᵀY`); each
//! iteration solves the group lasso for W at the current V, updates V by
//! orthogonal Procrustes, orients the components and stops when the relative
//! loss `‖Y − XWVᵀ‖²/‖Y‖²` changes by less than `tol`. For α = 0 the ridge closed
//! form is used instead. The relaxed refit replaces the selected rows of W and
//! all of V by the ridge solution at the same λ on the selected genes.

use faer::Mat;
use ndarray::{Array2, ArrayView2};

use super::SrrrError;
use super::group_lasso::{self, CdSettings, GroupLassoProblem};
use super::moments::Moments;
use super::procrustes::{orient, procrustes};
use super::ridge::ridge_rrr;

/// Coordinate descent stops when no row update moves the objective by more than
/// this fraction of the response variance (glmnet uses 1e-7; tighter is cheap here).
const CD_RELATIVE_THRESHOLD: f64 = 1e-11;
/// Safety cap on coordinate-descent sweeps per W-step.
const CD_MAX_SWEEPS: usize = 100_000;

/// A fitted sRRR model `Ŷ = X W Vᵀ`.
#[derive(Debug, Clone, PartialEq)]
pub struct SrrrFit {
    /// Gene weights, p×r; zero rows are unselected genes.
    pub w: Array2<f64>,
    /// Response loadings, q×r with orthonormal columns (all zero if W is zero).
    pub v: Array2<f64>,
    /// Alternations done.
    pub iterations: usize,
    /// Whether the loss change fell below `tol` within `max_iter` and every
    /// W-step's coordinate descent converged (always true for the ridge case).
    pub converged: bool,
    /// Final relative training loss `‖Y − XWVᵀ‖²/‖Y‖²`.
    pub loss: f64,
}

/// A gene kept by the model, with its W row.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RankedGene {
    /// Column index of the gene in X.
    pub gene: usize,
    /// Euclidean norm of its W row, the ranking key.
    pub row_norm: f64,
    /// Its W row (one weight per component).
    pub weights: Vec<f64>,
}

impl SrrrFit {
    /// Predictions `X W Vᵀ` for (scaled like the training data) `x`, n×q.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        self.latent(x).dot(&self.v.t())
    }

    /// The latent scores `X W`, n×r.
    pub fn latent(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        x.dot(&self.w)
    }

    /// Indices of genes with a nonzero W row, ascending.
    pub fn selected_genes(&self) -> Vec<usize> {
        self.w
            .rows()
            .into_iter()
            .enumerate()
            .filter(|(_, row)| row.iter().any(|&v| v != 0.0))
            .map(|(g, _)| g)
            .collect()
    }

    /// Selected genes, largest W row norm first.
    pub fn ranked_genes(&self) -> Vec<RankedGene> {
        let mut genes: Vec<RankedGene> = self
            .selected_genes()
            .into_iter()
            .map(|gene| {
                let weights = self.w.row(gene).to_vec();
                let row_norm = weights.iter().map(|v| v * v).sum::<f64>().sqrt();
                RankedGene {
                    gene,
                    row_norm,
                    weights,
                }
            })
            .collect();
        genes.sort_by(|a, b| b.row_norm.total_cmp(&a.row_norm).then(a.gene.cmp(&b.gene)));
        genes
    }

    fn check_finite(&self, lambda: f64) -> Result<(), SrrrError> {
        let finite = |m: &Array2<f64>| m.iter().all(|v| v.is_finite());
        if !finite(&self.w) {
            return Err(SrrrError::NonFiniteOutput { what: "W", lambda });
        }
        if !(finite(&self.v) && self.loss.is_finite()) {
            return Err(SrrrError::NonFiniteOutput {
                what: "V or loss",
                lambda,
            });
        }
        Ok(())
    }
}

/// Outer-loop settings of [`fit_moments`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Maximum alternations.
    pub max_iter: usize,
    /// Stop when the relative loss changes by less than this.
    pub tol: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            max_iter: 100,
            tol: 1e-6,
        }
    }
}

/// The first W-step's solution of the previous λ, to warm-start the next λ of a
/// path. The first W-step always uses the PLS directions as V, so warm-starting
/// it changes the speed, not the result.
#[derive(Debug, Clone, PartialEq)]
pub struct WarmStart {
    w: Vec<f64>,
}

impl WarmStart {
    /// No warm start: W starts at zero.
    pub fn cold(p: usize, rank: usize) -> Self {
        Self {
            w: vec![0.0; p * rank],
        }
    }
}

/// Fits sRRR at one λ on centred `x` (n×p) and `y` (n×q) with the paper's
/// outer-loop settings (100 iterations, tol 1e-6).
pub fn fit(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    rank: usize,
    lambda: f64,
    alpha: f64,
) -> Result<SrrrFit, SrrrError> {
    let moments = Moments::from_data(x, y)?;
    let mut warm = WarmStart::cold(moments.p, rank);
    fit_moments(
        &moments,
        rank,
        lambda,
        alpha,
        FitOptions::default(),
        &mut warm,
    )
}

fn check_arguments(
    moments: &Moments,
    rank: usize,
    lambda: f64,
    alpha: f64,
) -> Result<(), SrrrError> {
    super::check_rank(rank, moments.p, moments.q)?;
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(SrrrError::InvalidLambda {
            index: 0,
            value: lambda,
        });
    }
    if !(0.0..=1.0).contains(&alpha) {
        return Err(SrrrError::AlphaOutOfRange { alpha });
    }
    Ok(())
}

/// The top-`rank` right singular vectors of `C = XᵀY/n` (q×r, row-major).
fn pls_directions(moments: &Moments, rank: usize) -> Result<Vec<f64>, SrrrError> {
    let (p, q) = (moments.p, moments.q);
    let cross = Mat::<f64>::from_fn(p, q, |i, j| moments.cross[i * q + j]);
    let svd = cross.thin_svd().map_err(|e| SrrrError::Decomposition {
        step: "PLS initialisation SVD",
        reason: format!("{e:?}"),
    })?;
    let v = svd.V();
    Ok((0..q)
        .flat_map(|i| (0..rank).map(move |k| v[(i, k)]))
        .collect())
}

/// `C V` (p×r) for row-major `v` (q×r).
fn project(moments: &Moments, v: &[f64], rank: usize) -> Vec<f64> {
    let q = moments.q;
    moments
        .cross
        .chunks_exact(q)
        .flat_map(|c| (0..rank).map(move |k| (0..q).map(|j| c[j] * v[j * rank + k]).sum::<f64>()))
        .collect()
}

/// `‖Y − XWVᵀ‖²/‖Y‖²` from moments, given `d = C V`.
fn relative_loss(moments: &Moments, w: &[f64], d: &[f64], rank: usize) -> f64 {
    let p = moments.p;
    let active: Vec<usize> = (0..p)
        .filter(|&g| w[g * rank..(g + 1) * rank].iter().any(|&v| v != 0.0))
        .collect();
    let fit_term: f64 = active
        .iter()
        .map(|&g| {
            (0..rank)
                .map(|k| w[g * rank + k] * d[g * rank + k])
                .sum::<f64>()
        })
        .sum();
    let quadratic: f64 = active
        .iter()
        .flat_map(|&a| active.iter().map(move |&b| (a, b)))
        .map(|(a, b)| {
            let dot: f64 = (0..rank).map(|k| w[a * rank + k] * w[b * rank + k]).sum();
            moments.gram[a * p + b] * dot
        })
        .sum();
    let total = moments.total_variance();
    (total - 2.0 * fit_term + quadratic) / total
}

fn into_fit(
    moments: &Moments,
    w: Vec<f64>,
    v: Vec<f64>,
    rank: usize,
    iterations: usize,
    converged: bool,
) -> Result<SrrrFit, SrrrError> {
    let d = project(moments, &v, rank);
    let loss = relative_loss(moments, &w, &d, rank);
    let shape_error = |e: ndarray::ShapeError| SrrrError::Decomposition {
        step: "result assembly",
        reason: e.to_string(),
    };
    Ok(SrrrFit {
        w: Array2::from_shape_vec((moments.p, rank), w).map_err(shape_error)?,
        v: Array2::from_shape_vec((moments.q, rank), v).map_err(shape_error)?,
        iterations,
        converged,
        loss,
    })
}

/// Fits sRRR at one λ from precomputed moments, warm-starting along a λ path.
pub fn fit_moments(
    moments: &Moments,
    rank: usize,
    lambda: f64,
    alpha: f64,
    options: FitOptions,
    warm: &mut WarmStart,
) -> Result<SrrrFit, SrrrError> {
    check_arguments(moments, rank, lambda, alpha)?;
    let (p, q) = (moments.p, moments.q);
    if alpha == 0.0 {
        let (w, v) = ridge_rrr(moments, rank, lambda)?;
        let fit = into_fit(moments, w, v, rank, 1, true)?;
        fit.check_finite(lambda)?;
        return Ok(fit);
    }
    if warm.w.len() != p * rank {
        *warm = WarmStart::cold(p, rank);
    }
    let settings = CdSettings {
        threshold: CD_RELATIVE_THRESHOLD * moments.total_variance(),
        max_sweeps: CD_MAX_SWEEPS,
    };
    let mut v = pls_directions(moments, rank)?;
    let mut w = warm.w.clone();
    let mut previous_loss = f64::NAN;
    let mut converged = false;
    let mut inner_converged = true;
    let mut iterations = 0;
    while iterations < options.max_iter {
        let d = project(moments, &v, rank);
        let problem = GroupLassoProblem {
            gram: &moments.gram,
            target: &d,
            p,
            r: rank,
            lambda,
            alpha,
        };
        inner_converged &= group_lasso::solve(problem, &mut w, settings).converged;
        if iterations == 0 {
            warm.w.clone_from(&w);
        }
        iterations += 1;
        if w.iter().all(|&value| value == 0.0) {
            return into_fit(
                moments,
                w,
                vec![0.0; q * rank],
                rank,
                iterations,
                inner_converged,
            );
        }
        // V-step: Procrustes on Yᵀ X W ∝ Cᵀ W.
        let a: Vec<f64> = (0..q)
            .flat_map(|j| {
                let w = &w;
                (0..rank).map(move |k| {
                    (0..p)
                        .map(|g| moments.cross[g * q + j] * w[g * rank + k])
                        .sum::<f64>()
                })
            })
            .collect();
        v = procrustes(&a, q, rank)?;
        orient(&mut v, &mut w, rank);
        let loss = relative_loss(moments, &w, &project(moments, &v, rank), rank);
        if (loss - previous_loss).abs() < options.tol {
            converged = true;
            break;
        }
        previous_loss = loss;
    }
    let fit = into_fit(
        moments,
        w,
        v,
        rank,
        iterations,
        converged && inner_converged,
    )?;
    fit.check_finite(lambda)?;
    Ok(fit)
}

/// The relaxed refit: ridge RRR at the same λ on the genes `fit` selected.
/// `None` when fewer genes than `rank` were selected (the authors skip those).
pub fn relax(moments: &Moments, fit: &SrrrFit, lambda: f64) -> Result<Option<SrrrFit>, SrrrError> {
    let rank = fit.w.ncols();
    let genes = fit.selected_genes();
    if genes.len() < rank {
        return Ok(None);
    }
    let (sub_w, v) = ridge_rrr(&moments.subset(&genes), rank, lambda)?;
    let mut w = vec![0.0; moments.p * rank];
    for (slot, &g) in genes.iter().enumerate() {
        w[g * rank..(g + 1) * rank].copy_from_slice(&sub_w[slot * rank..(slot + 1) * rank]);
    }
    let relaxed = into_fit(moments, w, v, rank, fit.iterations, fit.converged)?;
    relaxed.check_finite(lambda)?;
    Ok(Some(relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::r2::r2;
    use ndarray::{Array2, Axis};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    /// Y = X_relevant A Bᵀ + noise, centred, with `relevant` genes out of p.
    fn low_rank_data(n: usize, p: usize, q: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = || -> f64 { rng.sample(StandardNormal) };
        let x = Array2::from_shape_fn((n, p), |_| normal());
        let a = Array2::from_shape_fn((4, 2), |_| normal());
        let b = Array2::from_shape_fn((q, 2), |_| normal());
        let signal = x.select(Axis(1), &[0, 1, 2, 3]).dot(&a).dot(&b.t());
        let noise = Array2::from_shape_fn((n, q), |_| 0.5 * normal());
        let x = &x - &x.mean_axis(Axis(0)).unwrap();
        let y = signal + noise;
        let y = &y - &y.mean_axis(Axis(0)).unwrap();
        (x, y)
    }

    #[test]
    fn recovers_the_relevant_genes_and_orthonormal_loadings() {
        let (x, y) = low_rank_data(300, 30, 5, 1);
        let fit = fit(x.view(), y.view(), 2, 0.2, 1.0).unwrap();
        assert!(fit.converged);
        assert_eq!(fit.selected_genes(), vec![0, 1, 2, 3]);
        let vtv = fit.v.t().dot(&fit.v);
        assert!(
            (&vtv - &Array2::<f64>::eye(2))
                .iter()
                .all(|d| d.abs() < 1e-10)
        );
        // The loss reported from moments equals the loss on the data.
        let residual = &y - &fit.predict(x.view());
        let direct = residual.mapv(|v| v * v).sum() / y.mapv(|v| v * v).sum();
        assert!((direct - fit.loss).abs() < 1e-10);
        // The ranked list puts the selected genes first, by decreasing norm.
        let ranked = fit.ranked_genes();
        assert_eq!(ranked.len(), 4);
        assert!(
            ranked
                .windows(2)
                .all(|pair| pair[0].row_norm >= pair[1].row_norm)
        );
    }

    #[test]
    fn relaxed_refit_reaches_the_noise_ceiling() {
        let (x, y) = low_rank_data(400, 30, 5, 2);
        let (xt, yt) = low_rank_data(400, 30, 5, 2);
        let moments = Moments::from_data(x.view(), y.view()).unwrap();
        let mut warm = WarmStart::cold(30, 2);
        let sparse = fit_moments(&moments, 2, 0.3, 1.0, FitOptions::default(), &mut warm).unwrap();
        let relaxed = relax(&moments, &sparse, 0.0001).unwrap().unwrap();
        assert_eq!(relaxed.selected_genes(), sparse.selected_genes());
        let signal_share = 1.0 - 0.25 * 5.0 * 400.0 / yt.mapv(|v| v * v).sum();
        let score = r2(yt.view(), relaxed.predict(xt.view()).view()).unwrap();
        assert!(
            score > signal_share - 0.05,
            "R² {score} vs ceiling {signal_share}"
        );
        assert!(score >= r2(yt.view(), sparse.predict(xt.view()).view()).unwrap());
        // Too few genes for the rank: no refit.
        let huge = fit_moments(&moments, 2, 1e6, 1.0, FitOptions::default(), &mut warm).unwrap();
        assert!(huge.selected_genes().is_empty());
        assert!(huge.v.iter().all(|&v| v == 0.0));
        assert_eq!(relax(&moments, &huge, 1e6).unwrap(), None);
    }

    #[test]
    fn warm_start_gives_the_same_fit_as_a_cold_start() {
        let (x, y) = low_rank_data(200, 20, 4, 3);
        let moments = Moments::from_data(x.view(), y.view()).unwrap();
        let mut warm = WarmStart::cold(20, 2);
        fit_moments(&moments, 2, 0.5, 1.0, FitOptions::default(), &mut warm).unwrap();
        let warmed = fit_moments(&moments, 2, 0.1, 1.0, FitOptions::default(), &mut warm).unwrap();
        let cold = fit_moments(
            &moments,
            2,
            0.1,
            1.0,
            FitOptions::default(),
            &mut WarmStart::cold(20, 2),
        )
        .unwrap();
        assert_eq!(warmed.selected_genes(), cold.selected_genes());
        assert!((&warmed.w - &cold.w).iter().all(|d| d.abs() < 1e-6));
    }

    #[test]
    fn bad_arguments_and_inputs_are_errors() {
        let (x, y) = low_rank_data(20, 5, 3, 4);
        assert_eq!(
            fit(x.view(), y.view(), 4, 0.1, 1.0),
            Err(SrrrError::RankExceedsResponses {
                rank: 4,
                responses: 3
            })
        );
        assert_eq!(
            fit(x.view(), y.view(), 1, 0.1, 2.0),
            Err(SrrrError::AlphaOutOfRange { alpha: 2.0 })
        );
        let mut bad = y.clone();
        bad[[3, 1]] = f64::NAN;
        assert_eq!(
            fit(x.view(), bad.view(), 1, 0.1, 1.0),
            Err(SrrrError::NonFiniteInput {
                matrix: "Y",
                row: 3,
                column: 1
            })
        );
        // α = 0 takes the closed form.
        let ridge = fit(x.view(), y.view(), 2, 0.1, 0.0).unwrap();
        assert_eq!(ridge.selected_genes().len(), 5);
    }
}
