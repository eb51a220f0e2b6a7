//! The sparse bottleneck neural network (sBNN) of Bernaerts, Berens and Kobak
//! (2021): gene expression → 512 → 128 → 2 (linear bottleneck) → 128 → 512 →
//! electrophysiology, ELU activations, a group lasso on the first layer's rows,
//! pruned to the strongest genes.
//!
//! [`config`] holds the settings (the paper's schedule by default) and their
//! checks, [`network`] the architecture, [`train`] the schedule for one set of
//! training cells, and [`cv`] the cross-validation with the final model on all
//! cells. The network runs on the fused dense path of [`crate::nn::dense`].

pub mod config;
pub mod cv;
pub mod network;
pub mod train;

pub use config::{PretrainWeights, SbnnConfig};
pub use cv::{FinalModel, LatentGrid, SbnnCvResult, cross_validate, fit_all_cells};
pub use train::{EpochReport, Rows, TrainInput, TrainedSbnn, train};

use std::collections::BTreeMap;
use std::path::Path;

use super::{Headline, Method, SettingError, Weights, method};
use crate::analysis::kmeans::KMeansError;
use crate::analysis::r2::R2Error;
use crate::analysis::scaling::ScalingError;
use crate::nn::NnError;
use crate::nn::dense::DenseNet;

/// Everything that can go wrong in an sBNN run.
#[derive(Debug, thiserror::Error)]
pub enum SbnnError {
    /// A setting is out of range.
    #[error("sBNN setting `{field}` = {value} is invalid: expected {expected}")]
    InvalidSetting {
        /// The field's name.
        field: &'static str,
        /// What is accepted.
        expected: &'static str,
        /// The value given.
        value: String,
    },
    /// More genes to keep than there are inputs.
    #[error(
        "sBNN setting `genes` asks to keep {keep} genes, but the data have only {inputs} input genes"
    )]
    TooManyGenes {
        /// Genes to keep.
        keep: usize,
        /// Input genes.
        inputs: usize,
    },
    /// The batch is larger than the training data.
    #[error("sBNN setting `batch_size` = {batch} is larger than the {cells} training cells")]
    BatchTooLarge {
        /// The batch size.
        batch: usize,
        /// Training cells.
        cells: usize,
    },
    /// Inputs of inconsistent shapes.
    #[error("sBNN input shapes disagree: {0}")]
    Shape(String),
    /// A value became NaN or infinite.
    #[error("sBNN {what} became NaN or infinite; try a smaller learning rate")]
    NonFinite {
        /// What diverged.
        what: &'static str,
    },
    /// Pre-training could not be set up.
    #[error("sBNN pre-training: {0}")]
    Pretraining(String),
    /// The neural layer failed.
    #[error("sBNN network")]
    Nn(#[from] NnError),
    /// k-means failed.
    #[error("sBNN k-means labels")]
    KMeans(#[from] KMeansError),
    /// A fold could not be scaled.
    #[error("{}", fold.map_or("final fit on all cells".to_string(), |f| format!("fold {f}")))]
    Scaling {
        /// The fold; None for the final fit.
        fold: Option<usize>,
        /// What went wrong.
        source: ScalingError,
    },
    /// Scoring failed.
    #[error("fold {fold}")]
    Score {
        /// The fold.
        fold: usize,
        /// What went wrong.
        source: R2Error,
    },
    /// No folds were given.
    #[error("sBNN cross-validation needs at least one fold")]
    NoFolds,
    /// The user stopped the run.
    #[error("sBNN run cancelled")]
    Cancelled,
    /// A worker thread died.
    #[error("an sBNN worker thread stopped unexpectedly")]
    WorkerFailed,
}

impl Method for SbnnConfig {
    fn kind(&self) -> &'static str {
        "sbnn"
    }

    fn modality_count(&self) -> usize {
        2
    }

    fn validate(&self) -> Result<(), SettingError> {
        SbnnConfig::validate(self).map_err(|error| {
            let field = match &error {
                SbnnError::InvalidSetting { field, .. } => *field,
                _ => "genes",
            };
            SettingError::new(field, error.to_string())
        })
    }

    fn headline(&self) -> &'static [Headline] {
        method::REGRESSION_HEADLINE
    }
}

/// A trained sBNN as saved beside the session: the fused dense network and
/// its header (input genes in order, outputs, `code_layers`, input scaling).
#[derive(Debug, Clone)]
pub struct SbnnWeights {
    /// The network.
    pub net: DenseNet,
    /// The safetensors header entries that say how to use it.
    pub info: BTreeMap<String, String>,
}

impl Weights for SbnnWeights {
    fn save(&self, path: &Path) -> Result<(), NnError> {
        self.net.save(path, &self.info)
    }

    fn restore(&mut self, path: &Path) -> Result<(), NnError> {
        let (net, info) = DenseNet::load(path)?;
        self.net = net;
        self.info = info;
        Ok(())
    }
}
