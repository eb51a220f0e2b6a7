//! Loading a session's dataset from disk and applying its recipes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::RunError;
use crate::data::{Dataset, Modality, read_metadata, read_table};
use crate::prep::Report;
use crate::session::DatasetSpec;

/// A dataset after every modality went through its recipe.
#[derive(Debug, Clone)]
pub struct PreparedDataset {
    /// The dataset's name in the session.
    pub name: String,
    /// Preprocessed modalities and labels.
    pub data: Dataset,
    /// What each modality's recipe did, by modality name.
    pub reports: BTreeMap<String, Report>,
}

/// The files of `spec` that do not exist, resolved against the session folder `base`.
pub fn missing_files(spec: &DatasetSpec, base: &Path) -> Vec<PathBuf> {
    spec.modalities
        .iter()
        .map(|m| &m.path)
        .chain(spec.metadata.as_ref().map(|m| &m.path))
        .map(|p| base.join(p))
        .filter(|p| !p.is_file())
        .collect()
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
    let mut modalities = Vec::with_capacity(spec.modalities.len());
    for modality in &spec.modalities {
        let path = base.join(&modality.path);
        let table = read_table(&path, modality.orientation).map_err(data_err)?;
        modalities.push(Modality::new(
            modality.name.clone(),
            path,
            modality.orientation,
            table,
        ));
    }
    let metadata = match &spec.metadata {
        Some(m) => Some(read_metadata(&base.join(&m.path), &m.id_column).map_err(data_err)?),
        None => None,
    };
    // Ids and orientation are checked on the raw tables, before a recipe can
    // fail on a transposed matrix with a less helpful message.
    let mut data = Dataset::new(modalities, metadata).map_err(data_err)?;
    let mut reports = BTreeMap::new();
    for (modality, modality_spec) in data.modalities.iter_mut().zip(&spec.modalities) {
        let table = std::mem::take(&mut modality.table);
        let prepared = modality_spec
            .recipe
            .apply(table)
            .map_err(|source| RunError::Prep {
                dataset: spec.name.clone(),
                modality: modality.name.clone(),
                source: Box::new(source),
            })?;
        reports.insert(modality.name.clone(), prepared.report);
        modality.table = prepared.table;
    }
    Ok(PreparedDataset {
        name: spec.name.clone(),
        data,
        reports,
    })
}
