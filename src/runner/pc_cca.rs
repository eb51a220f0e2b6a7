//! Running the PC-CCA baseline on the same folds and analyses as k-CAE.
//! Reconstruction and cross-modal prediction use least-squares linear
//! decoders from each modality's canonical codes, fitted on the training cells.

use std::collections::BTreeMap;

use super::experiment::ModelOutcome;
use ndarray::Array2;

use super::latents::{LatentData, Pooled, prepare, relative_error};
use super::{PreparedDataset, RunError};
use crate::analysis::cca::{CcaError, LinearDecoder, PcCca, PcCcaConfig};
use crate::analysis::cv::{Fit, run_fits};
use crate::analysis::latent_eval::{FoldEvaluation, FoldLatents, LatentEvalConfig, evaluate_fold};
use crate::progress::{Event, Sink};
use crate::session::Experiment;

/// Cross-validates PC-CCA between the experiment's two modalities.
pub(super) fn run(
    experiment: &Experiment,
    config: &PcCcaConfig,
    analysis: &LatentEvalConfig,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
) -> Result<ModelOutcome, RunError> {
    let prepared = prepare(experiment, analysis, dataset)?;
    let mut pooled = Pooled::new(prepared.paired.len(), config.components);
    let folds = prepared.folds.len();
    let smallest = prepared
        .folds
        .iter()
        .map(|f| f.train.len())
        .min()
        .unwrap_or(0);
    if config.pcs_a + config.pcs_b >= smallest {
        // With as many PCs as cells, CCA correlates noise perfectly.
        return Err(RunError::Unsuitable {
            experiment: experiment.name.clone(),
            message: format!(
                "`model.pcs_a` + `model.pcs_b` = {} + {} must be fewer than the {smallest} training cells of the smallest fold",
                config.pcs_a, config.pcs_b
            ),
        });
    }
    let fitted = run_fits(
        &Fit::plan(folds, false),
        &format!("{} (PC-CCA)", experiment.name),
        folds as u64,
        sink,
        |fit, sink: &mut dyn Sink| {
            let f = fit.fold().ok_or("not a fold")?;
            let fold = fit_fold(config, analysis, &prepared, f).map_err(|e| e.to_string())?;
            sink.event(Event::Step { done: 1 });
            Ok(fold)
        },
    )
    .map_err(|e| {
        let message = e.into_model_error("cancelled".into(), "a worker thread stopped".into());
        RunError::Unsuitable {
            experiment: experiment.name.clone(),
            message,
        }
    })?;
    for (fold, fitted) in prepared.folds.iter().zip(fitted) {
        pooled.add(
            fitted.evaluation,
            fitted.extra,
            &fold.test,
            &fitted.test_t,
            &fitted.test_e,
        );
    }
    Ok(pooled.into_outcome(
        &prepared,
        &analysis.levels,
        Vec::new(),
        "pc_cca".into(),
        0.0,
    ))
}

/// What fold `f` of PC-CCA says about its test cells.
struct FittedFold {
    evaluation: FoldEvaluation,
    /// Reconstruction and cross-modal errors, and the canonical correlations.
    extra: BTreeMap<String, f64>,
    test_t: Array2<f64>,
    test_e: Array2<f64>,
}

/// Fits PC-CCA and the linear decoders on fold `f`'s training cells and
/// scores its test cells.
fn fit_fold(
    config: &PcCcaConfig,
    analysis: &LatentEvalConfig,
    prepared: &LatentData<'_>,
    f: usize,
) -> Result<FittedFold, CcaError> {
    let fold = &prepared.folds[f];
    let wide = |x: Array2<f32>| x.mapv(f64::from);
    let x_t_train = wide(prepared.paired_rows(0, &fold.train));
    let x_e_train = wide(prepared.paired_rows(1, &fold.train));
    let x_t_test = wide(prepared.paired_rows(0, &fold.test));
    let x_e_test = wide(prepared.paired_rows(1, &fold.test));
    let fit = PcCca::fit(x_t_train.view(), x_e_train.view(), config)?;
    let latents = FoldLatents {
        train_t: fit.transform_a(x_t_train.view()),
        train_e: fit.transform_b(x_e_train.view()),
        test_t: fit.transform_a(x_t_test.view()),
        test_e: fit.transform_b(x_e_test.view()),
        train_labels: prepared.labels_of(&fold.train),
        test_labels: prepared.labels_of(&fold.test),
    };
    let evaluation = evaluate_fold(&latents, analysis);
    let dec_t = LinearDecoder::fit(latents.train_t.view(), x_t_train.view())?;
    let dec_e = LinearDecoder::fit(latents.train_e.view(), x_e_train.view())?;
    let err = |x: &Array2<f64>, predicted: Array2<f64>| {
        relative_error(
            x.mapv(|v| v as f32).view(),
            predicted.mapv(|v| v as f32).view(),
        )
    };
    let mut extra = BTreeMap::from([
        (
            "recon_t".to_string(),
            err(&x_t_test, dec_t.predict(latents.test_t.view())),
        ),
        (
            "recon_e".to_string(),
            err(&x_e_test, dec_e.predict(latents.test_e.view())),
        ),
        (
            "cross_t_from_e".to_string(),
            err(&x_t_test, dec_t.predict(latents.test_e.view())),
        ),
        (
            "cross_e_from_t".to_string(),
            err(&x_e_test, dec_e.predict(latents.test_t.view())),
        ),
    ]);
    for (k, r) in fit.correlations().iter().enumerate() {
        extra.insert(format!("canonical_correlation_{}", k + 1), *r);
    }
    Ok(FittedFold {
        evaluation,
        extra,
        test_t: latents.test_t,
        test_e: latents.test_e,
    })
}
