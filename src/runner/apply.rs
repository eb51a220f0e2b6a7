//! Running an `Apply` experiment: the model artifact that the `model_from`
//! experiment's run wrote beside the session is applied to the cells of the
//! experiment's dataset ([`crate::artifact::apply`]), and the application
//! becomes a result like any other: metrics, per-feature R², the applied
//! cells' latent codes and predictions, the alignment report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::cae::IN_SAMPLE;
use super::checks::check_outcome;
use super::queue::Job;
use super::{RunError, WeightsTarget};
use crate::artifact::manifest::MANIFEST;
use crate::artifact::output::label_columns;
use crate::artifact::{Application, ApplyInput, Manifest, apply};
use crate::models::apply::ApplySpec;
use crate::nn::DeviceChoice;
use crate::progress::{Event, Sink};
use crate::session::{
    ApplyDetail, CrossModal, DatasetSpec, Experiment, ExperimentResult, FeatureScore, Latent,
    ModelSpec, NamedLatent, Provenance, ResultDetail, fingerprint,
};

/// The experiment an `Apply` experiment takes its model from, as it is in
/// the session when the application starts (with its result).
#[derive(Debug, Clone)]
pub struct SourceModel {
    /// The experiment that trained the model.
    pub experiment: Experiment,
    /// Its dataset's definition (to tell whether its result is stale).
    pub dataset: Option<DatasetSpec>,
}

/// Applies the model of `job`'s `model_from` experiment to the cells of its
/// dataset (paths relative to `base`), reading the artifact under `weights`.
pub fn run_application(
    job: &Job,
    base: &Path,
    weights: &WeightsTarget,
    sink: &mut dyn Sink,
) -> Result<ExperimentResult, RunError> {
    let experiment = &job.experiment;
    let unsuitable = |message: String| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    let ModelSpec::Apply(spec) = &experiment.model else {
        return Err(unsuitable("is not an Apply experiment".into()));
    };
    let start = Instant::now();
    let source = job.source.as_ref().ok_or_else(|| {
        unsuitable(format!(
            "`model.model_from`: the session has no experiment `{}`",
            spec.model_from
        ))
    })?;
    let folder = artifact_of(source, weights).map_err(unsuitable)?;
    let input = apply_input(spec, experiment, &job.dataset, base).map_err(unsuitable)?;
    sink.event(Event::Stage {
        name: format!("applying `{}` to {}", spec.model_from, job.dataset.name),
        total: 0,
    });
    let application = apply(&folder, &input).map_err(|e| RunError::model(&experiment.name, e))?;
    let seconds = start.elapsed().as_secs_f64();
    let mut result = to_result(&application, spec, source, experiment, seconds);
    check_outcome(&result.metrics, &[], experiment.model.method().headline()).map_err(
        |reason| RunError::Rejected {
            experiment: experiment.name.clone(),
            reason,
        },
    )?;
    result.metrics.insert("seconds".into(), seconds);
    Ok(result)
}

/// The artifact folder of `source`'s model, after checking that `source`
/// has a current result and that the artifact was written by its
/// configuration; the error says what to do instead.
fn artifact_of(source: &SourceModel, weights: &WeightsTarget) -> Result<PathBuf, String> {
    let from = &source.experiment;
    let Some(result) = &from.result else {
        return Err(format!(
            "`model.model_from`: experiment `{}` has no result yet; run it first \
             (a batch runs it before this experiment when both are unfinished)",
            from.name
        ));
    };
    if let Some(recorded) = &result.provenance.config
        && *recorded != fingerprint(from, source.dataset.as_ref())
    {
        return Err(format!(
            "`model.model_from`: the result of `{}` is stale (its configuration or dataset \
             changed since it ran); rerun it first",
            from.name
        ));
    }
    let folder = weights.artifact_folder(&from.name);
    let manifest = folder.join(MANIFEST);
    if !manifest.exists() {
        return Err(format!(
            "`model.model_from`: no model artifact of `{}` at {}; its result was stored \
             without one (run it again with --batch or in the workbench, beside this session)",
            from.name,
            manifest.display()
        ));
    }
    let written = Manifest::read(&folder).map_err(|e| e.to_string())?;
    if written.provenance.config_fingerprint != fingerprint(from, None) {
        return Err(format!(
            "`model.model_from`: the artifact at {} was written by another configuration \
             of `{}`; rerun it",
            folder.display(),
            from.name
        ));
    }
    Ok(folder)
}

/// What to apply the model to: the experiment's first modality as input,
/// its second (if any) as measured targets, the dataset's metadata as labels.
fn apply_input(
    spec: &ApplySpec,
    experiment: &Experiment,
    dataset: &DatasetSpec,
    base: &Path,
) -> Result<ApplyInput, String> {
    let file = |index: usize| -> Result<Option<PathBuf>, String> {
        let Some(name) = experiment.modalities.get(index) else {
            return Ok(None);
        };
        let modality = dataset
            .modalities
            .iter()
            .find(|m| &m.name == name)
            .ok_or_else(|| format!("dataset `{}` has no modality `{name}`", dataset.name))?;
        let options = [
            ("layer", modality.layer.is_some()),
            ("use_raw", modality.use_raw),
            ("obsm", modality.obsm.is_some()),
            ("var_column", modality.var_column.is_some()),
            ("features_file", modality.features_file.is_some()),
            ("cells_file", modality.cells_file.is_some()),
        ];
        if let Some((option, _)) = options.iter().find(|(_, set)| *set) {
            return Err(format!(
                "dataset `{}`, modality `{name}`: `{option}` is not read by Apply, which reads \
                 a CSV/TSV, an .h5ad's X or a 10x folder (see `alias_column` for gene symbols)",
                dataset.name
            ));
        }
        Ok(Some(base.join(&modality.path)))
    };
    if spec.filter.is_some() && dataset.metadata.is_none() {
        return Err(format!(
            "`model.filter` needs the metadata of dataset `{}`, which has none",
            dataset.name
        ));
    }
    Ok(ApplyInput {
        data: file(0)?.ok_or("`modalities`: name the new cells' input modality")?,
        observed: file(1)?,
        metadata: dataset
            .metadata
            .as_ref()
            .map(|m| (base.join(&m.path), m.id_column.clone())),
        filter: spec
            .filter
            .as_ref()
            .map(|f| (f.column.clone(), f.value.clone())),
        policy: spec.missing,
        calibrate: spec.calibrate.clone(),
        alias_column: spec.alias_column.clone(),
        fold: spec.fold,
    })
}

/// The application as a session result.
fn to_result(
    application: &Application,
    spec: &ApplySpec,
    source: &SourceModel,
    experiment: &Experiment,
    seconds: f64,
) -> ExperimentResult {
    let report = &application.report;
    let mut metrics = BTreeMap::from([
        ("cells".to_string(), application.cells.len() as f64),
        ("missing_genes".to_string(), report.missing.len() as f64),
        ("alias_genes".to_string(), report.aliased.len() as f64),
        ("skipped_cells".to_string(), report.skipped.len() as f64),
        (
            "scale_mismatch_features".to_string(),
            report.scale_mismatch.len() as f64,
        ),
    ]);
    let mut per_feature = Vec::new();
    if let Some(scores) = &application.scores {
        metrics.insert("r2".into(), scores.r2);
        metrics.insert("scored_cells".into(), scores.cells as f64);
        per_feature = scores
            .per_feature
            .iter()
            .map(|(name, score)| FeatureScore {
                name: name.clone(),
                score: *score,
            })
            .collect();
    }
    if let Some(c) = &application.calibration {
        metrics.insert("r2_calibrated".into(), c.calibrated.r2);
        metrics.insert("r2_uncalibrated".into(), c.uncalibrated.r2);
        metrics.insert("calibration_cells".into(), c.cells.len() as f64);
    }
    let mut confusions = Vec::new();
    for l in &application.labels {
        if let Some(accuracy) = l.accuracy {
            metrics.insert(format!("{}_accuracy_{}", l.level, l.source), accuracy);
            metrics.insert(format!("{}_scored_{}", l.level, l.source), l.scored as f64);
        }
        if let Some(confusion) = &l.confusion {
            let mut confusion = confusion.clone();
            confusion.name = format!("{} from {} (applied)", l.level, l.source);
            confusions.push(confusion);
        }
    }
    if let Some(c) = &application.categories {
        metrics.insert("agent_agreement".into(), c.agreement);
        metrics.insert("mean_confidence".into(), c.mean_confidence);
        if let Some(s) = &c.scores {
            metrics.insert("accuracy".into(), s.accuracy);
            metrics.insert("ari".into(), s.ari);
            metrics.insert("consensus_accuracy".into(), s.consensus_accuracy);
            metrics.insert("consensus_ari".into(), s.consensus_ari);
        }
    }
    let latent = |values: &ndarray::Array2<f64>| Latent {
        dims: values.ncols(),
        cells: application.cells.clone(),
        values: values.iter().map(|&v| v as f32).collect(),
    };
    let latents = application
        .latent_e
        .iter()
        .map(|z_e| NamedLatent {
            name: "z_E (applied)".into(),
            latent: latent(z_e),
        })
        .collect();
    let cross_modal = (!application.outputs.is_empty()).then(|| CrossModal {
        source: experiment.modalities[0].clone(),
        target: source
            .experiment
            .modalities
            .get(1)
            .cloned()
            .unwrap_or_else(|| "targets".into()),
        features: application.outputs.clone(),
        cells: application.cells.clone(),
        observed: match &application.observed {
            Some(observed) => observed.iter().map(|&v| v as f32).collect(),
            None => vec![f32::NAN; application.predictions.len()],
        },
        predicted: application.predictions.iter().map(|&v| v as f32).collect(),
    });
    let training_latent = match source.experiment.model {
        ModelSpec::Cae { .. } => format!("z_T {IN_SAMPLE}"),
        _ => "z".to_string(),
    };
    ExperimentResult {
        metrics,
        per_fold: Vec::new(),
        per_feature,
        genes: Vec::new(),
        latent: Some(latent(&application.latent)),
        latents,
        cross_modal,
        curves: Vec::new(),
        confusions,
        preprocessing: BTreeMap::new(),
        detail: ResultDetail::Apply(Box::new(ApplyDetail {
            model_from: spec.model_from.clone(),
            model: application.model.clone(),
            artifact: application.provenance.clone(),
            training_latent,
            report: report.clone(),
            report_lines: report.lines(),
            classes: label_columns(application),
            calibration: application.calibration.clone(),
        })),
        weights: Vec::new(),
        provenance: Provenance::finished_now(seconds, 1, DeviceChoice::Cpu),
    }
}
