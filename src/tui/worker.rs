//! Background threads: experiment runs and dataset loading.
//!
//! Workers compute and report; they never touch the app's state or the
//! terminal. Every report is an [`AppEvent`] on the app's channel.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread;

use super::state::{AppEvent, RunJob, RunUpdate};
use crate::progress::{Event, Sink};
use crate::runner::{load_dataset, run_application, run_experiment_saving_weights};
use crate::session::DatasetSpec;

/// A [`Sink`] that forwards a run's events to the app and reads its cancel flag.
pub struct ChannelSink {
    name: String,
    sender: Sender<AppEvent>,
    cancel: Arc<AtomicBool>,
}

impl ChannelSink {
    /// A sink for experiment `name`.
    pub fn new(name: &str, sender: Sender<AppEvent>, cancel: Arc<AtomicBool>) -> Self {
        ChannelSink {
            name: name.to_string(),
            sender,
            cancel,
        }
    }
}

impl Sink for ChannelSink {
    fn event(&mut self, event: Event) {
        // A closed channel means the app is gone; the run then just finishes.
        let _ = self.sender.send(AppEvent::Run {
            name: self.name.clone(),
            update: RunUpdate::Progress(event),
        });
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Runs `job` on a new thread, reporting to `sender`.
pub fn spawn_run(job: RunJob, sender: Sender<AppEvent>) {
    thread::spawn(move || {
        let name = job.job.experiment.name.clone();
        let mut sink = ChannelSink::new(&name, sender.clone(), job.job.cancel.clone());
        let update = run_job(&job, &mut sink);
        let _ = sender.send(AppEvent::Run { name, update });
    });
}

fn run_job(run: &RunJob, sink: &mut ChannelSink) -> RunUpdate {
    let job = &run.job;
    if job.experiment.model.method().model_from().is_some() {
        let outcome = run_application(job, &run.base, &run.weights, sink);
        return finished(job, sink, outcome);
    }
    let loaded;
    let dataset = match &run.prepared {
        Some(data) => data.as_ref(),
        None => {
            sink.event(Event::Stage {
                name: format!("loading dataset {}", job.dataset.name),
                total: 0,
            });
            match load_dataset(&job.dataset, &run.base) {
                Ok(data) => {
                    loaded = data;
                    &loaded
                }
                Err(error) => return RunUpdate::Failed(format!("{:#}", anyhow::Error::new(error))),
            }
        }
    };
    if sink.cancelled() {
        return RunUpdate::Failed("cancelled".into());
    }
    let outcome = run_experiment_saving_weights(&job.experiment, dataset, sink, &run.weights);
    finished(job, sink, outcome)
}

/// The update that ends `job`'s run with `outcome`.
fn finished(
    job: &crate::runner::Job,
    sink: &ChannelSink,
    outcome: Result<crate::session::ExperimentResult, crate::runner::RunError>,
) -> RunUpdate {
    match outcome {
        Ok(result) => RunUpdate::Finished {
            fingerprint: job.fingerprint.clone(),
            result: Box::new(result),
        },
        Err(_) if sink.cancelled() => RunUpdate::Failed("cancelled".into()),
        Err(error) => RunUpdate::Failed(format!("{:#}", anyhow::Error::new(error))),
    }
}

/// Loads `spec` (paths relative to `base`) on a new thread, reporting to `sender`.
pub fn spawn_load(spec: DatasetSpec, base: PathBuf, sender: Sender<AppEvent>) {
    thread::spawn(move || {
        let outcome = load_dataset(&spec, &base)
            .map(Arc::new)
            .map_err(|e| format!("{:#}", anyhow::Error::new(e)));
        let _ = sender.send(AppEvent::Dataset {
            name: spec.name,
            outcome,
        });
    });
}
