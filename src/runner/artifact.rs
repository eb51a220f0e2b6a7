//! Writing a finished run's model artifact: the `manifest.json` beside the
//! weights the run saved, holding the fitted preprocessing of its modalities,
//! the scaling around the sBNN's network, or the k-CAE's settings, feature
//! lists and the classifiers fitted on its training latents (see
//! [`crate::artifact`]).

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array2, Axis};

use super::cae::IN_SAMPLE;
use super::experiment::paired_regression;
use super::latents::LatentData;
use super::{PreparedDataset, RunError};
use crate::analysis::latent_eval::LatentEvalConfig;
use crate::analysis::qda::Qda;
use crate::analysis::scaling::column_statistics;
use crate::artifact::manifest::{
    FORMAT, FittedModality, VERSION, data_fingerprint, dense_fingerprint,
};
use crate::artifact::{
    ArtifactModel, CaeFold, CaePart, CategoryTypes, LabelLevel, Manifest, MixVaePart, Provenance,
    SbnnPart, SrrrPart,
};
use crate::data::PreparedTable;
use crate::models::cae::{CaeConfig, CoupledAutoencoder};
use crate::models::mixvae::{MixVaeConfig, MixVaeSpec};
use crate::models::sbnn::network::bottleneck;
use crate::nn::dense::DenseNet;
use crate::session::{Experiment, ExperimentResult, ModelSpec, ResultDetail};

/// The file the sBNN's and the k-CAE's model on all cells is saved to
/// (see `runner::sbnn`, `runner::cae`).
const FINAL_WEIGHTS: &str = "final.safetensors";

/// Writes `folder/manifest.json` for `experiment`'s result, if its model
/// kind has an artifact (sBNN, k-CAE, sRRR with a final fit); `session`
/// names the session file.
pub(super) fn write(
    folder: &Path,
    session: &str,
    experiment: &Experiment,
    result: &ExperimentResult,
    dataset: &PreparedDataset,
) -> Result<bool, RunError> {
    let failed = |reason: String| RunError::Weights {
        experiment: experiment.name.clone(),
        path: folder.to_path_buf(),
        reason,
    };
    let (model, fingerprint) = match &experiment.model {
        ModelSpec::Sbnn(config) => {
            let regression = paired_regression(experiment, dataset, "sBNN needs two modalities")?;
            let part = sbnn_part(folder, config, result, &regression).map_err(failed)?;
            (
                ArtifactModel::Sbnn(part),
                dense_fingerprint(&[&regression.x, &regression.y]),
            )
        }
        ModelSpec::Cae { model, analysis } => {
            let tables = modality_tables(experiment, dataset).map_err(failed)?;
            let prepared = super::latents::prepare(experiment, analysis, dataset)?;
            let part =
                cae_part(folder, model, analysis, result, &prepared, &tables).map_err(failed)?;
            (ArtifactModel::Cae(part), data_fingerprint(&tables))
        }
        ModelSpec::Srrr(_) => {
            let regression = paired_regression(experiment, dataset, "sRRR needs two modalities")?;
            let Some(part) = srrr_part(result, &regression).map_err(failed)? else {
                return Ok(false);
            };
            (
                ArtifactModel::Srrr(part),
                dense_fingerprint(&[&regression.x, &regression.y]),
            )
        }
        ModelSpec::MixVae(spec) => {
            let table = experiment
                .modalities
                .first()
                .and_then(|name| dataset.data.modality(name))
                .map(|m| &m.table)
                .ok_or_else(|| failed("the mixture VAE's modality is missing".into()))?;
            let part = mixvae_part(spec, result, dataset, table).map_err(failed)?;
            (ArtifactModel::MixVae(part), data_fingerprint(&[table]))
        }
        ModelSpec::PcCca { .. } | ModelSpec::Apply(_) => return Ok(false),
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
            data_fingerprint: fingerprint,
            config_fingerprint: crate::session::fingerprint(experiment, None),
            patchbench: env!("CARGO_PKG_VERSION").into(),
        },
        input: fitted(&experiment.modalities[0])?,
        target: match experiment.modalities.get(1) {
            Some(name) => Some(fitted(name)?),
            None => None,
        },
        model,
    };
    manifest.write(folder).map_err(|e| failed(e.to_string()))?;
    Ok(true)
}

/// The prepared tables of the experiment's first two modalities.
fn modality_tables<'a>(
    experiment: &Experiment,
    dataset: &'a PreparedDataset,
) -> Result<[&'a PreparedTable; 2], String> {
    let table = |i: usize| {
        let name = experiment
            .modalities
            .get(i)
            .ok_or_else(|| "a k-CAE artifact needs two modalities".to_string())?;
        dataset
            .data
            .modality(name)
            .map(|m| &m.table)
            .ok_or_else(|| format!("dataset `{}` has no modality `{name}`", dataset.name))
    };
    Ok([table(0)?, table(1)?])
}

/// The sBNN's part: its input genes (as the network's header says), their
/// training means and SDs, and the outputs' scaling.
fn sbnn_part(
    folder: &Path,
    config: &crate::models::sbnn::SbnnConfig,
    result: &ExperimentResult,
    regression: &super::experiment::PairedRegression,
) -> Result<SbnnPart, String> {
    let (x, y) = (&regression.x, &regression.y);
    let (x_means, x_sds) =
        column_statistics(x.values.view(), regression.scaling).map_err(|e| e.to_string())?;
    let (y_means, y_sds) =
        column_statistics(y.values.view(), regression.scaling).map_err(|e| e.to_string())?;
    let weights = folder.join(FINAL_WEIGHTS);
    let (_, info) = DenseNet::load(&weights).map_err(|e| e.to_string())?;
    let genes: Vec<String> = match info.get("inputs") {
        Some(inputs) => inputs.split(',').map(String::from).collect(),
        None => result.genes.iter().map(|g| g.name.clone()).collect(),
    };
    let columns = input_columns(&x.features, &genes)?;
    Ok(SbnnPart {
        weights: FINAL_WEIGHTS.into(),
        gene_means: columns.iter().map(|&c| x_means[c]).collect(),
        gene_sds: x_sds.map(|sd| columns.iter().map(|&c| sd[c]).collect()),
        genes,
        outputs: y.features.clone(),
        output_means: y_means.to_vec(),
        output_sds: y_sds.map(|sd| sd.to_vec()),
        code_layers: bottleneck(config) + 1,
    })
}

/// The column of each of `genes` among the input `features`, in `genes`' order.
fn input_columns(features: &[String], genes: &[String]) -> Result<Vec<usize>, String> {
    genes
        .iter()
        .map(|g| {
            features
                .iter()
                .position(|f| f == g)
                .ok_or_else(|| format!("gene `{g}` is not an input feature"))
        })
        .collect()
}

/// The sRRR's part: the final fit's W and V (from the result) and the
/// scaling around them; `None` when no λ met the gene target (no final fit).
fn srrr_part(
    result: &ExperimentResult,
    regression: &super::experiment::PairedRegression,
) -> Result<Option<SrrrPart>, String> {
    let ResultDetail::Srrr {
        loadings, weights, ..
    } = &result.detail
    else {
        return Err("the result holds no sRRR fit".into());
    };
    if weights.is_empty() || loadings.is_empty() {
        return Ok(None);
    }
    let (x, y) = (&regression.x, &regression.y);
    let genes: Vec<String> = result.genes.iter().map(|g| g.name.clone()).collect();
    if genes.len() != weights.len() {
        return Err(format!(
            "{} selected genes but {} rows of W",
            genes.len(),
            weights.len()
        ));
    }
    let columns = input_columns(&x.features, &genes)?;
    let (x_means, x_sds) =
        column_statistics(x.values.view(), regression.scaling).map_err(|e| e.to_string())?;
    let (y_means, y_sds) =
        column_statistics(y.values.view(), regression.scaling).map_err(|e| e.to_string())?;
    Ok(Some(SrrrPart {
        gene_means: columns.iter().map(|&c| x_means[c]).collect(),
        gene_sds: x_sds.map(|sd| columns.iter().map(|&c| sd[c]).collect()),
        genes,
        w: weights.clone(),
        v: loadings.clone(),
        outputs: y.features.clone(),
        output_means: y_means.to_vec(),
        output_sds: y_sds.map(|sd| sd.to_vec()),
    }))
}

/// The k-CAE's part: settings, both arms' input features, per label level
/// QDA fitted on the in-sample `z_T` and `z_E` of the model on all cells (as
/// the folds fit theirs, with the experiment's QDA settings), and every
/// cross-validation fold's model with the QDA fitted on its training cells.
fn cae_part(
    folder: &Path,
    config: &CaeConfig,
    analysis: &LatentEvalConfig,
    result: &ExperimentResult,
    prepared: &LatentData<'_>,
    tables: &[&PreparedTable; 2],
) -> Result<CaePart, String> {
    let saved = |file: &str| {
        if result.weights.iter().any(|w| w.ends_with(file)) {
            Ok(())
        } else {
            Err(format!("the run saved no `{file}`"))
        }
    };
    saved(FINAL_WEIGHTS)?;
    let latent = |name: &str| {
        let wanted = format!("{name} {IN_SAMPLE}");
        result
            .latents
            .iter()
            .find(|l| l.name == wanted)
            .map(|l| &l.latent)
            .ok_or_else(|| format!("the result holds no `{wanted}` latent"))
    };
    let matrix = |l: &crate::session::Latent| {
        Array2::from_shape_vec(
            (l.cells.len(), l.dims),
            l.values.iter().map(|&v| f64::from(v)).collect(),
        )
        .map_err(|e| e.to_string())
    };
    let (z_t, z_e) = (matrix(latent("z_T")?)?, matrix(latent("z_E")?)?);
    let everyone: Vec<usize> = (0..prepared.paired.len()).collect();
    let levels = label_levels(analysis, prepared, &everyone, &z_t, &z_e);
    let dims = [tables[0].features().len(), tables[1].features().len()];
    let mut folds = Vec::with_capacity(prepared.folds.len());
    for (f, fold) in prepared.folds.iter().enumerate() {
        let weights = format!("fold{}.safetensors", f + 1);
        saved(&weights)?;
        let mut model = CoupledAutoencoder::new(config, &dims).map_err(|e| e.to_string())?;
        model
            .load_weights(&folder.join(&weights))
            .map_err(|e| format!("{weights}: {e}"))?;
        let mut encode = |i: usize| {
            model
                .encode_rows(
                    i,
                    &prepared.data.matrices[i],
                    &prepared.paired_row_indices(i, &fold.train),
                )
                .map(|z| z.mapv(f64::from))
                .map_err(|e| e.to_string())
        };
        let (fold_t, fold_e) = (encode(0)?, encode(1)?);
        folds.push(CaeFold {
            weights,
            held_out: fold
                .test
                .iter()
                .map(|&p| prepared.ids[prepared.paired[p]].clone())
                .collect(),
            levels: label_levels(analysis, prepared, &fold.train, &fold_t, &fold_e),
        });
    }
    Ok(CaePart {
        weights: FINAL_WEIGHTS.into(),
        config: config.clone(),
        t_features: tables[0].features().to_vec(),
        t_means: tables[0].column_means(),
        e_features: tables[1].features().to_vec(),
        levels,
        folds,
    })
}

/// Per label level, QDA fitted on the codes `z_t` and `z_e` (one row per entry
/// of `positions`, paired cells) of the cells that carry a label.
fn label_levels(
    analysis: &LatentEvalConfig,
    prepared: &LatentData<'_>,
    positions: &[usize],
    z_t: &Array2<f64>,
    z_e: &Array2<f64>,
) -> Vec<LabelLevel> {
    analysis
        .levels
        .iter()
        .enumerate()
        .map(|(l, (name, column))| {
            let (rows, y): (Vec<usize>, Vec<usize>) = positions
                .iter()
                .enumerate()
                .filter_map(|(row, &p)| prepared.labels[l][p].map(|c| (row, c)))
                .unzip();
            let fit =
                |z: &Array2<f64>| Qda::fit(z.select(Axis(0), &rows).view(), &y, &analysis.qda).ok();
            LabelLevel {
                name: name.clone(),
                column: column.clone(),
                classes: prepared.class_names[l].clone(),
                from_t: fit(z_t),
                from_e: fit(z_e),
            }
        })
        .collect()
}

/// The mixture VAE's part: the first seed's networks (the files the run
/// saved, `agent0`, ...), its settings, input features and their means, and
/// per category the most common training label of its consensus cells.
fn mixvae_part(
    spec: &MixVaeSpec,
    result: &ExperimentResult,
    dataset: &PreparedDataset,
    table: &PreparedTable,
) -> Result<MixVaePart, String> {
    let ResultDetail::MixVae { consensus, .. } = &result.detail else {
        return Err("the result holds no mixture VAE fit".into());
    };
    let weights: Vec<String> = result
        .weights
        .iter()
        .filter_map(|w| Path::new(w).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    let config = MixVaeConfig {
        seed: spec.seeds.first().copied().unwrap_or(spec.model.seed),
        ..spec.model.clone()
    };
    let types = match &spec.labels {
        None => None,
        Some(column) => {
            let labels = dataset
                .data
                .labels(column, table.cells())
                .ok_or_else(|| format!("the metadata has no label column `{column}`"))?;
            Some(CategoryTypes {
                column: column.clone(),
                types: majority_labels(consensus, &labels, config.categories),
            })
        }
    };
    Ok(MixVaePart {
        weights,
        config: config.clone(),
        features: table.features().to_vec(),
        feature_means: table.column_means(),
        categories: (0..config.categories).map(|k| format!("c{k}")).collect(),
        types,
    })
}

/// Per category, the most common label of its cells (ties: the name first
/// in sort order); `None` for a category without labelled cells.
fn majority_labels(
    categories: &[usize],
    labels: &[Option<String>],
    count: usize,
) -> Vec<Option<String>> {
    let mut tallies: Vec<BTreeMap<&str, usize>> = vec![BTreeMap::new(); count];
    for (&c, label) in categories.iter().zip(labels) {
        if let (Some(tally), Some(label)) = (tallies.get_mut(c), label) {
            *tally.entry(label.as_str()).or_default() += 1;
        }
    }
    tallies
        .iter()
        .map(|tally| {
            tally
                .iter()
                .fold(
                    None,
                    |best: Option<(&str, usize)>, (&name, &n)| match best {
                        Some((_, m)) if m >= n => best,
                        _ => Some((name, n)),
                    },
                )
                .map(|(name, _)| name.to_string())
        })
        .collect()
}
