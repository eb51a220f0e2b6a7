//! Shards: a session's unfinished experiments split among `N` workers (the
//! tasks of a Slurm array), each writing its results to a file of its own
//! beside the session, and folding those files back into the session.
//!
//! Shard `K` of `N` takes every `N`-th unfinished experiment starting at the
//! `K`-th, in session order, so the `N` shards run each experiment exactly
//! once. It writes `SESSION.shard-K-of-N` (RON, atomically, after every
//! finished experiment); [`merge_shards`] stores those results in the
//! session, refusing a result whose configuration fingerprint no longer
//! matches its experiment and keeping every other one. Merging again
//! changes nothing.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::session::{
    Change, ExperimentResult, Session, SessionError, SessionStore, fingerprint_in, write_atomic,
};

/// Shard `index` (from 1) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// Which shard, 1 to `count`.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl FromStr for ShardSpec {
    type Err = String;

    /// Reads `K/N` with 1 ≤ K ≤ N.
    fn from_str(text: &str) -> Result<ShardSpec, String> {
        let parsed = text
            .split_once('/')
            .and_then(|(k, n)| Some((k.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index >= 1 && index <= count => Ok(ShardSpec { index, count }),
            _ => Err(format!("`{text}`: expected K/N with 1 ≤ K ≤ N, e.g. 2/8")),
        }
    }
}

impl ShardSpec {
    /// The items of `items` (the unfinished experiments in session order)
    /// that this shard runs.
    pub fn share<T: Clone>(&self, items: &[T]) -> Vec<T> {
        items
            .iter()
            .skip(self.index - 1)
            .step_by(self.count)
            .cloned()
            .collect()
    }

    /// The file this shard writes: `SESSION.shard-K-of-N` beside the session.
    pub fn path(&self, session: &Path) -> PathBuf {
        let mut name = session.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".shard-{}-of-{}", self.index, self.count));
        session.with_file_name(name)
    }
}

/// What a shard file holds: the results its task finished so far.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardFile {
    /// The results, in the order they finished.
    pub results: Vec<ShardResult>,
}

/// One finished experiment of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardResult {
    /// The experiment's name.
    pub experiment: String,
    /// Its result; `provenance.config` is the fingerprint of the
    /// configuration it ran with.
    pub result: ExperimentResult,
}

impl ShardFile {
    /// Reads the shard file at `path`; a missing file is an empty shard.
    pub fn read(path: &Path) -> Result<ShardFile, SessionError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ShardFile::default()),
            Err(cause) => {
                return Err(SessionError::Io {
                    path: path.to_path_buf(),
                    action: "cannot read",
                    cause,
                });
            }
        };
        ron::from_str(&text).map_err(|e| SessionError::Parse {
            path: path.to_path_buf(),
            line: e.span.start.line,
            column: e.span.start.col,
            message: e.code.to_string(),
        })
    }

    /// Writes the shard file at `path` atomically.
    pub fn write(&self, path: &Path) -> Result<(), SessionError> {
        let text = ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::new())
            .map_err(|e| SessionError::Serialise(e.to_string()))?;
        write_atomic(path, &text)
    }

    /// Adds (or replaces) `experiment`'s result.
    pub fn record(&mut self, experiment: &str, result: ExperimentResult) {
        self.results.retain(|r| r.experiment != experiment);
        self.results.push(ShardResult {
            experiment: experiment.to_string(),
            result,
        });
    }
}

/// Every shard file beside `session` (`SESSION.shard-K-of-N`), sorted.
pub fn shard_files(session: &Path) -> Vec<PathBuf> {
    let name = session
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{name}.shard-");
    let folder = match session.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.strip_prefix(&prefix)
                        .and_then(|rest| rest.split_once("-of-"))
                        .is_some_and(|(k, n)| {
                            k.parse::<usize>().is_ok() && n.parse::<usize>().is_ok()
                        })
                })
                .map(|n| folder.join(n))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergeReport {
    /// Results stored in the session.
    pub merged: Vec<String>,
    /// Results the session already had, left as they were.
    pub unchanged: Vec<String>,
    /// Results refused, with why (the configuration changed since the shard
    /// ran, or the experiment is gone).
    pub refused: Vec<String>,
}

/// Why `result` cannot be merged into `experiment` of `session`, if it cannot.
fn refusal(session: &Session, experiment: &str, result: &ExperimentResult) -> Option<String> {
    let Some(current) = session.experiments.iter().find(|e| e.name == experiment) else {
        return Some(format!("{experiment}: no longer in the session"));
    };
    let now = fingerprint_in(session, current);
    match &result.provenance.config {
        Some(ran) if *ran == now => None,
        Some(ran) => Some(format!(
            "{experiment}: its configuration changed since the shard ran (fingerprint {ran}, now {now}); rerun it"
        )),
        None => Some(format!(
            "{experiment}: the result has no configuration fingerprint"
        )),
    }
}

/// Folds every shard file beside the store's session into it and saves:
/// results whose fingerprint matches their experiment's configuration are
/// stored (unless the session has that very result already), the others
/// refused and listed. A shard file that does not read is an error naming it.
pub fn merge_shards(store: &mut SessionStore) -> Result<MergeReport, SessionError> {
    let mut report = MergeReport::default();
    for path in shard_files(store.path()) {
        let shard = ShardFile::read(&path)?;
        for ShardResult { experiment, result } in shard.results {
            let session = store.session();
            if let Some(reason) = refusal(session, &experiment, &result) {
                report.refused.push(format!("{}: {reason}", path.display()));
                continue;
            }
            let same = session
                .experiments
                .iter()
                .any(|e| e.name == experiment && e.result.as_ref() == Some(&result));
            if same {
                report.unchanged.push(experiment);
                continue;
            }
            store
                .change(Change::Result {
                    experiment: experiment.clone(),
                    result: Box::new(result),
                })
                .map_err(|message| SessionError::Invalid {
                    path: path.clone(),
                    field: format!("results[{experiment}]"),
                    message,
                })?;
            report.merged.push(experiment);
        }
    }
    store.save()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_work_exactly() {
        let items: Vec<usize> = (0..27).collect();
        for count in 1..=30 {
            let mut all: Vec<usize> = (1..=count)
                .flat_map(|index| ShardSpec { index, count }.share(&items))
                .collect();
            all.sort();
            assert_eq!(all, items, "{count} shards");
        }
    }

    #[test]
    fn shard_specs_read_k_of_n() {
        assert_eq!(
            "2/8".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 8 })
        );
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(
                bad.parse::<ShardSpec>().unwrap_err().contains("K/N"),
                "{bad}"
            );
        }
        let spec = ShardSpec { index: 2, count: 3 };
        assert_eq!(
            spec.path(Path::new("/s/grid.ron")),
            PathBuf::from("/s/grid.ron.shard-2-of-3")
        );
    }
}
