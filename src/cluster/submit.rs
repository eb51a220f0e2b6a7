//! Launching a session on Slurm: fold in what earlier shards finished, split
//! the unfinished experiments into shards, write the array script into
//! `SESSION.slurm/` and submit it with `sbatch` when it is on the PATH. The
//! job is recorded in `SESSION.slurm/job.ron`, so the workbench can show its
//! experiments as queued on the cluster until their shard files hold them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::shard::{MergeReport, ShardFile, ShardSpec, merge_shards, shard_files};
use super::slurm::{ArrayJob, SlurmOptions};
use crate::session::{SessionStore, write_atomic};

/// A submitted (or written) array job, as `SESSION.slurm/job.ron` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedJob {
    /// Slurm's job id; `None` when only the script was written.
    pub job_id: Option<String>,
    /// Number of shards (array tasks).
    pub shards: usize,
    /// The experiments the job runs, in session order.
    pub experiments: Vec<String>,
}

impl SubmittedJob {
    /// Where the record of `session`'s last job is kept.
    pub fn path(session: &Path) -> PathBuf {
        job_folder(session).join("job.ron")
    }

    /// The record of `session`'s last job, if any.
    pub fn read(session: &Path) -> Option<SubmittedJob> {
        let text = std::fs::read_to_string(SubmittedJob::path(session)).ok()?;
        ron::from_str(&text).ok()
    }
}

/// What [`launch`] did.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The array script's text.
    pub script: String,
    /// Where it was written (`None` on a dry run).
    pub script_path: Option<PathBuf>,
    /// The job (its id once submitted).
    pub job: SubmittedJob,
    /// What folding in earlier shard files did.
    pub merged: MergeReport,
}

/// `SESSION.slurm/` beside the session.
fn job_folder(session: &Path) -> PathBuf {
    let mut name = session.file_name().unwrap_or_default().to_os_string();
    name.push(".slurm");
    session.with_file_name(name)
}

/// Plans and (unless `dry_run`) submits the array job of the session in
/// `store`: earlier shard files are merged and removed first, then the
/// experiments without a result are split into `shards` shards (default:
/// one per experiment). `program` is the patchbench executable the tasks
/// run. Without `sbatch` on the PATH the script is written and the error
/// says how to submit it.
pub fn launch(
    store: &mut SessionStore,
    program: &Path,
    shards: Option<usize>,
    options: SlurmOptions,
    dry_run: bool,
) -> Result<Launch> {
    let session_path = std::path::absolute(store.path())?;
    let merged = if dry_run {
        MergeReport::default()
    } else {
        let report = merge_shards(store)?;
        for file in shard_files(&session_path) {
            std::fs::remove_file(&file)
                .with_context(|| format!("removing the merged shard file {}", file.display()))?;
        }
        report
    };
    let experiments: Vec<String> = store
        .session()
        .experiments
        .iter()
        .filter(|e| e.result.is_none())
        .map(|e| e.name.clone())
        .collect();
    if experiments.is_empty() {
        bail!(
            "{}: every experiment has a result; nothing to run on the cluster",
            session_path.display()
        );
    }
    let count = shards
        .unwrap_or(experiments.len())
        .clamp(1, experiments.len());
    let job = ArrayJob {
        program: std::path::absolute(program)?,
        session: session_path.clone(),
        shards: count,
        options,
    };
    let script = job.script()?;
    let mut record = SubmittedJob {
        job_id: None,
        shards: count,
        experiments,
    };
    if dry_run {
        return Ok(Launch {
            script,
            script_path: None,
            job: record,
            merged,
        });
    }
    std::fs::create_dir_all(job.log_dir())
        .with_context(|| format!("creating {}", job.log_dir().display()))?;
    let script_path = job.log_dir().join("array.sh");
    write_atomic(&script_path, &script)?;
    let submitted = Command::new("sbatch")
        .arg("--parsable")
        .arg(&script_path)
        .output();
    let output = match submitted {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "sbatch is not on the PATH; the script is written: submit it with `sbatch {}` on the cluster",
            script_path.display()
        ),
        Err(error) => return Err(error).context("cannot run sbatch"),
    };
    if !output.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script_path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&output.stdout);
    record.job_id = Some(id.trim().split(';').next().unwrap_or_default().to_string());
    let text = ron::to_string(&record)?;
    write_atomic(&SubmittedJob::path(&session_path), &text)?;
    Ok(Launch {
        script,
        script_path: Some(script_path),
        job: record,
        merged,
    })
}

/// Where each experiment of `session`'s last job stands: the names already
/// in a shard file (done on the cluster) and those still waiting.
pub fn cluster_progress(session: &Path) -> Option<(Vec<String>, Vec<String>)> {
    let job = SubmittedJob::read(session)?;
    let mut done = Vec::new();
    for index in 1..=job.shards {
        let spec = ShardSpec {
            index,
            count: job.shards,
        };
        if let Ok(file) = ShardFile::read(&spec.path(session)) {
            done.extend(file.results.into_iter().map(|r| r.experiment));
        }
    }
    let waiting = job
        .experiments
        .into_iter()
        .filter(|e| !done.contains(e))
        .collect();
    Some((done, waiting))
}
