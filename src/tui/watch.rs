//! Watching the session file and the config files beside it.
//!
//! The folders are watched rather than the files, because editors and our
//! own atomic save replace files by renaming. Changes are reported as
//! [`AppEvent::FilesChanged`]; the app compares contents, so its own writes
//! and repeated notifications are ignored there.

use std::path::Path;
use std::sync::mpsc::Sender;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::state::AppEvent;

/// Whether an event may leave a file with new contents: any change, and a
/// file closed after writing. The close matters: a program that rewrites a
/// file in place truncates it, then writes; the kernel merges the two
/// modifications into one event when the first is still unread, and if the
/// app reads the file between them (empty), the close is the only event left
/// to report the contents written after.
fn changes_contents(kind: &EventKind) -> bool {
    !kind.is_access()
        || matches!(
            kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
        )
}

/// Starts watching the folder of `session` and `side_folder` (created if
/// missing). The watcher stops when the returned value is dropped.
pub fn watch(
    session: &Path,
    side_folder: &Path,
    sender: Sender<AppEvent>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && changes_contents(&event.kind)
        {
            let _ = sender.send(AppEvent::FilesChanged(event.paths));
        }
    })?;
    let folder = match session.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    watcher.watch(&folder, RecursiveMode::NonRecursive)?;
    if std::fs::create_dir_all(side_folder).is_ok() {
        watcher.watch(side_folder, RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, ModifyKind};

    use super::*;

    #[test]
    fn a_file_closed_after_writing_counts_as_a_change_and_reads_do_not() {
        assert!(changes_contents(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(changes_contents(&EventKind::Modify(ModifyKind::Any)));
        assert!(changes_contents(&EventKind::Create(CreateKind::File)));
        assert!(!changes_contents(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!changes_contents(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
    }
}
