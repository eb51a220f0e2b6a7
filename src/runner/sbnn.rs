//! Running a sparse bottleneck neural network experiment.

use std::collections::BTreeMap;

use super::experiment::{ModelOutcome, PairedRegression, paired_regression};
use super::weights::NamedNetwork;
use super::{PreparedDataset, RunError};
use crate::models::sbnn::network::bottleneck;
use crate::models::sbnn::{SbnnConfig, SbnnWeights, cross_validate};
use crate::nn::dense::Engine;
use crate::progress::Sink;
use crate::session::{Curve, Experiment, FeatureScore, Latent, ResultDetail};

/// Cross-validates the sBNN from the experiment's first modality (genes) to
/// its second (targets) on the cells measured in both, and fits the final
/// model on all of them.
pub(super) fn run(
    experiment: &Experiment,
    config: &SbnnConfig,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
) -> Result<ModelOutcome, RunError> {
    let PairedRegression {
        x,
        y,
        folds,
        scaling,
    } = paired_regression(
        experiment,
        dataset,
        "sBNN needs exactly two modalities: genes, then targets",
    )?;
    let result = cross_validate(
        x.values.view(),
        y.values.view(),
        &folds,
        scaling,
        config,
        Engine::for_device(experiment.protocol.device),
        sink,
    )
    .map_err(|source| RunError::model(&experiment.name, source))?;
    let gene_name = |g: usize| x.features.get(g).cloned().unwrap_or_default();
    let trained = &result.final_model.trained;
    let metrics = BTreeMap::from([
        ("paired_cells".to_string(), x.cells.len() as f64),
        ("cv_r2_mean".into(), result.r2.mean),
        ("cv_r2_sd".into(), result.r2.sd),
        ("n_genes".into(), trained.genes.len() as f64),
    ]);
    // The header says how to use the saved network: its inputs are the
    // selected genes in this order, scaled as in training; layers
    // `0..code_layers` give the latent code.
    let info = BTreeMap::from([
        ("inputs".to_string(), names(&trained.genes, &gene_name)),
        ("outputs".to_string(), y.features.join(",")),
        (
            "code_layers".to_string(),
            (bottleneck(config) + 1).to_string(),
        ),
        ("input_scaling".to_string(), format!("{scaling:?}")),
    ]);
    let final_network = NamedNetwork {
        name: "final".into(),
        network: Box::new(SbnnWeights {
            net: trained.net.clone(),
            info,
        }),
    };
    let curve = |name: &str, values: &[f64]| Curve {
        name: name.into(),
        values: values.to_vec(),
    };
    Ok(ModelOutcome {
        metrics,
        per_fold: result.r2_per_fold.clone(),
        per_feature: y
            .features
            .iter()
            .zip(&result.r2_per_feature)
            .map(|(name, &score)| FeatureScore {
                name: name.clone(),
                score,
            })
            .collect(),
        genes: trained
            .genes
            .iter()
            .zip(&trained.gene_norms)
            .map(|(&g, &norm)| FeatureScore {
                name: gene_name(g),
                score: f64::from(norm),
            })
            .collect(),
        latent: Some(Latent {
            dims: config.latent,
            cells: x.cells.clone(),
            values: result.final_model.latent.clone(),
        }),
        latents: Vec::new(),
        cross_modal: None,
        curves: vec![
            curve("train_r2", &result.train_curve),
            curve("test_r2", &result.test_curve),
            curve("loss", &result.loss_curve),
        ],
        confusions: Vec::new(),
        detail: ResultDetail::Sbnn {
            prune_epoch: config.prune_epoch(),
            reported_epoch: trained.reported_epoch,
            fold_genes: result
                .fold_genes
                .iter()
                .map(|genes| genes.iter().map(|&g| gene_name(g)).collect())
                .collect(),
            outputs: y.features.clone(),
            grid: result.final_model.grid,
        },
        networks: vec![final_network],
    })
}

/// Comma-separated names of `indices`.
fn names(indices: &[usize], name: &dyn Fn(usize) -> String) -> String {
    indices
        .iter()
        .map(|&i| name(i))
        .collect::<Vec<_>>()
        .join(",")
}
