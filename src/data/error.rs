use std::path::PathBuf;

/// Why a data file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
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
    /// The file as a whole does not fit what was asked of it.
    #[error("{path}: {message}", path = .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and what was expected.
        message: String,
    },
}
