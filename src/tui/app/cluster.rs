//! The app's side of running on a cluster: launching the session's
//! unfinished experiments as a Slurm array (`L`, `:slurm [SHARDS]`), showing
//! them as queued on the cluster until their shard files hold them, and
//! folding those files into the session (`:merge`). The work itself is the
//! library's [`crate::cluster`].

use std::path::Path;

use super::App;
use crate::cluster::shard::merge_shards;
use crate::cluster::slurm::SlurmOptions;
use crate::cluster::submit::{cluster_progress, launch};

/// Where the experiments of the session's last cluster job stand.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterState {
    /// In a shard file, not yet merged.
    pub done: Vec<String>,
    /// Submitted, no result yet.
    pub waiting: Vec<String>,
}

impl App {
    /// Reads the session's cluster job and shard files again.
    pub fn refresh_cluster(&mut self) {
        self.cluster = cluster_progress(&self.path)
            .map(|(done, waiting)| ClusterState { done, waiting })
            .unwrap_or_default();
    }

    /// True when `path` is one of the session's shard files.
    pub(super) fn is_shard_file(&self, path: &Path) -> bool {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        path.parent() == self.path.parent()
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{name}.shard-")))
    }

    /// Submits the unfinished experiments as a Slurm array in `shards` shards
    /// (default: one per experiment).
    pub fn launch_cluster(&mut self, shards: Option<usize>) {
        let program = match std::env::current_exe() {
            Ok(program) => program,
            Err(error) => return self.error(format!("slurm: cannot find patchbench: {error}")),
        };
        match launch(
            &mut self.store,
            &program,
            shards,
            SlurmOptions::default(),
            false,
        ) {
            Ok(launched) => {
                self.refresh_cluster();
                self.info(format!(
                    "submitted Slurm job {} ({} tasks, {} experiments); :merge folds results in",
                    launched.job.job_id.as_deref().unwrap_or("-"),
                    launched.job.shards,
                    launched.job.experiments.len()
                ));
            }
            Err(error) => {
                self.refresh_cluster();
                self.error(format!("slurm: {error:#}"));
            }
        }
    }

    /// Folds finished shard files into the session.
    pub fn merge_cluster(&mut self) {
        match merge_shards(&mut self.store) {
            Ok(report) => {
                self.refresh_cluster();
                let refused = report
                    .refused
                    .first()
                    .map(|r| format!("; refused: {r}"))
                    .unwrap_or_default();
                self.info(format!(
                    "merged {} results ({} already there, {} refused){refused}",
                    report.merged.len(),
                    report.unchanged.len(),
                    report.refused.len()
                ));
            }
            Err(error) => self.error(format!("merge: {error}")),
        }
    }
}
