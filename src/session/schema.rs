use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ExperimentResult, Sweep};
use crate::analysis::cca::PcCcaConfig;
use crate::analysis::cv::FoldScheme;
use crate::analysis::latent_eval::LatentEvalConfig;
use crate::data::Orientation;
use crate::models::cae::CaeConfig;
use crate::models::mixvae::MixVaeConfig;
use crate::models::sbnn::SbnnConfig;
use crate::models::srrr::SrrrConfig;
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

/// The methods patchbench implements, with their hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
}

/// A coupled-mixture-VAE experiment: the model, the metadata column its
/// categories are scored against, and the seeds it is repeated with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixVaeSpec {
    /// Metadata column with the known types (for accuracy, ARI, AMI, confusion).
    #[serde(default)]
    pub labels: Option<String>,
    /// Seeds to repeat the fit with (metrics are averaged); empty = `model.seed` once.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// The model's hyperparameters.
    #[serde(default)]
    pub model: MixVaeConfig,
}

impl ModelSpec {
    /// Short lower-case name of the method, as in `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Srrr(_) => "srrr",
            ModelSpec::Sbnn(_) => "sbnn",
            ModelSpec::Cae { .. } => "cae",
            ModelSpec::PcCca { .. } => "pc_cca",
            ModelSpec::MixVae(_) => "mixvae",
        }
    }

    /// How many modalities the model needs.
    pub fn modality_count(&self) -> usize {
        match self {
            ModelSpec::Srrr(_) | ModelSpec::Sbnn(_) | ModelSpec::PcCca { .. } => 2,
            // One arm per modality; the default arms are for two.
            ModelSpec::Cae { model, .. } => model.arms.len().max(2),
            ModelSpec::MixVae(_) => 1,
        }
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
        }
    }
}
