use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ExperimentResult, Sweep};
use crate::analysis::cca::PcCcaConfig;
use crate::analysis::cv::FoldScheme;
use crate::analysis::latent_eval::LatentEvalConfig;
use crate::data::Orientation;
use crate::models::Method;
use crate::models::apply::ApplySpec;
use crate::models::cae::CaeConfig;
use crate::models::mixvae::MixVaeSpec;
use crate::models::sbnn::SbnnConfig;
use crate::models::srrr::SrrrConfig;
use crate::nn::DeviceChoice;
use crate::prep::Recipe;

/// The session format version this build reads and writes.
pub const SESSION_VERSION: u32 = 1;

/// Everything a user keeps about one piece of work: data, experiments, results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Format version; must equal [`SESSION_VERSION`].
    pub version: u32,
    /// Datasets the experiments can use.
    #[serde(default)]
    pub datasets: Vec<DatasetSpec>,
    /// Experiments, in the order they run.
    #[serde(default)]
    pub experiments: Vec<Experiment>,
    /// Hyperparameter sweeps started from the workbench; each names the
    /// experiments it created, so an interrupted sweep resumes on reopening.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<Sweep>,
}

/// Where a dataset's files are and how each modality is preprocessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// Name the experiments refer to.
    pub name: String,
    /// The measured modalities (e.g. `T` and `E`).
    pub modalities: Vec<ModalitySpec>,
    /// Per-cell labels.
    #[serde(default)]
    pub metadata: Option<MetadataSpec>,
    /// How to obtain the files when they are missing; shown in the error.
    #[serde(default)]
    pub fetch: Option<String>,
}

/// One modality's matrix file and its preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalitySpec {
    /// Short name (e.g. `T`, `E`).
    pub name: String,
    /// Path of the matrix file, relative to the session file.
    pub path: PathBuf,
    /// Layout of the file on disk.
    pub orientation: Orientation,
    /// Preprocessing applied after loading.
    #[serde(default)]
    pub recipe: Recipe,
    /// `.h5ad`: read `/layers/NAME` instead of `/X`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// `.h5ad`: read `/raw/X` (with `/raw/var`) instead of `/X`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_raw: bool,
    /// `.h5ad`: read the per-cell matrix `/obsm/KEY` as this modality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obsm: Option<String>,
    /// `.h5ad`: the `var` column naming the features (e.g. gene symbols);
    /// 10x: `gene_ids` (default) or `gene_symbols`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub var_column: Option<String>,
    /// A bare `.mtx`: the feature ids, one per line, relative to the session file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features_file: Option<PathBuf>,
    /// A bare `.mtx`: the cell ids (barcodes), one per line, relative to the session file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells_file: Option<PathBuf>,
}

impl ModalitySpec {
    /// A modality read from `path` with no format-specific options.
    pub fn new(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        orientation: Orientation,
        recipe: Recipe,
    ) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            orientation,
            recipe,
            layer: None,
            use_raw: false,
            obsm: None,
            var_column: None,
            features_file: None,
            cells_file: None,
        }
    }
}

/// The per-cell metadata file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataSpec {
    /// Path of the metadata file, relative to the session file.
    pub path: PathBuf,
    /// The column holding cell ids.
    pub id_column: String,
}

/// A model configuration run under a protocol on a dataset, and its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Unique name within the session.
    pub name: String,
    /// Name of the dataset it uses.
    pub dataset: String,
    /// Modalities the model uses, in the model's order (sRRR: predictors, then targets).
    pub modalities: Vec<String>,
    /// The model and its hyperparameters.
    pub model: ModelSpec,
    /// How the model is validated.
    #[serde(default)]
    pub protocol: Protocol,
    /// The result of the last run, if any.
    #[serde(default)]
    pub result: Option<ExperimentResult>,
}

/// The methods patchbench implements, with their hyperparameters. Unknown
/// fields are refused in every variant (also inside `Cae(...)` and `PcCca(...)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ModelSpec {
    /// Sparse reduced-rank regression (Bernaerts et al. 2021 baseline).
    Srrr(SrrrConfig),
    /// Sparse bottleneck neural network (Bernaerts et al. 2021).
    Sbnn(SbnnConfig),
    /// Coupled autoencoders (k-CAE, Gala et al. 2019), one arm per modality,
    /// judged on the first two modalities' latents (`z_T`, `z_E`).
    Cae {
        /// The network and its training.
        #[serde(default)]
        model: CaeConfig,
        /// What is measured on the latents of every fold.
        #[serde(default)]
        analysis: LatentEvalConfig,
    },
    /// The PC-CCA baseline of Gala et al.: PCA per modality, CCA, whitened
    /// top components; the same analyses as [`ModelSpec::Cae`].
    PcCca {
        /// Numbers of principal and canonical components.
        #[serde(default)]
        model: PcCcaConfig,
        /// What is measured on the latents of every fold.
        #[serde(default)]
        analysis: LatentEvalConfig,
    },
    /// Coupled mixture VAE (cpl-mixVAE; Marghi, Gala & Sümbül).
    MixVae(MixVaeSpec),
    /// The trained model of another experiment (`model_from`) applied to the
    /// cells of this experiment's dataset; trains nothing.
    Apply(ApplySpec),
}

impl Session {
    /// Every metric name of every result, in the order the runs table shows
    /// them: the models' headline metrics (each followed by its SD) in the
    /// order of the experiments, then `seconds`, then the rest alphabetically.
    pub fn metric_names(&self) -> Vec<String> {
        let mut first: Vec<&str> = Vec::new();
        for experiment in &self.experiments {
            for headline in experiment.model.method().headline() {
                for name in std::iter::once(headline.metric).chain(headline.sd) {
                    if !first.contains(&name) {
                        first.push(name);
                    }
                }
            }
        }
        first.push("seconds");
        let mut names: Vec<String> = Vec::new();
        for result in self.experiments.iter().filter_map(|e| e.result.as_ref()) {
            for name in result.metrics.keys() {
                if !names.contains(name) {
                    names.push(name.clone());
                }
            }
        }
        names.sort_by_key(|n| {
            (
                first.iter().position(|f| f == n).unwrap_or(first.len()),
                n.clone(),
            )
        });
        names
    }
}

impl ModelSpec {
    /// The method's side of the seam (kind, modalities, validation, headline
    /// metrics); the only match on the kind of model outside the runner's dispatch.
    pub fn method(&self) -> &dyn Method {
        match self {
            ModelSpec::Srrr(config) => config,
            ModelSpec::Sbnn(config) => config,
            ModelSpec::Cae { model, .. } => model,
            ModelSpec::PcCca { model, .. } => model,
            ModelSpec::MixVae(spec) => spec,
            ModelSpec::Apply(spec) => spec,
        }
    }

    /// Short lower-case name of the method, as in `--json` output.
    pub fn kind(&self) -> &'static str {
        self.method().kind()
    }

    /// How many modalities the model needs.
    pub fn modality_count(&self) -> usize {
        self.method().modality_count()
    }
}

/// Cross-validation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Protocol {
    /// Number of folds.
    pub folds: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
    /// How cells are assigned to folds.
    pub scheme: FoldScheme,
    /// Metadata column to stratify by (required by the stratified scheme).
    pub stratify_by: Option<String>,
    /// Train and score only the first this many folds of the split (e.g. 1:
    /// one held-out 1/`folds` test set, as the reference code of Gala et al.
    /// does for long runs); `None` scores every fold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scored_folds: Option<usize>,
    /// Where the networks train: `Cpu` (the default) or `Cuda(0)`, a GPU
    /// (needs a build with the `cuda` feature); `--batch --device` overrides
    /// it. Each result's provenance records the device it ran on; the
    /// device is not part of the configuration's fingerprint.
    #[serde(skip_serializing_if = "is_cpu")]
    pub device: DeviceChoice,
}

fn is_cpu(device: &DeviceChoice) -> bool {
    *device == DeviceChoice::Cpu
}

impl Default for Protocol {
    /// The sBNN paper's protocol: 10 folds, seed 42, numpy's permutation.
    fn default() -> Self {
        Protocol {
            folds: 10,
            seed: 42,
            scheme: FoldScheme::NumpyContiguous,
            stratify_by: None,
            scored_folds: None,
            device: DeviceChoice::Cpu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One spec of every model kind, with default settings. The match below
    /// stops compiling when a kind is added, so the list stays complete.
    fn every_kind() -> Vec<ModelSpec> {
        let all = vec![
            ModelSpec::Srrr(SrrrConfig::default()),
            ModelSpec::Sbnn(SbnnConfig::default()),
            ModelSpec::Cae {
                model: CaeConfig::default(),
                analysis: LatentEvalConfig::default(),
            },
            ModelSpec::PcCca {
                model: PcCcaConfig::default(),
                analysis: LatentEvalConfig::default(),
            },
            ModelSpec::MixVae(MixVaeSpec {
                labels: Some("rna_type".into()),
                seeds: vec![1],
                model: Default::default(),
            }),
            ModelSpec::Apply(ApplySpec {
                model_from: "sbnn".into(),
                missing: Default::default(),
                calibrate: None,
                filter: None,
                alias_column: Some("symbol".into()),
                fold: None,
            }),
        ];
        for spec in &all {
            match spec {
                ModelSpec::Srrr(_)
                | ModelSpec::Sbnn(_)
                | ModelSpec::Cae { .. }
                | ModelSpec::PcCca { .. }
                | ModelSpec::MixVae(_)
                | ModelSpec::Apply(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_model_kind_rejects_unknown_fields_at_every_level() {
        let opening = regex::Regex::new(r"\((?:[a-z_]+:)").unwrap();
        for spec in every_kind() {
            let text = ron::to_string(&spec).unwrap();
            assert_eq!(ron::from_str::<ModelSpec>(&text).unwrap(), spec);
            let openings: Vec<usize> = opening.find_iter(&text).map(|m| m.start() + 1).collect();
            assert!(!openings.is_empty(), "{text}");
            for at in openings {
                let bad = format!("{}bogus_field:1,{}", &text[..at], &text[at..]);
                let error = ron::from_str::<ModelSpec>(&bad)
                    .expect_err(&format!("{} accepted an unknown field: {bad}", spec.kind()));
                assert!(error.to_string().contains("bogus_field"), "{error}");
            }
        }
    }

    #[test]
    fn the_seam_gives_every_kind_a_name_modalities_and_a_headline() {
        let kinds: Vec<&str> = every_kind().iter().map(ModelSpec::kind).collect();
        assert_eq!(kinds, ["srrr", "sbnn", "cae", "pc_cca", "mixvae", "apply"]);
        for spec in every_kind() {
            let method = spec.method();
            assert!(method.validate().is_ok(), "{} defaults", spec.kind());
            assert!(!method.headline().is_empty(), "{}", spec.kind());
            assert!(method.modality_count() >= 1);
        }
    }
}
