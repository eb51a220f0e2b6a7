//! Applying a mixture VAE artifact: every agent's categories of the new
//! cells, their consensus with its confidence and the agents' agreement, the
//! known type of the consensus category where training had labels, and
//! accuracy and ARI against labels given in the metadata (as in training).

use std::collections::HashSet;
use std::path::Path;

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use super::MissingPolicy;
use super::apply::{
    Application, ApplyError, ApplyInput, LabelPredictions, columns_of, prepare_input,
};
use super::manifest::{ArtifactError, Manifest, MixVaePart};
use crate::analysis::clustering::{adjusted_rand_index, matched_accuracy};
use crate::analysis::labels::{ClassOrder, encode_labels};
use crate::data::read_metadata;
use crate::models::mixvae::{Assignment, TrainedMixVae};

/// The per-cell outputs of a mixture VAE application.
pub const OUTPUTS: [&str; 2] = ["confidence", "agreement"];

/// What the agents say about the applied cells as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategorySummary {
    /// Mean over agent pairs of the fraction of cells both put in the same category.
    pub agreement: f64,
    /// Mean over cells of the consensus confidence.
    pub mean_confidence: f64,
    /// Cells per consensus category (every category of the model).
    pub sizes: Vec<(String, usize)>,
    /// Scores against the labels given in the metadata.
    pub scores: Option<CategoryScores>,
}

/// Categories scored against known labels, as training scores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryScores {
    /// The metadata column holding the labels.
    pub column: String,
    /// Applied cells with a label.
    pub scored: usize,
    /// Matched accuracy, averaged over agents (training's `accuracy`).
    pub accuracy: f64,
    /// Adjusted Rand index, averaged over agents (training's `ari`).
    pub ari: f64,
    /// Matched accuracy of the consensus.
    pub consensus_accuracy: f64,
    /// Adjusted Rand index of the consensus.
    pub consensus_ari: f64,
}

/// Applies the mixture VAE of `part` (artifact in `folder`) to `input`.
pub(super) fn apply_mixvae(
    folder: &Path,
    manifest: &Manifest,
    part: &MixVaePart,
    input: &ApplyInput,
    keep: Option<&HashSet<String>>,
) -> Result<Application, ApplyError> {
    if input.observed.is_some() || input.calibrate.is_some() {
        return Err(ApplyError::Invalid(
            "a mixture VAE predicts categories, not measured values: --observed and --calibrate do not apply".into(),
        ));
    }
    let files: Vec<_> = part.weights.iter().map(|w| folder.join(w)).collect();
    let mut model =
        TrainedMixVae::restore(part.features.len(), &part.config, &files).map_err(|e| {
            ApplyError::Artifact(ArtifactError::Io {
                path: folder.to_path_buf(),
                reason: format!("the mixture VAE's networks could not be restored: {e}"),
            })
        })?;
    let (prepared, report) = prepare_input(manifest, &part.features, input, keep)?;
    let columns = columns_of(&prepared, &part.features)?;
    let mut x = prepared.values.select(Axis(1), &columns);
    if !matches!(input.policy, MissingPolicy::Zero) {
        for (k, gene) in part.features.iter().enumerate() {
            if report.missing.contains(gene) {
                x.column_mut(k).fill(part.feature_means[k]);
            }
        }
    }
    let assignment = model
        .assign(x.mapv(|v| v as f32).view())
        .map_err(|e| ApplyError::Invalid(format!("the mixture VAE failed: {e}")))?;
    let cells = prepared.cells.clone();
    let per_cell = Array2::from_shape_fn((cells.len(), OUTPUTS.len()), |(i, j)| match j {
        0 => assignment.confidence[i],
        _ => assignment.cell_agreement[i],
    });
    let latent = assignment.agents[0].state.mapv(f64::from);
    let name = |c: usize| part.categories.get(c).cloned();
    let mut labels = vec![LabelPredictions {
        level: "category".into(),
        source: "consensus".into(),
        predicted: assignment.consensus.iter().map(|&c| name(c)).collect(),
        scored: 0,
        accuracy: None,
        confusion: None,
    }];
    if let Some(types) = &part.types {
        labels.push(LabelPredictions {
            level: "type".into(),
            source: "consensus".into(),
            predicted: assignment
                .consensus
                .iter()
                .map(|&c| types.types.get(c).cloned().flatten())
                .collect(),
            scored: 0,
            accuracy: None,
            confusion: None,
        });
    }
    let scores = match (&input.metadata, &part.types) {
        (Some((path, id_column)), Some(types)) => {
            let metadata = read_metadata(path, id_column)?;
            let truth = metadata.labels(&types.column, &cells).ok_or_else(|| {
                ApplyError::Invalid(format!(
                    "{}: no label column `{}` (the model's training labels); it has {}",
                    path.display(),
                    types.column,
                    metadata.columns.join(", ")
                ))
            })?;
            Some(score(&assignment, &truth, &types.column))
        }
        _ => None,
    };
    let mut sizes: Vec<(String, usize)> = part.categories.iter().map(|c| (c.clone(), 0)).collect();
    for &c in &assignment.consensus {
        if let Some(slot) = sizes.get_mut(c) {
            slot.1 += 1;
        }
    }
    let summary = CategorySummary {
        agreement: assignment.agreement,
        mean_confidence: assignment.confidence.iter().sum::<f64>() / cells.len().max(1) as f64,
        sizes,
        scores,
    };
    Ok(Application {
        provenance: manifest.provenance.clone(),
        model: manifest.model.kind().to_string(),
        report,
        cells,
        outputs: OUTPUTS.iter().map(|s| s.to_string()).collect(),
        predictions: per_cell,
        latent,
        latent_e: None,
        labels,
        categories: Some(summary),
        scores: None,
        calibration: None,
        observed: None,
    })
}

/// Accuracy and ARI of every agent (averaged) and of the consensus on the
/// cells with a label in `truth`.
fn score(assignment: &Assignment, truth: &[Option<String>], column: &str) -> CategoryScores {
    let encoded = encode_labels(truth, ClassOrder::FirstSeen);
    let (rows, classes) = encoded.labelled();
    let pick = |cats: &[usize]| -> Vec<usize> { rows.iter().map(|&r| cats[r]).collect() };
    let n = assignment.agents.len().max(1) as f64;
    let (mut accuracy, mut ari) = (0.0, 0.0);
    for agent in &assignment.agents {
        let c = pick(&agent.category);
        accuracy += matched_accuracy(&c, &classes) / n;
        ari += adjusted_rand_index(&c, &classes) / n;
    }
    let consensus = pick(&assignment.consensus);
    CategoryScores {
        column: column.to_string(),
        scored: rows.len(),
        accuracy,
        ari,
        consensus_accuracy: matched_accuracy(&consensus, &classes),
        consensus_ari: adjusted_rand_index(&consensus, &classes),
    }
}
