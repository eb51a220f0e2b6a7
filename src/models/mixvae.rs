//! The coupled mixture VAE (cpl-mixVAE; Marghi, Gala & Sümbül, arXiv
//! 2007.09880, now MMIDAS): unsupervised cell types from several coupled
//! autoencoding agents.
//!
//! Each of A agents is a VAE with a categorical type `c` (Gumbel-softmax with
//! temperature τ) and a continuous state `s` whose prior depends on `c`
//! ([`agent`]'s network). Every agent sees its own type-preserving augmented
//! copy of a cell ([`augment`]); the agents are coupled by the pairwise
//! objective in [`objective`]: reconstruction and state KL per agent, entropy
//! confidence terms, and λ times the Aitchison distance between their
//! categorical assignments with the mini-batch variance scaling d_σ that
//! prevents mode collapse. Each agent's network trains on its own thread
//! and device; the host joins them once per step for the coupling term
//! ([`train`]). Categories left empty are re-seeded from the largest
//! ([`revive`]). [`fit`] trains them and returns a [`MixVaeFit`]:
//! consensus and per-agent categories, confidences, states, agreement and
//! per-category state traversals.

mod agent;
mod augment;
mod config;
mod dense_agent;
mod head;
mod objective;
mod output;
#[cfg(not(feature = "cuda"))]
mod parallel;
mod revive;
mod rotate;
mod train;
mod trained;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use augment::{LabelPreservation, label_preservation};
pub use config::{
    Augmentation, CouplingInput, GeneratorConfig, MixVaeConfig, Output, RestartCriterion,
    SoftmaxMode, StateNoise, StatePrior,
};
pub use objective::{aitchison_distance_sq, clr, d_sigma_sq};
pub use output::{AgentAssignments, MixVaeFit, Traversal, TraversalFeature};
pub use train::{fit, fit_keeping, fit_keeping_on, restart_seeds};
pub use trained::{AgentNetwork, Assignment, TrainedMixVae};

use super::{Headline, Method, SettingError};
use crate::nn::NnError;

/// Why a mixture VAE fit failed.
#[derive(Debug, Error)]
pub enum MixVaeError {
    /// A hyperparameter is out of range.
    #[error("mixVAE setting `{field}`: {message}")]
    Config {
        /// The offending field.
        field: String,
        /// What was expected and what was found.
        message: String,
    },
    /// The data cannot be fitted.
    #[error("mixVAE data: {0}")]
    Data(String),
    /// The neural layer failed (including a NaN or infinite loss).
    #[error("mixVAE training")]
    Nn(#[from] NnError),
    /// The user stopped the run.
    #[error("mixVAE training was cancelled")]
    Cancelled,
}

/// The mean loss parts of one epoch (see [`objective`] for the terms).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochLoss {
    /// The minimised total.
    pub total: f64,
    /// Reconstruction, summed over agents.
    pub reconstruction: f64,
    /// State KL, summed over agents.
    pub kl: f64,
    /// d²_σ, summed over agent pairs.
    pub distance: f64,
    /// Category entropy `H(c | x)`, summed over agents.
    pub entropy: f64,
}

impl EpochLoss {
    /// Adds the pairs' `Σ d²_σ`, weighted by `lambda` in the total.
    fn add_coupling(&mut self, distance: f64, lambda: f32) {
        self.distance += distance;
        self.total += lambda as f64 * distance;
    }

    fn add(&mut self, other: &EpochLoss) {
        self.total += other.total;
        self.reconstruction += other.reconstruction;
        self.kl += other.kl;
        self.distance += other.distance;
        self.entropy += other.entropy;
    }

    fn scaled(&self, f: f64) -> EpochLoss {
        EpochLoss {
            total: self.total * f,
            reconstruction: self.reconstruction * f,
            kl: self.kl * f,
            distance: self.distance * f,
            entropy: self.entropy * f,
        }
    }
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

impl Method for MixVaeSpec {
    fn kind(&self) -> &'static str {
        "mixvae"
    }

    fn modality_count(&self) -> usize {
        1
    }

    fn validate(&self) -> Result<(), SettingError> {
        self.model.validate().map_err(|error| match error {
            MixVaeError::Config { field, message } => {
                SettingError::new(format!("model.{field}"), message)
            }
            other => SettingError::new("model", other.to_string()),
        })
    }

    fn label_columns(&self) -> Vec<(&'static str, &str)> {
        self.labels.iter().map(|c| ("labels", c.as_str())).collect()
    }

    fn headline(&self) -> &'static [Headline] {
        const HEADLINE: &[Headline] = &[
            Headline::with_sd("accuracy", "accuracy", "accuracy_sd"),
            Headline::with_sd("ARI", "ari", "ari_sd"),
            Headline::plain("categories used", "used_categories"),
        ];
        HEADLINE
    }
}
