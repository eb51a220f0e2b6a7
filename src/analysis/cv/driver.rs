//! The one fold driver: runs the fits of a cross-validation (every fold, and
//! optionally the model on all cells) as independent jobs on up to
//! `available_parallelism` scoped threads, forwards their progress to the
//! caller's [`Sink`] on the calling thread and relays cancellation.
//!
//! A job gets a [`Sink`] of its own: its [`Event::Step`]s count towards the
//! run's one stage, its [`Event::Metric`]s arrive tagged with its fold, its
//! messages pass through, and its `cancelled()` turns true once the user
//! cancels or another job fails. Results come back in job order, so a model
//! whose jobs depend only on their index gives the same result on any number
//! of threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use crate::progress::{Event, Sink};

/// One fit of a cross-validation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// The model trained without the fold's test cells (fold index, from 0).
    Fold(usize),
    /// The model trained on all cells.
    AllCells,
}

impl Fit {
    /// The fits of `folds` folds, then the model on all cells if `all_cells`.
    pub fn plan(folds: usize, all_cells: bool) -> Vec<Fit> {
        (0..folds)
            .map(Fit::Fold)
            .chain(all_cells.then_some(Fit::AllCells))
            .collect()
    }

    /// The fold, for tagging live metrics; `None` for the model on all cells.
    pub fn fold(self) -> Option<usize> {
        match self {
            Fit::Fold(f) => Some(f),
            Fit::AllCells => None,
        }
    }
}

/// Why the fits did not all finish.
#[derive(Debug)]
pub enum FitsError<E> {
    /// The user cancelled.
    Cancelled,
    /// A job failed (the first to fail; the others were stopped because of it).
    Failed(E),
    /// A worker thread panicked.
    WorkerPanicked,
}

impl<E> FitsError<E> {
    /// The model's own error: `cancelled` or `panicked` for those cases.
    pub fn into_model_error(self, cancelled: E, panicked: E) -> E {
        match self {
            FitsError::Cancelled => cancelled,
            FitsError::Failed(error) => error,
            FitsError::WorkerPanicked => panicked,
        }
    }
}

/// What the jobs share.
struct Shared<E> {
    stop: AtomicBool,
    /// The error of the job that failed first, while nothing was stopped yet.
    first_error: Mutex<Option<E>>,
}

impl<E> Shared<E> {
    fn fail(&self, error: E) {
        if !self.stop.swap(true, Ordering::SeqCst)
            && let Ok(mut slot) = self.first_error.lock()
        {
            *slot = Some(error);
        }
    }
}

/// A job's view of the run: events go to the calling thread, tagged with the job.
struct JobSink<'a, E> {
    job: usize,
    fit: Fit,
    sender: mpsc::Sender<(usize, Event)>,
    shared: &'a Shared<E>,
}

impl<E> Sink for JobSink<'_, E> {
    fn event(&mut self, event: Event) {
        // The receiver only disappears once the run is over.
        let _ = self.sender.send((self.job, tag(event, self.fit)));
    }

    fn cancelled(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }
}

/// `event` as the caller sees it: metrics carry the job's fold.
fn tag(event: Event, fit: Fit) -> Event {
    match event {
        Event::Metric {
            name, step, value, ..
        } => Event::Metric {
            fold: fit.fold(),
            name,
            step,
            value,
        },
        other => other,
    }
}

/// Adds up the jobs' step counts into the run's one stage.
struct StepTally {
    done: Vec<u64>,
}

impl StepTally {
    /// Reports the run's one stage to `sink` and counts from zero.
    fn start(fits: &[Fit], stage: &str, total: u64, sink: &mut dyn Sink) -> Self {
        sink.event(Event::Stage {
            name: stage.to_string(),
            total,
        });
        StepTally {
            done: vec![0; fits.len()],
        }
    }

    /// Forwards a job's event to `sink`; a job's own stages are dropped.
    fn forward(&mut self, job: usize, event: Event, sink: &mut dyn Sink) {
        match event {
            Event::Stage { .. } => {}
            Event::Step { done } => {
                if let Some(slot) = self.done.get_mut(job) {
                    *slot = done;
                }
                sink.event(Event::Step {
                    done: self.done.iter().sum(),
                });
            }
            other => sink.event(other),
        }
    }
}

/// Runs `job` for every fit of `fits` in parallel, reporting one stage named
/// `stage` with `total` steps to `sink`; returns the results in the order of
/// `fits`. A job should check its sink's `cancelled()` between steps.
pub fn run_fits<T, E, F>(
    fits: &[Fit],
    stage: &str,
    total: u64,
    sink: &mut dyn Sink,
    job: F,
) -> Result<Vec<T>, FitsError<E>>
where
    T: Send,
    E: Send,
    F: Fn(Fit, &mut dyn Sink) -> Result<T, E> + Sync,
{
    let mut tally = StepTally::start(fits, stage, total, sink);
    let shared = Shared {
        stop: AtomicBool::new(false),
        first_error: Mutex::new(None),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, fits.len().max(1));
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<(usize, Event)>();
    let joined = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let sender = sender.clone();
                let (shared, next, job) = (&shared, &next, &job);
                scope.spawn(move || {
                    let mut finished = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&fit) = fits.get(index) else { break };
                        if shared.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let mut job_sink = JobSink {
                            job: index,
                            fit,
                            sender: sender.clone(),
                            shared,
                        };
                        match job(fit, &mut job_sink) {
                            Ok(value) => finished.push((index, value)),
                            Err(error) => shared.fail(error),
                        }
                    }
                    finished
                })
            })
            .collect();
        drop(sender);
        loop {
            match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok((index, event)) => tally.forward(index, event, sink),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if sink.cancelled() {
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
        handles
            .into_iter()
            .map(|handle| handle.join())
            .collect::<Result<Vec<_>, _>>()
    });
    if sink.cancelled() {
        return Err(FitsError::Cancelled);
    }
    if let Some(error) = shared.first_error.into_inner().ok().flatten() {
        return Err(FitsError::Failed(error));
    }
    let Ok(per_thread) = joined else {
        return Err(FitsError::WorkerPanicked);
    };
    let mut slots: Vec<Option<T>> = (0..fits.len()).map(|_| None).collect();
    for (index, value) in per_thread.into_iter().flatten() {
        slots[index] = Some(value);
    }
    slots
        .into_iter()
        .map(|slot| slot.ok_or(FitsError::Cancelled))
        .collect()
}

/// [`run_fits`] for jobs whose results cannot cross threads (models on a
/// CUDA device): one job after another on the calling thread, with the same
/// progress, tagging and cancellation.
pub fn run_fits_in_turn<T, E, F>(
    fits: &[Fit],
    stage: &str,
    total: u64,
    sink: &mut dyn Sink,
    job: F,
) -> Result<Vec<T>, FitsError<E>>
where
    F: Fn(Fit, &mut dyn Sink) -> Result<T, E>,
{
    let mut tally = StepTally::start(fits, stage, total, sink);
    let mut results = Vec::with_capacity(fits.len());
    for (index, &fit) in fits.iter().enumerate() {
        let mut relay = InTurn {
            index,
            fit,
            tally: &mut tally,
            sink: &mut *sink,
        };
        let outcome = job(fit, &mut relay);
        if sink.cancelled() {
            return Err(FitsError::Cancelled);
        }
        results.push(outcome.map_err(FitsError::Failed)?);
    }
    Ok(results)
}

/// The sink of a job run on the calling thread.
struct InTurn<'a> {
    index: usize,
    fit: Fit,
    tally: &'a mut StepTally,
    sink: &'a mut dyn Sink,
}

impl Sink for InTurn<'_> {
    fn event(&mut self, event: Event) {
        self.tally
            .forward(self.index, tag(event, self.fit), &mut *self.sink);
    }

    fn cancelled(&self) -> bool {
        self.sink.cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Recorder;

    /// A job that reports two steps and a metric, and fails on fold 2 if asked.
    fn job(fail_on: Option<usize>) -> impl Fn(Fit, &mut dyn Sink) -> Result<usize, String> + Sync {
        move |fit, sink| {
            for step in 1..=2 {
                sink.event(Event::Step { done: step });
            }
            sink.event(Event::Metric {
                fold: None,
                name: "loss".into(),
                step: 1,
                value: 0.5,
            });
            match fit {
                Fit::Fold(f) if Some(f) == fail_on => Err(format!("fold {f} broke")),
                Fit::Fold(f) => Ok(f * 10),
                Fit::AllCells => Ok(99),
            }
        }
    }

    #[test]
    fn results_come_back_in_order_with_steps_added_up_and_metrics_tagged() {
        let fits = Fit::plan(5, true);
        for parallel in [true, false] {
            let mut sink = Recorder::default();
            let results = if parallel {
                run_fits(&fits, "cv", 12, &mut sink, job(None)).unwrap()
            } else {
                run_fits_in_turn(&fits, "cv", 12, &mut sink, job(None)).unwrap()
            };
            assert_eq!(results, vec![0, 10, 20, 30, 40, 99]);
            let steps: Vec<u64> = sink
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Step { done } => Some(*done),
                    _ => None,
                })
                .collect();
            assert_eq!(steps.iter().max(), Some(&12), "6 jobs x 2 steps");
            let mut folds: Vec<Option<usize>> = sink
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Metric { fold, .. } => Some(*fold),
                    _ => None,
                })
                .collect();
            folds.sort();
            assert_eq!(
                folds,
                vec![None, Some(0), Some(1), Some(2), Some(3), Some(4)]
            );
            assert_eq!(
                sink.events.first(),
                Some(&Event::Stage {
                    name: "cv".into(),
                    total: 12
                })
            );
        }
    }

    #[test]
    fn a_failing_fold_reports_its_own_error() {
        let fits = Fit::plan(4, false);
        let mut sink = Recorder::default();
        match run_fits(&fits, "cv", 8, &mut sink, job(Some(2))) {
            Err(FitsError::Failed(message)) => assert_eq!(message, "fold 2 broke"),
            other => panic!("expected the fold's error, got {other:?}"),
        }
        match run_fits_in_turn(&fits, "cv", 8, &mut sink, job(Some(2))) {
            Err(FitsError::Failed(message)) => assert_eq!(message, "fold 2 broke"),
            other => panic!("expected the fold's error, got {other:?}"),
        }
    }

    /// Cancelled from the start: jobs see it and stop, the run says so.
    struct Cancelled;

    impl Sink for Cancelled {
        fn event(&mut self, _event: Event) {}

        fn cancelled(&self) -> bool {
            true
        }
    }

    #[test]
    fn cancelling_stops_the_run() {
        let fits = Fit::plan(3, true);
        let outcome = run_fits(&fits, "cv", 8, &mut Cancelled, |_, sink: &mut dyn Sink| {
            // Waits for the relay to pass the cancellation on.
            while !sink.cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err::<(), _>("stopped")
        });
        assert!(matches!(outcome, Err(FitsError::Cancelled)), "{outcome:?}");
    }
}
