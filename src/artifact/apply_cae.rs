//! Applying a k-CAE artifact: the new cells' `z_T` from their expression,
//! `z_E` where their electrophysiology was measured, E predicted from `z_T`,
//! and the classes the training cells' QDA predict from each latent; scored
//! where the truth is given (measured E, labels in the metadata).

use std::collections::HashSet;
use std::path::Path;

use ndarray::{Array2, Axis};

use super::MissingPolicy;
use super::apply::{
    Application, ApplyError, ApplyInput, LabelPredictions, calibrate_needs_observed, columns_of,
    match_rows, prepare_input, read_observed, score_against, to_target_units,
};
use super::manifest::{ArtifactError, CaePart, LabelLevel, Manifest};
use crate::analysis::confusion::Confusion;
use crate::analysis::qda::Qda;
use crate::data::read_metadata;
use crate::models::cae::CoupledAutoencoder;

/// Applies the k-CAE of `part` (artifact in `folder`) to `input`.
pub(super) fn apply_cae(
    folder: &Path,
    manifest: &Manifest,
    part: &CaePart,
    input: &ApplyInput,
    keep: Option<&HashSet<String>>,
) -> Result<Application, ApplyError> {
    let (weights, levels, model_name) = match input.fold {
        None => (
            &part.weights,
            &part.levels,
            manifest.model.kind().to_string(),
        ),
        Some(k) => {
            let fold = k
                .checked_sub(1)
                .and_then(|i| part.folds.get(i))
                .ok_or_else(|| {
                    ApplyError::Invalid(format!(
                        "{}: no fold {k}: this k-CAE artifact holds {} cross-validation folds{}",
                        folder.display(),
                        part.folds.len(),
                        if part.folds.is_empty() {
                            " (written before folds were kept; rerun the experiment)"
                        } else {
                            ", numbered from 1"
                        }
                    ))
                })?;
            (
                &fold.weights,
                &fold.levels,
                format!("{} (fold {k})", manifest.model.kind()),
            )
        }
    };
    let mut model = load_model(folder, part, weights)?;
    let (prepared, report) = prepare_input(manifest, &part.t_features, input, keep)?;
    let columns = columns_of(&prepared, &part.t_features)?;
    let mut x_t = prepared.values.select(Axis(1), &columns);
    if !matches!(input.policy, MissingPolicy::Zero) {
        for (k, gene) in part.t_features.iter().enumerate() {
            if report.missing.contains(gene) {
                x_t.column_mut(k).fill(part.t_means[k]);
            }
        }
    }
    let network = |e: crate::models::cae::CaeError| {
        ApplyError::Invalid(format!("the coupled autoencoder failed: {e}"))
    };
    let z_t = model.encode(0, &x_t.mapv(|v| v as f32)).map_err(network)?;
    let e_from_t = model
        .decode(1, &z_t, part.e_features.len())
        .map_err(network)?
        .mapv(f64::from);
    let z_t = z_t.mapv(f64::from);
    let mut application = Application {
        provenance: manifest.provenance.clone(),
        model: model_name,
        report,
        cells: prepared.cells.clone(),
        outputs: part.e_features.clone(),
        predictions: to_target_units(&e_from_t, manifest.target.as_ref()),
        latent: z_t,
        latent_e: None,
        labels: Vec::new(),
        categories: None,
        scores: None,
        calibration: None,
        observed: None,
    };
    if let Some(path) = &input.observed {
        let observed = read_observed(path, manifest, &part.e_features)?;
        let target = manifest.target.as_ref();
        score_against(&mut application, &e_from_t, &observed, input, path, target)?;
        let rows = match_rows(&application.cells, &observed.cells);
        let (p, o): (Vec<usize>, Vec<usize>) = rows.into_iter().unzip();
        let x_e = observed.values.select(Axis(0), &o).mapv(|v| v as f32);
        let z_e = model.encode(1, &x_e).map_err(network)?;
        let mut latent_e = Array2::from_elem(application.latent.dim(), f64::NAN);
        for (row, &cell) in p.iter().enumerate() {
            for (slot, &v) in latent_e.row_mut(cell).iter_mut().zip(z_e.row(row)) {
                *slot = f64::from(v);
            }
        }
        application.latent_e = Some(latent_e);
    } else if input.calibrate.is_some() {
        return Err(calibrate_needs_observed());
    }
    let truth = match &input.metadata {
        Some((path, id_column)) => Some((read_metadata(path, id_column)?, path)),
        None => None,
    };
    for level in levels {
        let labels = match &truth {
            Some((metadata, path)) => Some(
                metadata
                    .labels(&level.column, &application.cells)
                    .ok_or_else(|| {
                        ApplyError::Invalid(format!(
                            "{}: no label column `{}` (the model's {} labels); it has {}",
                            path.display(),
                            level.column,
                            level.name,
                            metadata.columns.join(", ")
                        ))
                    })?,
            ),
            None => None,
        };
        let sources = [
            ("z_T", level.from_t.as_ref(), Some(&application.latent)),
            ("z_E", level.from_e.as_ref(), application.latent_e.as_ref()),
        ];
        for (source, qda, latent) in sources {
            if let (Some(qda), Some(latent)) = (qda, latent) {
                application
                    .labels
                    .push(classify(level, source, qda, latent, labels.as_deref()));
            }
        }
    }
    Ok(application)
}

/// Rebuilds the network from the stored settings and loads `weights` (a file
/// of the artifact folder).
fn load_model(
    folder: &Path,
    part: &CaePart,
    weights: &str,
) -> Result<CoupledAutoencoder, ApplyError> {
    let path = folder.join(weights);
    let failed = |reason: String| {
        ApplyError::Artifact(ArtifactError::Io {
            path: path.clone(),
            reason,
        })
    };
    let mut model = CoupledAutoencoder::new(
        &part.config,
        &[part.t_features.len(), part.e_features.len()],
    )
    .map_err(|e| failed(e.to_string()))?;
    model
        .load_weights(&path)
        .map_err(|e| failed(e.to_string()))?;
    Ok(model)
}

/// The classes `qda` predicts for the rows of `latent` that hold a code,
/// scored against `truth` (per cell) where given.
fn classify(
    level: &LabelLevel,
    source: &str,
    qda: &Qda,
    latent: &Array2<f64>,
    truth: Option<&[Option<String>]>,
) -> LabelPredictions {
    let rows: Vec<usize> = (0..latent.nrows())
        .filter(|&r| latent.row(r).iter().all(|v| v.is_finite()))
        .collect();
    let codes = qda.predict(latent.select(Axis(0), &rows).view());
    let mut predicted = vec![None; latent.nrows()];
    let (mut truth_codes, mut predicted_codes) = (Vec::new(), Vec::new());
    for (&row, &code) in rows.iter().zip(&codes) {
        predicted[row] = level.classes.get(code).cloned();
        let known = truth
            .and_then(|t| t[row].as_ref())
            .and_then(|name| level.classes.iter().position(|c| c == name))
            .filter(|&t| qda.knows(t));
        if let Some(t) = known {
            truth_codes.push(t);
            predicted_codes.push(code);
        }
    }
    let scored = truth_codes.len();
    let correct = truth_codes
        .iter()
        .zip(&predicted_codes)
        .filter(|(t, p)| t == p)
        .count();
    let has_truth = truth.is_some() && scored > 0;
    LabelPredictions {
        level: level.name.clone(),
        source: source.to_string(),
        predicted,
        scored,
        accuracy: has_truth.then(|| correct as f64 / scored as f64),
        confusion: has_truth
            .then(|| {
                Confusion::from_indices(
                    &format!("qda on {source} -> {}", level.name),
                    &truth_codes,
                    &level.classes,
                    &predicted_codes,
                    &level.classes,
                )
            })
            .flatten(),
    }
}
