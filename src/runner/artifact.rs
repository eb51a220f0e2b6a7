//! Writing a finished run's model artifact: the `manifest.json` beside the
//! weights the run saved, holding the fitted preprocessing of its modalities
//! and the scaling around the network (see [`crate::artifact`]).

use std::path::Path;

use super::experiment::paired_regression;
use super::{PreparedDataset, RunError};
use crate::analysis::scaling::column_statistics;
use crate::artifact::manifest::{FORMAT, FittedModality, VERSION, data_fingerprint};
use crate::artifact::{ArtifactModel, Manifest, Provenance, SbnnPart};
use crate::models::sbnn::network::bottleneck;
use crate::nn::dense::DenseNet;
use crate::session::{Experiment, ExperimentResult, ModelSpec};

/// The file the sBNN's final model is saved to (see `runner::sbnn`).
const SBNN_WEIGHTS: &str = "final.safetensors";

/// Writes `folder/manifest.json` for `experiment`'s result, if its model
/// kind has an artifact (the sBNN); `session` names the session file.
pub(super) fn write(
    folder: &Path,
    session: &str,
    experiment: &Experiment,
    result: &ExperimentResult,
    dataset: &PreparedDataset,
) -> Result<bool, RunError> {
    let ModelSpec::Sbnn(config) = &experiment.model else {
        return Ok(false);
    };
    let failed = |reason: String| RunError::Weights {
        experiment: experiment.name.clone(),
        path: folder.to_path_buf(),
        reason,
    };
    let regression = paired_regression(experiment, dataset, "sBNN needs two modalities")?;
    let (x, y) = (&regression.x, &regression.y);
    let (x_means, x_sds) = column_statistics(x.values.view(), regression.scaling)
        .map_err(|e| failed(e.to_string()))?;
    let (y_means, y_sds) = column_statistics(y.values.view(), regression.scaling)
        .map_err(|e| failed(e.to_string()))?;
    // The network's input order, as its header says (see `runner::sbnn`).
    let weights = folder.join(SBNN_WEIGHTS);
    let (_, info) = DenseNet::load(&weights).map_err(|e| failed(e.to_string()))?;
    let genes: Vec<String> = match info.get("inputs") {
        Some(inputs) => inputs.split(',').map(String::from).collect(),
        None => result.genes.iter().map(|g| g.name.clone()).collect(),
    };
    let columns: Vec<usize> = genes
        .iter()
        .map(|g| {
            x.features
                .iter()
                .position(|f| f == g)
                .ok_or_else(|| failed(format!("gene `{g}` is not an input feature")))
        })
        .collect::<Result<_, _>>()?;
    let part = SbnnPart {
        weights: SBNN_WEIGHTS.into(),
        gene_means: columns.iter().map(|&c| x_means[c]).collect(),
        gene_sds: x_sds.map(|sd| columns.iter().map(|&c| sd[c]).collect()),
        genes,
        outputs: y.features.clone(),
        output_means: y_means.to_vec(),
        output_sds: y_sds.map(|sd| sd.to_vec()),
        code_layers: bottleneck(config) + 1,
    };
    let fitted = |name: &String| {
        dataset
            .fitted
            .get(name)
            .map(|recipe| FittedModality {
                name: name.clone(),
                recipe: recipe.clone(),
            })
            .ok_or_else(|| failed(format!("no fitted preprocessing for modality `{name}`")))
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        provenance: Provenance {
            session: session.to_string(),
            experiment: experiment.name.clone(),
            dataset: dataset.name.clone(),
            data_fingerprint: data_fingerprint(&[x, y]),
            config_fingerprint: crate::session::fingerprint(experiment, None),
            patchbench: env!("CARGO_PKG_VERSION").into(),
        },
        input: fitted(&experiment.modalities[0])?,
        target: Some(fitted(&experiment.modalities[1])?),
        model: ArtifactModel::Sbnn(part),
    };
    manifest.write(folder).map_err(|e| failed(e.to_string()))?;
    Ok(true)
}
