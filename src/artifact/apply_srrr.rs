//! Applying an sRRR artifact: the new cells' selected genes, scaled with the
//! training statistics, through W (the latent scores) and Vᵀ (the predicted
//! targets); scored where measured targets are given.

use std::collections::HashSet;

use ndarray::{Array2, Axis};

use super::MissingPolicy;
use super::apply::{Application, ApplyError, ApplyInput, columns_of, predicted, prepare_input};
use super::manifest::{Manifest, SrrrPart};

/// Applies the sRRR of `part` to `input`.
pub(super) fn apply_srrr(
    manifest: &Manifest,
    part: &SrrrPart,
    input: &ApplyInput,
    keep: Option<&HashSet<String>>,
) -> Result<Application, ApplyError> {
    let (prepared, report) = prepare_input(manifest, &part.genes, input, keep)?;
    let columns = columns_of(&prepared, &part.genes)?;
    let mut x = prepared.values.select(Axis(1), &columns);
    let mean_fill = !matches!(input.policy, MissingPolicy::Zero);
    for (k, mut column) in x.columns_mut().into_iter().enumerate() {
        let sd = part.gene_sds.as_ref().map_or(1.0, |sds| sds[k]);
        if mean_fill && report.missing.contains(&part.genes[k]) {
            column.fill(0.0);
        } else {
            column.mapv_inplace(|v| (v - part.gene_means[k]) / sd);
        }
    }
    let w = matrix(&part.w, "w")?;
    let v = matrix(&part.v, "v")?;
    if w.nrows() != part.genes.len() || v.nrows() != part.outputs.len() || w.ncols() != v.ncols() {
        return Err(ApplyError::Invalid(format!(
            "the artifact's W is {}×{} and V {}×{}, but it lists {} genes and {} outputs",
            w.nrows(),
            w.ncols(),
            v.nrows(),
            v.ncols(),
            part.genes.len(),
            part.outputs.len()
        )));
    }
    let latent = x.dot(&w);
    let mut z_predictions = latent.dot(&v.t());
    for mut row in z_predictions.rows_mut() {
        for (j, value) in row.iter_mut().enumerate() {
            let sd = part.output_sds.as_ref().map_or(1.0, |sds| sds[j]);
            *value = *value * sd + part.output_means[j];
        }
    }
    predicted(
        manifest,
        report,
        prepared.cells.clone(),
        &part.outputs,
        &z_predictions,
        latent,
        input,
    )
}

/// A stored matrix (rows of equal length) as an array; `name` for the message.
fn matrix(rows: &[Vec<f64>], name: &str) -> Result<Array2<f64>, ApplyError> {
    let cols = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != cols) {
        return Err(ApplyError::Invalid(format!(
            "the artifact's `{name}` has rows of different lengths"
        )));
    }
    Array2::from_shape_vec((rows.len(), cols), rows.concat())
        .map_err(|e| ApplyError::Invalid(format!("the artifact's `{name}`: {e}")))
}
