//! Applying an artifact to new cells: read the data (any format patchbench
//! reads, orientation detected from which axis holds the model's genes),
//! align the features, prepare them with the training statistics, predict,
//! and where measured targets are given, score the predictions.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use super::align::{AlignError, AlignmentReport, MissingPolicy, align};
use super::apply_mixvae::CategorySummary;
use super::calibrate::{Calibration, CalibrationCells, calibrate};
use super::manifest::{
    ArtifactError, ArtifactModel, FittedModality, Manifest, Provenance, SbnnPart,
};
use crate::analysis::confusion::Confusion;
use crate::data::{
    DataError, FeatureTable, LoadedTable, MatrixFormat, MatrixSource, Orientation, detect_format,
    read_matrix, read_metadata, read_table_with_text_column,
};
use crate::nn::dense::DenseNet;
use crate::prep::{PrepError, dense_shortfall};

/// What to apply a model to.
#[derive(Debug, Clone, Default)]
pub struct ApplyInput {
    /// The new cells' input modality (e.g. gene counts).
    pub data: PathBuf,
    /// Measured targets of the new cells, if any (e.g. electrophysiology).
    pub observed: Option<PathBuf>,
    /// A metadata file and its id column, to filter cells with `filter`.
    pub metadata: Option<(PathBuf, String)>,
    /// Keep only cells whose metadata column equals the value (a value
    /// ending in `*` is a prefix).
    pub filter: Option<(String, String)>,
    /// What to do with missing genes.
    pub policy: MissingPolicy,
    /// Cells to fit a per-feature recalibration on (reported, never applied).
    pub calibrate: Option<CalibrationCells>,
    /// A second name of every feature (an `.h5ad`'s `var` column, a 10x
    /// folder's `gene_symbols`, a text column of a CSV/TSV with one row per
    /// gene) to find the model's genes that are not found by their primary name.
    pub alias_column: Option<String>,
    /// A k-CAE artifact's cross-validation fold (1-based) to apply instead of
    /// the model on all cells.
    pub fold: Option<usize>,
}

/// Why a model could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The artifact could not be read.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// A data file could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The features do not line up.
    #[error("{path}: {cause}")]
    Align {
        /// The data file.
        path: PathBuf,
        /// Why.
        cause: AlignError,
    },
    /// The preprocessing failed on the new cells.
    #[error("{path}: {cause}")]
    Prep {
        /// The data file.
        path: PathBuf,
        /// Why.
        cause: Box<PrepError>,
    },
    /// Anything else, with its message.
    #[error("{0}")]
    Invalid(String),
}

/// Scores of predictions against measured values (in training-SD units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Cells with both a prediction and a complete measurement.
    pub cells: usize,
    /// `1 − Σ(y − ŷ)² / Σ(y − ȳ)²` over every output, ȳ the new cells' means.
    pub r2: f64,
    /// The same per output.
    pub per_feature: Vec<(String, f64)>,
    /// Per output: mean and SD of the predictions and of the measured values.
    pub shift: Vec<Shift>,
}

/// Level and spread of one output's predictions against the measured values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    /// The output.
    pub feature: String,
    /// Mean of the predictions.
    pub predicted_mean: f64,
    /// Mean of the measured values.
    pub observed_mean: f64,
    /// SD of the predictions.
    pub predicted_sd: f64,
    /// SD of the measured values.
    pub observed_sd: f64,
}

/// Predicted classes of one label level from one latent, with accuracy and
/// confusion where the cells' labels were given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelPredictions {
    /// The level (e.g. `family`).
    pub level: String,
    /// The latent the classifier read (`z_T` or `z_E`).
    pub source: String,
    /// Per cell (in [`Application::cells`] order), the predicted class;
    /// `None` where the cell has no such latent (no measured E).
    pub predicted: Vec<Option<String>>,
    /// Cells whose true class the classifier knows, and were predicted.
    pub scored: usize,
    /// Fraction of them predicted right.
    pub accuracy: Option<f64>,
    /// Truth × prediction over the scored cells.
    pub confusion: Option<Confusion>,
}

/// The outcome of applying a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    /// Where the model came from.
    pub provenance: Provenance,
    /// The model kind.
    pub model: String,
    /// The feature-alignment report.
    pub report: AlignmentReport,
    /// The cells predicted, in the data's order.
    pub cells: Vec<String>,
    /// The predicted outputs' names.
    pub outputs: Vec<String>,
    /// Cells × outputs, in the units the target recipe produced before z-scoring.
    pub predictions: Array2<f64>,
    /// Cells × latent dimensions (the k-CAE's `z_T`).
    pub latent: Array2<f64>,
    /// The k-CAE's `z_E` of the cells with measured targets (cells × dims,
    /// NaN rows for cells without).
    pub latent_e: Option<Array2<f64>>,
    /// Classes predicted from the latents (k-CAE), or the mixture VAE's
    /// consensus category and its known type.
    pub labels: Vec<LabelPredictions>,
    /// The mixture VAE's agreement, category sizes and label scores.
    pub categories: Option<CategorySummary>,
    /// Scores, where measured targets were given.
    pub scores: Option<Scores>,
    /// The recalibration, where asked for.
    pub calibration: Option<Calibration>,
    /// The measured targets (`--observed`) of the cells, in the units of
    /// `predictions` (cells × outputs; NaN rows for cells not measured).
    pub observed: Option<Array2<f64>>,
}

/// Applies the artifact in `folder` to `input`.
pub fn apply(folder: &Path, input: &ApplyInput) -> Result<Application, ApplyError> {
    let manifest = Manifest::read(folder)?;
    let keep = match (&input.metadata, &input.filter) {
        (Some((path, id)), Some(filter)) => Some(filtered_cells(path, id, filter)?),
        (None, Some(_)) => {
            return Err(ApplyError::Invalid(
                "--where needs --metadata (the file holding the column)".into(),
            ));
        }
        _ => None,
    };
    if input.fold.is_some() && !matches!(manifest.model, ArtifactModel::Cae(_)) {
        return Err(ApplyError::Invalid(format!(
            "{}: --fold picks one of a k-CAE's cross-validation models; this {} artifact holds one model",
            folder.display(),
            manifest.model.kind()
        )));
    }
    match &manifest.model {
        ArtifactModel::Sbnn(part) => apply_sbnn(folder, &manifest, part, input, keep.as_ref()),
        ArtifactModel::Cae(part) => {
            super::apply_cae::apply_cae(folder, &manifest, part, input, keep.as_ref())
        }
        ArtifactModel::Srrr(part) => {
            super::apply_srrr::apply_srrr(&manifest, part, input, keep.as_ref())
        }
        ArtifactModel::MixVae(part) => {
            super::apply_mixvae::apply_mixvae(folder, &manifest, part, input, keep.as_ref())
        }
    }
}

/// The new cells read, aligned with `genes` and prepared with the input's
/// training recipe; the report counts the cells the recipe skipped.
pub(super) fn prepare_input(
    manifest: &Manifest,
    genes: &[String],
    input: &ApplyInput,
    keep: Option<&HashSet<String>>,
) -> Result<(FeatureTable, AlignmentReport), ApplyError> {
    let recipe = &manifest.input.recipe;
    let (raw, transposed, aliased) = read_cells(
        &input.data,
        &recipe.inputs,
        keep,
        input.alias_column.as_deref(),
    )?;
    let aligned = align(&raw, recipe, genes, input.policy, transposed).map_err(|source| {
        ApplyError::Align {
            path: input.data.clone(),
            cause: source,
        }
    })?;
    let mut report = aligned.report;
    report.alias_column = input.alias_column.clone();
    report.aliased = aliased;
    let (prepared, skipped) = recipe
        .replay(aligned.table)
        .map_err(|source| ApplyError::Prep {
            path: input.data.clone(),
            cause: Box::new(source),
        })?;
    report.skipped = skipped;
    if prepared.cells.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "{}: no cell is left to apply the model to ({})",
            input.data.display(),
            report.lines().join("; ")
        )));
    }
    Ok((prepared, report))
}

/// Applies an sBNN: predicted targets and latent codes.
fn apply_sbnn(
    folder: &Path,
    manifest: &Manifest,
    part: &SbnnPart,
    input: &ApplyInput,
    keep: Option<&HashSet<String>>,
) -> Result<Application, ApplyError> {
    let net_path = folder.join(&part.weights);
    let (net, _) = DenseNet::load(&net_path).map_err(|e| {
        ApplyError::Artifact(ArtifactError::Io {
            path: net_path.clone(),
            reason: e.to_string(),
        })
    })?;
    let (prepared, report) = prepare_input(manifest, &part.genes, input, keep)?;
    let mean_fill = !matches!(input.policy, MissingPolicy::Zero);
    let (z_predictions, latent) = sbnn_forward(&net, part, &prepared, &report.missing, mean_fill)?;
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

/// The application of a model that predicts `outputs` (sBNN, sRRR): the
/// predictions in the target recipe's units and the latent code, scored
/// against `--observed` where it is given.
pub(super) fn predicted(
    manifest: &Manifest,
    report: AlignmentReport,
    cells: Vec<String>,
    outputs: &[String],
    z_predictions: &Array2<f64>,
    latent: Array2<f64>,
    input: &ApplyInput,
) -> Result<Application, ApplyError> {
    let mut application = Application {
        provenance: manifest.provenance.clone(),
        model: manifest.model.kind().to_string(),
        report,
        cells,
        outputs: outputs.to_vec(),
        predictions: to_target_units(z_predictions, manifest.target.as_ref()),
        latent,
        latent_e: None,
        labels: Vec::new(),
        categories: None,
        scores: None,
        calibration: None,
        observed: None,
    };
    if let Some(path) = &input.observed {
        let observed = read_observed(path, manifest, outputs)?;
        let target = manifest.target.as_ref();
        score_against(
            &mut application,
            z_predictions,
            &observed,
            input,
            path,
            target,
        )?;
    } else if input.calibrate.is_some() {
        return Err(calibrate_needs_observed());
    }
    Ok(application)
}

/// The error of `--calibrate` without `--observed`.
pub(super) fn calibrate_needs_observed() -> ApplyError {
    ApplyError::Invalid("--calibrate needs --observed (the measured values to calibrate on)".into())
}

/// Scores `predicted` (rows = the application's cells, target z-units)
/// against the measured values `observed` (columns = the outputs), keeps
/// them in the predictions' units (`target`'s recipe) and fits the
/// recalibration where asked for.
pub(super) fn score_against(
    application: &mut Application,
    predicted: &Array2<f64>,
    observed: &FeatureTable,
    input: &ApplyInput,
    path: &Path,
    target: Option<&FittedModality>,
) -> Result<(), ApplyError> {
    let rows = match_rows(&application.cells, &observed.cells);
    if rows.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "{}: no cell of the measured values is among the predicted cells",
            path.display()
        )));
    }
    let (p, o): (Vec<usize>, Vec<usize>) = rows.iter().copied().unzip();
    let predicted = predicted.select(Axis(0), &p);
    let measured = observed.values.select(Axis(0), &o);
    let mut all = Array2::from_elem(application.predictions.dim(), f64::NAN);
    for (row, &i) in measured.rows().into_iter().zip(&p) {
        all.row_mut(i).assign(&row);
    }
    application.observed = Some(to_target_units(&all, target));
    application.scores = Some(score(&predicted, &measured, &application.outputs));
    if let Some(cells) = &input.calibrate {
        let ids: Vec<String> = o.iter().map(|&i| observed.cells[i].clone()).collect();
        application.calibration = Some(
            calibrate(&predicted, &measured, &ids, cells, &application.outputs)
                .map_err(ApplyError::Invalid)?,
        );
    }
    Ok(())
}

/// Ids of the metadata rows whose column `filter.0` matches `filter.1`.
fn filtered_cells(
    path: &Path,
    id_column: &str,
    (column, value): &(String, String),
) -> Result<HashSet<String>, ApplyError> {
    let metadata = read_metadata(path, id_column)?;
    // The id column is the metadata's index, not one of its columns.
    let values = if column == id_column {
        metadata.cells.iter().map(|c| Some(c.as_str())).collect()
    } else {
        metadata.column(column).ok_or_else(|| {
            ApplyError::Invalid(format!(
                "{}: no column `{column}`; it has {id_column}, {}",
                path.display(),
                metadata.columns.join(", ")
            ))
        })?
    };
    let matches = |v: &str| match value.strip_suffix('*') {
        Some(prefix) => v.starts_with(prefix),
        None => v == value,
    };
    let keep: HashSet<String> = metadata
        .cells
        .iter()
        .zip(values)
        .filter(|(_, v)| v.is_some_and(matches))
        .map(|(c, _)| c.clone())
        .collect();
    if keep.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "{}: no cell has `{column}` = `{value}`",
            path.display()
        )));
    }
    Ok(keep)
}

/// Features matched through an alias column: (the model's name, the data's primary name).
pub type Aliased = Vec<(String, String)>;

/// Reads a matrix as cells × features, with features among `wanted`:
/// delimited text is read with features in rows and transposed when its
/// header holds them instead. A feature of `wanted` that no primary name
/// matches is looked up in the `alias` column (see [`ApplyInput`]) and named
/// after the wanted one. Returns the table, whether it was transposed, and
/// the features matched through the alias as (wanted name, primary name).
pub fn read_cells(
    path: &Path,
    wanted: &[String],
    keep: Option<&HashSet<String>>,
    alias: Option<&str>,
) -> Result<(FeatureTable, bool, Aliased), ApplyError> {
    let format = detect_format(path)?;
    let orientation = match format {
        MatrixFormat::H5ad => Orientation::CellsByFeatures,
        MatrixFormat::TenxFolder | MatrixFormat::Delimited => Orientation::FeaturesByCells,
        MatrixFormat::MatrixMarket => {
            return Err(ApplyError::Invalid(format!(
                "{}: a bare .mtx file has no gene or cell names; give a CSV/TSV, an .h5ad or a 10x folder",
                path.display()
            )));
        }
    };
    let (mut loaded, aliases) = match (alias, format) {
        (Some(column), MatrixFormat::Delimited) => {
            let (table, symbols) = read_table_with_text_column(path, orientation, column)?;
            (LoadedTable::Dense(table), Some(symbols))
        }
        (Some(column), _) => {
            let mut source = MatrixSource::new(path, orientation);
            source.h5ad.var_column = Some(column.to_string());
            let symbols = read_matrix(&source)?.features().to_vec();
            (
                read_matrix(&MatrixSource::new(path, orientation))?,
                Some(symbols),
            )
        }
        (None, _) => (read_matrix(&MatrixSource::new(path, orientation))?, None),
    };
    let aliased = match &aliases {
        Some(aliases) => match_aliases(aliases, wanted, &mut loaded),
        None => Vec::new(),
    };
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let hits = |names: &[String]| {
        names
            .iter()
            .filter(|n| wanted_set.contains(n.as_str()))
            .count()
    };
    let transposed =
        format == MatrixFormat::Delimited && hits(loaded.cells()) > hits(loaded.features());
    if transposed && aliases.is_some() {
        return Err(ApplyError::Invalid(format!(
            "{}: its header names the genes, so it has one row per cell; an alias column \
             in a CSV/TSV is a text column of a table with one row per gene",
            path.display()
        )));
    }
    let mut table = match loaded {
        LoadedTable::Dense(t) => t,
        LoadedTable::Sparse(t) => {
            let columns: Vec<usize> = (0..t.features.len())
                .filter(|&j| wanted_set.contains(t.features[j].as_str()))
                .collect();
            if let Some((needed, available)) = dense_shortfall(t.cells.len(), columns.len()) {
                return Err(ApplyError::Invalid(format!(
                    "{}: the model's {} input features of these {} cells are {needed} as \
                     f64, more than the {available} of memory available; apply the model \
                     to fewer cells at a time",
                    path.display(),
                    columns.len(),
                    t.cells.len()
                )));
            }
            t.dense_columns(&columns).unwrap_or_default()
        }
    };
    if transposed {
        table = FeatureTable {
            cells: table.features,
            features: table.cells,
            values: table.values.t().to_owned(),
        };
    }
    if let Some(keep) = keep {
        let rows: Vec<usize> = (0..table.cells.len())
            .filter(|&i| keep.contains(&table.cells[i]))
            .collect();
        table = table.select_cells(&rows).unwrap_or_default();
        if table.cells.is_empty() {
            return Err(ApplyError::Invalid(format!(
                "{}: none of its cells passes the metadata filter",
                path.display()
            )));
        }
    }
    Ok((table, transposed, aliased))
}

/// Renames the features of `loaded` whose name is not wanted but whose
/// alias (`aliases`, one per feature: the file's alias column) is a wanted
/// name that no feature has; returns (wanted name, primary name) of each.
fn match_aliases(aliases: &[String], wanted: &[String], loaded: &mut LoadedTable) -> Aliased {
    let features = match loaded {
        LoadedTable::Dense(t) => &mut t.features,
        LoadedTable::Sparse(t) => &mut t.features,
    };
    let present: HashSet<String> = features.iter().cloned().collect();
    let mut by_alias: HashMap<&str, Vec<usize>> = HashMap::new();
    for (j, alias) in aliases.iter().enumerate() {
        by_alias.entry(alias.as_str()).or_default().push(j);
    }
    let wanted_set: HashSet<&str> = wanted.iter().map(String::as_str).collect();
    let mut matched = Vec::new();
    for name in wanted.iter().filter(|w| !present.contains(*w)) {
        // An ambiguous alias (several features) or one whose feature is
        // itself wanted by its primary name matches nothing.
        if let Some([j]) = by_alias.get(name.as_str()).map(Vec::as_slice)
            && !wanted_set.contains(features[*j].as_str())
        {
            matched.push((
                name.clone(),
                std::mem::replace(&mut features[*j], name.clone()),
            ));
        }
    }
    matched
}

/// The network's predictions (in the target's z-scored units) and latent codes.
fn sbnn_forward(
    net: &DenseNet,
    part: &SbnnPart,
    prepared: &FeatureTable,
    missing: &[String],
    mean_fill: bool,
) -> Result<(Array2<f64>, Array2<f64>), ApplyError> {
    let columns = columns_of(prepared, &part.genes)?;
    let rows = prepared.cells.len();
    let mut x = Vec::with_capacity(rows * columns.len());
    for row in prepared.values.rows() {
        for (k, &c) in columns.iter().enumerate() {
            let mut v = row[c] - part.gene_means[k];
            if let Some(sds) = &part.gene_sds {
                v /= sds[k];
            }
            if mean_fill && missing.contains(&part.genes[k]) {
                v = 0.0;
            }
            x.push(v as f32);
        }
    }
    let failed = |e: crate::nn::NnError| ApplyError::Invalid(format!("the network failed: {e}"));
    let layers = net.layers.len();
    let latent = net
        .forward_range(&x, rows, 0, part.code_layers)
        .map_err(failed)?;
    let output = net
        .forward_range(&latent, rows, part.code_layers, layers)
        .map_err(failed)?;
    let dims = latent.len() / rows.max(1);
    let latent =
        Array2::from_shape_vec((rows, dims), latent.iter().map(|&v| f64::from(v)).collect())
            .map_err(|e| ApplyError::Invalid(e.to_string()))?;
    let outputs = part.outputs.len();
    let mut predictions = Array2::from_shape_vec(
        (rows, outputs),
        output.iter().map(|&v| f64::from(v)).collect(),
    )
    .map_err(|e| ApplyError::Invalid(e.to_string()))?;
    for mut row in predictions.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            if let Some(sds) = &part.output_sds {
                *v *= sds[j];
            }
            *v += part.output_means[j];
        }
    }
    Ok((predictions, latent))
}

/// Predictions moved from the target recipe's z-scored units back to its unscaled units.
pub(super) fn to_target_units(z: &Array2<f64>, target: Option<&FittedModality>) -> Array2<f64> {
    let mut values = z.clone();
    if let Some((means, sds)) =
        target.and_then(|t| t.recipe.means.as_ref().zip(t.recipe.sds.as_ref()))
    {
        for mut row in values.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(means).zip(sds) {
                *v = *v * s + m;
            }
        }
    }
    values
}

/// Measured targets prepared with the artifact's target recipe (training
/// statistics), columns `outputs` in that order.
pub(super) fn read_observed(
    path: &Path,
    manifest: &Manifest,
    outputs: &[String],
) -> Result<FeatureTable, ApplyError> {
    let target = manifest.target.as_ref().ok_or_else(|| {
        ApplyError::Invalid("the artifact holds no target preprocessing to compare with".into())
    })?;
    let recipe = &target.recipe;
    let (raw, _, _) = read_cells(path, &recipe.inputs, None, None)?;
    let absent: Vec<&String> = recipe
        .inputs
        .iter()
        .filter(|f| !raw.features.contains(f))
        .collect();
    if !absent.is_empty() {
        return Err(ApplyError::Invalid(format!(
            "{}: lacks {} of the model's {} measured features: {}",
            path.display(),
            absent.len(),
            recipe.inputs.len(),
            absent
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let aligned = align(&raw, recipe, outputs, MissingPolicy::Zero, false).map_err(|source| {
        ApplyError::Align {
            path: path.to_path_buf(),
            cause: source,
        }
    })?;
    let (prepared, _) = recipe
        .replay(aligned.table)
        .map_err(|source| ApplyError::Prep {
            path: path.to_path_buf(),
            cause: Box::new(source),
        })?;
    let columns = columns_of(&prepared, outputs)?;
    Ok(FeatureTable {
        cells: prepared.cells,
        features: outputs.to_vec(),
        values: prepared.values.select(Axis(1), &columns),
    })
}

/// The columns of `table` holding `names`, in that order.
pub(super) fn columns_of(table: &FeatureTable, names: &[String]) -> Result<Vec<usize>, ApplyError> {
    let index: HashMap<&str, usize> = table
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    names
        .iter()
        .map(|g| {
            index.get(g.as_str()).copied().ok_or_else(|| {
                ApplyError::Invalid(format!(
                    "the artifact's feature `{g}` is not among its prepared features"
                ))
            })
        })
        .collect()
}

/// Pairs of (predicted row, observed row) for the cells in both, in predicted order.
pub(super) fn match_rows(predicted: &[String], observed: &[String]) -> Vec<(usize, usize)> {
    let index: HashMap<&str, usize> = observed
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    predicted
        .iter()
        .enumerate()
        .filter_map(|(i, c)| index.get(c.as_str()).map(|&j| (i, j)))
        .collect()
}

/// R² (about the measured means), per-feature R² and shifts.
pub fn score(predicted: &Array2<f64>, measured: &Array2<f64>, outputs: &[String]) -> Scores {
    let (mut residual, mut total) = (0.0, 0.0);
    let mut per_feature = Vec::with_capacity(outputs.len());
    let mut shift = Vec::with_capacity(outputs.len());
    for (j, name) in outputs.iter().enumerate() {
        let (p, o) = (predicted.column(j), measured.column(j));
        let (om, pm) = (o.mean().unwrap_or(f64::NAN), p.mean().unwrap_or(f64::NAN));
        let res: f64 = p.iter().zip(o).map(|(a, b)| (a - b).powi(2)).sum();
        let tot: f64 = o.iter().map(|b| (b - om).powi(2)).sum();
        residual += res;
        total += tot;
        per_feature.push((name.clone(), 1.0 - res / tot));
        shift.push(Shift {
            feature: name.clone(),
            predicted_mean: pm,
            observed_mean: om,
            predicted_sd: p.std(0.0),
            observed_sd: o.std(0.0),
        });
    }
    Scores {
        cells: predicted.nrows(),
        r2: 1.0 - residual / total,
        per_feature,
        shift,
    }
}
