//! Loading a session's dataset from disk and applying its recipes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RunError;
use crate::data::{
    Dataset, MatrixSource, Modality, ModalityIds, check_ids, h5ad::H5adSelection, read_matrix,
    read_metadata,
};
use crate::prep::{FittedRecipe, Report};
use crate::session::{DatasetSpec, ModalitySpec};

/// A dataset after every modality went through its recipe.
#[derive(Debug, Clone)]
pub struct PreparedDataset {
    /// The dataset's name in the session.
    pub name: String,
    /// Preprocessed modalities and labels.
    pub data: Dataset,
    /// What each modality's recipe did, by modality name.
    pub reports: BTreeMap<String, Report>,
    /// What each modality's recipe fitted on these cells (to prepare new
    /// cells the same way), by modality name.
    pub fitted: BTreeMap<String, FittedRecipe>,
}

/// The files (or 10x folders) of `spec` that do not exist, resolved against the session folder `base`.
pub fn missing_files(spec: &DatasetSpec, base: &Path) -> Vec<PathBuf> {
    spec.modalities
        .iter()
        .flat_map(|m| {
            std::iter::once(&m.path)
                .chain(m.features_file.as_ref())
                .chain(m.cells_file.as_ref())
        })
        .chain(spec.metadata.as_ref().map(|m| &m.path))
        .map(|p| base.join(p))
        .filter(|p| !p.exists())
        .collect()
}

/// How to read `modality`'s matrix, paths resolved against `base`.
fn matrix_source(modality: &ModalitySpec, base: &Path) -> MatrixSource {
    MatrixSource {
        path: base.join(&modality.path),
        orientation: modality.orientation,
        h5ad: H5adSelection {
            layer: modality.layer.clone(),
            use_raw: modality.use_raw,
            obsm: modality.obsm.clone(),
            var_column: modality.var_column.clone(),
        },
        features_file: modality.features_file.as_ref().map(|p| base.join(p)),
        cells_file: modality.cells_file.as_ref().map(|p| base.join(p)),
    }
}

/// Loads every file of `spec` (paths relative to `base`) and preprocesses each modality.
pub fn load_dataset(spec: &DatasetSpec, base: &Path) -> Result<PreparedDataset, RunError> {
    let missing = missing_files(spec, base);
    if !missing.is_empty() {
        return Err(RunError::MissingFiles {
            dataset: spec.name.clone(),
            files: missing,
            hint: spec.fetch.clone(),
        });
    }
    let data_err = |source| RunError::Data {
        dataset: spec.name.clone(),
        source: Box::new(source),
    };
    let sources: Vec<MatrixSource> = spec
        .modalities
        .iter()
        .map(|m| matrix_source(m, base))
        .collect();
    let tables = sources
        .iter()
        .map(read_matrix)
        .collect::<Result<Vec<_>, _>>()
        .map_err(data_err)?;
    let metadata = match &spec.metadata {
        Some(m) => Some(read_metadata(&base.join(&m.path), &m.id_column).map_err(data_err)?),
        None => None,
    };
    // Ids and orientation are checked on the raw tables, before a recipe can
    // fail on a transposed matrix with a less helpful message.
    let ids: Vec<ModalityIds<'_>> = spec
        .modalities
        .iter()
        .zip(&sources)
        .zip(&tables)
        .map(|((m, source), table)| ModalityIds {
            name: &m.name,
            path: &source.path,
            orientation: m.orientation,
            cells: table.cells(),
            features: table.features(),
        })
        .collect();
    check_ids(&ids, metadata.as_ref()).map_err(data_err)?;
    let mut modalities = Vec::with_capacity(spec.modalities.len());
    let mut reports = BTreeMap::new();
    let mut fitted = BTreeMap::new();
    for ((modality_spec, source), table) in spec.modalities.iter().zip(sources).zip(tables) {
        let (prepared, fitted_recipe) =
            modality_spec
                .recipe
                .apply_fitted(table)
                .map_err(|source| RunError::Prep {
                    dataset: spec.name.clone(),
                    modality: modality_spec.name.clone(),
                    source: Box::new(source),
                })?;
        reports.insert(modality_spec.name.clone(), prepared.report);
        fitted.insert(modality_spec.name.clone(), fitted_recipe);
        modalities.push(Modality::new(
            modality_spec.name.clone(),
            source.path,
            modality_spec.orientation,
            prepared.table,
        ));
    }
    let data = Dataset {
        modalities,
        metadata,
    };
    Ok(PreparedDataset {
        name: spec.name.clone(),
        data,
        reports,
        fitted,
    })
}
