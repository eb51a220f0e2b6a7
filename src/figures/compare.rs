//! Comparing runs: the same curve of several runs overlaid, their headline
//! metrics side by side with the best marked, a metric against a swept
//! parameter (log axis for log-spread sweeps), and the mean ± SD of a
//! metric over runs that differ only in their seed. Plain data, shared by
//! the workbench's compare view and the exports.

use std::collections::BTreeMap;

use crate::session::{Experiment, Session, Sweep, replicate_key};

/// Mean ± SD of a metric over the seeds of one configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedSummary {
    /// Mean over the seeds with a result.
    pub mean: f64,
    /// Sample standard deviation (0 for one seed).
    pub sd: f64,
    /// How many seeds have a result.
    pub n: usize,
}

/// The first headline metric of `experiment`'s model (e.g. `cv_r2_mean`).
pub fn main_metric(experiment: &Experiment) -> &'static str {
    experiment
        .model
        .method()
        .headline()
        .first()
        .map_or("seconds", |h| h.metric)
}

/// True when a larger value of `metric` is worse (losses, errors, time).
pub fn lower_is_better(metric: &str) -> bool {
    ["loss", "error", "err_", "recon", "seconds", "mse", "_sd"]
        .iter()
        .any(|part| metric.contains(part))
}

/// For every experiment that has replicates over seeds (a sweep run whose
/// name has a `seed=` part), the mean ± SD of its main metric over the
/// replicates with a result, keyed by experiment name.
pub fn seed_summaries(session: &Session) -> BTreeMap<String, SeedSummary> {
    let mut groups: BTreeMap<String, Vec<&Experiment>> = BTreeMap::new();
    for experiment in &session.experiments {
        let key = replicate_key(&experiment.name);
        if key != experiment.name && experiment.name.contains("seed=") {
            groups.entry(key).or_default().push(experiment);
        }
    }
    let mut out = BTreeMap::new();
    for members in groups.values() {
        let values: Vec<f64> = members
            .iter()
            .filter_map(|e| e.result.as_ref()?.metrics.get(main_metric(e)).copied())
            .collect();
        let Some(summary) = summarise(&values) else {
            continue;
        };
        for member in members {
            out.insert(member.name.clone(), summary);
        }
    }
    out
}

fn summarise(values: &[f64]) -> Option<SeedSummary> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some(SeedSummary { mean, sd, n })
}

/// The sweep that created `name` (or whose base it is), if any.
pub fn sweep_of<'a>(session: &'a Session, name: &str) -> Option<&'a Sweep> {
    session
        .sweeps
        .iter()
        .rev()
        .find(|s| s.runs.iter().any(|r| r == name))
        .or_else(|| session.sweeps.iter().rev().find(|s| s.base == name))
}

/// The value of `parameter` in a sweep run's name (`base~a=1,b=2`).
pub fn parameter_value(name: &str, parameter: &str) -> Option<f64> {
    let (_, point) = name.split_once('~')?;
    point.split(',').find_map(|part| {
        part.strip_prefix(parameter)?
            .strip_prefix('=')?
            .parse()
            .ok()
    })
}

/// One run's points of a curve: `(run index, points)`.
pub type RunCurve = (usize, Vec<(f64, f64)>);

/// Several runs side by side.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The runs, in the order given.
    pub runs: Vec<String>,
    /// The metrics of the table (the first run's headline metrics, with `seconds`).
    pub metrics: Vec<String>,
    /// `values[run][metric]`, `None` where the run has no such value.
    pub values: Vec<Vec<Option<f64>>>,
    /// Per metric, the index of the best run (highest, or lowest for losses).
    pub best: Vec<Option<usize>>,
    /// The curve overlaid, and each run's points of it (run index, points).
    pub curve: Option<(String, Vec<RunCurve>)>,
    /// The metric against a swept parameter, when the runs come from a sweep.
    pub sweep_plot: Option<SweepPlot>,
}

/// One metric against one swept parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPlot {
    /// The parameter on the x axis.
    pub parameter: String,
    /// The metric on the y axis.
    pub metric: String,
    /// Plot the x axis in log scale.
    pub log_x: bool,
    /// `(parameter value, metric value)` of every run with both.
    pub points: Vec<(f64, f64)>,
}

impl SweepPlot {
    /// The points as plotted: x as log10 when `log_x`.
    pub fn plotted(&self) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter(|(x, _)| !self.log_x || *x > 0.0)
            .map(|&(x, y)| (if self.log_x { x.log10() } else { x }, y))
            .collect()
    }
}

/// `runs` of `session` compared: their headline metrics (best marked), the
/// `curve_index`-th curve name they share overlaid, and, when they belong
/// to a sweep, the first run's main metric against the sweep's
/// `parameter_index`-th parameter (over every run of that sweep).
pub fn compare(
    session: &Session,
    runs: &[String],
    curve_index: usize,
    parameter_index: usize,
) -> Comparison {
    let experiments: Vec<&Experiment> = runs
        .iter()
        .filter_map(|name| session.experiments.iter().find(|e| &e.name == name))
        .collect();
    let mut metrics: Vec<String> = Vec::new();
    for experiment in &experiments {
        for headline in experiment.model.method().headline() {
            for name in std::iter::once(headline.metric).chain(headline.sd) {
                if !metrics.iter().any(|m| m == name) {
                    metrics.push(name.to_string());
                }
            }
        }
    }
    metrics.push("seconds".into());
    let values: Vec<Vec<Option<f64>>> = experiments
        .iter()
        .map(|e| {
            metrics
                .iter()
                .map(|m| e.result.as_ref().and_then(|r| r.metrics.get(m).copied()))
                .collect()
        })
        .collect();
    let best = (0..metrics.len())
        .map(|m| {
            let column = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i, v[m]?)));
            if lower_is_better(&metrics[m]) {
                column.min_by(|a, b| a.1.total_cmp(&b.1)).map(|(i, _)| i)
            } else {
                column.max_by(|a, b| a.1.total_cmp(&b.1)).map(|(i, _)| i)
            }
        })
        .collect();
    let mut curve_names: Vec<String> = Vec::new();
    for experiment in &experiments {
        for curve in experiment.result.iter().flat_map(|r| &r.curves) {
            if !curve_names.contains(&curve.name) {
                curve_names.push(curve.name.clone());
            }
        }
    }
    let curve = (!curve_names.is_empty()).then(|| {
        let name = curve_names[curve_index % curve_names.len()].clone();
        let lines = experiments
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let curve = e.result.as_ref()?.curves.iter().find(|c| c.name == name)?;
                let points = curve
                    .values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(step, &v)| (step as f64, v))
                    .collect();
                Some((i, points))
            })
            .collect();
        (name, lines)
    });
    let sweep_plot = experiments
        .first()
        .and_then(|first| sweep_plot(session, &first.name, parameter_index));
    Comparison {
        runs: experiments.iter().map(|e| e.name.clone()).collect(),
        metrics,
        values,
        best,
        curve,
        sweep_plot,
    }
}

/// The main metric of the sweep holding `run` against its
/// `parameter_index`-th parameter (cycling), over every run of the sweep.
pub fn sweep_plot(session: &Session, run: &str, parameter_index: usize) -> Option<SweepPlot> {
    let sweep = sweep_of(session, run)?;
    let dimensions = sweep.dimensions();
    let parameter = dimensions[parameter_index % dimensions.len()]
        .parameter
        .clone();
    let first = session
        .experiments
        .iter()
        .find(|e| sweep.runs.contains(&e.name))?;
    let metric = main_metric(first).to_string();
    let points = sweep
        .runs
        .iter()
        .filter_map(|name| {
            let experiment = session.experiments.iter().find(|e| &e.name == name)?;
            let y = *experiment.result.as_ref()?.metrics.get(&metric)?;
            Some((parameter_value(name, &parameter)?, y))
        })
        .collect();
    Some(SweepPlot {
        log_x: sweep.is_log(&parameter),
        parameter,
        metric,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{ExperimentResult, parse};

    fn with_results() -> Session {
        let text = include_str!("../../sessions/demo.ron");
        let mut session = parse(text, std::path::Path::new("demo.ron")).unwrap();
        session
            .add_sweep(
                "srrr_rank2",
                "alpha=log 0.1..1:2 seed=1,2,3",
                std::path::Path::new("demo.ron"),
            )
            .unwrap();
        // The sweep's runs follow the demo's own experiments; the k-th gets
        // R² 0.1 × (k + 3).
        let first_run = session.experiments.len() - session.sweeps[0].runs.len();
        for (k, experiment) in session.experiments.iter_mut().skip(first_run).enumerate() {
            let i = k + 3;
            let text = format!(
                "(metrics: {{\"cv_r2_mean\": {:?}}}, per_fold: [], \
                 detail: Srrr(rank: 1, lambdas: [], chosen_lambda: None, loadings: [], unconverged_fits: 0), \
                 provenance: (patchbench: \"test\", finished_at: 0, seconds: 0.0, threads: 1))",
                0.1 * i as f64
            );
            let result: ExperimentResult = ron::from_str(&text).expect("a result");
            experiment.result = Some(result);
        }
        session
    }

    #[test]
    fn seeds_are_summarised_per_configuration() {
        let session = with_results();
        let summaries = seed_summaries(&session);
        assert_eq!(summaries.len(), 6);
        let first = summaries["srrr_rank2~alpha=0.1,seed=1"];
        assert_eq!(first.n, 3);
        assert!((first.mean - 0.4).abs() < 1e-12, "{first:?}");
        assert!((first.sd - 0.1).abs() < 1e-12, "{first:?}");
        assert!(!summaries.contains_key("srrr_rank2"));
    }

    #[test]
    fn a_comparison_marks_the_best_and_plots_against_the_parameter() {
        let session = with_results();
        let runs: Vec<String> = session.sweeps[0].runs[..3].to_vec();
        let comparison = compare(&session, &runs, 0, 0);
        let m = comparison
            .metrics
            .iter()
            .position(|m| m == "cv_r2_mean")
            .unwrap();
        assert_eq!(comparison.best[m], Some(2), "the highest R² is best");
        let plot = comparison.sweep_plot.unwrap();
        assert_eq!(plot.parameter, "alpha");
        assert!(plot.log_x, "a log-range sweep gets a log axis");
        assert_eq!(plot.points.len(), 6);
        assert!((plot.plotted()[0].0 + 1.0).abs() < 1e-9);
        assert!(lower_is_better("loss") && !lower_is_better("cv_r2_mean"));
    }
}
