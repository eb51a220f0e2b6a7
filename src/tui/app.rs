//! The workbench's state and the one place it changes.
//!
//! [`App`] holds the session, what each pane shows and every run in flight.
//! Keys and background events come in through [`App::key`] and
//! [`App::handle`]; rendering only reads the state. Side effects that need
//! the terminal or threads (starting a worker, opening `$EDITOR`) are handed
//! to the event loop as [`Effect`]s, so the whole app can be driven key by
//! key in tests without a terminal.

mod cluster;
mod commands;
mod derived;
mod persist;
mod runs;

pub use cluster::ClusterState;
pub use derived::Derived;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::keys::{Action, action_for};
use super::line_edit::{LineEdit, edit_line};
use super::state::{
    AppEvent, DatasetState, Effect, Mode, Pane, Severity, Sort, SortColumn, Status, ViewState,
    ViewTab,
};
use crate::figures::default_label_column;
use crate::runner::{PreparedDataset, RunQueue};
use crate::session::{
    DatasetSpec, Experiment, ExperimentResult, Session, SessionStore, fingerprint_in,
};

/// The workbench.
#[derive(Debug)]
pub struct App {
    /// The session file, made absolute (watchers report absolute paths).
    pub path: PathBuf,
    /// The session file as the user named it, for display.
    pub display_path: String,
    /// The session file and this workbench's changes to it.
    store: SessionStore,
    /// The focused pane.
    pub focus: Pane,
    /// The selected dataset row.
    pub dataset_cursor: usize,
    /// The selected row of the (sorted) runs table.
    pub cursor: usize,
    /// How the runs table is sorted.
    pub sort: Sort,
    /// The view pane's state.
    pub view: ViewState,
    /// What keys do now.
    pub mode: Mode,
    /// Datasets by name.
    pub datasets: BTreeMap<String, DatasetState>,
    /// Runs queued or going, and why runs failed.
    pub runs: RunQueue,
    /// The last status message.
    pub message: Option<(String, Severity)>,
    /// The last config or session file error, shown until a good edit.
    pub config_error: Option<String>,
    /// Work for the event loop.
    pub effects: Vec<Effect>,
    /// True once the user confirmed quitting.
    pub quit: bool,
    /// Text of watched files as last seen, to ignore our own writes.
    seen: BTreeMap<PathBuf, String>,
    /// The session's experiments on a cluster.
    pub cluster: ClusterState,
    /// Runs marked for comparison (`m`); none: the selected run's sweep.
    pub marked: Vec<String>,
    /// Views of the session cached for drawing (see [`App::sync`]).
    pub derived: Derived,
    /// Whether a background save is asked for or running.
    saving: SaveState,
}

/// The background save's state (see the `persist` module).
#[derive(Debug, Default, Clone, Copy)]
struct SaveState {
    /// Changes were made since the last save job was taken.
    requested: bool,
    /// A save job is being written; its outcome is not booked yet.
    in_flight: bool,
}

impl App {
    /// Opens the session at `path`; read-only (with a message saying who
    /// holds it) when another workbench has it open.
    pub fn open(path: &Path) -> anyhow::Result<App> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let store = SessionStore::open_claimed(&absolute)?;
        let mut app = App::with_store(path, store);
        app.seen
            .insert(app.path.clone(), app.store.text().to_string());
        match app.store.read_only().map(str::to_string) {
            Some(holder) => app.error(format!(
                "read-only: {holder} has this session open; nothing is saved"
            )),
            None => {
                app.refresh_cluster();
                app.resume_sweeps();
            }
        }
        Ok(app)
    }

    /// An app over `session`, not yet saved, to be saved to `path`.
    pub fn new(path: &Path, session: Session) -> App {
        App::with_store(path, SessionStore::new(path, session))
    }

    fn with_store(path: &Path, store: SessionStore) -> App {
        let mut app = App {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            display_path: path.display().to_string(),
            store,
            focus: Pane::Experiments,
            dataset_cursor: 0,
            cursor: 0,
            sort: Sort {
                column: SortColumn::Session,
                descending: false,
            },
            view: ViewState::default(),
            mode: Mode::Normal,
            datasets: BTreeMap::new(),
            runs: RunQueue::default(),
            message: None,
            config_error: None,
            effects: Vec::new(),
            quit: false,
            seen: BTreeMap::new(),
            cluster: ClusterState::default(),
            marked: Vec::new(),
            derived: Derived::default(),
            saving: SaveState::default(),
        };
        app.sync();
        app
    }

    /// The folder the session's relative paths start from.
    pub fn base(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The folder beside the session holding config files and exports.
    pub fn side_folder(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".d");
        self.path.with_file_name(name)
    }

    /// The config file of experiment `name`.
    pub fn config_path(&self, name: &str) -> PathBuf {
        self.side_folder().join(format!("{name}.ron"))
    }

    /// The session: the file as last read, with this workbench's changes.
    pub fn session(&self) -> &Session {
        self.store.session()
    }

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Severity::Info));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Severity::Error));
    }

    // ----- derived state -------------------------------------------------

    /// The status of `experiment`.
    pub fn status(&self, experiment: &Experiment) -> Status {
        if let Some(run) = self.runs.run(&experiment.name) {
            return match &run.progress {
                Some(p) => Status::Running(p.fraction()),
                None => Status::Queued,
            };
        }
        if self.runs.failure(&experiment.name).is_some() {
            return Status::Failed;
        }
        match &experiment.result {
            None if self.cluster.done.contains(&experiment.name) => Status::ClusterDone,
            None if self.cluster.waiting.contains(&experiment.name) => Status::OnCluster,
            None => Status::NotRun,
            Some(result) if self.is_stale(experiment, result) => Status::Stale,
            Some(_) => Status::Done,
        }
    }

    fn is_stale(&self, experiment: &Experiment, result: &ExperimentResult) -> bool {
        let Some(recorded) = &result.provenance.config else {
            return false;
        };
        match self.derived.fingerprints.get(&experiment.name) {
            Some(current) => recorded != current,
            None => *recorded != self.fingerprint(experiment),
        }
    }

    fn fingerprint(&self, experiment: &Experiment) -> String {
        fingerprint_in(self.session(), experiment)
    }

    /// Experiment indices in the runs table's order.
    pub fn rows(&self) -> Vec<usize> {
        let experiments = &self.session().experiments;
        let mut rows: Vec<usize> = (0..experiments.len()).collect();
        let metric = |i: usize, name: &str| {
            experiments[i]
                .result
                .as_ref()
                .and_then(|r| r.metrics.get(name).copied())
        };
        match &self.sort.column {
            SortColumn::Session => {}
            SortColumn::Name => {
                rows.sort_by(|&a, &b| experiments[a].name.cmp(&experiments[b].name))
            }
            SortColumn::Status => rows.sort_by_key(|&i| self.status(&experiments[i]).rank()),
            SortColumn::Metric(name) => rows.sort_by(|&a, &b| {
                // Missing values sort last whatever the direction.
                match (metric(a, name), metric(b, name)) {
                    (Some(x), Some(y)) if self.sort.descending => y.total_cmp(&x),
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
            }),
        }
        if self.sort.descending && !matches!(self.sort.column, SortColumn::Metric(_)) {
            rows.reverse();
        }
        rows
    }

    /// The selected experiment.
    pub fn selected(&self) -> Option<&Experiment> {
        let rows = self.rows();
        let index = *rows.get(self.cursor.min(rows.len().saturating_sub(1)))?;
        self.session().experiments.get(index)
    }

    /// Every metric name of every result, headline metrics first (see
    /// [`Session::metric_names`]).
    pub fn metric_names(&self) -> &[String] {
        &self.derived.metric_names
    }

    /// The loaded dataset of `experiment`, if loaded.
    pub fn prepared(&self, dataset: &str) -> Option<&Arc<PreparedDataset>> {
        match self.datasets.get(dataset) {
            Some(DatasetState::Loaded(data)) => Some(data),
            _ => None,
        }
    }

    /// The experiment whose model the selected `Apply` experiment applies.
    pub fn model_from(&self) -> Option<&Experiment> {
        let name = self.selected()?.model.method().model_from()?;
        self.session().experiments.iter().find(|e| e.name == name)
    }

    /// The dataset whose labels colour the latent plot: the selected
    /// experiment's, or for an `Apply` experiment its model's training dataset.
    pub fn plotted_dataset(&self) -> Option<&Arc<PreparedDataset>> {
        let experiment = self.model_from().or(self.selected())?;
        self.prepared(&experiment.dataset)
    }

    /// The metadata columns of the plotted dataset ([`App::plotted_dataset`]).
    pub fn label_columns(&self) -> Vec<String> {
        self.plotted_dataset()
            .and_then(|d| d.data.metadata.as_ref())
            .map(|m| m.columns.clone())
            .unwrap_or_default()
    }

    /// The label column colouring the latent plot: the chosen one, else
    /// `rna_family` when present, else the first.
    pub fn label_column(&self) -> Option<String> {
        let columns = self.label_columns();
        if let Some(chosen) = &self.view.label_column
            && columns.contains(chosen)
        {
            return Some(chosen.clone());
        }
        default_label_column(&columns)
    }

    /// The runs the compare view shows: the marked ones, else every run of
    /// the selected experiment's sweep, else the selected experiment.
    pub fn compared(&self) -> Vec<String> {
        if !self.marked.is_empty() {
            return self.marked.clone();
        }
        let Some(selected) = self.selected() else {
            return Vec::new();
        };
        match crate::figures::compare::sweep_of(self.session(), &selected.name) {
            Some(sweep) => sweep.runs.clone(),
            None => vec![selected.name.clone()],
        }
    }

    fn toggle_mark(&mut self) {
        let Some(name) = self.selected().map(|e| e.name.clone()) else {
            return;
        };
        if let Some(at) = self.marked.iter().position(|m| *m == name) {
            self.marked.remove(at);
        } else {
            self.marked.push(name);
        }
        self.info(format!(
            "{} runs marked for 6 Compare (m toggles)",
            self.marked.len()
        ));
    }

    /// True while runs are queued or going.
    pub fn busy(&self) -> bool {
        !self.runs.is_empty()
    }

    // ----- keys ---------------------------------------------------------

    /// Handles one key press.
    pub fn key(&mut self, key: KeyEvent) {
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
            }
            Mode::ConfirmQuit => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.runs.cancel_all();
                    self.quit = true;
                }
                _ => {
                    self.mode = Mode::Normal;
                    self.info("still here");
                }
            },
            Mode::Command(text) => match edit_line(text, key) {
                LineEdit::Editing(text) => self.mode = Mode::Command(text),
                LineEdit::Cancelled => self.mode = Mode::Normal,
                LineEdit::Done(text) => {
                    self.mode = Mode::Normal;
                    self.command(&text);
                }
            },
            Mode::Sweep(dialog) => self.sweep_key(dialog, key),
            Mode::Normal => {
                if let Some(action) = action_for(key, self.focus) {
                    self.act(action);
                } else if let KeyCode::Char(c @ '1'..='6') = key.code {
                    let index = c as usize - '1' as usize;
                    self.view.tab = ViewTab::ALL[index];
                }
            }
        }
        self.sync();
    }

    /// Performs one action.
    pub fn act(&mut self, action: Action) {
        match action {
            Action::FocusNext => self.focus = self.focus.step(1),
            Action::FocusPrev => self.focus = self.focus.step(-1),
            Action::Down => self.move_cursor(1),
            Action::Up => self.move_cursor(-1),
            Action::Top => self.move_cursor(isize::MIN / 2),
            Action::Bottom => self.move_cursor(isize::MAX / 2),
            Action::Run => {
                if let Some(name) = self.selected().map(|e| e.name.clone()) {
                    self.enqueue(&name);
                }
            }
            Action::RunAll => self.run_all(),
            Action::Cancel => {
                if let Some(name) = self.selected().map(|e| e.name.clone()) {
                    self.cancel(&name);
                }
            }
            Action::Sweep => self.open_sweep(),
            Action::Edit => self.edit(),
            Action::SortNext => self.sort_next(),
            Action::SortReverse => self.sort.descending = !self.sort.descending,
            Action::TabNext => self.view.tab = self.view.tab.step(1),
            Action::TabPrev => self.view.tab = self.view.tab.step(-1),
            Action::LabelNext => self.label_next(),
            Action::LatentNext => {
                let count = self
                    .selected()
                    .and_then(|e| e.result.as_ref())
                    .map(|r| usize::from(r.latent.is_some()) + r.latents.len())
                    .unwrap_or(0);
                self.view.latent_index = (self.view.latent_index + 1) % count.max(1);
            }
            Action::DimsNext if self.view.tab == ViewTab::Compare => {
                self.view.compare_parameter += 1;
            }
            Action::ItemNext if self.view.tab == ViewTab::Compare => {
                self.view.compare_curve += 1;
            }
            Action::DimsNext => {
                let dims = self.latent_dims().max(2);
                let (x, _) = self.view.dims;
                let x = (x + 1) % (dims - 1);
                self.view.dims = (x, x + 1);
            }
            Action::AppliedToggle => self.view.show_applied = !self.view.show_applied,
            Action::ZoomIn => self.view.zoom = (self.view.zoom * 1.5).min(100.0),
            Action::ZoomOut => self.view.zoom = (self.view.zoom / 1.5).max(0.1),
            Action::ZoomFit => self.view.zoom = 1.0,
            Action::ItemNext => self.step_item(1),
            Action::ItemPrev => self.step_item(-1),
            Action::Export => self.effects.push(Effect::Export),
            Action::Mark => self.toggle_mark(),
            Action::LaunchCluster => self.launch_cluster(None),
            Action::Help => self.mode = Mode::Help,
            Action::Command => self.mode = Mode::Command(String::new()),
            Action::Quit => {
                if self.busy() {
                    self.mode = Mode::ConfirmQuit;
                } else {
                    self.quit = true;
                }
            }
        }
    }

    fn move_cursor(&mut self, by: isize) {
        let (datasets, experiments) = (
            self.session().datasets.len(),
            self.session().experiments.len(),
        );
        let (cursor, len) = match self.focus {
            Pane::Datasets => (&mut self.dataset_cursor, datasets),
            _ => (&mut self.cursor, experiments),
        };
        let last = len.saturating_sub(1) as isize;
        *cursor = (*cursor as isize).saturating_add(by).clamp(0, last) as usize;
        if self.focus != Pane::Datasets {
            self.view.latent_index = 0;
            self.view.cell_index = 0;
            self.view.confusion_index = 0;
        }
    }

    fn latent_dims(&self) -> usize {
        self.selected()
            .and_then(|e| e.result.as_ref())
            .and_then(|r| {
                let latents: Vec<_> = r
                    .latent
                    .iter()
                    .chain(r.latents.iter().map(|n| &n.latent))
                    .collect();
                latents.get(self.view.latent_index).map(|l| l.dims)
            })
            .unwrap_or(2)
    }

    fn step_item(&mut self, by: isize) {
        let Some(result) = self.selected().and_then(|e| e.result.as_ref()) else {
            return;
        };
        let (index, len) = match self.view.tab {
            ViewTab::Confusion => (self.view.confusion_index, result.confusions.len()),
            _ => (
                self.view.cell_index,
                result.cross_modal.as_ref().map_or(0, |c| c.cells.len()),
            ),
        };
        let next = (index as isize + by).rem_euclid(len.max(1) as isize) as usize;
        match self.view.tab {
            ViewTab::Confusion => self.view.confusion_index = next,
            _ => self.view.cell_index = next,
        }
    }

    fn sort_next(&mut self) {
        let mut columns = vec![SortColumn::Session, SortColumn::Name, SortColumn::Status];
        columns.extend(self.metric_names().iter().cloned().map(SortColumn::Metric));
        let i = columns
            .iter()
            .position(|c| *c == self.sort.column)
            .unwrap_or(0);
        self.sort.column = columns[(i + 1) % columns.len()].clone();
        self.sort.descending = matches!(self.sort.column, SortColumn::Metric(_));
        self.info(format!("sorted by {}", self.sort_label()));
    }

    /// How the table is sorted, in words.
    pub fn sort_label(&self) -> String {
        let column = match &self.sort.column {
            SortColumn::Session => "session order".to_string(),
            SortColumn::Name => "name".into(),
            SortColumn::Status => "status".into(),
            SortColumn::Metric(m) => m.clone(),
        };
        let arrow = if self.sort.descending { "↓" } else { "↑" };
        format!("{column} {arrow}")
    }

    fn label_next(&mut self) {
        let columns = self.label_columns();
        if columns.is_empty() {
            self.error("the dataset has no metadata columns (or is still loading)");
            return;
        }
        let current = self.label_column();
        let i = columns
            .iter()
            .position(|c| Some(c) == current.as_ref())
            .map_or(0, |i| (i + 1) % columns.len());
        self.view.label_column = Some(columns[i].clone());
        self.info(format!("colouring by {}", columns[i]));
    }

    // ----- background events ---------------------------------------------

    /// Handles one event from a worker or the file watcher.
    pub fn handle(&mut self, event: AppEvent) {
        match event {
            AppEvent::Run { name, update } => self.run_update(&name, update),
            AppEvent::Dataset { name, outcome } => {
                let state = match outcome {
                    Ok(data) => DatasetState::Loaded(data),
                    Err(message) => DatasetState::Failed(message),
                };
                self.datasets.insert(name, state);
            }
            AppEvent::FilesChanged(paths) => {
                for path in paths {
                    self.file_changed(&path);
                }
            }
            AppEvent::Saved(outcome) => self.save_done(outcome),
        }
        self.sync();
    }

    /// Datasets that need loading; marks them as loading.
    pub fn datasets_to_load(&mut self) -> Vec<DatasetSpec> {
        let wanted: Vec<DatasetSpec> = self
            .session()
            .datasets
            .iter()
            .filter(|d| !self.datasets.contains_key(&d.name))
            .cloned()
            .collect();
        for spec in &wanted {
            self.datasets
                .insert(spec.name.clone(), DatasetState::Loading);
        }
        wanted
    }
}
