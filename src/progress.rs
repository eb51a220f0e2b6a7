//! How long-running work reports progress.
//!
//! Every model fit and every experiment reports through one [`Sink`]. The
//! batch front end drives a progress bar with it, the terminal UI forwards the
//! events over a channel, and tests record them. Workers never draw.

/// One thing that happened during a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A named stage began.
    Stage {
        /// What the stage does, for display.
        name: String,
        /// How many steps it will report.
        total: u64,
    },
    /// Progress within the current stage.
    Step {
        /// Steps finished so far.
        done: u64,
    },
    /// A scalar measured at a step of the current stage (loss, R², ...).
    Metric {
        /// The cross-validation fold (0-based) whose model measured it; `None`
        /// for a model fitted on all cells or a method without folds.
        fold: Option<usize>,
        /// Name of the metric (`train_r2`, `loss`, ...).
        name: String,
        /// The step it was measured at.
        step: u64,
        /// Its value.
        value: f64,
    },
    /// A line of text worth showing to the user.
    Message(String),
}

/// Receives the events of a run.
pub trait Sink {
    /// Records one event.
    fn event(&mut self, event: Event);

    /// True once the user asked the run to stop; workers check it between steps.
    fn cancelled(&self) -> bool {
        false
    }
}

/// A sink that ignores everything: for callers that do not watch progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Sink for Quiet {
    fn event(&mut self, _event: Event) {}
}

/// A sink that keeps every event, for tests and for replaying a run's curves.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// The events received, in order.
    pub events: Vec<Event>,
}

impl Sink for Recorder {
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
}
