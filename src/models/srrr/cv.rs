//! The paper's sRRR protocol (sbnn.md §6.4): cross-validate every λ of a grid,
//! choose the first λ (ascending) whose fold-mean gene count is within
//! `target ± tolerance`, report its (relaxed) test R², and refit on all cells.
//!
//! Each fold is scaled with its training statistics, reduced to covariance form
//! once (for centring only, by removing the test block from whole-data sums,
//! which is ten times cheaper than a fresh `XᵀX`), and fitted along the λ path from the largest λ down with warm starts.
//! Folds run in parallel under [`crate::analysis::cv::run_fits`], which
//! forwards their progress to the [`Sink`] and relays cancellation.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::fit::{FitOptions, WarmStart, fit_moments, relax};
use super::moments::{MomentSums, Moments, check_inputs};
use super::{SrrrConfig, SrrrError};
use crate::analysis::cv::{Fit, Fold, run_fits};
use crate::analysis::r2::{MeanSd, mean_sd, r2, r2_per_feature};
use crate::analysis::scaling::{FoldScaling, scale_all, scale_fold};
use crate::progress::{Event, Sink};

pub use super::fit::RankedGene;

/// Cross-validated results at one λ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaRow {
    /// The penalty.
    pub lambda: f64,
    /// Genes selected in each fold.
    pub genes_per_fold: Vec<usize>,
    /// Their mean over folds.
    pub mean_genes: f64,
    /// Test R² of the sparse fit, mean ± SD over folds (None if a fold selected no gene).
    pub r2: Option<MeanSd>,
    /// Test R² of the relaxed refit (None if a fold selected fewer genes than the rank).
    pub r2_relaxed: Option<MeanSd>,
}

/// The model refitted on all cells at the chosen λ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalFit {
    /// Selected genes, largest W row norm first.
    pub genes: Vec<RankedGene>,
    /// Response loadings V, one row per response feature.
    pub loadings: Vec<Vec<f64>>,
    /// Latent scores X W of every cell, one row per cell.
    pub latent: Vec<Vec<f64>>,
    /// Whether the sparse fit's outer loop converged.
    pub converged: bool,
    /// Whether the reported W and V are the relaxed refit.
    pub relaxed: bool,
}

/// The chosen λ and its cross-validated performance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrrrSelection {
    /// The chosen penalty.
    pub lambda: f64,
    /// Whether the scores below are of the relaxed refit.
    pub relaxed: bool,
    /// Test R², mean ± SD (ddof 0) over folds.
    pub r2: MeanSd,
    /// Test R² of each fold.
    pub r2_per_fold: Vec<f64>,
    /// Per-feature test R², mean over folds.
    pub r2_per_feature: Vec<f64>,
    /// The refit on all cells.
    pub final_fit: FinalFit,
}

/// Everything an sRRR cross-validation run produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrrrCvResult {
    /// Number of latent components.
    pub rank: usize,
    /// One row per λ, ascending.
    pub lambdas: Vec<LambdaRow>,
    /// The chosen λ; None when no λ met the gene-count target.
    pub selection: Option<SrrrSelection>,
    /// Fold-λ fits whose outer loop hit `max_iter` before converging.
    pub unconverged_fits: usize,
}

/// One fold at one λ.
#[derive(Debug, Clone, Default)]
struct FoldScore {
    genes: usize,
    r2: Option<f64>,
    r2_relaxed: Option<f64>,
    per_feature: Option<Vec<f64>>,
    per_feature_relaxed: Option<Vec<f64>>,
    converged: bool,
}

/// What the fold workers share.
struct Job<'a> {
    x: ArrayView2<'a, f64>,
    y: ArrayView2<'a, f64>,
    scaling: FoldScaling,
    config: &'a SrrrConfig,
    /// λ values, ascending.
    lambdas: &'a [f64],
    /// Whole-data sums for fast centred fold moments (centring only).
    sums: Option<&'a MomentSums>,
}

fn score(
    fold_index: usize,
    truth: ArrayView2<'_, f64>,
    prediction: ArrayView2<'_, f64>,
) -> Result<(f64, Vec<f64>), SrrrError> {
    let wrap = |source| SrrrError::Score {
        fold: fold_index,
        source,
    };
    Ok((
        r2(truth, prediction).map_err(wrap)?,
        r2_per_feature(truth, prediction).map_err(wrap)?,
    ))
}

/// Whether the fold's train and test rows are together every row exactly once.
fn is_partition(fold: &Fold, rows: usize) -> bool {
    let mut seen = vec![false; rows];
    fold.train.len() + fold.test.len() == rows
        && fold
            .train
            .iter()
            .chain(&fold.test)
            .all(|&i| i < rows && !std::mem::replace(&mut seen[i], true))
}

/// Fits one fold along the whole λ path (largest first); results ascending.
fn run_fold(
    job: &Job<'_>,
    fold_index: usize,
    fold: &Fold,
    sink: &mut dyn Sink,
) -> Result<Vec<FoldScore>, SrrrError> {
    let scale = |data| {
        scale_fold(data, fold, job.scaling).map_err(|source| SrrrError::Scaling {
            fold: Some(fold_index),
            source,
        })
    };
    let (x_train, x_test) = scale(job.x)?;
    let (y_train, y_test) = scale(job.y)?;
    let downdated = match job.sums {
        Some(sums) if is_partition(fold, job.x.nrows()) => {
            sums.centred_without(job.x, job.y, &fold.test)
        }
        _ => None,
    };
    let moments = match downdated {
        Some(moments) => moments,
        None => Moments::from_data(x_train.view(), y_train.view())?,
    };
    let rank = job.config.rank;
    let options = FitOptions {
        max_iter: job.config.max_iter,
        tol: job.config.tol,
    };
    let mut warm = WarmStart::cold(moments.p, rank);
    let mut scores = vec![FoldScore::default(); job.lambdas.len()];
    for (slot, &lambda) in job.lambdas.iter().enumerate().rev() {
        if sink.cancelled() {
            return Err(SrrrError::Cancelled);
        }
        let fit = fit_moments(&moments, rank, lambda, job.config.alpha, options, &mut warm)?;
        let genes = fit.selected_genes().len();
        let mut entry = FoldScore {
            genes,
            converged: fit.converged,
            ..FoldScore::default()
        };
        if genes > 0 {
            let (total, per_feature) =
                score(fold_index, y_test.view(), fit.predict(x_test.view()).view())?;
            entry.r2 = Some(total);
            entry.per_feature = Some(per_feature);
        }
        if let Some(relaxed) = relax(&moments, &fit, lambda)? {
            let (total, per_feature) = score(
                fold_index,
                y_test.view(),
                relaxed.predict(x_test.view()).view(),
            )?;
            entry.r2_relaxed = Some(total);
            entry.per_feature_relaxed = Some(per_feature);
        }
        scores[slot] = entry;
        sink.event(Event::Step {
            done: (job.lambdas.len() - slot) as u64,
        });
    }
    Ok(scores)
}

/// Runs every fold in parallel, forwarding progress to `sink` as one stage.
/// Returns the scores indexed `[fold][lambda]`.
fn run_folds(
    job: &Job<'_>,
    folds: &[Fold],
    sink: &mut dyn Sink,
) -> Result<Vec<Vec<FoldScore>>, SrrrError> {
    let stage = format!(
        "sRRR rank {}: {} folds x {} lambdas",
        job.config.rank,
        folds.len(),
        job.lambdas.len()
    );
    let total = (folds.len() * job.lambdas.len()) as u64;
    run_fits(
        &Fit::plan(folds.len(), false),
        &stage,
        total,
        sink,
        |fit, sink: &mut dyn Sink| {
            let index = fit.fold().ok_or(SrrrError::WorkerFailed)?;
            let fold = folds.get(index).ok_or(SrrrError::WorkerFailed)?;
            run_fold(job, index, fold, sink)
        },
    )
    .map_err(|e| e.into_model_error(SrrrError::Cancelled, SrrrError::WorkerFailed))
}

/// Collects `value` from every fold; None if any fold lacks it.
fn all_folds<T>(
    scores: &[Vec<FoldScore>],
    slot: usize,
    value: impl Fn(&FoldScore) -> Option<T>,
) -> Option<Vec<T>> {
    scores
        .iter()
        .map(|fold| fold.get(slot).and_then(&value))
        .collect()
}

/// Index of the first λ (ascending) whose mean gene count is within
/// `target ± tolerance` and whose reported R² exists in every fold.
pub fn choose_lambda(
    rows: &[LambdaRow],
    target: usize,
    tolerance: f64,
    relaxed: bool,
) -> Option<usize> {
    rows.iter().position(|row| {
        let scored = if relaxed {
            row.r2_relaxed.is_some()
        } else {
            row.r2.is_some()
        };
        scored && (row.mean_genes - target as f64).abs() <= tolerance
    })
}

fn to_rows(matrix: &Array2<f64>) -> Vec<Vec<f64>> {
    matrix.rows().into_iter().map(|row| row.to_vec()).collect()
}

/// Refits on all cells at `lambda`.
fn final_fit(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    scaling: FoldScaling,
    config: &SrrrConfig,
    lambda: f64,
) -> Result<FinalFit, SrrrError> {
    let wrap = |source| SrrrError::Scaling { fold: None, source };
    let x_all = scale_all(x, scaling).map_err(wrap)?;
    let y_all = scale_all(y, scaling).map_err(wrap)?;
    let moments = Moments::from_data(x_all.view(), y_all.view())?;
    let options = FitOptions {
        max_iter: config.max_iter,
        tol: config.tol,
    };
    let mut warm = WarmStart::cold(moments.p, config.rank);
    let sparse = fit_moments(
        &moments,
        config.rank,
        lambda,
        config.alpha,
        options,
        &mut warm,
    )?;
    let relaxed = if config.relaxed {
        relax(&moments, &sparse, lambda)?
    } else {
        None
    };
    let is_relaxed = relaxed.is_some();
    let model = relaxed.unwrap_or_else(|| sparse.clone());
    let latent = model.latent(x_all.view());
    if latent.iter().any(|v| !v.is_finite()) {
        return Err(SrrrError::NonFiniteOutput {
            what: "latent",
            lambda,
        });
    }
    Ok(FinalFit {
        genes: model.ranked_genes(),
        loadings: to_rows(&model.v),
        latent: to_rows(&latent),
        converged: sparse.converged,
        relaxed: is_relaxed,
    })
}

/// Runs the full protocol on preprocessed `x` (cells × genes) and `y`
/// (cells × features) over `folds`, reporting one stage to `sink`.
pub fn cross_validate(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    folds: &[Fold],
    scaling: FoldScaling,
    config: &SrrrConfig,
    sink: &mut dyn Sink,
) -> Result<SrrrCvResult, SrrrError> {
    check_inputs(x, y)?;
    config.validate_for(x.ncols(), y.ncols())?;
    if folds.is_empty() {
        return Err(SrrrError::NoFolds);
    }
    let mut lambdas = config.lambdas.clone();
    lambdas.sort_by(f64::total_cmp);
    let sums = match scaling {
        FoldScaling::CentreOnly => Some(MomentSums::from_data(x, y)?),
        FoldScaling::ZScore => None,
    };
    let job = Job {
        sums: sums.as_ref(),
        x,
        y,
        scaling,
        config,
        lambdas: &lambdas,
    };
    let scores = run_folds(&job, folds, sink)?;
    let rows: Vec<LambdaRow> = lambdas
        .iter()
        .enumerate()
        .map(|(slot, &lambda)| {
            let genes_per_fold = all_folds(&scores, slot, |s| Some(s.genes)).unwrap_or_default();
            let mean_genes = genes_per_fold.iter().sum::<usize>() as f64 / folds.len() as f64;
            LambdaRow {
                lambda,
                genes_per_fold,
                mean_genes,
                r2: all_folds(&scores, slot, |s| s.r2).and_then(|v| mean_sd(&v)),
                r2_relaxed: all_folds(&scores, slot, |s| s.r2_relaxed).and_then(|v| mean_sd(&v)),
            }
        })
        .collect();
    let unconverged_fits = scores.iter().flatten().filter(|s| !s.converged).count();
    let selection =
        match choose_lambda(&rows, config.target_genes, config.tolerance, config.relaxed) {
            None => {
                sink.event(Event::Message(format!(
                    "sRRR rank {}: no lambda gives {} ± {} genes on average",
                    config.rank, config.target_genes, config.tolerance
                )));
                None
            }
            Some(slot) => {
                let relaxed = config.relaxed;
                let per_fold =
                    all_folds(&scores, slot, |s| if relaxed { s.r2_relaxed } else { s.r2 })
                        .unwrap_or_default();
                let per_feature_folds = all_folds(&scores, slot, |s| {
                    if relaxed {
                        s.per_feature_relaxed.clone()
                    } else {
                        s.per_feature.clone()
                    }
                })
                .unwrap_or_default();
                let features = y.ncols();
                let r2_per_feature = (0..features)
                    .map(|j| {
                        per_feature_folds
                            .iter()
                            .filter_map(|f| f.get(j))
                            .sum::<f64>()
                            / per_feature_folds.len().max(1) as f64
                    })
                    .collect();
                let lambda = rows.get(slot).map_or(f64::NAN, |row| row.lambda);
                let summary = mean_sd(&per_fold).ok_or(SrrrError::NoFolds)?;
                sink.event(Event::Message(format!(
                    "sRRR rank {}: lambda {lambda} -> R² {:.3} ± {:.3}",
                    config.rank, summary.mean, summary.sd
                )));
                Some(SrrrSelection {
                    lambda,
                    relaxed,
                    r2: summary,
                    r2_per_fold: per_fold,
                    r2_per_feature,
                    final_fit: final_fit(x, y, scaling, config, lambda)?,
                })
            }
        };
    Ok(SrrrCvResult {
        rank: config.rank,
        lambdas: rows,
        selection,
        unconverged_fits,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(lambda: f64, mean_genes: f64, relaxed: bool) -> LambdaRow {
        let score = Some(MeanSd {
            mean: 0.3,
            sd: 0.01,
        });
        LambdaRow {
            lambda,
            genes_per_fold: vec![],
            mean_genes,
            r2: score,
            r2_relaxed: if relaxed { score } else { None },
        }
    }

    #[test]
    fn choose_lambda_takes_the_first_within_tolerance() {
        let rows = vec![
            row(0.1, 108.9, true),
            row(0.2, 52.7, true),
            row(0.3, 30.7, true),
            row(0.4, 24.2, true),
            row(0.5, 18.1, true),
            row(0.6, 23.0, true),
        ];
        assert_eq!(choose_lambda(&rows, 25, 3.0, true), Some(3));
        assert_eq!(choose_lambda(&rows, 25, 6.0, true), Some(2));
        assert_eq!(choose_lambda(&rows, 25, 0.5, true), None);
        assert_eq!(choose_lambda(&rows, 18, 0.5, true), Some(4));
        // A λ without a relaxed score cannot be chosen for relaxed reporting.
        let rows = vec![row(0.4, 24.0, false), row(0.5, 23.0, true)];
        assert_eq!(choose_lambda(&rows, 25, 3.0, true), Some(1));
        assert_eq!(choose_lambda(&rows, 25, 3.0, false), Some(0));
    }
}
