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
//!
//! A save can also run on another thread: [`SessionStore::save_job`] takes
//! a [`SaveJob`] (a cheap snapshot: the session is shared, not copied),
//! [`SaveJob::run`] does the reading, merging and writing anywhere, and
//! [`SessionStore::finish_save`] books its [`SaveOutcome`]; changes made
//! meanwhile stay pending for the next save.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::file::write_atomic;
use super::lock::{OwnerLock, SaveLock, remove_stale_temp_files};
use super::merge::{Change, merged_text};
use super::{ExperimentResult, Session, SessionError, parse, to_ron, validate};

/// A session file and this program's changes to it.
#[derive(Debug)]
pub struct SessionStore {
    path: PathBuf,
    session: Arc<Session>,
    text: String,
    /// Unsaved changes, each with its number (see `changes`).
    pending: Vec<(u64, Change)>,
    owner: Option<OwnerLock>,
    read_only: Option<String>,
    generation: u64,
    /// How many changes were ever made: numbers them.
    changes: u64,
    /// How many times the file was written or reloaded: a save job whose
    /// count is behind must not replace the text or session it did not see.
    writes: u64,
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
            session: Arc::new(session),
            text,
            pending: Vec::new(),
            owner: None,
            read_only: None,
            generation: 0,
            changes: 0,
            writes: 0,
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
        let mut updated = Session::clone(&self.session);
        change.apply(&mut updated)?;
        validate::check(&updated, &self.path).map_err(|e| e.to_string())?;
        self.session = Arc::new(updated);
        self.generation += 1;
        self.changes += 1;
        self.pending.push((self.changes, change));
        Ok(())
    }

    /// Stores a finished run's `result` as experiment `name`'s, completing its
    /// provenance with `config_fingerprint` (the [`super::fingerprint`] of the
    /// configuration it ran with), and saves.
    pub fn record_result(
        &mut self,
        name: &str,
        config_fingerprint: String,
        result: ExperimentResult,
    ) -> Result<SaveReport, SessionError> {
        self.add_result(name, config_fingerprint, result)?;
        self.save()
    }

    /// Like [`record_result`](Self::record_result) without saving: the
    /// result waits, pending, for the next save.
    pub fn add_result(
        &mut self,
        name: &str,
        config_fingerprint: String,
        mut result: ExperimentResult,
    ) -> Result<(), SessionError> {
        result.provenance.config = Some(config_fingerprint);
        self.change(Change::Result {
            experiment: name.to_string(),
            result: Box::new(result),
        })
        .map_err(|message| SessionError::Invalid {
            path: self.path.clone(),
            field: format!("experiments[{name}].result"),
            message,
        })
    }

    /// Writes this program's changes into the file as it is on disk now,
    /// under the save lock. Fails without writing when the store is
    /// read-only or the file on disk does not parse (the changes stay
    /// pending); changes that no longer apply (their experiment was removed)
    /// are dropped and listed in the report.
    pub fn save(&mut self) -> Result<SaveReport, SessionError> {
        match self.save_job()? {
            Some(job) => self.finish_save(job.run()),
            None => Ok(SaveReport::default()),
        }
    }

    /// A snapshot of the unsaved changes to write with [`SaveJob::run`],
    /// on any thread; `None` when nothing waits. Fails when the store is
    /// read-only.
    pub fn save_job(&self) -> Result<Option<SaveJob>, SessionError> {
        if let Some(holder) = &self.read_only {
            return Err(SessionError::ReadOnly {
                path: self.path.clone(),
                holder: holder.clone(),
            });
        }
        let Some(&(last_change, _)) = self.pending.last() else {
            return Ok(None);
        };
        Ok(Some(SaveJob {
            path: self.path.clone(),
            known_text: self.text.clone(),
            session: Arc::clone(&self.session),
            changes: self.pending.iter().map(|(_, c)| c.clone()).collect(),
            last_change,
            writes: self.writes,
        }))
    }

    /// Books what a [`SaveJob`] of this store did: on success its changes
    /// are no longer pending (changes made since stay pending) and, unless
    /// the file was written or reloaded meanwhile, the written text and
    /// merged session become this store's. On failure nothing changes.
    pub fn finish_save(&mut self, outcome: SaveOutcome) -> Result<SaveReport, SessionError> {
        let written = outcome.written?;
        self.pending
            .retain(|(number, _)| *number > outcome.last_change);
        if outcome.writes == self.writes {
            self.text = written.text;
            if let Some(mut merged) = written.merged {
                for (_, change) in &self.pending {
                    // One that no longer applies is dropped, and reported,
                    // by the next save.
                    let _ = change.apply(&mut merged);
                }
                self.session = Arc::new(merged);
                self.generation += 1;
            }
        }
        self.writes += 1;
        Ok(written.report)
    }

    /// Takes `text`, the file's new content written by someone else: the
    /// session becomes it plus this program's unsaved changes. An invalid
    /// text is refused and everything kept as it was.
    pub fn reload(&mut self, text: &str) -> Result<(), SessionError> {
        let mut session = parse(text, &self.path)?;
        self.pending
            .retain(|(_, change)| change.apply(&mut session).is_ok());
        self.session = Arc::new(session);
        self.generation += 1;
        self.writes += 1;
        self.text = text.to_string();
        Ok(())
    }
}

/// One save of a [`SessionStore`]'s changes, detached from the store so
/// that it can run on another thread ([`SessionStore::save_job`]).
#[derive(Debug)]
pub struct SaveJob {
    path: PathBuf,
    /// The file's text as the store last read or wrote it.
    known_text: String,
    /// The store's session: `known_text` with `changes` applied.
    session: Arc<Session>,
    changes: Vec<Change>,
    last_change: u64,
    writes: u64,
}

impl SaveJob {
    /// Takes the save lock, merges the changes into the file as it is on
    /// disk now and replaces it atomically (write, then rename: a crash
    /// leaves the old file whole).
    pub fn run(self) -> SaveOutcome {
        SaveOutcome {
            written: self.write(),
            last_change: self.last_change,
            writes: self.writes,
        }
    }

    fn write(&self) -> Result<Written, SessionError> {
        let _lock = SaveLock::acquire(&self.path)?;
        let mut report = SaveReport::default();
        let (merged, text) = match std::fs::read_to_string(&self.path) {
            // Nobody wrote the file since the store last read or wrote it:
            // the session already is that file with the pending changes
            // (each validated when made), so it need not be parsed again.
            Ok(disk_text) if disk_text == self.known_text => {
                let text = merged_text(&disk_text, &self.session, &self.changes)?;
                (None, text)
            }
            Ok(disk_text) => {
                let mut merged =
                    parse(&disk_text, &self.path).map_err(|error| SessionError::DiskInvalid {
                        error: Box::new(error),
                    })?;
                let mut applied = Vec::new();
                for change in &self.changes {
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
        Ok(Written {
            text,
            merged,
            report,
        })
    }
}

/// What a [`SaveJob`] did, for [`SessionStore::finish_save`].
#[derive(Debug)]
pub struct SaveOutcome {
    written: Result<Written, SessionError>,
    last_change: u64,
    writes: u64,
}

/// A successful save: the text written and, when other writers' work was
/// merged in, the session that text holds.
#[derive(Debug)]
struct Written {
    text: String,
    merged: Option<Session>,
    report: SaveReport,
}

/// What a save could not write.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SaveReport {
    /// Changes dropped because they no longer apply to the file, with why.
    pub dropped: Vec<String>,
}

#[cfg(test)]
mod tests;
