use std::path::PathBuf;

/// Why a session could not be read, checked or written.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session file could not be read or written.
    #[error("{path}: {action}: {cause}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// The underlying error. Shown in the message and not
        /// offered as `source()`, so a printed error chain names it once.
        cause: std::io::Error,
    },
    /// The file is not valid RON for a session. `line` and `column` are 1-based.
    #[error("{path}:{line}:{column}: {message}", path = .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The file parses but a field holds a value that cannot be used.
    #[error("{path}: {field}: {message}", path = .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, as a path such as `experiments[1].dataset`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The session could not be serialised (a bug, reported rather than hidden).
    #[error("cannot serialise the session: {0}")]
    Serialise(String),
    /// Another workbench holds the session; this one may not write it.
    #[error(
        "{path} is open in another workbench ({holder}); opened read-only, changes are not saved",
        path = .path.display()
    )]
    ReadOnly {
        /// The session file.
        path: PathBuf,
        /// Who holds it (`pid 123 on host`).
        holder: String,
    },
    /// The file on disk no longer reads as a session (e.g. a half-done edit),
    /// so it is not overwritten; the changes are written once it is fixed.
    #[error(
        "not saved, the session file on disk is invalid (fix it and the changes are saved): {error}"
    )]
    DiskInvalid {
        /// Why the file does not read.
        error: Box<SessionError>,
    },
}
