//! One experiment's configuration as a file of its own, for editing in
//! `$EDITOR` and hot reloading, and its fingerprint for staleness.
//!
//! The file holds everything that decides an experiment's result except its
//! name (the file name gives it): dataset, modalities, model and protocol. A
//! parse error reports line and column like the session file does, and an
//! edit is only taken once the whole session still validates with it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::file::extensions;
use super::{DatasetSpec, Experiment, ModelSpec, Protocol, Session, SessionError, validate};
use crate::nn::DeviceChoice;

/// The editable part of an [`Experiment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name of the dataset it uses.
    pub dataset: String,
    /// Modalities the model uses, in the model's order.
    pub modalities: Vec<String>,
    /// The model and its hyperparameters.
    pub model: ModelSpec,
    /// How the model is validated.
    #[serde(default)]
    pub protocol: Protocol,
}

impl ExperimentConfig {
    /// The configuration of `experiment`.
    pub fn of(experiment: &Experiment) -> Self {
        ExperimentConfig {
            dataset: experiment.dataset.clone(),
            modalities: experiment.modalities.clone(),
            model: experiment.model.clone(),
            protocol: experiment.protocol.clone(),
        }
    }

    /// `session` with experiment `name` configured as `self`, if the result
    /// validates; `path` names the edited file in errors. The experiment's
    /// result is kept (its fingerprint tells that it is stale).
    pub fn applied_to(
        &self,
        session: &Session,
        name: &str,
        path: &Path,
    ) -> Result<Session, SessionError> {
        let mut updated = session.clone();
        let Some(experiment) = updated.experiments.iter_mut().find(|e| e.name == name) else {
            return Err(SessionError::Invalid {
                path: path.to_path_buf(),
                field: "name".into(),
                message: format!("the session has no experiment `{name}` any more"),
            });
        };
        experiment.dataset = self.dataset.clone();
        experiment.modalities = self.modalities.clone();
        experiment.model = self.model.clone();
        experiment.protocol = self.protocol.clone();
        validate::check(&updated, path).map_err(|error| match error {
            SessionError::Invalid { field, message, .. } => SessionError::Invalid {
                path: path.to_path_buf(),
                field,
                message,
            },
            other => other,
        })?;
        Ok(updated)
    }
}

/// The configuration of `experiment` as pretty RON, in the form [`parse_config`] reads.
pub fn config_to_ron(experiment: &Experiment) -> Result<String, SessionError> {
    let pretty = ron::ser::PrettyConfig::new()
        .struct_names(false)
        .extensions(extensions())
        .indentor("  ")
        .compact_arrays(true);
    let mut text = ron::Options::default()
        .to_string_pretty(&ExperimentConfig::of(experiment), pretty)
        .map_err(|e| SessionError::Serialise(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

/// Parses an experiment configuration file; `path` is only used in errors.
pub fn parse_config(text: &str, path: &Path) -> Result<ExperimentConfig, SessionError> {
    let options = ron::Options::default().with_default_extension(extensions());
    options.from_str(text).map_err(|e| SessionError::Parse {
        path: path.to_path_buf(),
        line: e.span.start.line,
        column: e.span.start.col,
        message: e.code.to_string(),
    })
}

/// A short hash of everything that decides `experiment`'s result: its
/// configuration and its dataset's files and recipes. Stable across runs and
/// platforms (FNV-1a over the RON text).
pub fn fingerprint(experiment: &Experiment, dataset: Option<&DatasetSpec>) -> String {
    let mut config = ExperimentConfig::of(experiment);
    // Where a run executes is not what it computes: the result's provenance
    // records the device, and moving to another device keeps results current.
    config.protocol.device = DeviceChoice::Cpu;
    let config = ron::to_string(&config).unwrap_or_default();
    let data = dataset
        .and_then(|d| ron::to_string(d).ok())
        .unwrap_or_default();
    fnv1a([config.as_bytes(), data.as_bytes()])
}

/// [`fingerprint`] of `experiment` with its dataset as `session` defines it;
/// for an `Apply` experiment it also covers which run of its model it
/// applies (that run's configuration fingerprint and finish time), so
/// retraining the model makes the application's result stale.
pub fn fingerprint_in(session: &Session, experiment: &Experiment) -> String {
    let dataset = session
        .datasets
        .iter()
        .find(|d| d.name == experiment.dataset);
    let own = fingerprint(experiment, dataset);
    let Some(name) = experiment.model.method().model_from() else {
        return own;
    };
    let model_run = session
        .experiments
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.result.as_ref())
        .map(|r| {
            format!(
                "{}@{}",
                r.provenance.config.as_deref().unwrap_or(""),
                r.provenance.finished_at
            )
        })
        .unwrap_or_default();
    fnv1a([own.as_bytes(), model_run.as_bytes()])
}

/// FNV-1a over the parts, each followed by a zero byte.
fn fnv1a<const N: usize>(parts: [&[u8]; N]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        let separator: &[u8] = if i + 1 < N { &[0] } else { &[] };
        for &byte in part.iter().chain(separator) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}
