//! The workbench's state and the one place it changes.
//!
//! [`App`] holds the session, what each pane shows and every run in flight.
//! Keys and background events come in through [`App::key`] and
//! [`App::handle`]; rendering only reads the state. Side effects that need
//! the terminal or threads (starting a worker, opening `$EDITOR`) are handed
//! to the event loop as [`Effect`]s, so the whole app can be driven key by
//! key in tests without a terminal.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::keys::{Action, action_for};
use crate::progress::Event;
use crate::runner::{PreparedDataset, WeightsTarget};
use crate::session::{
    self, DatasetSpec, Experiment, ExperimentResult, Session, config_to_ron, fingerprint,
    numeric_parameters, parse_config,
};

/// The panes, in focus order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// Datasets of the session.
    Datasets,
    /// Experiments and their runs.
    Experiments,
    /// The selected experiment's configuration.
    Config,
    /// Plots of the selected experiment's result.
    View,
}

impl Pane {
    const ORDER: [Pane; 4] = [Pane::Datasets, Pane::Experiments, Pane::Config, Pane::View];

    fn step(self, by: isize) -> Pane {
        let i = Self::ORDER.iter().position(|&p| p == self).unwrap_or(0) as isize;
        Self::ORDER[(i + by).rem_euclid(Self::ORDER.len() as isize) as usize]
    }

    /// The pane's title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Datasets => "Datasets",
            Pane::Experiments => "Experiments & runs",
            Pane::Config => "Config",
            Pane::View => "View",
        }
    }
}

/// The view pane's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewTab {
    /// Braille scatter of the latent space.
    Latent,
    /// Loss and metric curves.
    Curves,
    /// Confusion matrices.
    Confusion,
    /// Gene-selection ranking.
    Genes,
    /// Cross-modal predictions.
    CrossModal,
}

impl ViewTab {
    /// Every tab in display order.
    pub const ALL: [ViewTab; 5] = [
        ViewTab::Latent,
        ViewTab::Curves,
        ViewTab::Confusion,
        ViewTab::Genes,
        ViewTab::CrossModal,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            ViewTab::Latent => "Latent",
            ViewTab::Curves => "Curves",
            ViewTab::Confusion => "Confusion",
            ViewTab::Genes => "Genes",
            ViewTab::CrossModal => "Cross-modal",
        }
    }

    fn step(self, by: isize) -> ViewTab {
        let i = Self::ALL.iter().position(|&t| t == self).unwrap_or(0) as isize;
        Self::ALL[(i + by).rem_euclid(Self::ALL.len() as isize) as usize]
    }

    fn named(name: &str) -> Option<ViewTab> {
        let name = name.to_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.title().to_lowercase().starts_with(&name))
    }
}

/// What the view pane shows and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewState {
    /// The tab shown.
    pub tab: ViewTab,
    /// The metadata column colouring the latent plot (`None`: the first one).
    pub label_column: Option<String>,
    /// Which latent space: 0 is `latent`, then `latents` in order.
    pub latent_index: usize,
    /// The latent dimensions on the x and y axes.
    pub dims: (usize, usize),
    /// Zoom factor around the data's centre (1: fit).
    pub zoom: f64,
    /// Which confusion matrix.
    pub confusion_index: usize,
    /// Which cell in the cross-modal view.
    pub cell_index: usize,
}

impl Default for ViewState {
    fn default() -> Self {
        ViewState {
            tab: ViewTab::Latent,
            label_column: None,
            latent_index: 0,
            dims: (0, 1),
            zoom: 1.0,
            confusion_index: 0,
            cell_index: 0,
        }
    }
}

/// A column the runs table can be sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortColumn {
    /// Session order.
    Session,
    /// Experiment name.
    Name,
    /// Run status.
    Status,
    /// A result metric.
    Metric(String),
}

/// How the runs table is sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// The column.
    pub column: SortColumn,
    /// Largest first.
    pub descending: bool,
}

/// The loading state of a dataset.
#[derive(Debug, Clone)]
pub enum DatasetState {
    /// Being read on a worker thread.
    Loading,
    /// Read and preprocessed.
    Loaded(Arc<PreparedDataset>),
    /// Reading failed.
    Failed(String),
}

/// Progress of a running experiment.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The current stage's name (fold, epoch range, ...).
    pub stage: String,
    /// Steps in the stage.
    pub total: u64,
    /// Steps done.
    pub done: u64,
    /// When the stage began.
    pub stage_started: Instant,
    /// When the run began.
    pub started: Instant,
    /// The latest message.
    pub message: Option<String>,
}

impl Progress {
    /// Fraction of the stage done, in 0..=1.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }

    /// Estimated time left in the stage, once a step is done.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        if self.done == 0 || self.total <= self.done {
            return None;
        }
        let per_step = now.duration_since(self.stage_started).as_secs_f64() / self.done as f64;
        Some(Duration::from_secs_f64(
            per_step * (self.total - self.done) as f64,
        ))
    }
}

/// A run that is queued or going.
#[derive(Debug, Clone)]
pub struct Run {
    /// Set to ask the worker to stop.
    pub cancel: Arc<AtomicBool>,
    /// Progress once started.
    pub progress: Option<Progress>,
    /// Metric values reported while training, by name: (step, value).
    pub live: BTreeMap<String, Vec<(f64, f64)>>,
}

/// The status of an experiment, for the runs table.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// No result and not queued.
    NotRun,
    /// Waiting for a worker.
    Queued,
    /// Training; fraction of the current stage.
    Running(f64),
    /// The last run failed.
    Failed,
    /// Has a result of its current configuration.
    Done,
    /// Has a result of an older configuration.
    Stale,
}

impl Status {
    /// Short text for the table.
    pub fn text(&self) -> String {
        match self {
            Status::NotRun => "not run".into(),
            Status::Queued => "queued".into(),
            Status::Running(f) => format!("running {:>3.0}%", f * 100.0),
            Status::Failed => "failed".into(),
            Status::Done => "done".into(),
            Status::Stale => "stale".into(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Status::Running(_) => 0,
            Status::Queued => 1,
            Status::Failed => 2,
            Status::Stale => 3,
            Status::NotRun => 4,
            Status::Done => 5,
        }
    }
}

/// The sweep dialog's steps.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepDialog {
    /// Choosing the hyperparameter from the model's numeric fields.
    Parameter {
        /// The experiment swept.
        base: String,
        /// `(path, current value)` of every numeric hyperparameter.
        choices: Vec<(String, f64)>,
        /// The highlighted one.
        cursor: usize,
    },
    /// Typing the values.
    Values {
        /// The experiment swept.
        base: String,
        /// The hyperparameter.
        parameter: String,
        /// The text typed so far.
        text: String,
    },
}

/// What keys currently do.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Pane navigation and actions.
    Normal,
    /// The help overlay is open.
    Help,
    /// Typing a `:` command.
    Command(String),
    /// Asking whether to quit while runs are going.
    ConfirmQuit,
    /// Setting up a sweep.
    Sweep(SweepDialog),
}

/// How serious a status message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Information.
    Info,
    /// Something failed.
    Error,
}

/// Work the event loop does for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open this config file in `$EDITOR`, then reload it.
    Edit(PathBuf),
    /// Export the current view.
    Export,
}

/// A run the event loop should start on a worker thread.
#[derive(Debug, Clone)]
pub struct RunJob {
    /// The experiment to run (a copy; the session may change meanwhile).
    pub experiment: Experiment,
    /// Its dataset's definition.
    pub dataset: DatasetSpec,
    /// The dataset if already loaded.
    pub prepared: Option<Arc<PreparedDataset>>,
    /// The folder data paths are relative to.
    pub base: PathBuf,
    /// Set when the user cancels.
    pub cancel: Arc<AtomicBool>,
    /// Where the run saves its trained networks (beside the session).
    pub weights: WeightsTarget,
}

/// What a worker reports about a run.
#[derive(Debug, Clone)]
pub enum RunUpdate {
    /// A progress event.
    Progress(Event),
    /// The run finished.
    Finished(Box<ExperimentResult>),
    /// The run failed (or was cancelled), with the reason.
    Failed(String),
}

/// Everything that can happen to the app besides keys.
#[derive(Debug, Clone)]
pub enum AppEvent {
    /// News of an experiment's run.
    Run {
        /// The experiment.
        name: String,
        /// What happened.
        update: RunUpdate,
    },
    /// A dataset finished loading.
    Dataset {
        /// The dataset.
        name: String,
        /// The loaded data or the error.
        outcome: Result<Arc<PreparedDataset>, String>,
    },
    /// Watched files changed on disk.
    FilesChanged(Vec<PathBuf>),
}

/// The workbench.
#[derive(Debug)]
pub struct App {
    /// The session file, made absolute (watchers report absolute paths).
    pub path: PathBuf,
    /// The session file as the user named it, for display.
    pub display_path: String,
    /// The session as last loaded or changed.
    pub session: Session,
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
    /// Runs queued or going, by experiment name.
    pub runs: BTreeMap<String, Run>,
    /// Names waiting for a worker, in order.
    pub queue: VecDeque<String>,
    /// The experiment being run, if any.
    pub active: Option<String>,
    /// Why an experiment's last run failed.
    pub failures: BTreeMap<String, String>,
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
}

impl App {
    /// Opens the session at `path`.
    pub fn open(path: &Path) -> anyhow::Result<App> {
        let session = session::load(path)?;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut app = App::new(path, session);
        app.seen.insert(app.path.clone(), text);
        app.resume_sweeps();
        Ok(app)
    }

    /// An app over `session`, which is saved to `path`.
    pub fn new(path: &Path, session: Session) -> App {
        App {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            display_path: path.display().to_string(),
            session,
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
            runs: BTreeMap::new(),
            queue: VecDeque::new(),
            active: None,
            failures: BTreeMap::new(),
            message: None,
            config_error: None,
            effects: Vec::new(),
            quit: false,
            seen: BTreeMap::new(),
        }
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

    fn info(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Severity::Info));
    }

    fn error(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Severity::Error));
    }

    // ----- derived state -------------------------------------------------

    /// The status of `experiment`.
    pub fn status(&self, experiment: &Experiment) -> Status {
        if let Some(run) = self.runs.get(&experiment.name) {
            return match &run.progress {
                Some(p) => Status::Running(p.fraction()),
                None => Status::Queued,
            };
        }
        if self.failures.contains_key(&experiment.name) {
            return Status::Failed;
        }
        match &experiment.result {
            None => Status::NotRun,
            Some(result) if self.is_stale(experiment, result) => Status::Stale,
            Some(_) => Status::Done,
        }
    }

    fn is_stale(&self, experiment: &Experiment, result: &ExperimentResult) -> bool {
        result
            .provenance
            .config
            .as_ref()
            .is_some_and(|fp| *fp != self.fingerprint(experiment))
    }

    fn fingerprint(&self, experiment: &Experiment) -> String {
        let dataset = self
            .session
            .datasets
            .iter()
            .find(|d| d.name == experiment.dataset);
        fingerprint(experiment, dataset)
    }

    /// Experiment indices in the runs table's order.
    pub fn rows(&self) -> Vec<usize> {
        let experiments = &self.session.experiments;
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
        self.session.experiments.get(index)
    }

    /// Every metric name of every result, headline metrics first (see
    /// [`Session::metric_names`]).
    pub fn metric_names(&self) -> Vec<String> {
        self.session.metric_names()
    }

    /// The loaded dataset of `experiment`, if loaded.
    pub fn prepared(&self, dataset: &str) -> Option<&Arc<PreparedDataset>> {
        match self.datasets.get(dataset) {
            Some(DatasetState::Loaded(data)) => Some(data),
            _ => None,
        }
    }

    /// The metadata columns of the selected experiment's dataset.
    pub fn label_columns(&self) -> Vec<String> {
        self.selected()
            .and_then(|e| self.prepared(&e.dataset))
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
        columns
            .iter()
            .find(|c| c.as_str() == "rna_family")
            .or(columns.first())
            .cloned()
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
                    self.cancel_all();
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
                } else if let KeyCode::Char(c @ '1'..='5') = key.code {
                    let index = c as usize - '1' as usize;
                    self.view.tab = ViewTab::ALL[index];
                }
            }
        }
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
            Action::DimsNext => {
                let dims = self.latent_dims().max(2);
                let (x, _) = self.view.dims;
                let x = (x + 1) % (dims - 1);
                self.view.dims = (x, x + 1);
            }
            Action::ZoomIn => self.view.zoom = (self.view.zoom * 1.5).min(100.0),
            Action::ZoomOut => self.view.zoom = (self.view.zoom / 1.5).max(0.1),
            Action::ZoomFit => self.view.zoom = 1.0,
            Action::ItemNext => self.step_item(1),
            Action::ItemPrev => self.step_item(-1),
            Action::Export => self.effects.push(Effect::Export),
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
        let (cursor, len) = match self.focus {
            Pane::Datasets => (&mut self.dataset_cursor, self.session.datasets.len()),
            _ => (&mut self.cursor, self.session.experiments.len()),
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
        columns.extend(self.metric_names().into_iter().map(SortColumn::Metric));
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

    // ----- runs ---------------------------------------------------------

    /// Queues experiment `name` unless it is queued or going.
    pub fn enqueue(&mut self, name: &str) {
        if self.runs.contains_key(name) {
            self.info(format!("{name} is already queued"));
            return;
        }
        if !self.session.experiments.iter().any(|e| e.name == name) {
            self.error(format!("no experiment `{name}`"));
            return;
        }
        self.failures.remove(name);
        self.runs.insert(
            name.to_string(),
            Run {
                cancel: Arc::new(AtomicBool::new(false)),
                progress: None,
                live: BTreeMap::new(),
            },
        );
        self.queue.push_back(name.to_string());
        self.info(format!("queued {name}"));
    }

    fn run_all(&mut self) {
        let names: Vec<String> = self
            .session
            .experiments
            .iter()
            .filter(|e| {
                matches!(
                    self.status(e),
                    Status::NotRun | Status::Stale | Status::Failed
                )
            })
            .map(|e| e.name.clone())
            .collect();
        if names.is_empty() {
            self.info("every experiment has a current result");
        }
        for name in names {
            self.enqueue(&name);
        }
    }

    /// Requeues the unfinished runs of every sweep (after reopening).
    fn resume_sweeps(&mut self) {
        let pending: Vec<String> = self
            .session
            .sweeps
            .iter()
            .flat_map(|s| s.runs.iter())
            .filter(|name| {
                self.session
                    .experiments
                    .iter()
                    .any(|e| &e.name == *name && e.result.is_none())
            })
            .cloned()
            .collect();
        if !pending.is_empty() {
            for name in &pending {
                self.enqueue(name);
            }
            self.info(format!("resuming sweeps: {} runs queued", pending.len()));
        }
    }

    /// Cancels experiment `name`'s run, queued or going.
    pub fn cancel(&mut self, name: &str) {
        let Some(run) = self.runs.get(name) else {
            self.info(format!("{name} is not running"));
            return;
        };
        run.cancel.store(true, Ordering::Relaxed);
        if self.active.as_deref() != Some(name) {
            self.runs.remove(name);
            self.queue.retain(|n| n != name);
            self.info(format!("removed {name} from the queue"));
        } else {
            self.info(format!("cancelling {name}…"));
        }
    }

    fn cancel_all(&mut self) {
        for run in self.runs.values() {
            run.cancel.store(true, Ordering::Relaxed);
        }
        self.queue.clear();
    }

    /// The next run to start, if no run is going; marks it active.
    pub fn next_job(&mut self) -> Option<RunJob> {
        if self.active.is_some() {
            return None;
        }
        while let Some(name) = self.queue.pop_front() {
            let Some(experiment) = self
                .session
                .experiments
                .iter()
                .find(|e| e.name == name)
                .cloned()
            else {
                self.runs.remove(&name);
                continue;
            };
            let Some(dataset) = self
                .session
                .datasets
                .iter()
                .find(|d| d.name == experiment.dataset)
                .cloned()
            else {
                self.runs.remove(&name);
                continue;
            };
            let cancel = self.runs.get(&name)?.cancel.clone();
            self.active = Some(name);
            return Some(RunJob {
                prepared: self.prepared(&dataset.name).cloned(),
                experiment,
                dataset,
                base: self.base(),
                cancel,
                weights: WeightsTarget::beside(&self.path),
            });
        }
        None
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
        }
    }

    fn run_update(&mut self, name: &str, update: RunUpdate) {
        match update {
            RunUpdate::Progress(event) => {
                let Some(run) = self.runs.get_mut(name) else {
                    return;
                };
                let now = Instant::now();
                let progress = run.progress.get_or_insert_with(|| Progress {
                    stage: "starting".into(),
                    total: 0,
                    done: 0,
                    stage_started: now,
                    started: now,
                    message: None,
                });
                match event {
                    Event::Stage { name, total } => {
                        progress.stage = name;
                        progress.total = total;
                        progress.done = 0;
                        progress.stage_started = now;
                    }
                    Event::Step { done } => progress.done = done,
                    Event::Metric {
                        name, step, value, ..
                    } => {
                        run.live.entry(name).or_default().push((step as f64, value));
                    }
                    Event::Message(text) => progress.message = Some(text),
                }
            }
            RunUpdate::Finished(mut result) => {
                self.finish(name);
                let fingerprint = self
                    .session
                    .experiments
                    .iter()
                    .find(|e| e.name == name)
                    .map(|e| self.fingerprint(e));
                result.provenance.config = fingerprint;
                match self.session.experiments.iter_mut().find(|e| e.name == name) {
                    Some(experiment) => {
                        experiment.result = Some(*result);
                        self.info(format!("{name} finished"));
                        self.save();
                    }
                    None => self.error(format!(
                        "{name} finished but is no longer in the session; its result is dropped"
                    )),
                }
            }
            RunUpdate::Failed(reason) => {
                self.finish(name);
                self.error(format!("{name}: {reason}"));
                self.failures.insert(name.to_string(), reason);
            }
        }
    }

    fn finish(&mut self, name: &str) {
        self.runs.remove(name);
        if self.active.as_deref() == Some(name) {
            self.active = None;
        }
    }

    /// Datasets that need loading; marks them as loading.
    pub fn datasets_to_load(&mut self) -> Vec<DatasetSpec> {
        let wanted: Vec<DatasetSpec> = self
            .session
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

    // ----- saving and reloading -----------------------------------------

    /// Writes the session atomically, remembering the text to ignore the
    /// watcher's report of our own write.
    pub fn save(&mut self) {
        match session::to_ron(&self.session) {
            Ok(text) => {
                self.seen.insert(self.path.clone(), text);
                if let Err(error) = session::save(&self.session, &self.path) {
                    self.error(format!("autosave failed: {error}"));
                }
            }
            Err(error) => self.error(format!("autosave failed: {error}")),
        }
    }

    fn edit(&mut self) {
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
        match session::parse(text, &self.path) {
            Ok(session) => {
                let changed_data: Vec<String> = session
                    .datasets
                    .iter()
                    .filter(|d| !self.session.datasets.contains(d))
                    .map(|d| d.name.clone())
                    .collect();
                for name in changed_data {
                    self.datasets.remove(&name);
                }
                self.session = session;
                self.config_error = None;
                self.info("session file changed on disk: reloaded");
            }
            Err(error) => {
                self.config_error = Some(error.to_string());
                self.error(format!("{error} (keeping the last good session)"));
            }
        }
    }

    fn reload_config(&mut self, path: &Path, text: &str) {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let applied = parse_config(text, path)
            .and_then(|config| config.applied_to(&self.session, &name, path));
        match applied {
            Ok(session) => {
                if session != self.session {
                    self.session = session;
                    self.save();
                    let stale = self
                        .session
                        .experiments
                        .iter()
                        .find(|e| e.name == name)
                        .is_some_and(|e| self.status(e) == Status::Stale);
                    let note = if stale { "; its result is stale" } else { "" };
                    self.info(format!("reloaded {name}{note}"));
                }
                self.config_error = None;
            }
            Err(error) => {
                self.config_error = Some(error.to_string());
                self.error(format!("{error} (keeping the last good config)"));
            }
        }
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
        self.info(format!("exported to {folder}: {}", names.join(", ")));
    }

    /// Reports a failed export.
    pub fn handle_export_error(&mut self, error: &str) {
        self.error(format!("export failed: {error}"));
    }

    /// Reports that files cannot be watched (edits then need a restart).
    pub fn handle_watch_error(&mut self, error: &str) {
        self.error(format!("cannot watch files for changes: {error}"));
    }

    // ----- sweeps and commands --------------------------------------------

    fn open_sweep(&mut self) {
        let Some(experiment) = self.selected() else {
            self.error("no experiment selected");
            return;
        };
        let choices = numeric_parameters(&experiment.model);
        if choices.is_empty() {
            self.error("this model has no numeric hyperparameter to sweep");
            return;
        }
        self.mode = Mode::Sweep(SweepDialog::Parameter {
            base: experiment.name.clone(),
            choices,
            cursor: 0,
        });
    }

    fn sweep_key(&mut self, dialog: SweepDialog, key: KeyEvent) {
        match dialog {
            SweepDialog::Parameter {
                base,
                choices,
                cursor,
            } => {
                let last = choices.len().saturating_sub(1);
                let cursor = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') => {
                        self.mode = Mode::Normal;
                        return;
                    }
                    KeyCode::Enter => {
                        let parameter = choices
                            .get(cursor)
                            .map(|(p, _)| p.clone())
                            .unwrap_or_default();
                        self.mode = Mode::Sweep(SweepDialog::Values {
                            base,
                            parameter,
                            text: String::new(),
                        });
                        return;
                    }
                    KeyCode::Down | KeyCode::Char('j') => (cursor + 1).min(last),
                    KeyCode::Up | KeyCode::Char('k') => cursor.saturating_sub(1),
                    _ => cursor,
                };
                self.mode = Mode::Sweep(SweepDialog::Parameter {
                    base,
                    choices,
                    cursor,
                });
            }
            SweepDialog::Values {
                base,
                parameter,
                text,
            } => match edit_line(text, key) {
                LineEdit::Editing(text) => {
                    self.mode = Mode::Sweep(SweepDialog::Values {
                        base,
                        parameter,
                        text,
                    })
                }
                LineEdit::Cancelled => self.mode = Mode::Normal,
                LineEdit::Done(text) => {
                    self.mode = Mode::Normal;
                    self.launch_sweep(&base, &parameter, &text);
                }
            },
        }
    }

    /// Adds a sweep to the session, saves it and queues its runs.
    pub fn launch_sweep(&mut self, base: &str, parameter: &str, values: &str) {
        let path = self.path.clone();
        match self.session.add_sweep(base, parameter, values, &path) {
            Ok(runs) => {
                self.save();
                let count = runs.len();
                for name in &runs {
                    let done = self
                        .session
                        .experiments
                        .iter()
                        .find(|e| &e.name == name)
                        .is_some_and(|e| self.status(e) == Status::Done);
                    if !done {
                        self.enqueue(name);
                    }
                }
                self.info(format!("sweep of {parameter} on {base}: {count} runs"));
            }
            Err(error) => self.error(format!("sweep: {error}")),
        }
    }

    /// Runs one `:` command line.
    pub fn command(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        let Some(verb) = words.next() else {
            return;
        };
        let rest: Vec<&str> = words.collect();
        match (verb, rest.as_slice()) {
            ("q" | "quit", _) => self.act(Action::Quit),
            ("help", _) => self.mode = Mode::Help,
            ("run", []) => self.act(Action::Run),
            ("run", names) => {
                for name in names {
                    self.enqueue(name);
                }
            }
            ("runall", _) => self.run_all(),
            ("cancel", _) => self.act(Action::Cancel),
            ("edit", _) => self.edit(),
            ("export", _) => self.effects.push(Effect::Export),
            ("sweep", [parameter, values @ ..]) if !values.is_empty() => {
                if let Some(base) = self.selected().map(|e| e.name.clone()) {
                    self.launch_sweep(&base, parameter, &values.join(" "));
                }
            }
            ("sort", [column]) => {
                self.sort.column = match *column {
                    "name" => SortColumn::Name,
                    "status" => SortColumn::Status,
                    "session" => SortColumn::Session,
                    metric => SortColumn::Metric(metric.to_string()),
                };
                self.sort.descending = matches!(self.sort.column, SortColumn::Metric(_));
                self.info(format!("sorted by {}", self.sort_label()));
            }
            ("label", [column]) => {
                if self.label_columns().iter().any(|c| c.as_str() == *column) {
                    self.view.label_column = Some(column.to_string());
                } else {
                    self.error(format!(
                        "no label column `{column}`; the dataset has {}",
                        self.label_columns().join(", ")
                    ));
                }
            }
            ("tab", [name]) => match ViewTab::named(name) {
                Some(tab) => self.view.tab = tab,
                None => self.error(format!("no view tab `{name}`")),
            },
            _ => self.error(format!(
                "unknown command `{line}`; :help lists the commands"
            )),
        }
    }
}

/// The outcome of one key in a one-line text field.
enum LineEdit {
    Editing(String),
    Cancelled,
    Done(String),
}

fn edit_line(mut text: String, key: KeyEvent) -> LineEdit {
    match key.code {
        KeyCode::Esc => LineEdit::Cancelled,
        KeyCode::Enter => LineEdit::Done(text),
        KeyCode::Backspace => {
            if text.pop().is_none() {
                return LineEdit::Cancelled;
            }
            LineEdit::Editing(text)
        }
        KeyCode::Char(c) => {
            text.push(c);
            LineEdit::Editing(text)
        }
        _ => LineEdit::Editing(text),
    }
}
