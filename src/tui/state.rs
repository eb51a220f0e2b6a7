//! The workbench's state types: panes, view tabs, sorting, statuses, modes,
//! and the events and effects the app exchanges with its event loop.

use std::path::PathBuf;
use std::sync::Arc;

use super::sweep_dialog::SweepDialog;
use crate::progress::Event;
use crate::runner::{Job, PreparedDataset, WeightsTarget};
use crate::session::{ExperimentResult, SaveOutcome};

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

    pub(super) fn step(self, by: isize) -> Pane {
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
    /// Several runs compared: overlaid curves, metrics, metric vs parameter.
    Compare,
}

impl ViewTab {
    /// Every tab in display order.
    pub const ALL: [ViewTab; 6] = [
        ViewTab::Latent,
        ViewTab::Curves,
        ViewTab::Confusion,
        ViewTab::Genes,
        ViewTab::CrossModal,
        ViewTab::Compare,
    ];

    /// The tab's title.
    pub fn title(self) -> &'static str {
        match self {
            ViewTab::Latent => "Latent",
            ViewTab::Curves => "Curves",
            ViewTab::Confusion => "Confusion",
            ViewTab::Genes => "Genes",
            ViewTab::CrossModal => "Cross-modal",
            ViewTab::Compare => "Compare",
        }
    }

    pub(super) fn step(self, by: isize) -> ViewTab {
        let i = Self::ALL.iter().position(|&t| t == self).unwrap_or(0) as isize;
        Self::ALL[(i + by).rem_euclid(Self::ALL.len() as isize) as usize]
    }

    /// The tab whose title starts with `name` (any case).
    pub fn named(name: &str) -> Option<ViewTab> {
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
    /// Which curve the compare view overlays (cycling).
    pub compare_curve: usize,
    /// Which swept parameter the compare view plots against (cycling).
    pub compare_parameter: usize,
    /// Whether an `Apply` experiment's latent view draws the applied cells
    /// over its model's training latent space.
    pub show_applied: bool,
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
            compare_curve: 0,
            compare_parameter: 0,
            show_applied: true,
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
    /// Submitted to the cluster, no result yet.
    OnCluster,
    /// Finished on the cluster, in a shard file not yet merged (`:merge`).
    ClusterDone,
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
            Status::OnCluster => "queued on cluster".into(),
            Status::ClusterDone => "done (cluster)".into(),
        }
    }

    pub(super) fn rank(&self) -> u8 {
        match self {
            Status::Running(_) => 0,
            Status::Queued => 1,
            Status::OnCluster => 2,
            Status::Failed => 3,
            Status::Stale => 4,
            Status::ClusterDone => 5,
            Status::NotRun => 6,
            Status::Done => 7,
        }
    }
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
    /// The experiment, its dataset and cancel flag, from the run queue.
    pub job: Job,
    /// The dataset if already loaded.
    pub prepared: Option<Arc<PreparedDataset>>,
    /// The folder data paths are relative to.
    pub base: PathBuf,
    /// Where the run saves its trained networks (beside the session).
    pub weights: WeightsTarget,
}

/// What a worker reports about a run.
#[derive(Debug, Clone)]
pub enum RunUpdate {
    /// A progress event.
    Progress(Event),
    /// The run finished.
    Finished {
        /// The fingerprint of the configuration it ran with.
        fingerprint: String,
        /// What it produced.
        result: Box<ExperimentResult>,
    },
    /// The run failed (or was cancelled), with the reason.
    Failed(String),
}

/// Everything that can happen to the app besides keys.
#[derive(Debug)]
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
    /// The writer thread saved the session (or failed to).
    Saved(SaveOutcome),
}
