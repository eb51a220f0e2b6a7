//! The one error type of the data layer.
//!
//! Every variant names the file it is about (for dataset-level checks, the
//! file of the offending modality or metadata), and, where there is one, the
//! 1-based line and column, plus what was expected instead.

use std::path::PathBuf;

use super::Orientation;

/// Why a data file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {cause}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error. Shown in the message and not
        /// offered as `source()`, so a printed error chain names it once.
        cause: std::io::Error,
    },
    /// The file starts like (or is named like) gzip data but cannot be decompressed.
    #[error("{path}: unreadable gzip data: {cause}", path = .path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompression error. Shown in the message and not
        /// offered as `source()`, so a printed error chain names it once.
        cause: std::io::Error,
    },
    /// A value at a known position is wrong. `line` and `column` are 1-based.
    #[error("{path}:{line}:{column}: {message}", path = .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 1-based column (field) number.
        column: u64,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A row has a different number of fields than the header implies.
    #[error("{path}:{line}: expected {expected} fields (as the header implies), found {found}", path = .path.display())]
    FieldCount {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the row.
        line: u64,
        /// Number of fields the header implies.
        expected: usize,
        /// Number of fields on this row.
        found: usize,
    },
    /// An id (cell id, feature name, column name) occurs twice.
    #[error(
        "{path}: duplicated {what} '{name}' at line {first_line} column {first_column} and line {second_line} column {second_column}; each {what} must be unique",
        path = .path.display()
    )]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// What kind of id: `cell id`, `feature name` or `column name`.
        what: &'static str,
        /// The duplicated id.
        name: String,
        /// 1-based line of the first occurrence.
        first_line: u64,
        /// 1-based column of the first occurrence.
        first_column: u64,
        /// 1-based line of the second occurrence.
        second_line: u64,
        /// 1-based column of the second occurrence.
        second_column: u64,
    },
    /// The requested id column is not in the file's header.
    #[error(
        "{path}: no column named '{column}'; available columns: {list}",
        path = .path.display(),
        list = .available.join(", ")
    )]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column that was asked for.
        column: String,
        /// The columns the header does have.
        available: Vec<String>,
    },
    /// An object inside a container file (an `.h5ad` element such as
    /// `/layers/counts`, or a line of a Matrix Market file) is missing or wrong.
    #[error("{path}: {object}: {message}", path = .path.display())]
    Object {
        /// The file.
        path: PathBuf,
        /// The object inside it (`/X`, `/obs/cell_type`, `line 12`).
        object: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The file as a whole does not fit what was asked of it.
    #[error("{path}: {message}", path = .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
    /// Two modalities of a dataset have the same name.
    #[error(
        "modality name '{name}' is used twice ({first} and {second}); modality names must be unique",
        first = .first.display(),
        second = .second.display()
    )]
    DuplicateModality {
        /// The repeated name.
        name: String,
        /// File of the first modality with that name.
        first: PathBuf,
        /// File of the second modality with that name.
        second: PathBuf,
    },
    /// A modality's cell ids and feature names look swapped.
    #[error(
        "{path}: modality '{modality}' shares no cell id with {other}, but its feature names match the cell ids of {other}: \
         the orientation looks wrong; it was read as {used:?}, use orientation {suggested:?}",
        path = .path.display()
    )]
    WrongOrientation {
        /// The modality's file.
        path: PathBuf,
        /// The modality's name.
        modality: String,
        /// The source it was compared with (`modality 'E'` or `the metadata`).
        other: String,
        /// The orientation the file was read with.
        used: Orientation,
        /// The orientation to use instead.
        suggested: Orientation,
    },
    /// A source of a multi-source dataset shares no cell id with any other source.
    #[error(
        "{path}: {source_name} shares no cell id with any other source of the dataset; check the cell ids, the id column and the orientation",
        path = .path.display()
    )]
    NoSharedCells {
        /// The source's file.
        path: PathBuf,
        /// The source (`modality 'T'` or `the metadata`).
        source_name: String,
    },
}
