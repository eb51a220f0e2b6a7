//! The model-independent part of running one experiment.

use std::collections::BTreeMap;
use std::time::Instant;

use super::checks::check_outcome;
use super::weights::{self, NamedNetwork, WeightsTarget};
use super::{PreparedDataset, RunError};
use crate::analysis::confusion::Confusion;
use crate::analysis::cv::{Fold, k_fold};
use crate::analysis::labels::{ClassOrder, encode_labels};
use crate::analysis::scaling::FoldScaling;
use crate::data::FeatureTable;
use crate::prep::Standardise;
use crate::progress::{Event, Sink};
use crate::session::{
    CrossModal, Curve, Experiment, ExperimentResult, FeatureScore, Latent, ModelSpec, NamedLatent,
    Provenance, ResultDetail,
};

/// What a model run hands back before the runner adds timing and provenance.
pub(super) struct ModelOutcome {
    pub metrics: BTreeMap<String, f64>,
    pub per_fold: Vec<f64>,
    pub per_feature: Vec<FeatureScore>,
    pub genes: Vec<FeatureScore>,
    pub latent: Option<Latent>,
    pub latents: Vec<NamedLatent>,
    pub cross_modal: Option<CrossModal>,
    pub curves: Vec<Curve>,
    pub confusions: Vec<Confusion>,
    pub detail: ResultDetail,
    /// Trained networks worth keeping beside the session.
    pub networks: Vec<NamedNetwork>,
}

/// Runs `experiment` on its (already loaded and preprocessed) dataset.
/// Trained networks are dropped; see [`run_experiment_saving_weights`].
pub fn run_experiment(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
) -> Result<ExperimentResult, RunError> {
    run(experiment, dataset, sink, None)
}

/// Runs `experiment` like [`run_experiment`] and saves its trained networks
/// under `weights` (see [`WeightsTarget`]); the result lists the files. When
/// they cannot be written the result comes back without them and the sink
/// gets a message saying why.
pub fn run_experiment_saving_weights(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
    weights: &WeightsTarget,
) -> Result<ExperimentResult, RunError> {
    run(experiment, dataset, sink, Some(weights))
}

fn run(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
    target: Option<&WeightsTarget>,
) -> Result<ExperimentResult, RunError> {
    let device = super::device::resolve(experiment)?;
    let start = Instant::now();
    let outcome = match &experiment.model {
        ModelSpec::Srrr(config) => super::srrr::run(experiment, config, dataset, sink)?,
        ModelSpec::Sbnn(config) => super::sbnn::run(experiment, config, dataset, sink)?,
        ModelSpec::Cae { model, analysis } => {
            super::cae::run(experiment, model, analysis, dataset, sink)?
        }
        ModelSpec::PcCca { model, analysis } => {
            super::pc_cca::run(experiment, model, analysis, dataset, sink)?
        }
        ModelSpec::MixVae(spec) => super::mixvae::run(experiment, spec, dataset, sink)?,
        ModelSpec::Apply(_) => {
            return Err(RunError::Unsuitable {
                experiment: experiment.name.clone(),
                message:
                    "an Apply experiment runs through `run_application`, not on a prepared dataset"
                        .into(),
            });
        }
    };
    check_outcome(
        &outcome.metrics,
        &outcome.curves,
        experiment.model.method().headline(),
    )
    .map_err(|reason| RunError::Rejected {
        experiment: experiment.name.clone(),
        reason,
    })?;
    let seconds = start.elapsed().as_secs_f64();
    // A result is worth more than its weight files: when they cannot be
    // written, the run still succeeds and says so.
    let weights = match target.map(|t| weights::save(t, &experiment.name, &outcome.networks)) {
        Some(Ok(files)) => files,
        Some(Err(error)) => {
            sink.event(Event::Message(format!("weights not saved: {error}")));
            Vec::new()
        }
        None => Vec::new(),
    };
    let mut metrics = outcome.metrics;
    metrics.insert("seconds".into(), seconds);
    let preprocessing = experiment
        .modalities
        .iter()
        .filter_map(|name| dataset.reports.get(name).map(|r| (name.clone(), r.clone())))
        .collect();
    let result = ExperimentResult {
        metrics,
        per_fold: outcome.per_fold,
        per_feature: outcome.per_feature,
        genes: outcome.genes,
        latent: outcome.latent,
        latents: outcome.latents,
        cross_modal: outcome.cross_modal,
        curves: outcome.curves,
        confusions: outcome.confusions,
        preprocessing,
        detail: outcome.detail,
        weights,
        provenance: Provenance::finished_now(
            seconds,
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            device,
        ),
    };
    // The manifest beside the weights makes their folder a model artifact.
    // The sRRR's fit lives in the result itself, not in a weights file.
    let has_model = !result.weights.is_empty() || matches!(experiment.model, ModelSpec::Srrr(_));
    if let Some(target) = target.filter(|_| has_model) {
        let folder = target.artifact_folder(&experiment.name);
        let session = target.session_name();
        if let Err(error) = super::artifact::write(&folder, &session, experiment, &result, dataset)
        {
            sink.event(Event::Message(format!(
                "model artifact not written: {error}"
            )));
        }
    }
    Ok(result)
}

/// The fewest cells a fold may train or test on.
const MIN_FOLD_CELLS: usize = 2;

/// The folds of `experiment`'s protocol over the cells `cells` of `dataset`
/// (only the first `scored_folds` of them when the protocol sets it).
pub(super) fn folds_for(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    cells: &[String],
) -> Result<Vec<Fold>, RunError> {
    let protocol = &experiment.protocol;
    let labels = match &protocol.stratify_by {
        None => None,
        Some(column) => Some(label_indices(experiment, dataset, column, cells)?),
    };
    let mut folds = k_fold(
        cells.len(),
        protocol.folds,
        protocol.seed,
        protocol.scheme,
        labels.as_deref(),
    )
    .map_err(|source| RunError::Folds {
        experiment: experiment.name.clone(),
        source,
    })?;
    if let Some(scored) = protocol.scored_folds {
        folds.truncate(scored);
    }
    if let Some(smallest) = folds.iter().map(|f| f.test.len().min(f.train.len())).min()
        && smallest < MIN_FOLD_CELLS
    {
        return Err(RunError::Unsuitable {
            experiment: experiment.name.clone(),
            message: format!(
                "{} cells are too few for {} folds: every fold needs at least {MIN_FOLD_CELLS} training and {MIN_FOLD_CELLS} test cells (R² and accuracies are undefined on fewer); use more cells or fewer folds (`protocol.folds`)",
                cells.len(),
                protocol.folds
            ),
        });
    }
    Ok(folds)
}

/// Integer class of every cell for the `protocol.stratify_by` column
/// `column`, in order of first appearance.
fn label_indices(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    column: &str,
    cells: &[String],
) -> Result<Vec<usize>, RunError> {
    let unsuitable = |message| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    let Some(labels) = dataset.data.labels(column, cells) else {
        let message = match &dataset.data.metadata {
            Some(metadata) => format!(
                "`protocol.stratify_by`: the metadata file {} has no column `{column}`; it has {}",
                metadata.path.display(),
                metadata.columns.join(", ")
            ),
            None => format!(
                "`protocol.stratify_by`: dataset `{}` has no metadata file to take `{column}` from",
                dataset.name
            ),
        };
        return Err(unsuitable(message));
    };
    let classes = encode_labels(&labels, ClassOrder::FirstSeen);
    classes
        .codes
        .iter()
        .zip(cells)
        .map(|(code, cell)| {
            code.ok_or_else(|| {
                unsuitable(format!(
                    "`protocol.stratify_by`: cell `{cell}` has no value in column `{column}`"
                ))
            })
        })
        .collect()
}

/// The paired cells of a regression experiment (predictors, then targets)
/// with the protocol's folds and the per-fold scaling the recipes ask for.
pub(super) struct PairedRegression {
    pub x: FeatureTable,
    pub y: FeatureTable,
    pub folds: Vec<Fold>,
    pub scaling: FoldScaling,
}

/// Pairs the experiment's two modalities by cell id and splits the paired
/// cells into folds; `needs_two` is the error shown when there are not
/// exactly two modalities.
pub(super) fn paired_regression(
    experiment: &Experiment,
    dataset: &PreparedDataset,
    needs_two: &str,
) -> Result<PairedRegression, RunError> {
    let unsuitable = |message: String| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    let [input, target] = experiment.modalities.as_slice() else {
        return Err(unsuitable(needs_two.to_string()));
    };
    if let Some(sparse) = [input, target].into_iter().find(|name| {
        dataset
            .data
            .modality(name)
            .is_some_and(|m| m.table.is_sparse())
    }) {
        return Err(unsuitable(format!(
            "modality `{sparse}` of dataset `{}` is kept sparse (`keep_sparse: true` in its \
             recipe); this model needs the whole table dense: drop `keep_sparse`, with a \
             `SelectGenes` step if the table is large",
            dataset.name
        )));
    }
    let (x, y) = dataset.data.paired_matrices(input, target).ok_or_else(|| {
        unsuitable(format!(
            "dataset `{}` lacks modality `{input}` or `{target}`",
            dataset.name
        ))
    })?;
    if x.cells.is_empty() {
        return Err(unsuitable(format!(
            "no cell is measured in both `{input}` and `{target}`"
        )));
    }
    let folds = folds_for(experiment, dataset, &x.cells)?;
    let scaling = fold_scaling(dataset, &experiment.modalities);
    Ok(PairedRegression {
        x,
        y,
        folds,
        scaling,
    })
}

/// Per-fold scaling that matches the recipes: z-score with training-fold
/// statistics when a recipe defers standardisation to the fold, otherwise only
/// centre on the training means (the data were already standardised, as in the paper).
fn fold_scaling(dataset: &PreparedDataset, modalities: &[String]) -> FoldScaling {
    let deferred = modalities.iter().any(|name| {
        dataset
            .reports
            .get(name)
            .is_some_and(|report| report.standardise == Standardise::TrainingFold)
    });
    if deferred {
        FoldScaling::ZScore
    } else {
        FoldScaling::CentreOnly
    }
}
