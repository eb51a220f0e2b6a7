use std::path::{Path, PathBuf};

use super::DataError;

/// Per-cell text annotations (labels such as `rna_family`), keyed by cell id.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The file the metadata came from.
    pub path: PathBuf,
    /// Cell ids, in file order.
    pub cells: Vec<String>,
    /// Column names other than the id column.
    pub columns: Vec<String>,
    /// `rows[i][j]` is column `j` of cell `i`; an empty string when missing.
    pub rows: Vec<Vec<String>>,
}

/// Reads a metadata table (CSV or TSV, plain or gzip) whose `id_column` holds cell ids.
pub fn read_metadata(path: &Path, id_column: &str) -> Result<Metadata, DataError> {
    let _ = id_column;
    Err(DataError::Invalid {
        path: path.to_path_buf(),
        message: "not implemented yet".into(),
    })
}
