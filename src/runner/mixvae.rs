//! Running a coupled-mixture-VAE experiment: fits the model once per seed on
//! one modality, scores its categories against the known labels, and
//! averages the scores over seeds.

use std::collections::BTreeMap;

use super::experiment::ModelOutcome;
use super::weights::NamedNetwork;
use super::{PreparedDataset, RunError};
use crate::analysis::clustering::{
    adjusted_mutual_information, adjusted_rand_index, matched_accuracy,
};
use crate::analysis::confusion::Confusion;
use crate::analysis::labels::{ClassOrder, encode_labels};
use crate::analysis::r2::mean_sd;
use crate::data::PreparedTable;
use crate::models::mixvae::{
    MixVaeConfig, MixVaeError, MixVaeFit, fit_keeping_on, label_preservation,
};
use crate::nn::dense::Engine;
use crate::progress::{Event, Sink};
use crate::session::{AgentCategories, Curve, Experiment, Latent, MixVaeSpec, ResultDetail};

/// Scores also reported per seed, as `<name>_seed<seed>`.
const PER_SEED: [&str; 6] = [
    "accuracy",
    "ari",
    "agent_agreement",
    "used_categories",
    "min_category_size",
    "revived_categories",
];

/// Known labels of the labelled cells: their row indices, classes and class names.
struct Truth {
    rows: Vec<usize>,
    classes: Vec<usize>,
    names: Vec<String>,
}

/// Fits the model of `spec` on the experiment's single modality.
pub(super) fn run(
    experiment: &Experiment,
    spec: &MixVaeSpec,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
) -> Result<ModelOutcome, RunError> {
    let unsuitable = |message: String| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    let [name] = experiment.modalities.as_slice() else {
        return Err(unsuitable(
            "the mixture VAE needs exactly one modality".into(),
        ));
    };
    let modality = dataset.data.modality(name).ok_or_else(|| {
        unsuitable(format!(
            "dataset `{}` has no modality `{name}`",
            dataset.name
        ))
    })?;
    let table = &modality.table;
    let engine = Engine::for_device(experiment.protocol.device);
    // The model gathers its mini-batches and evaluation chunks from the
    // prepared table as `f32` (a table kept sparse row by row), without a
    // converted copy of all of it.
    let x = table;
    let truth = match &spec.labels {
        None => None,
        Some(column) => {
            let labels = dataset
                .data
                .labels(column, table.cells())
                .ok_or_else(|| unsuitable(format!("the metadata has no column `{column}`")))?;
            let encoded = encode_labels(&labels, ClassOrder::FirstSeen);
            let (rows, classes) = encoded.labelled();
            let names = encoded.names;
            Some(Truth {
                rows,
                classes,
                names,
            })
        }
    };
    let seeds = if spec.seeds.is_empty() {
        vec![spec.model.seed]
    } else {
        spec.seeds.clone()
    };
    let mut fits = Vec::with_capacity(seeds.len());
    let mut networks = Vec::new();
    let mut scores: Vec<BTreeMap<String, f64>> = Vec::with_capacity(seeds.len());
    for (i, &seed) in seeds.iter().enumerate() {
        sink.event(Event::Message(format!(
            "mixVAE seed {seed} ({} of {})",
            i + 1,
            seeds.len()
        )));
        let config = MixVaeConfig {
            seed,
            ..spec.model.clone()
        };
        let model_error = |source: MixVaeError| RunError::model(&experiment.name, source);
        // The first seed's fit is the one the result shows; its networks are kept.
        let fitted = if i == 0 {
            let (fitted, trained) =
                fit_keeping_on(x, &config, engine, sink).map_err(model_error)?;
            networks = trained
                .into_networks()
                .into_iter()
                .enumerate()
                .map(|(a, network)| NamedNetwork {
                    name: format!("agent{a}"),
                    network: Box::new(network),
                })
                .collect();
            fitted
        } else {
            fit_keeping_on(x, &config, engine, sink)
                .map_err(model_error)?
                .0
        };
        scores.push(score(&fitted, truth.as_ref(), x).map_err(model_error)?);
        fits.push(fitted);
    }
    let mut metrics = BTreeMap::new();
    if let Some(first) = scores.first() {
        for key in first.keys() {
            let values: Vec<f64> = scores.iter().filter_map(|s| s.get(key).copied()).collect();
            let Some(summary) = mean_sd(&values) else {
                continue;
            };
            metrics.insert(key.clone(), summary.mean);
            if matches!(
                key.as_str(),
                "accuracy" | "ari" | "ami" | "used_categories" | "min_category_size"
            ) {
                metrics.insert(format!("{key}_sd"), summary.sd);
            }
        }
    }
    for (seed, score) in seeds.iter().zip(&scores) {
        for key in PER_SEED {
            if let Some(&value) = score.get(key) {
                metrics.insert(format!("{key}_seed{seed}"), value);
            }
        }
    }
    metrics.insert("seeds".into(), seeds.len() as f64);
    metrics.insert("cells".into(), table.cells().len() as f64);
    let per_fold = scores
        .iter()
        .map(|s| s.get("accuracy").copied().unwrap_or(f64::NAN))
        .collect();
    let curves = loss_curves(&fits);
    let category_sizes: Vec<Vec<usize>> = fits.iter().map(|f| f.category_sizes.clone()).collect();
    let Some(first) = fits.into_iter().next() else {
        return Err(unsuitable("no seed to run".into()));
    };
    let category_names: Vec<String> = (0..spec.model.categories)
        .map(|k| format!("c{k}"))
        .collect();
    let confusions = truth
        .as_ref()
        .and_then(|t| {
            let predicted: Vec<usize> = t.rows.iter().map(|&r| first.consensus[r]).collect();
            Confusion::from_indices(
                &format!(
                    "mixVAE consensus -> {}",
                    spec.labels.as_deref().unwrap_or("")
                ),
                &t.classes,
                &t.names,
                &predicted,
                &category_names,
            )
        })
        .into_iter()
        .collect();
    let mut traversals = first.traversals.clone();
    for traversal in &mut traversals {
        for feature in &mut traversal.features {
            feature.name = table
                .features()
                .get(feature.index)
                .cloned()
                .unwrap_or_default();
        }
    }
    let state = &first.agents[0].state;
    let mut epoch_seconds = first.epoch_seconds.clone();
    epoch_seconds.sort_by(f64::total_cmp);
    let seconds_per_epoch = epoch_seconds
        .get(epoch_seconds.len() / 2)
        .copied()
        .unwrap_or(f64::NAN);
    metrics.insert("seconds_per_epoch".into(), seconds_per_epoch);
    Ok(ModelOutcome {
        metrics,
        per_fold,
        per_feature: Vec::new(),
        genes: Vec::new(),
        latent: Some(Latent {
            dims: state.ncols(),
            cells: table.cells().to_vec(),
            values: state.iter().copied().collect(),
        }),
        latents: Vec::new(),
        cross_modal: None,
        networks,
        curves,
        confusions,
        detail: ResultDetail::MixVae {
            agents: spec.model.agents,
            categories: spec.model.categories,
            category_sizes,
            consensus: first.consensus.clone(),
            assignments: first
                .agents
                .iter()
                .map(|a| AgentCategories {
                    category: a.category.clone(),
                    confidence: a.confidence.clone(),
                })
                .collect(),
            traversals,
            seconds_per_epoch,
        },
    })
}

/// The scores of one fit: agent-averaged accuracy/ARI/AMI (the paper reports
/// the average over agents), consensus scores, AMP (of all agents and of the
/// first), agreement and category use (with restarts, which one was kept and
/// the lowest score among them), and how well the augmenter preserves
/// the labels of the samples `x` (see [`label_preservation`]).
fn score(
    fit: &MixVaeFit,
    truth: Option<&Truth>,
    x: &PreparedTable,
) -> Result<BTreeMap<String, f64>, MixVaeError> {
    let mut m = BTreeMap::new();
    m.insert("amp".into(), fit.amp());
    m.insert("amp_agent1".into(), fit.agent_amp(0));
    m.insert("mean_confidence".into(), fit.mean_confidence());
    m.insert("agent_agreement".into(), fit.agreement);
    if let Some(consistency) = fit.augment_consistency {
        m.insert("augment_consistency".into(), consistency);
    }
    if fit.restart_scores.len() > 1 {
        m.insert("chosen_restart".into(), fit.chosen_restart as f64);
        let lowest = fit
            .restart_scores
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        m.insert("restart_score_lowest".into(), lowest);
    }
    let used = fit.category_sizes.iter().filter(|&&n| n > 0).count();
    m.insert("used_categories".into(), used as f64);
    m.insert("revived_categories".into(), fit.revived as f64);
    m.insert(
        "min_category_size".into(),
        fit.category_sizes.iter().copied().min().unwrap_or(0) as f64,
    );
    if let Some(t) = truth {
        let pick = |cats: &[usize]| -> Vec<usize> { t.rows.iter().map(|&r| cats[r]).collect() };
        let n = fit.agents.len().max(1) as f64;
        let (mut acc, mut ari, mut ami) = (0.0, 0.0, 0.0);
        for agent in &fit.agents {
            let c = pick(&agent.category);
            acc += matched_accuracy(&c, &t.classes) / n;
            ari += adjusted_rand_index(&c, &t.classes) / n;
            ami += adjusted_mutual_information(&c, &t.classes) / n;
        }
        m.insert("accuracy".into(), acc);
        m.insert("ari".into(), ari);
        m.insert("ami".into(), ami);
        let c = pick(&fit.consensus);
        m.insert(
            "consensus_accuracy".into(),
            matched_accuracy(&c, &t.classes),
        );
        m.insert("consensus_ari".into(), adjusted_rand_index(&c, &t.classes));
        if let Some(augmented) = &fit.augmented {
            let check = label_preservation(x, augmented.view(), &t.rows, &t.classes)?;
            m.insert("augment_original_accuracy".into(), check.original_accuracy);
            m.insert(
                "augment_augmented_accuracy".into(),
                check.augmented_accuracy,
            );
            m.insert("augment_label_preservation".into(), check.ratio());
        }
    }
    Ok(m)
}

/// Per-epoch loss parts averaged over seeds.
fn loss_curves(fits: &[MixVaeFit]) -> Vec<Curve> {
    type Part = fn(&crate::models::mixvae::EpochLoss) -> f64;
    let parts: [(&str, Part); 5] = [
        ("loss", |l| l.total),
        ("reconstruction", |l| l.reconstruction),
        ("state_kl", |l| l.kl),
        ("distance", |l| l.distance),
        ("entropy", |l| l.entropy),
    ];
    let epochs = fits.iter().map(|f| f.losses.len()).min().unwrap_or(0);
    parts
        .iter()
        .map(|(name, get)| Curve {
            name: (*name).into(),
            values: (0..epochs)
                .map(|e| fits.iter().map(|f| get(&f.losses[e])).sum::<f64>() / fits.len() as f64)
                .collect(),
        })
        .collect()
}
