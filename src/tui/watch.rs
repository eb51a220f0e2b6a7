//! Watching the session file and the config files beside it.
//!
//! The folders are watched rather than the files, because editors and our
//! own atomic save replace files by renaming. Changes are reported as
//! [`AppEvent::FilesChanged`]; the app compares contents, so its own writes
//! and repeated notifications are ignored there.

use std::path::Path;
use std::sync::mpsc::Sender;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::state::AppEvent;

/// Starts watching the folder of `session` and `side_folder` (created if
/// missing). The watcher stops when the returned value is dropped.
pub fn watch(
    session: &Path,
    side_folder: &Path,
    sender: Sender<AppEvent>,
) -> notify::Result<RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
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
