//! Writing an [`Application`]: per-cell predictions and latent codes as CSV
//! or `.h5ad`, the metrics and alignment report as one JSON object, and a
//! short text summary.

use std::path::Path;

use serde_json::{Value, json};

use super::Application;
use crate::data::h5ad::write_h5ad;
use crate::data::{DataError, FeatureTable, LoadedTable};

/// The per-cell table: predicted outputs, then latent dimensions `latent_1`,
/// ..., then (k-CAE with measured E) `latent_e_1`, ... (NaN for cells without).
pub fn per_cell_table(application: &Application) -> FeatureTable {
    let dims = application.latent.ncols();
    let mut features = application.outputs.clone();
    features.extend((1..=dims).map(|d| format!("latent_{d}")));
    let mut blocks = vec![application.predictions.view(), application.latent.view()];
    if let Some(latent_e) = &application.latent_e {
        features.extend((1..=latent_e.ncols()).map(|d| format!("latent_e_{d}")));
        blocks.push(latent_e.view());
    }
    // `concatenate` may lay the columns out in another order; `.h5ad` needs rows.
    let values = ndarray::concatenate(ndarray::Axis(1), &blocks)
        .map(|v| v.as_standard_layout().into_owned())
        .unwrap_or_else(|_| ndarray::Array2::zeros((application.cells.len(), 0)));
    FeatureTable {
        cells: application.cells.clone(),
        features,
        values,
    }
}

/// The predicted classes as named per-cell columns (`family_from_z_T`, ...).
pub fn label_columns(application: &Application) -> Vec<(String, Vec<Option<String>>)> {
    application
        .labels
        .iter()
        .map(|l| {
            (
                format!("{}_from_{}", l.level, l.source),
                l.predicted.clone(),
            )
        })
        .collect()
}

/// Writes the per-cell table to `path`: `.h5ad` (X = the table, var = its
/// columns, obs = the predicted classes) when the name ends so, else CSV
/// (`cell,<columns>,<classes>`; an empty field where a cell has no value).
pub fn write_predictions(application: &Application, path: &Path) -> Result<(), DataError> {
    let table = per_cell_table(application);
    let labels = label_columns(application);
    if path.extension().is_some_and(|e| e == "h5ad") {
        return write_h5ad(path, &LoadedTable::Dense(table), &labels);
    }
    let io = |cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut text = String::from("cell");
    for f in table.features.iter().chain(labels.iter().map(|(n, _)| n)) {
        text.push(',');
        text.push_str(f);
    }
    text.push('\n');
    for (i, (cell, row)) in table.cells.iter().zip(table.values.rows()).enumerate() {
        text.push_str(cell);
        for v in row {
            text.push(',');
            if v.is_finite() {
                text.push_str(&v.to_string());
            }
        }
        for (_, values) in &labels {
            text.push(',');
            text.push_str(values[i].as_deref().unwrap_or(""));
        }
        text.push('\n');
    }
    std::fs::write(path, text).map_err(io)
}

/// The metrics and the alignment report as one JSON object.
pub fn summary_json(application: &Application) -> Value {
    let scores = application.scores.as_ref().map(|s| {
        json!({
            "cells": s.cells,
            "r2": s.r2,
            "per_feature_r2": s.per_feature.iter().map(|(n, v)| (n.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "shift": s.shift,
        })
    });
    json!({
        "model": application.model,
        "provenance": application.provenance,
        "cells": application.cells.len(),
        "alignment": application.report,
        "metrics": scores,
        "classes": application.labels.iter().map(|l| json!({
            "level": l.level,
            "from": l.source,
            "scored": l.scored,
            "accuracy": l.accuracy,
            "confusion": l.confusion,
        })).collect::<Vec<_>>(),
        "categories": application.categories,
        "calibration": application.calibration,
    })
}

/// A few lines for the terminal.
pub fn summary_lines(application: &Application) -> Vec<String> {
    let p = &application.provenance;
    let mut lines = vec![format!(
        "{} `{}` from {} (dataset {}, patchbench {}) applied to {} cells",
        application.model,
        p.experiment,
        p.session,
        p.dataset,
        p.patchbench,
        application.cells.len()
    )];
    lines.extend(application.report.lines());
    if let Some(s) = &application.scores {
        lines.push(format!(
            "R² {:.3} on {} cells with measured values",
            s.r2, s.cells
        ));
        let per: Vec<String> = s
            .per_feature
            .iter()
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect();
        lines.push(format!("per feature: {}", per.join(", ")));
    }
    for l in &application.labels {
        let predicted = l.predicted.iter().flatten().count();
        lines.push(match l.accuracy {
            Some(a) => format!(
                "{} from {}: accuracy {a:.3} on {} labelled cells ({predicted} predicted)",
                l.level, l.source, l.scored
            ),
            None => format!("{} from {}: {predicted} cells predicted", l.level, l.source),
        });
    }
    if let Some(c) = &application.categories {
        let used = c.sizes.iter().filter(|(_, n)| *n > 0).count();
        lines.push(format!(
            "categories used {used} of {}; agents' agreement {:.3}; mean consensus confidence {:.3}",
            c.sizes.len(),
            c.agreement,
            c.mean_confidence
        ));
        if let Some(s) = &c.scores {
            lines.push(format!(
                "against `{}` ({} labelled cells): accuracy {:.3}, ARI {:.3} (agent mean); consensus accuracy {:.3}, ARI {:.3}",
                s.column, s.scored, s.accuracy, s.ari, s.consensus_accuracy, s.consensus_ari
            ));
        }
    }
    if let Some(c) = &application.calibration {
        lines.push(format!(
            "recalibrated on {} cells (not applied): R² {:.3} calibrated vs {:.3} uncalibrated on the other {} cells",
            c.cells.len(),
            c.calibrated.r2,
            c.uncalibrated.r2,
            c.calibrated.cells
        ));
    }
    lines
}
