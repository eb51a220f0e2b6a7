//! What the panes show that is computed from the whole session: each
//! experiment's configuration fingerprint (for `stale`), the seed summaries
//! and metric columns of the runs table, and the compare view. Kept in the
//! app state and recomputed only when the session, or what the compare view
//! compares, changes, so drawing a frame computes nothing that grows with
//! the session.

use std::collections::BTreeMap;

use super::App;
use crate::figures::compare::{Comparison, SeedSummary, compare, main_metric, seed_summaries};
use crate::session::{Session, fingerprint_in};

/// Views of the session cached for drawing.
#[derive(Debug, Default)]
pub struct Derived {
    /// The store generation these were computed from.
    generation: Option<u64>,
    /// Each experiment's configuration fingerprint, by name.
    pub fingerprints: BTreeMap<String, String>,
    /// Mean ± SD over seeds of each replicated run's main metric, by name.
    pub seeds: BTreeMap<String, SeedSummary>,
    /// Every metric name of every result, headline metrics first.
    pub metric_names: Vec<String>,
    /// The runs table's metric columns: the main metric of each model kind
    /// with a result first (so a session mixing models shows each one's
    /// score however narrow the table), then the other metric names.
    pub table_metrics: Vec<String>,
    /// What `comparison` compares: generation, runs, curve and parameter.
    compared: Option<(u64, Vec<String>, usize, usize)>,
    /// The compare view's runs, side by side.
    pub comparison: Option<Comparison>,
}

impl Derived {
    fn of_session(&mut self, session: &Session) {
        self.fingerprints = session
            .experiments
            .iter()
            .map(|experiment| (experiment.name.clone(), fingerprint_in(session, experiment)))
            .collect();
        self.seeds = seed_summaries(session);
        self.metric_names = session.metric_names();
        let mut table: Vec<String> = Vec::new();
        for experiment in session.experiments.iter().filter(|e| e.result.is_some()) {
            let main = main_metric(experiment);
            if self.metric_names.iter().any(|m| m == main) && !table.iter().any(|m| m == main) {
                table.push(main.to_string());
            }
        }
        let rest: Vec<String> = self
            .metric_names
            .iter()
            .filter(|m| !table.contains(m))
            .cloned()
            .collect();
        table.extend(rest);
        self.table_metrics = table;
    }
}

impl App {
    /// Brings [`Derived`] up to date with the session and the compare
    /// view's selection; cheap when neither changed.
    pub fn sync(&mut self) {
        let generation = self.store.generation();
        if self.derived.generation != Some(generation) {
            let mut derived = std::mem::take(&mut self.derived);
            derived.of_session(self.session());
            derived.generation = Some(generation);
            derived.compared = None;
            self.derived = derived;
        }
        let key = (
            generation,
            self.compared(),
            self.view.compare_curve,
            self.view.compare_parameter,
        );
        if self.derived.compared.as_ref() != Some(&key) {
            self.derived.comparison = Some(compare(self.session(), &key.1, key.2, key.3));
            self.derived.compared = Some(key);
        }
    }
}
