//! Saving, hot reload of the session and config files, and `$EDITOR`.
//!
//! Every change goes through the app's [`crate::session::SessionStore`]:
//! it is merged into the file as it is on disk, spliced into its text (the
//! user's comments stay), and never written over a file that does not
//! parse; such a save fails with a message and the change waits until the
//! file is fixed.
//!
//! Saves run on the event loop's writer thread
//! ([`crate::session::BackgroundSaver`]), one at a time: [`App::save`] only
//! asks for one, [`App::next_save`] hands the loop a snapshot to write when
//! none is in flight, and [`App::handle`] books the outcome. Results that
//! finish while a save runs are written together by the next one.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::{App, SaveState};
use crate::figures::{self, ExportOptions, Figure};
use crate::session::{
    Change, SaveJob, SaveOutcome, SaveReport, SessionError, config_to_ron, parse_config,
};
use crate::tui::state::{Effect, Status, ViewTab};

impl App {
    /// Asks for this workbench's unsaved changes to be written (by the
    /// next [`SaveJob`] the event loop takes from [`App::next_save`]).
    pub fn save(&mut self) {
        self.saving.requested = true;
    }

    /// The save to run now, when one was asked for and none is in flight;
    /// its outcome comes back as [`AppEvent::Saved`](crate::tui::state::AppEvent::Saved).
    pub fn next_save(&mut self) -> Option<SaveJob> {
        if self.saving.in_flight || !self.saving.requested {
            return None;
        }
        self.saving.requested = false;
        match self.store.save_job() {
            Ok(job) => {
                self.saving.in_flight = job.is_some();
                job
            }
            Err(error) => {
                self.save_failed(&error);
                None
            }
        }
    }

    /// True while a save is in flight or asked for.
    pub fn save_pending(&self) -> bool {
        self.saving.in_flight || self.saving.requested
    }

    /// Books a background save's outcome.
    pub(super) fn save_done(&mut self, outcome: SaveOutcome) {
        self.saving.in_flight = false;
        match self.store.finish_save(outcome) {
            Ok(report) => self.saved(report),
            Err(error) => self.save_failed(&error),
        }
    }

    /// Writes the unsaved changes here and now: when quitting, once the
    /// writer thread has finished and its outcomes are booked.
    pub fn save_now(&mut self) {
        self.saving = SaveState::default();
        match self.store.save() {
            Ok(report) => self.saved(report),
            Err(error) => self.save_failed(&error),
        }
    }

    /// Notes a successful save and reports changes it had to drop.
    fn saved(&mut self, report: SaveReport) {
        self.seen
            .insert(self.path.clone(), self.store.text().to_string());
        if !report.dropped.is_empty() {
            self.error(format!("not saved: {}", report.dropped.join("; ")));
        }
    }

    pub(super) fn save_failed(&mut self, error: &SessionError) {
        if let SessionError::DiskInvalid { error } = error {
            self.config_error = Some(error.to_string());
        }
        self.error(error.to_string());
    }

    pub(super) fn edit(&mut self) {
        let Some(experiment) = self.selected().cloned() else {
            self.error("no experiment selected");
            return;
        };
        let path = self.config_path(&experiment.name);
        let written = config_to_ron(&experiment)
            .map_err(anyhow::Error::from)
            .and_then(|text| {
                std::fs::create_dir_all(self.side_folder())?;
                std::fs::write(&path, &text)?;
                Ok(text)
            });
        match written {
            Ok(text) => {
                self.seen.insert(path.clone(), text);
                self.effects.push(Effect::Edit(path));
            }
            Err(error) => self.error(format!("cannot write {}: {error:#}", path.display())),
        }
    }

    /// Reloads a watched file if its text changed since last seen.
    pub fn file_changed(&mut self, path: &Path) {
        if self.is_shard_file(path) {
            return self.refresh_cluster();
        }
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        if self.seen.get(path) == Some(&text) {
            return;
        }
        self.seen.insert(path.to_path_buf(), text.clone());
        if path == self.path {
            self.reload_session(&text);
        } else if path.parent() == Some(self.side_folder().as_path())
            && path.extension().is_some_and(|e| e == "ron")
        {
            self.reload_config(path, &text);
        }
    }

    fn reload_session(&mut self, text: &str) {
        let old_datasets = self.session().datasets.clone();
        match self.store.reload(text) {
            Ok(()) => {
                for dataset in old_datasets {
                    if !self.session().datasets.contains(&dataset) {
                        self.datasets.remove(&dataset.name);
                    }
                }
                self.config_error = None;
                self.info("session file changed on disk: reloaded");
                if self.store.has_unsaved_changes() {
                    self.save();
                }
            }
            Err(error) => {
                self.config_error = Some(error.to_string());
                self.error(format!(
                    "{error} (keeping the last good session; nothing is saved until the file is fixed)"
                ));
            }
        }
    }

    fn reload_config(&mut self, path: &Path, text: &str) {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let applied = parse_config(text, path).and_then(|config| {
            config
                .applied_to(self.session(), &name, path)
                .map(|session| (config, session))
        });
        match applied {
            Ok((config, session)) => {
                self.config_error = None;
                if &session == self.session() {
                    return;
                }
                let change = Change::Config {
                    experiment: name.clone(),
                    config: Box::new(config),
                };
                if let Err(error) = self.store.change(change) {
                    self.error(error);
                    return;
                }
                let stale = self
                    .session()
                    .experiments
                    .iter()
                    .find(|e| e.name == name)
                    .is_some_and(|e| self.status(e) == Status::Stale);
                let note = if stale { "; its result is stale" } else { "" };
                self.info(format!("reloaded {name}{note}"));
                self.save();
            }
            Err(error) => {
                self.config_error = Some(error.to_string());
                self.error(format!("{error} (keeping the last good config)"));
            }
        }
    }

    /// Writes the selected experiment's current plot and its CSVs into the
    /// exports folder beside the session; returns the files written.
    pub fn export(&self) -> anyhow::Result<Vec<PathBuf>> {
        let folder = self.side_folder().join("exports");
        if self.view.tab == ViewTab::Compare {
            // The metric-versus-parameter plots of every sweep.
            return figures::export_sweeps(self.session(), &folder);
        }
        let experiment = self.selected().context("no experiment selected")?;
        let result = experiment
            .result
            .as_ref()
            .with_context(|| format!("{} has no result to export", experiment.name))?;
        let figure = match self.view.tab {
            ViewTab::Latent => Some(Figure::Latent {
                space: self.view.latent_index,
                dims: self.view.dims,
                zoom: self.view.zoom,
            }),
            ViewTab::Curves => Some(Figure::Curves),
            ViewTab::Confusion => Some(Figure::Confusion(self.view.confusion_index)),
            ViewTab::Genes => Some(Figure::Genes),
            ViewTab::CrossModal | ViewTab::Compare => None,
        };
        let options = ExportOptions {
            dataset: self.prepared(&experiment.dataset).map(|d| d.as_ref()),
            label_column: self.label_column(),
            figures: figure.into_iter().collect(),
            live: self.runs.run(&experiment.name).map(|r| &r.live),
        };
        figures::export(&experiment.name, result, &options, &folder)
    }

    /// Reports files written by an export.
    pub fn exported(&mut self, files: &[PathBuf]) {
        let names: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let folder = files
            .first()
            .and_then(|f| f.parent())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        self.info(format!(
            "exported to {folder}: {names}",
            names = names.join(", ")
        ));
    }

    /// Reports a failed export.
    pub fn handle_export_error(&mut self, error: &str) {
        self.error(format!("export failed: {error}"));
    }

    /// Reports that files cannot be watched (edits then need a restart).
    pub fn handle_watch_error(&mut self, error: &str) {
        self.error(format!("cannot watch files for changes: {error}"));
    }
}
