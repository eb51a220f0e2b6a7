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

pub use config::{Activation, ArmConfig, CaeConfig};
pub use coupling::{
    BatchNormDistance, Coupling, CouplingCost, CouplingKind, FullCovariance, MinSingularValue,
    SquaredDistance,
};
pub use data::MultiModal;
pub use model::CoupledAutoencoder;
pub use train::{LossRecord, Trained, train};

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
    #[error("cae training diverged: the loss is not finite at step {step}")]
    NonFinite {
        /// The step.
        step: usize,
    },
    /// The user stopped the run.
    #[error("cae training was cancelled")]
    Cancelled,
    /// The neural layer failed.
    #[error(transparent)]
    Nn(#[from] NnError),
}
