use std::io::Write;
use std::path::{Component, Path, PathBuf};

use ron::extensions::Extensions;

use super::{Session, SessionError, validate};

/// RON extensions every session may use without declaring them: `Some` may be
/// left out, and a variant's single struct needs no extra parentheses
/// (`Srrr(rank: 2)` rather than `Srrr((rank: 2))`).
pub(super) fn extensions() -> Extensions {
    Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES
}

/// Reads, parses and checks the session at `path`.
pub fn load(path: &Path) -> Result<Session, SessionError> {
    let text = std::fs::read_to_string(path).map_err(|source| SessionError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        cause: source,
    })?;
    parse(&text, path)
}

/// Parses and checks session text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Session, SessionError> {
    let options = ron::Options::default().with_default_extension(extensions());
    let session: Session = options.from_str(text).map_err(|e| SessionError::Parse {
        path: path.to_path_buf(),
        line: e.span.start.line,
        column: e.span.start.col,
        message: e.code.to_string(),
    })?;
    validate::check(&session, path)?;
    Ok(session)
}

/// The session as pretty-printed RON, in the form [`parse`] reads back.
pub fn to_ron(session: &Session) -> Result<String, SessionError> {
    let mut text = to_pretty_ron(session)?;
    text.push('\n');
    Ok(text)
}

/// Any part of a session as pretty RON in the session file's style, written
/// from column 0 without a final newline.
pub(super) fn to_pretty_ron<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<String, SessionError> {
    let pretty = ron::ser::PrettyConfig::new()
        .struct_names(false)
        .extensions(extensions())
        .indentor("  ")
        .compact_arrays(true);
    ron::Options::default()
        .to_string_pretty(value, pretty)
        .map_err(|e| SessionError::Serialise(e.to_string()))
}

/// Writes the session to `path` atomically (see [`write_atomic`]).
pub fn save(session: &Session, path: &Path) -> Result<(), SessionError> {
    write_atomic(path, &to_ron(session)?)
}

/// The temporary file a save by process `pid` writes before renaming it
/// over `path`: `.NAME.PID.tmp` in the same folder.
pub(super) fn temp_path(path: &Path, pid: u32) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    folder_of(path).join(format!(".{name}.{pid}.tmp"))
}

/// The folder holding `path` (`.` for a bare file name).
pub(super) fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `text` to `path` atomically: the text goes to a temporary file in
/// the same folder, is flushed to disk, and then replaces `path` by rename.
/// If anything fails, the file at `path` is left as it was.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), SessionError> {
    let temp = temp_path(path, std::process::id());
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(source) = written.and_then(|()| std::fs::rename(&temp, path)) {
        // The temporary file is ours; removing it is best effort.
        let _ = std::fs::remove_file(&temp);
        return Err(SessionError::Io {
            path: path.to_path_buf(),
            action: "cannot write",
            cause: source,
        });
    }
    Ok(())
}

/// Rewrites the relative data paths of `session`, written for a session file in
/// `from`, so that they point at the same files from a session file in `to`.
/// Absolute paths are kept as they are.
pub fn relocate(session: &mut Session, from: &Path, to: &Path) {
    let (Some(from), Some(to)) = (absolute(from), absolute(to)) else {
        return;
    };
    let rebase = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = relative_path(&normalise(&from.join(&*path)), &to);
        }
    };
    for dataset in &mut session.datasets {
        for modality in &mut dataset.modalities {
            rebase(&mut modality.path);
        }
        if let Some(metadata) = &mut dataset.metadata {
            rebase(&mut metadata.path);
        }
    }
}

fn absolute(folder: &Path) -> Option<PathBuf> {
    std::path::absolute(folder).ok().map(|p| normalise(&p))
}

/// Removes `.` and resolves `..` lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The path that leads from folder `base` to `target`; both are absolute and normalised.
fn relative_path(target: &Path, base: &Path) -> PathBuf {
    let target: Vec<_> = target.components().collect();
    let base: Vec<_> = base.components().collect();
    let shared = target.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in shared..base.len() {
        out.push("..");
    }
    for component in &target[shared..] {
        out.push(component);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_climbs_out_of_the_base_and_into_the_target() {
        let p = relative_path(Path::new("/a/data/x.csv"), Path::new("/a/sessions/out"));
        assert_eq!(p, PathBuf::from("../../data/x.csv"));
        let q = relative_path(Path::new("/a/data/x.csv"), Path::new("/a"));
        assert_eq!(q, PathBuf::from("data/x.csv"));
    }

    #[test]
    fn normalise_resolves_dot_dot() {
        assert_eq!(
            normalise(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
