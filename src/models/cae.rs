//! k-coupled autoencoders (k-CAE, Gala et al. 2019) for any number k ≥ 2 of
//! modalities.
//!
//! One autoencoder per modality ([`arm`]) maps its cells to a shared
//! d-dimensional latent space; a coupling ([`coupling`]) pulls together the
//! codes of the same cell in different modalities. The loss is
//! `Σ_i α_i · mse_i + λ · Σ_{i<j} c(Z_i, Z_j)`, trained with Adam on
//! partially paired mini-batches ([`batches`]). [`config`] holds the settings,
//! [`data`] the training cells, [`train`] the loop and [`model`] the trained
//! network with cross-modal prediction. [`spectral`] has the small linear
//! algebra (C_MSV's power iteration).

pub mod arm;
pub mod batches;
pub mod config;
pub mod coupling;
pub mod data;
mod dense_arm;
pub mod model;
pub mod spectral;
pub mod train;

pub use config::{Activation, ArmConfig, CaeConfig, ConvFront};
pub use coupling::{
    BatchNormDistance, Coupling, CouplingCost, CouplingKind, FullCovariance, MinSingularValue,
    SquaredDistance,
};
pub use data::MultiModal;
pub use model::CoupledAutoencoder;
pub use train::{LossRecord, Trained, max_abs_correlation, train, train_on};

use std::path::Path;

use super::{Headline, Method, SettingError, Weights, method};
use crate::nn::NnError;

/// Why a coupled autoencoder could not be built or trained.
#[derive(Debug, thiserror::Error)]
pub enum CaeError {
    /// A setting is out of range.
    #[error("cae setting `{field}`: {message}")]
    Config {
        /// The setting.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The training data are inconsistent.
    #[error("cae data: {0}")]
    Data(String),
    /// The loss became NaN or infinite.
    #[error(
        "cae training diverged: the loss is not finite at step {step}; try a smaller `learning_rate` (now {learning_rate})"
    )]
    NonFinite {
        /// The step.
        step: usize,
        /// The learning rate it trained with.
        learning_rate: f64,
    },
    /// The user stopped the run.
    #[error("cae training was cancelled")]
    Cancelled,
    /// A fold's worker thread stopped unexpectedly.
    #[error("a k-CAE fold's worker thread stopped unexpectedly")]
    WorkerFailed,
    /// The neural layer failed.
    #[error(transparent)]
    Nn(#[from] NnError),
}

impl Method for CaeConfig {
    fn kind(&self) -> &'static str {
        "cae"
    }

    /// One arm per modality; the default arms are for two.
    fn modality_count(&self) -> usize {
        self.arms.len().max(2)
    }

    fn validate(&self) -> Result<(), SettingError> {
        CaeConfig::validate(self, self.modality_count()).map_err(|error| match error {
            CaeError::Config { field, message } => SettingError::new(field, message),
            other => SettingError::new("arms", other.to_string()),
        })
    }

    fn headline(&self) -> &'static [Headline] {
        method::LATENT_HEADLINE
    }
}

impl Weights for CoupledAutoencoder {
    fn save(&self, path: &Path) -> Result<(), NnError> {
        self.store.save(path)
    }

    fn restore(&mut self, path: &Path) -> Result<(), NnError> {
        self.store.load_into(path)
    }
}
