//! Running a k-CAE experiment: for every fold, train on all cells except the
//! fold's paired test cells, encode the paired cells, judge the latents
//! ([`crate::analysis::latent_eval`]) and measure reconstruction and
//! cross-modal prediction errors on the test cells. A last model trains on
//! every cell: the one a user applies to new cells (saved as `final`, the
//! model artifact's network), its in-sample latents kept in the result.

use std::collections::BTreeMap;

use ndarray::Array2;

use super::experiment::ModelOutcome;
use super::latents::{LatentData, Pooled, RelativeError, prepare};
use super::weights::NamedNetwork;
use super::{PreparedDataset, RunError};
use crate::analysis::cv::Fit;
use crate::analysis::latent_eval::{FoldEvaluation, FoldLatents, LatentEvalConfig, evaluate_fold};
use crate::models::cae::{
    CaeConfig, CaeError, CoupledAutoencoder, LossRecord, max_abs_correlation, train_on,
};
use crate::nn::dense::Engine;
use crate::progress::Sink;
use crate::session::{CrossModal, Curve, Experiment, Latent, NamedLatent};

/// The folds train in parallel on the CPU; a CUDA build's models cannot
/// leave their thread, so there they train one after another.
#[cfg(not(feature = "cuda"))]
use crate::analysis::cv::run_fits as run_cae_fits;
#[cfg(feature = "cuda")]
use crate::analysis::cv::run_fits_in_turn as run_cae_fits;

/// Cross-validates a coupled autoencoder on the experiment's modalities; the
/// folds train in parallel, each seeded by its index.
pub(super) fn run(
    experiment: &Experiment,
    config: &CaeConfig,
    analysis: &LatentEvalConfig,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
) -> Result<ModelOutcome, RunError> {
    let prepared = prepare(experiment, analysis, dataset)?;
    let engine = Engine::for_device(experiment.protocol.device);
    let mut pooled = Pooled::new(prepared.paired.len(), config.latent_dims);
    let folds = prepared.folds.len();
    let mut trained = run_cae_fits(
        &Fit::plan(folds, true),
        &format!(
            "{}: k-CAE, {folds} folds and a model on all cells",
            experiment.name
        ),
        ((folds + 1) * config.steps) as u64,
        sink,
        |fit, sink: &mut dyn Sink| match fit.fold() {
            Some(f) => train_fold(config, analysis, &prepared, f, engine, sink)
                .map(|t| FitOutcome::Fold(Box::new(t))),
            None => train_all(config, &prepared, engine, sink)
                .map(|t| FitOutcome::AllCells(Box::new(t))),
        },
    )
    .map_err(|e| e.into_model_error(CaeError::Cancelled, CaeError::WorkerFailed))
    .map_err(|source| RunError::model(&experiment.name, source))?;
    let all_cells = match trained.pop() {
        Some(FitOutcome::AllCells(all)) => *all,
        _ => {
            return Err(RunError::model(&experiment.name, CaeError::WorkerFailed));
        }
    };
    let trained: Vec<TrainedFold> = trained
        .into_iter()
        .filter_map(|outcome| match outcome {
            FitOutcome::Fold(fold) => Some(*fold),
            FitOutcome::AllCells(_) => None,
        })
        .collect();
    let training_seconds: Vec<f64> = trained
        .iter()
        .map(|t| t.seconds)
        .chain([all_cells.seconds])
        .collect();
    let mut histories: Vec<Vec<LossRecord>> = Vec::with_capacity(folds);
    let mut networks = Vec::with_capacity(folds);
    // Observed and predicted (from z_T) E rows of every paired test cell.
    let mut e_rows: Vec<Option<(Vec<f32>, Vec<f32>)>> = vec![None; prepared.paired.len()];
    for (f, (fold, trained)) in prepared.folds.iter().zip(trained).enumerate() {
        for (row, &p) in fold.test.iter().enumerate() {
            if let Some(slot) = e_rows.get_mut(p) {
                *slot = Some((
                    trained.x_e_test.row(row).to_vec(),
                    trained.e_from_t.row(row).to_vec(),
                ));
            }
        }
        pooled.add(
            trained.evaluation,
            trained.errors,
            &fold.test,
            &trained.test_t,
            &trained.test_e,
        );
        histories.push(trained.history);
        networks.push(NamedNetwork {
            name: format!("fold{}", f + 1),
            network: Box::new(trained.model),
        });
    }
    let coupling = config
        .coupling
        .build(config.fc_ridge, config.msv_floor)
        .name()
        .to_string();
    let curves = mean_curves(&histories, &experiment.modalities);
    let collapse = collapse_metrics(&curves);
    let mut outcome =
        pooled.into_outcome(&prepared, &analysis.levels, curves, coupling, config.lambda);
    outcome.metrics.extend(collapse);
    outcome
        .metrics
        .insert("cells".into(), prepared.ids.len() as f64);
    let mean_seconds = training_seconds.iter().sum::<f64>() / training_seconds.len() as f64;
    outcome.metrics.insert(
        "seconds_per_1000_steps".into(),
        mean_seconds * 1000.0 / config.steps.max(1) as f64,
    );
    outcome.cross_modal = Some(cross_modal(experiment, dataset, &prepared, e_rows));
    let in_sample = |name: &str, z: Array2<f32>| NamedLatent {
        name: format!("{name} {IN_SAMPLE}"),
        latent: Latent {
            dims: z.ncols(),
            cells: prepared
                .paired
                .iter()
                .map(|&c| prepared.ids[c].clone())
                .collect(),
            values: z.iter().copied().collect(),
        },
    };
    outcome.latents.push(in_sample("z_T", all_cells.z_t));
    outcome.latents.push(in_sample("z_E", all_cells.z_e));
    networks.push(NamedNetwork {
        name: "final".into(),
        network: Box::new(all_cells.model),
    });
    outcome.networks = networks;
    Ok(outcome)
}

/// How the in-sample latents of the model on all cells are named after `z_T`/`z_E`.
pub(crate) const IN_SAMPLE: &str = "(model on all cells, in-sample)";

/// The metric of the largest |correlation| between two latent dimensions of
/// the held-out cells' codes in inference mode (no dropout, batch norm with
/// the population statistics), averaged over the two agents: the
/// representation Gala et al.'s Fig. 1B plots, where the training curves'
/// `latent_abs_corr_*` see the dropped-out training batches.
const HELD_OUT_CORR: &str = "latent_abs_corr_held_out";

/// What one of the parallel fits produced.
enum FitOutcome {
    Fold(Box<TrainedFold>),
    AllCells(Box<TrainedAll>),
}

/// The model on every cell and its codes of the paired cells.
struct TrainedAll {
    model: CoupledAutoencoder,
    /// Seconds of its training steps.
    seconds: f64,
    z_t: Array2<f32>,
    z_e: Array2<f32>,
}

/// Trains the model on every cell (seed `config.seed`, on `engine`) and
/// encodes the paired cells.
fn train_all(
    config: &CaeConfig,
    prepared: &LatentData<'_>,
    engine: Engine,
    sink: &mut dyn Sink,
) -> Result<TrainedAll, CaeError> {
    let all: Vec<usize> = (0..prepared.ids.len()).collect();
    let trained = train_on(config, &prepared.data, &all, "all cells", engine, sink)?;
    let mut model = trained.model;
    let positions: Vec<usize> = (0..prepared.paired.len()).collect();
    let matrices = &prepared.data.matrices;
    let z_t = model.encode_rows(0, &matrices[0], &prepared.paired_row_indices(0, &positions))?;
    let z_e = model.encode_rows(1, &matrices[1], &prepared.paired_row_indices(1, &positions))?;
    Ok(TrainedAll {
        model,
        seconds: trained.seconds,
        z_t,
        z_e,
    })
}

/// Fold `f`'s model and what it says about the fold's test cells.
struct TrainedFold {
    model: CoupledAutoencoder,
    history: Vec<LossRecord>,
    /// Seconds of its training steps.
    seconds: f64,
    evaluation: FoldEvaluation,
    /// Reconstruction and cross-modal prediction errors on the test cells.
    errors: BTreeMap<String, f64>,
    test_t: Array2<f64>,
    test_e: Array2<f64>,
    /// Observed E of the test cells, and E decoded from their z_T.
    x_e_test: Array2<f32>,
    e_from_t: Array2<f32>,
}

/// Trains fold `f` (seed `config.seed + f`) on every cell except the fold's
/// paired test cells (on `engine`), and judges its latents and predictions on them.
fn train_fold(
    config: &CaeConfig,
    analysis: &LatentEvalConfig,
    prepared: &LatentData<'_>,
    f: usize,
    engine: Engine,
    sink: &mut dyn Sink,
) -> Result<TrainedFold, CaeError> {
    let fold = &prepared.folds[f];
    let fold_config = CaeConfig {
        seed: config.seed.wrapping_add(f as u64),
        ..config.clone()
    };
    let train_cells = prepared.cells_except(&fold.test);
    let stage = format!("fold {}", f + 1);
    let trained = train_on(
        &fold_config,
        &prepared.data,
        &train_cells,
        &stage,
        engine,
        sink,
    )?;
    let mut model = trained.model;
    let rows = |i: usize, positions: &[usize]| prepared.paired_row_indices(i, positions);
    let matrices = &prepared.data.matrices;
    let mut encode = |i: usize, rows: &[usize]| {
        model
            .encode_rows(i, &matrices[i], rows)
            .map(|z| z.mapv(f64::from))
    };
    let latents = FoldLatents {
        train_t: encode(0, &rows(0, &fold.train))?,
        train_e: encode(1, &rows(1, &fold.train))?,
        test_t: encode(0, &rows(0, &fold.test))?,
        test_e: encode(1, &rows(1, &fold.test))?,
        train_labels: prepared.labels_of(&fold.train),
        test_labels: prepared.labels_of(&fold.test),
    };
    let evaluation = evaluate_fold(&latents, analysis);
    let mut test = TestPredictions::of(&mut model, prepared, &fold.test)?;
    test.errors.insert(
        HELD_OUT_CORR.to_string(),
        (max_abs_correlation(latents.test_t.view()) + max_abs_correlation(latents.test_e.view()))
            / 2.0,
    );
    Ok(TrainedFold {
        model,
        history: trained.history,
        seconds: trained.seconds,
        evaluation,
        errors: test.errors,
        test_t: latents.test_t,
        test_e: latents.test_e,
        x_e_test: test.x_e,
        e_from_t: test.e_from_t,
    })
}

/// Cells of a fold's test set per chunk of reconstruction and prediction.
const TEST_CHUNK: usize = 512;

/// What a fold's model makes of its paired test cells.
struct TestPredictions {
    /// Relative reconstruction and cross-modal prediction errors.
    errors: BTreeMap<String, f64>,
    /// Observed E of the test cells.
    x_e: Array2<f32>,
    /// E decoded from their z_T.
    e_from_t: Array2<f32>,
}

impl TestPredictions {
    /// Reconstructs and predicts each modality of the paired cells at
    /// `positions` from the other, [`TEST_CHUNK`] cells at a time (rows
    /// gathered from the dataset's tables), summing the errors over chunks.
    fn of(
        model: &mut CoupledAutoencoder,
        prepared: &LatentData<'_>,
        positions: &[usize],
    ) -> Result<Self, CaeError> {
        let matrices = &prepared.data.matrices;
        let (p_t, p_e) = (matrices[0].shape().1, matrices[1].shape().1);
        let mut errors = [RelativeError::default(); 4];
        let mut x_e = Vec::with_capacity(positions.len() * p_e);
        let mut e_from_t = Vec::with_capacity(positions.len() * p_e);
        for part in positions.chunks(TEST_CHUNK) {
            let x_t_part = prepared.paired_rows(0, part);
            let x_e_part = prepared.paired_rows(1, part);
            let t_from_t = model.predict(0, 0, &x_t_part, p_t)?;
            let e_from_e = model.predict(1, 1, &x_e_part, p_e)?;
            let t_from_e = model.predict(1, 0, &x_e_part, p_t)?;
            let e_from_t_part = model.predict(0, 1, &x_t_part, p_e)?;
            errors[0].add(x_t_part.view(), t_from_t.view());
            errors[1].add(x_e_part.view(), e_from_e.view());
            errors[2].add(x_t_part.view(), t_from_e.view());
            errors[3].add(x_e_part.view(), e_from_t_part.view());
            x_e.extend(x_e_part.iter());
            e_from_t.extend(e_from_t_part.iter());
        }
        let names = ["recon_t", "recon_e", "cross_t_from_e", "cross_e_from_t"];
        let shape = (x_e.len() / p_e.max(1), p_e);
        let matrix = |values: Vec<f32>| {
            Array2::from_shape_vec(shape, values)
                .map_err(|e| CaeError::Data(format!("test predictions: {e}")))
        };
        Ok(TestPredictions {
            errors: names
                .iter()
                .zip(errors)
                .map(|(name, error)| (name.to_string(), error.value()))
                .collect(),
            x_e: matrix(x_e)?,
            e_from_t: matrix(e_from_t)?,
        })
    }
}

/// The second modality (E) of every paired test cell, observed and decoded
/// from its `z_T` by the model of the fold that held it out.
fn cross_modal(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    prepared: &LatentData<'_>,
    rows: Vec<Option<(Vec<f32>, Vec<f32>)>>,
) -> CrossModal {
    let name = |i: usize| experiment.modalities.get(i).cloned().unwrap_or_default();
    let (source, target) = (name(0), name(1));
    let features = dataset
        .data
        .modality(&target)
        .map(|m| m.table.features().to_vec())
        .unwrap_or_default();
    let mut cross = CrossModal {
        source,
        target,
        features,
        cells: Vec::new(),
        observed: Vec::new(),
        predicted: Vec::new(),
    };
    for (p, row) in rows.into_iter().enumerate() {
        if let (Some((observed, predicted)), Some(&cell)) = (row, prepared.paired.get(p)) {
            cross.cells.push(prepared.ids[cell].clone());
            cross.observed.extend(observed);
            cross.predicted.extend(predicted);
        }
    }
    cross
}

/// Loss curves averaged over folds, one value per logging interval.
fn mean_curves(histories: &[Vec<LossRecord>], modalities: &[String]) -> Vec<Curve> {
    let Some(first) = histories.first() else {
        return Vec::new();
    };
    let points = first.len();
    let n = histories.len() as f64;
    let mean = |f: &dyn Fn(&LossRecord) -> f64| -> Vec<f64> {
        (0..points)
            .map(|p| {
                histories
                    .iter()
                    .filter_map(|h| h.get(p))
                    .map(f)
                    .sum::<f64>()
                    / n
            })
            .collect()
    };
    let mut curves = vec![
        Curve {
            name: "loss".into(),
            values: mean(&|r| r.total),
        },
        Curve {
            name: "coupling".into(),
            values: mean(&|r| r.coupling),
        },
    ];
    for (i, name) in modalities.iter().enumerate() {
        curves.push(Curve {
            name: format!("recon_{name}"),
            values: mean(&|r| r.recon.get(i).copied().unwrap_or(f64::NAN)),
        });
    }
    for (i, name) in modalities.iter().enumerate() {
        curves.push(Curve {
            name: format!("{LATENT_RMS}{name}"),
            values: mean(&|r| r.latent_rms.get(i).copied().unwrap_or(f64::NAN)),
        });
        let corr = mean(&|r| r.latent_abs_corr.get(i).copied().unwrap_or(f64::NAN));
        if corr.iter().all(|c| c.is_finite()) {
            curves.push(Curve {
                name: format!("{LATENT_CORR}{name}"),
                values: corr,
            });
        }
    }
    curves
}

/// Name prefix of the curves of each modality's latent RMS.
const LATENT_RMS: &str = "latent_rms_";
/// Name prefix of the curves of each modality's largest latent |correlation|.
const LATENT_CORR: &str = "latent_abs_corr_";

/// The degeneracies of Gala et al.'s Fig. 1B, read off the training curves
/// and averaged over modalities: `latent_rms_ratio` (first over last RMS
/// of the codes; large when the codes shrink to a point), `latent_rms_last`
/// and `latent_abs_corr_last` (near 1 when they collapse onto a line).
fn collapse_metrics(curves: &[Curve]) -> BTreeMap<String, f64> {
    let mean_over = |prefix: &str, f: &dyn Fn(&[f64]) -> Option<f64>| -> Option<f64> {
        let values: Vec<f64> = curves
            .iter()
            .filter(|c| c.name.starts_with(prefix))
            .filter_map(|c| f(&c.values))
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let last = |v: &[f64]| v.last().copied();
    let ratio = |v: &[f64]| Some(v.first()? / v.last()?);
    [
        ("latent_rms_ratio", mean_over(LATENT_RMS, &ratio)),
        ("latent_rms_last", mean_over(LATENT_RMS, &last)),
        ("latent_abs_corr_last", mean_over(LATENT_CORR, &last)),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name.to_string(), v)))
    .collect()
}
