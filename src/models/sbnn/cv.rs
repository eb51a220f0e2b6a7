//! Cross-validation of the sBNN and the final model on all cells.
//!
//! Every fold is scaled with its training statistics, gets k-means labels of
//! its own training targets (unless the reference's leak is asked for), and is
//! trained with the full schedule; its test R² (Eq. 3) is taken on the whole
//! test fold at the last epoch. The folds and the final model run as
//! independent jobs under [`crate::analysis::cv::run_fits`], each
//! single-threaded and seeded by its job index, so results do not depend on the
//! thread count. Every epoch reports `loss`, `train_r2` and `test_r2` (step =
//! epoch) as metrics of its fold (none for the final model).

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::network::bottleneck;
use super::train::{EpochReport, Rows, TrainInput, TrainedSbnn, train};
use super::{SbnnConfig, SbnnError};
use crate::analysis::cv::{Fit, Fold, run_fits};
use crate::analysis::kmeans::{KMeansConfig, kmeans};
use crate::analysis::r2::{MeanSd, mean_sd, r2, r2_per_feature};
use crate::analysis::scaling::{FoldScaling, scale_all, scale_fold};
use crate::nn::dense::Engine;
use crate::progress::{Event, Sink};

/// The decoder's predictions over a regular grid of the 2-D latent plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatentGrid {
    /// Grid coordinates along the first latent axis.
    pub x: Vec<f32>,
    /// Grid coordinates along the second latent axis.
    pub y: Vec<f32>,
    /// Predictions, `values[(i * y.len() + j) * outputs + f]` at `(x[i], y[j])`.
    pub values: Vec<f32>,
    /// Number of predicted features.
    pub outputs: usize,
}

/// The model fitted on all cells.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalModel {
    /// The training run.
    pub trained: TrainedSbnn,
    /// Bottleneck coordinates of every cell, row-major.
    pub latent: Vec<f32>,
    /// Decoder predictions over the latent plane (2-D bottlenecks only).
    pub grid: Option<LatentGrid>,
}

/// Everything an sBNN cross-validation produces.
#[derive(Debug, Clone, PartialEq)]
pub struct SbnnCvResult {
    /// Test R² (Eq. 3) of every fold at the reported epoch.
    pub r2_per_fold: Vec<f64>,
    /// Their mean ± SD (ddof 0).
    pub r2: MeanSd,
    /// Per-feature test R² (Eq. 4), mean over folds.
    pub r2_per_feature: Vec<f64>,
    /// Training R² per regression epoch, mean over folds.
    pub train_curve: Vec<f64>,
    /// Test R² per regression epoch, mean over folds.
    pub test_curve: Vec<f64>,
    /// Mean mini-batch loss (with penalties) per regression epoch, mean over folds.
    pub loss_curve: Vec<f64>,
    /// Genes (input columns) each fold selected, strongest first.
    pub fold_genes: Vec<Vec<usize>>,
    /// The model fitted on all cells.
    pub final_model: FinalModel,
}

fn to_rows(a: &Array2<f64>) -> Rows {
    Rows {
        values: a.iter().map(|&v| v as f32).collect(),
        rows: a.nrows(),
        cols: a.ncols(),
    }
}

fn labels_of(y: ArrayView2<'_, f64>, config: &SbnnConfig) -> Result<Vec<usize>, SbnnError> {
    Ok(kmeans(
        y,
        &KMeansConfig {
            k: config.clusters,
            restarts: config.kmeans_restarts,
            max_iter: 300,
            seed: config.kmeans_seed,
        },
    )?
    .labels)
}

fn job_rng(config: &SbnnConfig, job: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(job as u64);
    rng
}

/// A fold's outcome.
struct FoldOutcome {
    r2: f64,
    per_feature: Vec<f64>,
    epochs: Vec<EpochReport>,
    genes: Vec<usize>,
}

/// What the workers share.
struct Shared<'a> {
    x: ArrayView2<'a, f64>,
    y: ArrayView2<'a, f64>,
    folds: &'a [Fold],
    scaling: FoldScaling,
    config: &'a SbnnConfig,
    /// k-means labels of all cells (the final model's, and the folds' under the leak).
    all_labels: Option<&'a [usize]>,
    /// The backend every network trains on.
    engine: Engine,
}

/// What one job of the cross-validation produces.
enum JobOutcome {
    /// A fold's scores.
    Fold(FoldOutcome),
    /// The model fitted on all cells.
    Final(Box<FinalModel>),
}

/// Reports an epoch to `sink` (its metrics, and `done` epochs of this job so
/// far); true while the run should go on.
fn report_epoch(sink: &mut dyn Sink, report: &EpochReport, done: u64) -> bool {
    let step = report.epoch as u64;
    let metric = |name: &str, value: f64| Event::Metric {
        fold: None,
        name: name.into(),
        step,
        value,
    };
    sink.event(metric("loss", report.loss));
    sink.event(metric("train_r2", report.train_r2));
    if let Some(test) = report.test_r2 {
        sink.event(metric("test_r2", test));
    }
    sink.event(Event::Step { done });
    !sink.cancelled()
}

fn run_fold(
    shared: &Shared<'_>,
    index: usize,
    sink: &mut dyn Sink,
) -> Result<FoldOutcome, SbnnError> {
    let fold = &shared.folds[index];
    let scale = |data| {
        scale_fold(data, fold, shared.scaling).map_err(|source| SbnnError::Scaling {
            fold: Some(index),
            source,
        })
    };
    let (x_train, x_test) = scale(shared.x)?;
    let (y_train, y_test) = scale(shared.y)?;
    let labels = if !shared.config.pretrain {
        None
    } else if let (true, Some(all)) = (shared.config.leak_kmeans_on_all_cells, shared.all_labels) {
        Some(fold.train.iter().map(|&i| all[i]).collect())
    } else {
        Some(labels_of(y_train.view(), shared.config)?)
    };
    let (xt, yt, xs, ys) = (
        to_rows(&x_train),
        to_rows(&y_train),
        to_rows(&x_test),
        to_rows(&y_test),
    );
    let input = TrainInput {
        x_train: &xt,
        y_train: &yt,
        x_test: Some(&xs),
        y_test: Some(&ys),
        labels: labels.as_deref(),
        engine: shared.engine,
    };
    let mut rng = job_rng(shared.config, index);
    let mut done = 0;
    let trained = train(&input, shared.config, &mut rng, &mut |report| {
        done += 1;
        report_epoch(sink, report, done)
    })?;
    let prediction = trained
        .test_prediction
        .as_ref()
        .ok_or(SbnnError::NonFinite {
            what: "test prediction",
        })?;
    let prediction = Array2::from_shape_vec(
        y_test.dim(),
        prediction.iter().map(|&v| f64::from(v)).collect(),
    )
    .map_err(|e| SbnnError::Shape(e.to_string()))?;
    let wrap = |source| SbnnError::Score {
        fold: index,
        source,
    };
    Ok(FoldOutcome {
        r2: r2(y_test.view(), prediction.view()).map_err(wrap)?,
        per_feature: r2_per_feature(y_test.view(), prediction.view()).map_err(wrap)?,
        epochs: trained.epochs,
        genes: trained.genes,
    })
}

/// Fits the sBNN on all cells (scaled with their own statistics) and computes
/// the latent code of every cell and the decoder's predictions over the
/// latent plane. `job` selects the random stream (the CV uses the number of
/// folds); `engine` is the backend it trains on.
#[allow(clippy::too_many_arguments)] // the data, the settings and the observer
pub fn fit_all_cells(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    scaling: FoldScaling,
    config: &SbnnConfig,
    labels: Option<&[usize]>,
    job: usize,
    engine: Engine,
    observe: &mut dyn FnMut(&EpochReport) -> bool,
) -> Result<FinalModel, SbnnError> {
    let scale =
        |data| scale_all(data, scaling).map_err(|source| SbnnError::Scaling { fold: None, source });
    let (x_all, y_all) = (scale(x)?, scale(y)?);
    let owned;
    let labels = match labels {
        Some(l) => Some(l),
        None if config.pretrain => {
            owned = labels_of(y_all.view(), config)?;
            Some(owned.as_slice())
        }
        None => None,
    };
    let (xr, yr) = (to_rows(&x_all), to_rows(&y_all));
    let input = TrainInput {
        x_train: &xr,
        y_train: &yr,
        x_test: None,
        y_test: None,
        labels,
        engine,
    };
    let mut rng = job_rng(config, job);
    let trained = train(&input, config, &mut rng, observe)?;
    let kept = xr.select_columns(&trained.genes);
    let code_layer = bottleneck(config) + 1;
    let latent = trained
        .net
        .forward_range(&kept.values, kept.rows, 0, code_layer)?;
    let grid = if config.latent == 2 {
        Some(latent_grid(&trained, &latent, config.grid, code_layer)?)
    } else {
        None
    };
    Ok(FinalModel {
        trained,
        latent,
        grid,
    })
}

/// Decoder predictions on a `points × points` grid spanning the latent codes (5 % margin).
fn latent_grid(
    trained: &TrainedSbnn,
    latent: &[f32],
    points: usize,
    decoder_start: usize,
) -> Result<LatentGrid, SbnnError> {
    let axis = |d: usize| {
        let (lo, hi) = latent
            .iter()
            .skip(d)
            .step_by(2)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let margin = 0.05 * (hi - lo).max(1e-6);
        let (lo, hi) = (lo - margin, hi + margin);
        (0..points)
            .map(|i| lo + (hi - lo) * i as f32 / (points - 1) as f32)
            .collect::<Vec<f32>>()
    };
    let (gx, gy) = (axis(0), axis(1));
    let mut codes = Vec::with_capacity(points * points * 2);
    for &a in &gx {
        for &b in &gy {
            codes.extend([a, b]);
        }
    }
    let net = &trained.net;
    let values = net.forward_range(&codes, points * points, decoder_start, net.layers.len())?;
    Ok(LatentGrid {
        x: gx,
        y: gy,
        values,
        outputs: net.outputs(),
    })
}

/// Column-wise mean of equally long series.
fn mean_curve(series: &[Vec<f64>]) -> Vec<f64> {
    let len = series.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|i| series.iter().map(|s| s[i]).sum::<f64>() / series.len() as f64)
        .collect()
}

/// Cross-validates the sBNN over `folds` and fits the final model on all
/// cells, every network on `engine` (the dense engine on the CPU, or a GPU).
pub fn cross_validate(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    folds: &[Fold],
    scaling: FoldScaling,
    config: &SbnnConfig,
    engine: Engine,
    sink: &mut dyn Sink,
) -> Result<SbnnCvResult, SbnnError> {
    if folds.is_empty() {
        return Err(SbnnError::NoFolds);
    }
    if x.nrows() != y.nrows() {
        return Err(SbnnError::Shape(format!(
            "X has {} rows, Y has {}",
            x.nrows(),
            y.nrows()
        )));
    }
    let smallest = folds.iter().map(|f| f.train.len()).min().unwrap_or(0);
    config.validate_for(x.ncols(), smallest)?;
    let all_labels = if config.pretrain {
        let centred =
            scale_all(y, scaling).map_err(|source| SbnnError::Scaling { fold: None, source })?;
        Some(labels_of(centred.view(), config)?)
    } else {
        None
    };
    let epochs = config.regression_epochs() as u64;
    let shared = Shared {
        x,
        y,
        folds,
        scaling,
        config,
        all_labels: all_labels.as_deref(),
        engine,
    };
    let fits = Fit::plan(folds.len(), true);
    let jobs = run_fits(
        &fits,
        &format!("sBNN: {} folds + final model", folds.len()),
        fits.len() as u64 * epochs,
        sink,
        |fit, sink: &mut dyn Sink| match fit {
            Fit::Fold(index) => run_fold(&shared, index, sink).map(JobOutcome::Fold),
            Fit::AllCells => {
                let mut done = 0;
                fit_all_cells(
                    x,
                    y,
                    scaling,
                    config,
                    shared.all_labels,
                    folds.len(),
                    engine,
                    &mut |report| {
                        done += 1;
                        report_epoch(sink, report, done)
                    },
                )
                .map(|model| JobOutcome::Final(Box::new(model)))
            }
        },
    )
    .map_err(|e| e.into_model_error(SbnnError::Cancelled, SbnnError::WorkerFailed))?;
    let mut outcomes = Vec::with_capacity(folds.len());
    let mut final_model = None;
    for job in jobs {
        match job {
            JobOutcome::Fold(outcome) => outcomes.push(outcome),
            JobOutcome::Final(model) => final_model = Some(*model),
        }
    }
    let final_model = final_model.ok_or(SbnnError::Cancelled)?;
    let r2_per_fold: Vec<f64> = outcomes.iter().map(|o| o.r2).collect();
    let features = outcomes.first().map_or(0, |o| o.per_feature.len());
    let r2_per_feature = (0..features)
        .map(|f| outcomes.iter().map(|o| o.per_feature[f]).sum::<f64>() / outcomes.len() as f64)
        .collect();
    let series = |get: &dyn Fn(&EpochReport) -> f64| {
        mean_curve(
            &outcomes
                .iter()
                .map(|o| o.epochs.iter().map(get).collect())
                .collect::<Vec<_>>(),
        )
    };
    Ok(SbnnCvResult {
        r2: mean_sd(&r2_per_fold).ok_or(SbnnError::NoFolds)?,
        r2_per_fold,
        r2_per_feature,
        train_curve: series(&|e| e.train_r2),
        test_curve: series(&|e| e.test_r2.unwrap_or(f64::NAN)),
        loss_curve: series(&|e| e.loss),
        fold_genes: outcomes.iter().map(|o| o.genes.clone()).collect(),
        final_model,
    })
}
