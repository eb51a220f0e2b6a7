//! A session file shared with other writers: what one program changed is
//! merged into the file as it is on disk, under a lock.
//!
//! [`SessionStore`] keeps the session as this program sees it (the file as
//! last read, plus its own changes) and the list of its own changes not yet
//! written. [`SessionStore::save`] takes the save lock, reads the file
//! again, applies those changes to it, splices them into the file's text
//! (comments and layout kept) and replaces the file atomically. So two
//! batches, or a batch and the workbench, on one session never lose each
//! other's results, and a file the user made invalid is never overwritten:
//! the save fails, the changes stay pending, and the next save after the
//! file is fixed writes them.

use std::path::{Path, PathBuf};

use super::file::write_atomic;
use super::lock::{OwnerLock, SaveLock, remove_stale_temp_files};
use super::merge::{Change, merged_text};
use super::{ExperimentResult, Session, SessionError, parse, to_ron, validate};

/// A session file and this program's changes to it.
#[derive(Debug)]
pub struct SessionStore {
    path: PathBuf,
    session: Session,
    text: String,
    pending: Vec<Change>,
    owner: Option<OwnerLock>,
    read_only: Option<String>,
    generation: u64,
}

impl SessionStore {
    /// Opens the session at `path` for merging writes (batch mode). Stale
    /// temporary files of dead writers are removed first.
    pub fn open(path: &Path) -> Result<SessionStore, SessionError> {
        let (session, text) = {
            let _lock = SaveLock::acquire(path)?;
            remove_stale_temp_files(path);
            let text = std::fs::read_to_string(path).map_err(|source| SessionError::Io {
                path: path.to_path_buf(),
                action: "cannot read",
                cause: source,
            })?;
            (parse(&text, path)?, text)
        };
        Ok(SessionStore::with_text(path, session, text))
    }

    /// Opens the session at `path` for the workbench: like [`open`], and
    /// claims it; when another workbench holds it, the store is read-only
    /// ([`SessionStore::read_only`] says who holds it).
    ///
    /// [`open`]: SessionStore::open
    pub fn open_claimed(path: &Path) -> Result<SessionStore, SessionError> {
        let mut store = SessionStore::open(path)?;
        match OwnerLock::claim(path)? {
            Ok(lock) => store.owner = Some(lock),
            Err(holder) => store.read_only = Some(holder),
        }
        Ok(store)
    }

    /// A store for `session`, not read from `path`: the first save writes it
    /// whole when no file is there, else merges into the file as usual.
    pub fn new(path: &Path, session: Session) -> SessionStore {
        SessionStore::with_text(path, session, String::new())
    }

    /// Writes `session` as a new file at `path` (replacing any) and opens it.
    pub fn create(path: &Path, session: Session) -> Result<SessionStore, SessionError> {
        let text = to_ron(&session)?;
        {
            let _lock = SaveLock::acquire(path)?;
            write_atomic(path, &text)?;
        }
        Ok(SessionStore::with_text(path, session, text))
    }

    fn with_text(path: &Path, session: Session, text: String) -> SessionStore {
        SessionStore {
            path: path.to_path_buf(),
            session,
            text,
            pending: Vec::new(),
            owner: None,
            read_only: None,
            generation: 0,
        }
    }

    /// The session: the file as last read or written, with this program's
    /// unsaved changes applied.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Grows whenever [`session`](Self::session) may have changed (a
    /// change, a save that merged other writers' work, a reload), so views
    /// derived from the session know when to recompute.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The session file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text as last read or written (to recognise one's own writes).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Who holds the session when this store may not write it.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// True while changes wait to be written.
    pub fn has_unsaved_changes(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes `change` here and remembers it for the next [`save`](Self::save);
    /// `Err` says why it does not apply.
    pub fn change(&mut self, change: Change) -> Result<(), String> {
        let mut updated = self.session.clone();
        change.apply(&mut updated)?;
        validate::check(&updated, &self.path).map_err(|e| e.to_string())?;
        self.session = updated;
        self.generation += 1;
        self.pending.push(change);
        Ok(())
    }

    /// Stores a finished run's `result` as experiment `name`'s, completing its
    /// provenance with `config_fingerprint` (the [`super::fingerprint`] of the
    /// configuration it ran with), and saves.
    pub fn record_result(
        &mut self,
        name: &str,
        config_fingerprint: String,
        mut result: ExperimentResult,
    ) -> Result<SaveReport, SessionError> {
        result.provenance.config = Some(config_fingerprint);
        self.change(Change::Result {
            experiment: name.to_string(),
            result: Box::new(result),
        })
        .map_err(|message| SessionError::Invalid {
            path: self.path.clone(),
            field: format!("experiments[{name}].result"),
            message,
        })?;
        self.save()
    }

    /// Writes this program's changes into the file as it is on disk now,
    /// under the save lock. Fails without writing when the store is
    /// read-only or the file on disk does not parse (the changes stay
    /// pending); changes that no longer apply (their experiment was removed)
    /// are dropped and listed in the report.
    pub fn save(&mut self) -> Result<SaveReport, SessionError> {
        if let Some(holder) = &self.read_only {
            return Err(SessionError::ReadOnly {
                path: self.path.clone(),
                holder: holder.clone(),
            });
        }
        if self.pending.is_empty() {
            return Ok(SaveReport::default());
        }
        let _lock = SaveLock::acquire(&self.path)?;
        let mut report = SaveReport::default();
        let (merged, text) = match std::fs::read_to_string(&self.path) {
            // Nobody wrote the file since this store last read or wrote it:
            // the session already is that file with the pending changes
            // (each validated when made), so it need not be parsed again.
            Ok(disk_text) if disk_text == self.text => {
                let text = merged_text(&disk_text, &self.session, &self.pending)?;
                (None, text)
            }
            Ok(disk_text) => {
                let mut merged =
                    parse(&disk_text, &self.path).map_err(|error| SessionError::DiskInvalid {
                        error: Box::new(error),
                    })?;
                let mut applied = Vec::new();
                for change in &self.pending {
                    match change.apply(&mut merged) {
                        Ok(()) => applied.push(change.clone()),
                        Err(reason) => report.dropped.push(reason),
                    }
                }
                validate::check(&merged, &self.path)?;
                let text = merged_text(&disk_text, &merged, &applied)?;
                (Some(merged), text)
            }
            // Removed meanwhile: write what this program has.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (None, to_ron(&self.session)?)
            }
            Err(source) => {
                return Err(SessionError::Io {
                    path: self.path.clone(),
                    action: "cannot read",
                    cause: source,
                });
            }
        };
        write_atomic(&self.path, &text)?;
        if let Some(merged) = merged {
            self.session = merged;
            self.generation += 1;
        }
        self.text = text;
        self.pending.clear();
        Ok(report)
    }

    /// Takes `text`, the file's new content written by someone else: the
    /// session becomes it plus this program's unsaved changes. An invalid
    /// text is refused and everything kept as it was.
    pub fn reload(&mut self, text: &str) -> Result<(), SessionError> {
        let mut session = parse(text, &self.path)?;
        self.pending
            .retain(|change| change.apply(&mut session).is_ok());
        self.session = session;
        self.generation += 1;
        self.text = text.to_string();
        Ok(())
    }
}

/// What a save could not write.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SaveReport {
    /// Changes dropped because they no longer apply to the file, with why.
    pub dropped: Vec<String>,
}

#[cfg(test)]
mod tests;
