//! One writer thread for session saves, so that a program with a user
//! interface never waits for the disk.
//!
//! [`BackgroundSaver::save`] hands it a [`SaveJob`]; the thread runs the
//! jobs one after another, in order, and reports each [`SaveOutcome`]
//! through the callback it was started with. Coalescing (one job in flight,
//! the next one taken from the latest state) is the caller's part: see
//! `tui::app`'s saving.

use std::sync::mpsc::{self, Sender};
use std::thread::{self, JoinHandle};

use super::{SaveJob, SaveOutcome};

/// The saving thread and the way to it.
#[derive(Debug)]
pub struct BackgroundSaver {
    jobs: Sender<SaveJob>,
    thread: JoinHandle<()>,
}

impl BackgroundSaver {
    /// Starts the thread; `report` receives each finished job's outcome.
    pub fn start(mut report: impl FnMut(SaveOutcome) + Send + 'static) -> BackgroundSaver {
        let (jobs, queue) = mpsc::channel::<SaveJob>();
        let thread = thread::spawn(move || {
            for job in queue {
                report(job.run());
            }
        });
        BackgroundSaver { jobs, thread }
    }

    /// Queues `job` behind the one running, if any.
    pub fn save(&self, job: SaveJob) {
        // The thread ends only when this saver is finished: the send succeeds.
        let _ = self.jobs.send(job);
    }

    /// Waits until every queued job is written and reported, and stops the thread.
    pub fn finish(self) {
        drop(self.jobs);
        // A panic on the thread has been printed already; its save is lost
        // but the file is whole (saves replace it atomically).
        let _ = self.thread.join();
    }
}
