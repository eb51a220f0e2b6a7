//! Running the PC-CCA baseline on the same folds and analyses as k-CAE.
//! Reconstruction and cross-modal prediction use least-squares linear
//! decoders from each modality's canonical codes, fitted on the training cells.

use std::collections::BTreeMap;

use super::experiment::ModelOutcome;
use super::latents::{Pooled, prepare, relative_error};
use super::{PreparedDataset, RunError};
use crate::analysis::cca::{LinearDecoder, PcCca, PcCcaConfig};
use crate::analysis::latent_eval::{FoldLatents, LatentEvalConfig, evaluate_fold};
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
    let failed = |message: String| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    let prepared = prepare(experiment, analysis, dataset)?;
    let mut pooled = Pooled::new(prepared.paired.len(), config.components);
    let folds = prepared.folds.len();
    sink.event(Event::Stage {
        name: format!("{} (PC-CCA)", experiment.name),
        total: folds as u64,
    });
    for (f, fold) in prepared.folds.iter().enumerate() {
        let wide = |x: ndarray::Array2<f32>| x.mapv(f64::from);
        let x_t_train = wide(prepared.paired_rows(0, &fold.train));
        let x_e_train = wide(prepared.paired_rows(1, &fold.train));
        let x_t_test = wide(prepared.paired_rows(0, &fold.test));
        let x_e_test = wide(prepared.paired_rows(1, &fold.test));
        let fit = PcCca::fit(x_t_train.view(), x_e_train.view(), config)
            .map_err(|e| failed(e.to_string()))?;
        let latents = FoldLatents {
            train_t: fit.transform_a(x_t_train.view()),
            train_e: fit.transform_b(x_e_train.view()),
            test_t: fit.transform_a(x_t_test.view()),
            test_e: fit.transform_b(x_e_test.view()),
            train_labels: prepared.labels_of(&fold.train),
            test_labels: prepared.labels_of(&fold.test),
        };
        let evaluation = evaluate_fold(&latents, analysis);
        let decoder = |z: &ndarray::Array2<f64>, x: &ndarray::Array2<f64>| {
            LinearDecoder::fit(z.view(), x.view()).map_err(|e| failed(e.to_string()))
        };
        let dec_t = decoder(&latents.train_t, &x_t_train)?;
        let dec_e = decoder(&latents.train_e, &x_e_train)?;
        let err = |x: &ndarray::Array2<f64>, predicted: ndarray::Array2<f64>| {
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
        pooled.add(
            evaluation,
            extra,
            &fold.test,
            &latents.test_t,
            &latents.test_e,
        );
        sink.event(Event::Step { done: f as u64 + 1 });
    }
    Ok(pooled.into_outcome(
        &prepared,
        &analysis.levels,
        Vec::new(),
        "pc_cca".into(),
        0.0,
    ))
}
