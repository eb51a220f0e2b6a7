use std::path::Path;

use super::{DataError, FeatureTable, Orientation};

/// Reads a numeric matrix from CSV or TSV, plain or gzip-compressed, laid out as `orientation` says.
pub fn read_table(path: &Path, orientation: Orientation) -> Result<FeatureTable, DataError> {
    let _ = orientation;
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        message: "not implemented yet".into(),
    })
}
