//! Checks a parsed session for references and values RON alone cannot catch.

use std::collections::BTreeSet;
use std::path::Path;

use super::{ModelSpec, SESSION_VERSION, Session, SessionError};
use crate::analysis::cv::FoldScheme;

/// Returns the first problem found, naming the field that holds it.
pub(super) fn check(session: &Session, path: &Path) -> Result<(), SessionError> {
    let invalid = |field: String, message: String| SessionError::Invalid {
        path: path.to_path_buf(),
        field,
        message,
    };
    if session.version != SESSION_VERSION {
        return Err(invalid(
            "version".into(),
            format!(
                "this patchbench reads session version {SESSION_VERSION}, the file says {}",
                session.version
            ),
        ));
    }
    let mut dataset_names = BTreeSet::new();
    for (i, dataset) in session.datasets.iter().enumerate() {
        if !dataset_names.insert(dataset.name.as_str()) {
            return Err(invalid(
                format!("datasets[{i}].name"),
                format!("dataset `{}` is defined twice", dataset.name),
            ));
        }
        if dataset.modalities.is_empty() {
            return Err(invalid(
                format!("datasets[{i}].modalities"),
                "a dataset needs at least one modality".into(),
            ));
        }
        let mut modality_names = BTreeSet::new();
        for (j, modality) in dataset.modalities.iter().enumerate() {
            if !modality_names.insert(modality.name.as_str()) {
                return Err(invalid(
                    format!("datasets[{i}].modalities[{j}].name"),
                    format!(
                        "modality `{}` is defined twice in dataset `{}`",
                        modality.name, dataset.name
                    ),
                ));
            }
        }
    }
    let mut experiment_names = BTreeSet::new();
    for (i, experiment) in session.experiments.iter().enumerate() {
        let field = |name: &str| format!("experiments[{i}].{name}");
        if !experiment_names.insert(experiment.name.as_str()) {
            return Err(invalid(
                field("name"),
                format!("experiment `{}` is defined twice", experiment.name),
            ));
        }
        let Some(dataset) = session
            .datasets
            .iter()
            .find(|d| d.name == experiment.dataset)
        else {
            let known: Vec<_> = session
                .datasets
                .iter()
                .map(|d| format!("`{}`", d.name))
                .collect();
            return Err(invalid(
                field("dataset"),
                format!(
                    "unknown dataset `{}`; the session defines {}",
                    experiment.dataset,
                    list_or_none(&known)
                ),
            ));
        };
        let method = experiment.model.method();
        let (least, most) = (method.modality_count(), method.max_modalities());
        if !(least..=most).contains(&experiment.modalities.len()) {
            let wanted = if least == most {
                least.to_string()
            } else {
                format!("{least} to {most}")
            };
            return Err(invalid(
                field("modalities"),
                format!(
                    "{} needs {wanted} modalities, {} given",
                    experiment.model.kind(),
                    experiment.modalities.len()
                ),
            ));
        }
        if let Some(source) = method.model_from() {
            check_model_from(session, source).map_err(|m| invalid(field("model.model_from"), m))?;
            if let ModelSpec::Apply(spec) = &experiment.model
                && let Some(fold) = spec.fold
            {
                check_fold(session, source, fold).map_err(|m| invalid(field("model.fold"), m))?;
            }
        }
        for name in &experiment.modalities {
            if !dataset.modalities.iter().any(|m| &m.name == name) {
                let known: Vec<_> = dataset
                    .modalities
                    .iter()
                    .map(|m| format!("`{}`", m.name))
                    .collect();
                return Err(invalid(
                    field("modalities"),
                    format!(
                        "dataset `{}` has no modality `{name}`; it has {}",
                        dataset.name,
                        list_or_none(&known)
                    ),
                ));
            }
        }
        let protocol = &experiment.protocol;
        if protocol.folds < 2 {
            return Err(invalid(
                field("protocol.folds"),
                format!("need at least 2 folds, got {}", protocol.folds),
            ));
        }
        if let Some(scored) = protocol.scored_folds
            && !(1..=protocol.folds).contains(&scored)
        {
            return Err(invalid(
                field("protocol.scored_folds"),
                format!(
                    "must be between 1 and the {} folds, got {scored}",
                    protocol.folds
                ),
            ));
        }
        if protocol.scheme == FoldScheme::Stratified && protocol.stratify_by.is_none() {
            return Err(invalid(
                field("protocol.stratify_by"),
                "the Stratified scheme needs a metadata column, e.g. stratify_by: \"rna_family\""
                    .into(),
            ));
        }
        if protocol.stratify_by.is_some() && dataset.metadata.is_none() {
            return Err(invalid(
                field("protocol.stratify_by"),
                format!("dataset `{}` has no metadata to stratify by", dataset.name),
            ));
        }
        experiment
            .model
            .method()
            .validate()
            .map_err(|e| invalid(field(&format!("model.{}", e.field)), e.message))?;
        if let Some((name, column)) = experiment.model.method().label_columns().first()
            && dataset.metadata.is_none()
        {
            return Err(invalid(
                field(&format!("model.{name}")),
                format!(
                    "dataset `{}` has no metadata with the labels `{column}`",
                    dataset.name
                ),
            ));
        }
    }
    Ok(())
}

/// Why `source` cannot be the model an `Apply` experiment applies.
fn check_model_from(session: &Session, source: &str) -> Result<(), String> {
    let Some(from) = session.experiments.iter().find(|e| e.name == source) else {
        let known: Vec<_> = session
            .experiments
            .iter()
            .filter(|e| e.model.method().model_from().is_none())
            .map(|e| format!("`{}`", e.name))
            .collect();
        return Err(format!(
            "unknown experiment `{source}`; the session's models are {}",
            list_or_none(&known)
        ));
    };
    let method = from.model.method();
    if method.model_from().is_some() {
        return Err(format!(
            "`{source}` is itself an Apply experiment; name the experiment that trains the model"
        ));
    }
    if !method.has_artifact() {
        return Err(format!(
            "`{source}` is a {} experiment, which writes no model artifact to apply",
            method.kind()
        ));
    }
    Ok(())
}

/// Why fold `fold` of `source` (a known experiment) cannot be applied.
fn check_fold(session: &Session, source: &str, fold: usize) -> Result<(), String> {
    let Some(from) = session.experiments.iter().find(|e| e.name == source) else {
        return Ok(());
    };
    if !matches!(from.model, ModelSpec::Cae { .. }) {
        return Err(format!(
            "`{source}` is a {} experiment; only a k-CAE keeps its cross-validation folds' models",
            from.model.kind()
        ));
    }
    let folds = from.protocol.folds;
    if fold == 0 || fold > folds {
        return Err(format!(
            "`{source}` has {folds} folds, numbered from 1; got {fold}"
        ));
    }
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}
