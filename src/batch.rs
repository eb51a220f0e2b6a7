//! The headless front end: `patchbench --batch SESSION.ron`.
//!
//! Runs the experiments of a session that have no result yet (or all of them,
//! or one), shows progress on stderr (a progress bar on a terminal, log lines
//! otherwise), writes each result back into the session as soon as it is
//! finished (atomically, so an interrupted batch keeps every finished result),
//! optionally prints one JSON object per finished experiment on stdout and
//! exports its CSVs and figures (`--export DIR`), and ends with a summary
//! table. Results are merged into the session file as it is on disk at that
//! moment, under a lock ([`SessionStore`]), so another batch or the
//! workbench writing the same session loses nothing. A failed experiment is recorded and the batch
//! goes on; the exit status says whether everything succeeded.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cluster::shard::{ShardFile, ShardSpec};
use crate::figures::{self, ExportOptions, Figure, default_label_column};
use crate::models::Headline;
use crate::nn::DeviceChoice;
use crate::progress::{Event, Sink};
use crate::runner::{
    PreparedDataset, RunQueue, WeightsTarget, load_dataset, missing_files, run_application,
    run_experiment_saving_weights, stage_eta,
};
use crate::session::{self, DatasetSpec, Experiment, ExperimentResult, Session, SessionStore};

/// What the user asked of a batch run.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// The session file to run.
    pub session: PathBuf,
    /// Run every experiment again, even those with a result.
    pub rerun: bool,
    /// Run only this experiment (whether or not it has a result).
    pub only: Option<String>,
    /// Write the resulting session here instead of over the input file.
    pub out: Option<PathBuf>,
    /// Print one JSON object per finished experiment on stdout.
    pub json: bool,
    /// Train on this device instead of each experiment's `protocol.device`.
    pub device: Option<DeviceChoice>,
    /// Write each finished experiment's CSVs and figures into this folder.
    pub export: Option<PathBuf>,
    /// Run only this shard's share of the experiments and write their
    /// results to the shard file beside the session, not into the session.
    pub shard: Option<ShardSpec>,
}

/// How a batch run ended.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    /// Experiments that finished.
    pub finished: Vec<String>,
    /// Experiments that failed, with the reason.
    pub failed: Vec<(String, String)>,
}

/// Runs a session headless as `options` says.
pub fn run(options: &BatchOptions) -> Result<BatchOutcome> {
    let input = &options.session;
    let mut store = SessionStore::open(input)?;
    // The experiments run as they were when the batch started; results are
    // merged into the file as it is when each one finishes.
    let mut session = store.session().clone();
    let base = folder_of(input);
    let mut selected = select(&session, options)?;
    let mut shard = None;
    if let Some(spec) = options.shard {
        if options.out.is_some() {
            bail!("--shard and --out cannot be used together: a shard writes its own file");
        }
        let path = spec.path(input);
        let file = ShardFile::read(&path)?;
        // A task started again (after preemption) skips what it already has.
        selected = spec
            .share(&selected)
            .into_iter()
            .filter(|&i| {
                let name = &session.experiments[i].name;
                !file.results.iter().any(|r| &r.experiment == name)
            })
            .collect();
        shard = Some((path, file));
    }
    if let Some(out) = &options.out {
        let mut output = session.clone();
        session::relocate(&mut output, &base, &folder_of(out));
        store = SessionStore::create(out, output)?;
    }
    check_data(&session, &selected, &base)?;

    let weights = WeightsTarget::beside(store.path());
    let mut queue = RunQueue::default();
    for index in selected {
        queue.enqueue(&session, &session.experiments[index].name)?;
    }
    let mut outcome = BatchOutcome::default();
    let mut datasets: BTreeMap<String, PreparedDataset> = BTreeMap::new();
    while let Some(job) = queue.next(&session) {
        let name = job.experiment.name.clone();
        let mut sink = BatchSink::new(&name);
        let on_device = on_device(&job.experiment, options.device);
        let result = if job.experiment.model.method().model_from().is_some() {
            run_application(&job, &base, &weights, &mut sink).map_err(anyhow::Error::new)
        } else {
            prepared(&mut datasets, &job.dataset, &base).and_then(|dataset| {
                Ok(run_experiment_saving_weights(
                    &on_device, dataset, &mut sink, &weights,
                )?)
            })
        };
        sink.finish();
        match result {
            Ok(result) => {
                if options.json {
                    println!("{}", json_line(&job.experiment, &result));
                }
                if let Some(folder) = &options.export {
                    export(&name, &result, datasets.get(&job.dataset.name), folder);
                    export_artifact(&name, &weights.artifact_folder(&name), folder);
                }
                match &mut shard {
                    Some((path, file)) => {
                        let mut result = result;
                        result.provenance.config = Some(job.fingerprint);
                        file.record(&name, result);
                        file.write(path)?;
                    }
                    None => {
                        // An `Apply` experiment later in this batch reads the model's result.
                        if let Some(e) = session.experiments.iter_mut().find(|e| e.name == name) {
                            let mut copy = result.clone();
                            copy.provenance.config = Some(job.fingerprint.clone());
                            e.result = Some(copy);
                        }
                        let report = store.record_result(&name, job.fingerprint, result)?;
                        for dropped in report.dropped {
                            eprintln!("warning: result not stored: {dropped}");
                        }
                    }
                }
                queue.finish(&name, Ok(()));
                outcome.finished.push(name);
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                queue.finish(&name, Err(format!("{error:#}")));
                outcome.failed.push((name, format!("{error:#}")));
            }
        }
    }
    if let Some(folder) = &options.export
        && !store.session().sweeps.is_empty()
    {
        match figures::export_sweeps(store.session(), folder) {
            Ok(files) => eprintln!(
                "exported {} sweep figures to {}",
                files.len(),
                folder.display()
            ),
            Err(error) => eprintln!("warning: sweep figures not exported: {error:#}"),
        }
    }
    let mut shown = store.session().clone();
    if let Some((path, file)) = &shard {
        for finished in &file.results {
            if let Some(e) = shown
                .experiments
                .iter_mut()
                .find(|e| e.name == finished.experiment)
            {
                e.result = Some(finished.result.clone());
            }
        }
        eprintln!("results written to {}", path.display());
    }
    let summary = summary_table(&shown, &outcome.failed);
    if options.json {
        eprint!("{summary}")
    } else {
        print!("{summary}")
    }
    Ok(outcome)
}

/// `experiment` set to train on `device` when one is given.
fn on_device(experiment: &Experiment, device: Option<DeviceChoice>) -> Cow<'_, Experiment> {
    match device {
        Some(device) if device != experiment.protocol.device => {
            let mut moved = experiment.clone();
            moved.protocol.device = device;
            Cow::Owned(moved)
        }
        _ => Cow::Borrowed(experiment),
    }
}

/// Writes `result`'s CSVs and every figure into `folder`; a failed export is
/// reported and the batch goes on (the result is kept in the session).
fn export(name: &str, result: &ExperimentResult, dataset: Option<&PreparedDataset>, folder: &Path) {
    let columns = dataset
        .and_then(|d| d.data.metadata.as_ref())
        .map(|m| m.columns.clone())
        .unwrap_or_default();
    let options = ExportOptions {
        dataset,
        label_column: default_label_column(&columns),
        figures: Figure::all(result),
        live: None,
    };
    match figures::export(name, result, &options, folder) {
        Ok(files) => eprintln!(
            "[{name}] exported {} files to {}",
            files.len(),
            folder.display()
        ),
        Err(error) => eprintln!("warning: [{name}] export failed: {error:#}"),
    }
}

/// Copies the experiment's model artifact (if its run wrote one) to
/// `folder/NAME.artifact`; a failed copy is reported and the batch goes on.
fn export_artifact(name: &str, artifact: &Path, folder: &Path) {
    if !artifact.join(crate::artifact::manifest::MANIFEST).exists() {
        return;
    }
    let target = folder.join(format!("{name}.artifact"));
    match crate::artifact::manifest::copy_artifact(artifact, &target) {
        Ok(()) => eprintln!("[{name}] model artifact copied to {}", target.display()),
        Err(error) => eprintln!("warning: [{name}] artifact not exported: {error}"),
    }
}

/// Indices of the experiments to run, in session order.
fn select(session: &Session, options: &BatchOptions) -> Result<Vec<usize>> {
    if let Some(name) = &options.only {
        return match session.experiments.iter().position(|e| &e.name == name) {
            Some(i) => Ok(vec![i]),
            None => {
                let names: Vec<_> = session
                    .experiments
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect();
                bail!(
                    "{}: --only {name}: no such experiment; the session has: {}",
                    options.session.display(),
                    names.join(", ")
                )
            }
        };
    }
    let mut selected: Vec<usize> = (0..session.experiments.len())
        .filter(|&i| options.rerun || session.experiments[i].result.is_none())
        .collect();
    // An `Apply` experiment runs after the models it applies.
    selected.sort_by_key(|&i| session.experiments[i].model.method().model_from().is_some());
    Ok(selected)
}

/// Fails before any training when a selected experiment's files are missing.
fn check_data(session: &Session, selected: &[usize], base: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for dataset in &session.datasets {
        if !selected
            .iter()
            .any(|&i| session.experiments[i].dataset == dataset.name)
        {
            continue;
        }
        let missing = missing_files(dataset, base);
        if !missing.is_empty() {
            let files: Vec<_> = missing
                .iter()
                .map(|p| format!("  {}", p.display()))
                .collect();
            let hint = dataset
                .fetch
                .as_deref()
                .map(|h| format!("\nto get them: {h}"))
                .unwrap_or_default();
            problems.push(format!(
                "dataset `{}` is missing these files:\n{}{hint}",
                dataset.name,
                files.join("\n")
            ));
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(())
}

/// The dataset `spec`, loaded and preprocessed once per batch.
fn prepared<'a>(
    cache: &'a mut BTreeMap<String, PreparedDataset>,
    spec: &DatasetSpec,
    base: &Path,
) -> Result<&'a PreparedDataset> {
    if !cache.contains_key(&spec.name) {
        cache.insert(spec.name.clone(), load_dataset(spec, base)?);
    }
    cache.get(&spec.name).context("dataset cache lost an entry")
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `{"experiment": name, "model": kind, "metrics": {...}}` for one result.
pub fn json_line(experiment: &Experiment, result: &ExperimentResult) -> serde_json::Value {
    let mut metrics = serde_json::Map::new();
    for (name, value) in &result.metrics {
        metrics.insert(name.clone(), serde_json::json!(value));
    }
    if !result.genes.is_empty() {
        let genes: Vec<_> = result.genes.iter().map(|g| g.name.clone()).collect();
        metrics.insert("genes".into(), serde_json::json!(genes));
    }
    if !result.per_feature.is_empty() {
        let per_feature: serde_json::Map<_, _> = result
            .per_feature
            .iter()
            .map(|f| (f.name.clone(), serde_json::json!(f.score)))
            .collect();
        metrics.insert(
            "per_feature_r2".into(),
            serde_json::Value::Object(per_feature),
        );
    }
    serde_json::json!({
        "experiment": experiment.name,
        "model": experiment.model.kind(),
        "metrics": metrics,
    })
}

/// A plain-text table of every experiment's status and headline metrics
/// (each model's own, see [`crate::models::Method::headline`]); an experiment
/// in `failed` (name, reason) shows `failed` and the reason instead.
pub fn summary_table(session: &Session, failed: &[(String, String)]) -> String {
    let mut rows = vec![[
        "experiment".to_string(),
        "model".into(),
        "status".into(),
        "headline metrics".into(),
        "seconds".into(),
    ]];
    for experiment in &session.experiments {
        let failure = failed
            .iter()
            .find(|(name, _)| *name == experiment.name)
            .map(|(_, reason)| reason);
        let (status, metrics, seconds) = match (failure, &experiment.result) {
            (Some(reason), _) => ("failed", reason.clone(), "-".to_string()),
            (None, None) => ("not run", String::new(), "-".to_string()),
            (None, Some(result)) => (
                "done",
                headline(experiment.model.method().headline(), &result.metrics),
                result
                    .metrics
                    .get("seconds")
                    .map_or_else(|| "-".into(), |s| format!("{s:.1}")),
            ),
        };
        rows.push([
            experiment.name.clone(),
            experiment.model.kind().into(),
            status.into(),
            metrics,
            seconds,
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `label value [± sd]` of every headline metric, `-` for those the result lacks.
fn headline(metrics_shown: &[Headline], metrics: &BTreeMap<String, f64>) -> String {
    metrics_shown
        .iter()
        .map(|h| {
            let value = match (metrics.get(h.metric), h.sd.and_then(|sd| metrics.get(sd))) {
                (Some(m), Some(s)) => format!("{m:.3} ± {s:.3}"),
                (Some(m), None) if m.fract() == 0.0 => format!("{m:.0}"),
                (Some(m), None) => format!("{m:.3}"),
                (None, _) => "-".into(),
            };
            format!("{} {value}", h.label)
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Progress on stderr: a bar on a terminal, a log line per stage otherwise.
///
/// The bar's time left is at the stage's mean pace so far (as the workbench
/// shows it), not indicatif's estimate, which grew while a long step ran.
struct BatchSink {
    experiment: String,
    bar: Option<ProgressBar>,
    stage: String,
    stage_started: Instant,
    total: u64,
}

impl BatchSink {
    fn new(experiment: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{prefix} {msg:32} [{bar:30}] {pos}/{len} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(experiment.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            eprintln!("[{experiment}] started");
        }
        BatchSink {
            experiment: experiment.into(),
            bar,
            stage: String::new(),
            stage_started: Instant::now(),
            total: 0,
        }
    }

    fn finish(&self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("[{}] done", self.experiment),
        }
    }
}

impl Sink for BatchSink {
    fn event(&mut self, event: Event) {
        match (&self.bar, event) {
            (Some(bar), Event::Stage { name, total }) => {
                bar.set_message(name.clone());
                bar.set_length(total);
                bar.set_position(0);
                self.stage = name;
                self.stage_started = Instant::now();
                self.total = total;
            }
            (Some(bar), Event::Step { done }) => {
                bar.set_position(done);
                let left = stage_eta(self.stage_started.elapsed(), done, self.total);
                bar.set_message(match left {
                    Some(left) => format!("{} · {}s left", self.stage, left.as_secs()),
                    None => self.stage.clone(),
                });
            }
            (Some(bar), Event::Message(text)) => bar.println(text),
            (None, Event::Stage { name, total }) => {
                eprintln!("[{}] {name} ({total} steps)", self.experiment)
            }
            (None, Event::Message(text)) => eprintln!("[{}] {text}", self.experiment),
            (_, Event::Metric { .. }) | (None, Event::Step { .. }) => {}
        }
    }
}
