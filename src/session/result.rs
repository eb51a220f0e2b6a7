use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::confusion::Confusion;
use crate::artifact::calibrate::Calibration;
use crate::artifact::{AlignmentReport, Provenance as ArtifactProvenance};
use crate::models::mixvae::Traversal;
use crate::models::sbnn::LatentGrid;
use crate::models::srrr::LambdaRow;
use crate::nn::DeviceChoice;
use crate::prep::Report;

/// What an experiment's last run produced. Stored in the session so that every
/// view can be shown again without retraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentResult {
    /// Scalar metrics by name (`cv_r2_mean`, `cv_r2_sd`, `n_genes`, `seconds`, ...).
    pub metrics: BTreeMap<String, f64>,
    /// The main metric of every fold, in fold order.
    pub per_fold: Vec<f64>,
    /// Per-feature scores (e.g. per-feature cross-validated R²), in feature order.
    #[serde(default)]
    pub per_feature: Vec<FeatureScore>,
    /// Selected input features of the model fitted on all cells, best first.
    #[serde(default)]
    pub genes: Vec<FeatureScore>,
    /// Latent coordinates of every cell, from the model fitted on all cells.
    #[serde(default)]
    pub latent: Option<Latent>,
    /// Further named latent spaces besides `latent` (e.g. `z_E` of a coupled
    /// model whose `latent` is `z_T`); the view pane's latent toggle cycles them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latents: Vec<NamedLatent>,
    /// Observed and predicted features of one modality from another, for the
    /// cross-modal view (filled by models that translate between modalities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_modal: Option<CrossModal>,
    /// Per-epoch (or per-step) training curves, for the loss-curve pane.
    #[serde(default)]
    pub curves: Vec<Curve>,
    /// Confusion matrices of the run's classifiers and clusterings.
    #[serde(default)]
    pub confusions: Vec<Confusion>,
    /// What preprocessing did to each modality, by modality name.
    #[serde(default)]
    pub preprocessing: BTreeMap<String, Report>,
    /// Model-specific detail (e.g. sRRR's whole λ path).
    pub detail: ResultDetail,
    /// Weight files of the run's trained networks (safetensors), relative to
    /// the session's folder (`<stem>.weights/<experiment>/<network>.safetensors`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<String>,
    /// What is needed to reproduce the run.
    pub provenance: Provenance,
}

/// Model-specific parts of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ResultDetail {
    /// Sparse reduced-rank regression's cross-validation over the λ grid.
    Srrr {
        /// Number of latent components.
        rank: usize,
        /// Gene counts and test R² of every λ, ascending.
        lambdas: Vec<LambdaRow>,
        /// The λ that met the gene-count target, if any did.
        chosen_lambda: Option<f64>,
        /// Response loadings V of the final fit, one row per target feature.
        loadings: Vec<Vec<f64>>,
        /// Rows of W of the final fit, one per selected gene in the order of
        /// the result's `genes` (empty in results saved before they were kept).
        #[serde(default)]
        weights: Vec<Vec<f64>>,
        /// Fold-λ fits that stopped at the iteration limit.
        unconverged_fits: usize,
    },
    /// The sparse bottleneck network's cross-validation and final model.
    Sbnn {
        /// Regression epoch (from 0) at which the first layer was pruned.
        prune_epoch: usize,
        /// Regression epoch whose test predictions were scored (the last one
        /// unless the test-fold checkpoint leak was switched on).
        reported_epoch: usize,
        /// Genes each fold selected, strongest first.
        fold_genes: Vec<Vec<String>>,
        /// Names of the predicted features, in the order of the grid's values.
        outputs: Vec<String>,
        /// The final model's predictions over its 2-D latent plane.
        grid: Option<LatentGrid>,
    },
    /// A latent-space model judged by [`crate::analysis::latent_eval`]
    /// (k-CAE or PC-CCA). The result's `latent` holds the out-of-fold `z_T`
    /// and `latents` the out-of-fold `z_E` of the same cells, in the same order.
    Latents {
        /// Every metric of every fold, in fold order.
        fold_metrics: Vec<BTreeMap<String, f64>>,
        /// Coupling name (`min_singular_value`, ...), or `pc_cca`.
        coupling: String,
        /// Coupling weight λ (0 for PC-CCA).
        lambda: f64,
    },
    /// The coupled mixture VAE's categories (from the first seed's fit).
    MixVae {
        /// Number of agents.
        agents: usize,
        /// Number of categories K.
        categories: usize,
        /// Cells per consensus category, for every seed (first seed first).
        category_sizes: Vec<Vec<usize>>,
        /// Consensus category of every cell (cells in `latent` order).
        consensus: Vec<usize>,
        /// Every agent's category and confidence per cell.
        assignments: Vec<AgentCategories>,
        /// Agent 0's per-category state traversals.
        traversals: Vec<Traversal>,
        /// Median wall-clock seconds per training epoch.
        seconds_per_epoch: f64,
    },
    /// Another experiment's trained model applied to new cells (the
    /// result's `latent` holds the applied cells' latent codes, its
    /// `cross_modal` their predicted targets next to the measured ones).
    Apply(Box<ApplyDetail>),
}

/// What an `Apply` experiment stores beside its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyDetail {
    /// The experiment whose model was applied.
    pub model_from: String,
    /// Its model kind (`sbnn`, `cae`, ...).
    pub model: String,
    /// The artifact's provenance (training data and configuration fingerprints).
    pub artifact: ArtifactProvenance,
    /// The name of the model-from result's latent space the applied cells'
    /// `latent` lies in (`z` for the result's `latent`, else a `latents` name).
    pub training_latent: String,
    /// The feature-alignment report.
    pub report: AlignmentReport,
    /// Its human-readable lines, as `patchbench apply` prints them.
    pub report_lines: Vec<String>,
    /// Per-cell predicted classes (`family_from_z_T`, `category_from_consensus`,
    /// ...), cells in the order of the result's `latent`.
    #[serde(default)]
    pub classes: Vec<(String, Vec<Option<String>>)>,
    /// The recalibration, where asked for (never applied to the predictions).
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// One agent's category and maximum posterior for every cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCategories {
    /// `argmax_k q(c = k | x)` per cell.
    pub category: Vec<usize>,
    /// `max_k q(c = k | x)` per cell.
    pub confidence: Vec<f32>,
}

/// A named score: a gene and its weight norm, or a feature and its R².
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureScore {
    /// Gene or feature name.
    pub name: String,
    /// Its score.
    pub score: f64,
}

/// A named training curve: one value per step (epoch), averaged over folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Curve {
    /// What is measured (`train_r2`, `test_r2`, `loss`, ...).
    pub name: String,
    /// The value at step 0, 1, 2, ...
    pub values: Vec<f64>,
}

/// Latent coordinates of cells, row-major (`values[cell * dims + d]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latent {
    /// Number of latent dimensions.
    pub dims: usize,
    /// Cell ids, one per row.
    pub cells: Vec<String>,
    /// `cells.len() * dims` coordinates, row-major.
    pub values: Vec<f32>,
}

/// A latent space with a name (`z_T`, `z_E`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedLatent {
    /// What the space is, for display.
    pub name: String,
    /// The coordinates.
    pub latent: Latent,
}

/// Cross-modal predictions: one modality's features predicted from another's,
/// next to the observed values, for the same cells. Matrices are row-major
/// (`observed[cell * features.len() + feature]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossModal {
    /// The modality predicted from (e.g. `T`).
    pub source: String,
    /// The modality predicted (e.g. `E`).
    pub target: String,
    /// Names of the predicted features.
    pub features: Vec<String>,
    /// Cell ids, one per row.
    pub cells: Vec<String>,
    /// Observed target values, `cells.len() * features.len()`.
    pub observed: Vec<f32>,
    /// Predicted target values, same shape as `observed`.
    pub predicted: Vec<f32>,
}

/// The facts needed to reproduce a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// patchbench version that produced it.
    pub patchbench: String,
    /// Seconds since the Unix epoch when the run finished.
    pub finished_at: u64,
    /// Wall-clock seconds the run took.
    pub seconds: f64,
    /// Worker threads used.
    pub threads: usize,
    /// The device the run's networks trained on (`Cpu` for models that have
    /// no GPU path); results saved before this field existed ran on the CPU.
    #[serde(default)]
    pub device: DeviceChoice,
    /// [`super::fingerprint`] of the experiment's configuration when it ran;
    /// a result whose fingerprint differs from the current one is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

impl Provenance {
    /// The provenance of a run that has just finished, took `seconds` on
    /// `threads` worker threads and `device`, this patchbench's version; the
    /// configuration's fingerprint is left for the caller to stamp.
    pub fn finished_now(seconds: f64, threads: usize, device: DeviceChoice) -> Self {
        Provenance {
            patchbench: env!("CARGO_PKG_VERSION").into(),
            finished_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            seconds,
            threads,
            device,
            config: None,
        }
    }
}
