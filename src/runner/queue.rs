//! The run queue both front ends use: experiments waiting, the one going,
//! its progress and live metrics, cancelling, and why runs failed.
//!
//! The queue only keeps the books; running a [`Job`] is the front end's
//! business (the workbench on a worker thread, batch mode in its own loop),
//! and so is storing the result, through
//! [`crate::session::SessionStore::record_result`] with the job's
//! fingerprint. One run goes at a time.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::apply::SourceModel;
use crate::progress::Event;
use crate::session::{DatasetSpec, Experiment, Session, fingerprint_in};

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
    fn new(now: Instant) -> Progress {
        Progress {
            stage: "starting".into(),
            total: 0,
            done: 0,
            stage_started: now,
            started: now,
            message: None,
        }
    }

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
        stage_eta(
            now.duration_since(self.stage_started),
            self.done,
            self.total,
        )
    }
}

/// Time left in a stage that took `elapsed` for `done` of its `total` steps,
/// at the mean pace so far (`None` before the first step or after the last).
pub fn stage_eta(elapsed: Duration, done: u64, total: u64) -> Option<Duration> {
    if done == 0 || total <= done {
        return None;
    }
    let per_step = elapsed.as_secs_f64() / done as f64;
    Some(Duration::from_secs_f64(per_step * (total - done) as f64))
}

/// A run that is queued or going.
#[derive(Debug, Clone)]
pub struct Run {
    /// Set to ask the run to stop.
    pub cancel: Arc<AtomicBool>,
    /// Progress once started.
    pub progress: Option<Progress>,
    /// Metric values reported while training, by name: (step, value).
    pub live: BTreeMap<String, Vec<(f64, f64)>>,
}

/// Everything needed to run one experiment, taken from the session when the
/// run starts (the session may change while it runs).
#[derive(Debug, Clone)]
pub struct Job {
    /// The experiment as it runs.
    pub experiment: Experiment,
    /// Its dataset's definition.
    pub dataset: DatasetSpec,
    /// [`fingerprint`] of the configuration it runs with, for the result's
    /// provenance.
    pub fingerprint: String,
    /// Set when the user cancels.
    pub cancel: Arc<AtomicBool>,
    /// An `Apply` experiment's `model_from` experiment as it is in the
    /// session when the run starts; `None` for other experiments.
    pub source: Option<SourceModel>,
}

/// Why an experiment was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// It is queued or going already.
    #[error("{0} is already queued")]
    AlreadyQueued(String),
    /// The session has no experiment of that name.
    #[error("no experiment `{0}`")]
    UnknownExperiment(String),
}

/// What cancelling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting and is gone from the queue.
    Dropped,
    /// It is running and was asked to stop.
    Stopping,
    /// It was neither queued nor running.
    NotQueued,
}

/// Experiments waiting to run, the one running, and the last failures.
#[derive(Debug, Default)]
pub struct RunQueue {
    runs: BTreeMap<String, Run>,
    waiting: VecDeque<String>,
    active: Option<String>,
    failures: BTreeMap<String, String>,
}

impl RunQueue {
    /// Queues experiment `name` of `session`.
    pub fn enqueue(&mut self, session: &Session, name: &str) -> Result<(), QueueError> {
        if self.runs.contains_key(name) {
            return Err(QueueError::AlreadyQueued(name.to_string()));
        }
        if !session.experiments.iter().any(|e| e.name == name) {
            return Err(QueueError::UnknownExperiment(name.to_string()));
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
        self.waiting.push_back(name.to_string());
        Ok(())
    }

    /// Cancels experiment `name`'s run, waiting or going.
    pub fn cancel(&mut self, name: &str) -> Cancelled {
        let Some(run) = self.runs.get(name) else {
            return Cancelled::NotQueued;
        };
        run.cancel.store(true, Ordering::Relaxed);
        if self.active.as_deref() == Some(name) {
            return Cancelled::Stopping;
        }
        self.runs.remove(name);
        self.waiting.retain(|n| n != name);
        Cancelled::Dropped
    }

    /// Asks every run to stop and empties the queue.
    pub fn cancel_all(&mut self) {
        for run in self.runs.values() {
            run.cancel.store(true, Ordering::Relaxed);
        }
        self.waiting.clear();
    }

    /// The next run to start, if none is going; it becomes the active one.
    /// Experiments (or datasets) no longer in `session` are skipped.
    pub fn next(&mut self, session: &Session) -> Option<Job> {
        if self.active.is_some() {
            return None;
        }
        while let Some(name) = self.waiting.pop_front() {
            let experiment = session.experiments.iter().find(|e| e.name == name);
            let dataset =
                experiment.and_then(|e| session.datasets.iter().find(|d| d.name == e.dataset));
            let (Some(experiment), Some(dataset), Some(run)) =
                (experiment, dataset, self.runs.get(&name))
            else {
                self.runs.remove(&name);
                continue;
            };
            let job = Job {
                fingerprint: fingerprint_in(session, experiment),
                experiment: experiment.clone(),
                dataset: dataset.clone(),
                cancel: run.cancel.clone(),
                source: source_model(session, experiment),
            };
            self.active = Some(name);
            return Some(job);
        }
        None
    }

    /// Books a progress event of `name`'s run.
    pub fn event(&mut self, name: &str, event: Event) {
        let Some(run) = self.runs.get_mut(name) else {
            return;
        };
        let now = Instant::now();
        let progress = run.progress.get_or_insert_with(|| Progress::new(now));
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

    /// `name`'s run ended: `Err` keeps the reason it failed.
    pub fn finish(&mut self, name: &str, outcome: Result<(), String>) {
        self.runs.remove(name);
        if self.active.as_deref() == Some(name) {
            self.active = None;
        }
        if let Err(reason) = outcome {
            self.failures.insert(name.to_string(), reason);
        }
    }

    /// `name`'s run, if queued or going.
    pub fn run(&self, name: &str) -> Option<&Run> {
        self.runs.get(name)
    }

    /// The experiment running now.
    pub fn active(&self) -> Option<&str> {
        self.active.as_deref()
    }

    /// Why `name`'s last run failed, if it did.
    pub fn failure(&self, name: &str) -> Option<&str> {
        self.failures.get(name).map(String::as_str)
    }

    /// The experiments waiting, in order.
    pub fn waiting(&self) -> impl Iterator<Item = &str> {
        self.waiting.iter().map(String::as_str)
    }

    /// How many runs are queued or going.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// True when nothing is queued or going.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

/// The experiment `experiment` applies the model of, with its dataset.
fn source_model(session: &Session, experiment: &Experiment) -> Option<SourceModel> {
    let name = experiment.model.method().model_from()?;
    let from = session.experiments.iter().find(|e| e.name == name)?;
    Some(SourceModel {
        experiment: from.clone(),
        dataset: session
            .datasets
            .iter()
            .find(|d| d.name == from.dataset)
            .cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{fingerprint, parse};

    fn session() -> Session {
        let text = include_str!("../../sessions/demo.ron");
        parse(text, std::path::Path::new("demo.ron")).unwrap()
    }

    #[test]
    fn jobs_come_one_at_a_time_in_order_with_their_fingerprint() {
        let session = session();
        let mut queue = RunQueue::default();
        queue.enqueue(&session, "sbnn").unwrap();
        queue.enqueue(&session, "srrr_rank2").unwrap();
        assert_eq!(
            queue.enqueue(&session, "sbnn"),
            Err(QueueError::AlreadyQueued("sbnn".into()))
        );
        assert_eq!(
            queue.enqueue(&session, "nope"),
            Err(QueueError::UnknownExperiment("nope".into()))
        );
        let job = queue.next(&session).unwrap();
        assert_eq!(job.experiment.name, "sbnn");
        assert_eq!(
            job.fingerprint,
            fingerprint(&session.experiments[2], Some(&session.datasets[0]))
        );
        assert!(queue.next(&session).is_none(), "one run at a time");
        queue.finish("sbnn", Err("diverged".into()));
        assert_eq!(queue.failure("sbnn"), Some("diverged"));
        assert_eq!(queue.next(&session).unwrap().experiment.name, "srrr_rank2");
        assert_eq!(queue.active(), Some("srrr_rank2"));
    }

    #[test]
    fn cancel_drops_waiting_runs_and_flags_the_running_one() {
        let session = session();
        let mut queue = RunQueue::default();
        queue.enqueue(&session, "sbnn").unwrap();
        queue.enqueue(&session, "srrr_rank2").unwrap();
        let job = queue.next(&session).unwrap();
        assert_eq!(queue.cancel("srrr_rank2"), Cancelled::Dropped);
        assert_eq!(queue.cancel("sbnn"), Cancelled::Stopping);
        assert!(job.cancel.load(Ordering::Relaxed));
        assert_eq!(queue.cancel("srrr_full_rank"), Cancelled::NotQueued);
        assert_eq!(queue.waiting().count(), 0);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn events_drive_progress_and_live_metrics() {
        let session = session();
        let mut queue = RunQueue::default();
        queue.enqueue(&session, "sbnn").unwrap();
        queue.next(&session).unwrap();
        queue.event(
            "sbnn",
            Event::Stage {
                name: "fold 1/5".into(),
                total: 4,
            },
        );
        queue.event("sbnn", Event::Step { done: 1 });
        queue.event(
            "sbnn",
            Event::Metric {
                fold: Some(0),
                name: "loss".into(),
                step: 3,
                value: 0.5,
            },
        );
        let run = queue.run("sbnn").unwrap();
        let progress = run.progress.as_ref().unwrap();
        assert_eq!(
            (progress.stage.as_str(), progress.fraction()),
            ("fold 1/5", 0.25)
        );
        assert_eq!(run.live["loss"], vec![(3.0, 0.5)]);
    }
}
