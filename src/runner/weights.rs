//! Trained networks saved beside the session, so that a reopened session has
//! a run's models without retraining.
//!
//! Layout: `<session folder>/<session stem>.weights/<experiment>/<network>.safetensors`
//! (for example `m1.weights/sbnn/final.safetensors`, or `fold1` ... `foldK`
//! for the k-CAE's per-fold models). The result records these paths relative
//! to the session's folder. A rerun replaces the experiment's folder.

use std::path::{Path, PathBuf};

use super::RunError;
use crate::models::Weights;

/// A trained network and its file stem (`final`, `fold1`, ...).
pub(super) struct NamedNetwork {
    /// File stem of the network.
    pub name: String,
    /// The network, saved through its model's side of the seam.
    pub network: Box<dyn Weights>,
}

/// Where runs save their trained networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsTarget {
    base: PathBuf,
    folder: PathBuf,
}

impl WeightsTarget {
    /// The folder `<stem>.weights` beside the session file `session`.
    pub fn beside(session: &Path) -> Self {
        let base = match session.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stem = session
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "session".into());
        WeightsTarget {
            base,
            folder: PathBuf::from(format!("{stem}.weights")),
        }
    }

    /// The path of a file recorded in a result (relative to the session's folder).
    pub fn resolve(&self, recorded: &str) -> PathBuf {
        self.base.join(recorded)
    }

    /// The session file's name (`<stem>.ron`), for provenance.
    pub fn session_name(&self) -> String {
        let stem = self.folder.to_string_lossy();
        format!("{}.ron", stem.trim_end_matches(".weights"))
    }

    /// Experiment `experiment`'s folder (an artifact when it holds a
    /// `manifest.json`), resolved against the session's folder.
    pub fn artifact_folder(&self, experiment: &str) -> PathBuf {
        self.base.join(self.experiment_folder(experiment))
    }

    /// Experiment `experiment`'s folder, relative to the session's folder.
    fn experiment_folder(&self, experiment: &str) -> PathBuf {
        self.folder.join(file_name(experiment))
    }
}

/// `name` with every character that is unsafe in a file name replaced by `_`.
fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-=~+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Saves `networks` of `experiment` under `target`, replacing what an earlier
/// run of it left; returns the files' paths relative to the session's folder.
pub(super) fn save(
    target: &WeightsTarget,
    experiment: &str,
    networks: &[NamedNetwork],
) -> Result<Vec<String>, RunError> {
    let failed = |path: &Path, reason: String| RunError::Weights {
        experiment: experiment.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let relative_folder = target.experiment_folder(experiment);
    let folder = target.base.join(&relative_folder);
    if folder.exists() {
        std::fs::remove_dir_all(&folder).map_err(|e| failed(&folder, e.to_string()))?;
    }
    if networks.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(&folder).map_err(|e| failed(&folder, e.to_string()))?;
    let mut recorded = Vec::with_capacity(networks.len());
    for named in networks {
        let file = format!("{}.safetensors", file_name(&named.name));
        let path = folder.join(&file);
        named
            .network
            .save(&path)
            .map_err(|e| failed(&path, e.to_string()))?;
        recorded.push(
            relative_folder
                .join(&file)
                .to_string_lossy()
                .replace('\\', "/"),
        );
    }
    Ok(recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_go_beside_the_session_under_safe_names() {
        let target = WeightsTarget::beside(Path::new("runs/m1.ron"));
        assert_eq!(
            target.experiment_folder("sbnn~lr=0.001"),
            Path::new("m1.weights/sbnn~lr=0.001")
        );
        assert_eq!(
            target.experiment_folder("a/b c"),
            Path::new("m1.weights/a_b_c")
        );
        assert_eq!(
            target.resolve("m1.weights/x/final.safetensors"),
            Path::new("runs/m1.weights/x/final.safetensors")
        );
        let bare = WeightsTarget::beside(Path::new("s.ron"));
        assert_eq!(bare.resolve("s.weights/a"), Path::new("./s.weights/a"));
    }

    #[test]
    fn saving_replaces_an_earlier_run_and_names_the_path_on_failure() {
        use std::collections::BTreeMap;

        use crate::models::sbnn::SbnnWeights;
        use crate::nn::dense::{Activation, DenseLayer, DenseNet};
        use rand::SeedableRng;
        let dir = tempfile::tempdir().unwrap();
        let target = WeightsTarget::beside(&dir.path().join("s.ron"));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let layer = DenseLayer::glorot(3, 2, Activation::Linear, &mut rng).unwrap();
        let net = || NamedNetwork {
            name: "final".into(),
            network: Box::new(SbnnWeights {
                net: DenseNet::new(vec![layer.clone()]).unwrap(),
                info: BTreeMap::from([("inputs".to_string(), "g1,g2,g3".to_string())]),
            }),
        };
        let stale = dir.path().join("s.weights/exp/fold9.safetensors");
        std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
        std::fs::write(&stale, b"old").unwrap();
        let files = save(&target, "exp", &[net()]).unwrap();
        assert_eq!(files, ["s.weights/exp/final.safetensors"]);
        assert!(!stale.exists(), "an earlier run's files are removed");
        let other = DenseLayer::glorot(3, 2, Activation::Linear, &mut rng).unwrap();
        assert_ne!(other.weight, layer.weight);
        let mut restored = SbnnWeights {
            net: DenseNet::new(vec![other]).unwrap(),
            info: BTreeMap::new(),
        };
        restored.restore(&target.resolve(&files[0])).unwrap();
        assert_eq!(restored.net.layers[0].weight, layer.weight);
        assert_eq!(restored.info["inputs"], "g1,g2,g3");

        std::fs::write(dir.path().join("t.weights"), b"a file, not a folder").unwrap();
        let blocked = WeightsTarget::beside(&dir.path().join("t.ron"));
        let err = save(&blocked, "exp", &[net()]).unwrap_err().to_string();
        assert!(err.contains("t.weights") && err.contains("`exp`"), "{err}");
    }
}
