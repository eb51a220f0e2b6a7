//! Writing an [`Application`]: per-cell predictions and latent codes as CSV
//! or `.h5ad`, the metrics and alignment report as one JSON object, and a
//! short text summary.

use std::path::Path;

use serde_json::{Value, json};

use super::Application;
use crate::data::h5ad::write_h5ad;
use crate::data::{DataError, FeatureTable, LoadedTable};

/// The per-cell table: predicted outputs, then latent dimensions `latent_1`, ...
pub fn per_cell_table(application: &Application) -> FeatureTable {
    let dims = application.latent.ncols();
    let outputs = application.outputs.len();
    let mut features = application.outputs.clone();
    features.extend((1..=dims).map(|d| format!("latent_{d}")));
    let mut values = ndarray::Array2::zeros((application.cells.len(), outputs + dims));
    for (mut row, (p, z)) in values.rows_mut().into_iter().zip(
        application
            .predictions
            .rows()
            .into_iter()
            .zip(application.latent.rows()),
    ) {
        for (slot, v) in row.iter_mut().zip(p.iter().chain(z.iter())) {
            *slot = *v;
        }
    }
    FeatureTable {
        cells: application.cells.clone(),
        features,
        values,
    }
}

/// Writes the per-cell table to `path`: `.h5ad` (X = the table, var = its
/// columns) when the name ends so, else CSV (`cell,<columns>`).
pub fn write_predictions(application: &Application, path: &Path) -> Result<(), DataError> {
    let table = per_cell_table(application);
    if path.extension().is_some_and(|e| e == "h5ad") {
        return write_h5ad(path, &LoadedTable::Dense(table), &[]);
    }
    let io = |cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let mut text = String::from("cell");
    for f in &table.features {
        text.push(',');
        text.push_str(f);
    }
    text.push('\n');
    for (cell, row) in table.cells.iter().zip(table.values.rows()) {
        text.push_str(cell);
        for v in row {
            text.push_str(&format!(",{v}"));
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
