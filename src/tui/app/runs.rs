//! The app's side of the run queue: what to queue, starting jobs, and
//! booking what workers report. The books themselves are the library's
//! [`crate::runner::RunQueue`].

use super::App;
use crate::runner::{Cancelled, WeightsTarget};
use crate::tui::state::{RunJob, RunUpdate, Status};

impl App {
    /// Queues experiment `name` unless it is queued or going.
    pub fn enqueue(&mut self, name: &str) {
        match self.runs.enqueue(self.store.session(), name) {
            Ok(()) => self.info(format!("queued {name}")),
            Err(error) => self.error(error.to_string()),
        }
    }

    pub(super) fn run_all(&mut self) {
        let names: Vec<String> = self
            .session()
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
    pub(super) fn resume_sweeps(&mut self) {
        let session = self.session();
        let pending: Vec<String> = session
            .sweeps
            .iter()
            .flat_map(|s| s.runs.iter())
            .filter(|name| {
                session
                    .experiments
                    .iter()
                    .any(|e| &e.name == *name && e.result.is_none())
                    && !self.cluster.waiting.contains(name)
                    && !self.cluster.done.contains(name)
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
        match self.runs.cancel(name) {
            Cancelled::Dropped => self.info(format!("removed {name} from the queue")),
            Cancelled::Stopping => self.info(format!("cancelling {name}…")),
            Cancelled::NotQueued => self.info(format!("{name} is not running")),
        }
    }

    /// The next run to start, if no run is going.
    pub fn next_job(&mut self) -> Option<RunJob> {
        let job = self.runs.next(self.store.session())?;
        Some(RunJob {
            prepared: self.prepared(&job.dataset.name).cloned(),
            job,
            base: self.base(),
            weights: WeightsTarget::beside(&self.path),
        })
    }

    pub(super) fn run_update(&mut self, name: &str, update: RunUpdate) {
        match update {
            RunUpdate::Progress(event) => self.runs.event(name, event),
            RunUpdate::Finished {
                fingerprint,
                result,
            } => {
                self.runs.finish(name, Ok(()));
                match self.store.add_result(name, fingerprint, *result) {
                    Ok(()) => {
                        self.info(format!("{name} finished"));
                        self.save();
                    }
                    Err(error) => self.save_failed(&error),
                }
            }
            RunUpdate::Failed(reason) => {
                self.error(format!("{name}: {reason}"));
                self.runs.finish(name, Err(reason));
            }
        }
    }
}
