//! What the `:` commands and the sweep dialog do to the app. Parsing lives
//! in [`crate::tui::command`], the dialog's keys in [`crate::tui::sweep_dialog`].

use ratatui::crossterm::event::KeyEvent;

use super::App;
use crate::session::{Change, numeric_parameters};
use crate::tui::command::{self, Command};
use crate::tui::keys::Action;
use crate::tui::state::{Effect, Mode, SortColumn, Status, ViewTab};
use crate::tui::sweep_dialog::{DialogStep, SweepDialog};

impl App {
    pub(super) fn open_sweep(&mut self) {
        let Some(experiment) = self.selected() else {
            self.error("no experiment selected");
            return;
        };
        let choices = numeric_parameters(&experiment.model);
        if choices.is_empty() {
            self.error("this model has no numeric hyperparameter to sweep");
            return;
        }
        self.mode = Mode::Sweep(SweepDialog::new(experiment.name.clone(), choices));
    }

    pub(super) fn sweep_key(&mut self, dialog: SweepDialog, key: KeyEvent) {
        self.mode = Mode::Normal;
        match dialog.key(key) {
            DialogStep::Open(dialog) => self.mode = Mode::Sweep(dialog),
            DialogStep::Cancelled => {}
            DialogStep::Launch {
                base,
                parameter,
                values,
            } => self.launch_sweep(&base, &format!("{parameter} {values}")),
        }
    }

    /// Adds a sweep of `base` (`spec` as [`crate::session::SweepSpec::parse`]
    /// reads it) to the session, saves it and queues its runs.
    pub fn launch_sweep(&mut self, base: &str, spec: &str) {
        let mut updated = self.session().clone();
        let runs = match updated.add_sweep(base, spec, &self.path) {
            Ok(runs) => runs,
            Err(error) => return self.error(format!("sweep: {error}")),
        };
        let new_experiments = updated
            .experiments
            .iter()
            .filter(|e| !self.session().experiments.iter().any(|o| o.name == e.name))
            .map(|e| Change::Experiment(Box::new(e.clone())));
        let changes: Vec<Change> = new_experiments
            .chain(updated.sweeps.last().cloned().map(Change::Sweep))
            .collect();
        for change in changes {
            if let Err(error) = self.store.change(change) {
                return self.error(format!("sweep: {error}"));
            }
        }
        self.save();
        for name in &runs {
            let done = self
                .session()
                .experiments
                .iter()
                .find(|e| &e.name == name)
                .is_some_and(|e| self.status(e) == Status::Done);
            if !done {
                self.enqueue(name);
            }
        }
        let count = runs.len();
        self.info(format!("sweep {} on {base}: {count} runs", spec.trim()));
    }

    /// Runs one `:` command line.
    pub fn command(&mut self, line: &str) {
        let command = match command::parse(line) {
            Ok(Some(command)) => command,
            Ok(None) => return,
            Err(message) => return self.error(message),
        };
        match command {
            Command::Quit => self.act(Action::Quit),
            Command::Help => self.mode = Mode::Help,
            Command::Run(names) if names.is_empty() => self.act(Action::Run),
            Command::Run(names) => {
                for name in names {
                    self.enqueue(&name);
                }
            }
            Command::RunAll => self.run_all(),
            Command::Cancel => self.act(Action::Cancel),
            Command::Edit => self.edit(),
            Command::Export => self.effects.push(Effect::Export),
            Command::Sweep(spec) => {
                if let Some(base) = self.selected().map(|e| e.name.clone()) {
                    self.launch_sweep(&base, &spec);
                }
            }
            Command::Sort(column) => {
                self.sort.column = match column.as_str() {
                    "name" => SortColumn::Name,
                    "status" => SortColumn::Status,
                    "session" => SortColumn::Session,
                    _ => SortColumn::Metric(column),
                };
                self.sort.descending = matches!(self.sort.column, SortColumn::Metric(_));
                self.info(format!("sorted by {}", self.sort_label()));
            }
            Command::Label(column) => {
                if self.label_columns().contains(&column) {
                    self.view.label_column = Some(column);
                } else {
                    self.error(format!(
                        "no label column `{column}`; the dataset has {}",
                        self.label_columns().join(", ")
                    ));
                }
            }
            Command::Slurm(shards) => self.launch_cluster(shards),
            Command::Merge => self.merge_cluster(),
            Command::Tab(name) => match ViewTab::named(&name) {
                Some(tab) => self.view.tab = tab,
                None => self.error(format!("no view tab `{name}`")),
            },
        }
    }
}
