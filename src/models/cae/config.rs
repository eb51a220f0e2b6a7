//! Settings of a coupled autoencoder and their validation.

use serde::{Deserialize, Serialize};

use super::CaeError;
use super::coupling::CouplingKind;
use crate::nn::dense::ConvShape;

/// Element-wise activation of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Identity.
    Linear,
    /// `max(x, 0)` (the paper).
    Relu,
    /// Exponential linear unit (the 2019 reference code).
    Elu,
}

/// One agent's autoencoder: input augmentation, hidden widths, reconstruction weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArmConfig {
    /// Widths of the encoder's hidden layers; the decoder mirrors them.
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Activation of the reconstruction layer (linear for standardised data).
    pub output: Activation,
    /// Dropout rate on the input during training.
    pub input_dropout: f32,
    /// Standard deviation of additive Gaussian input noise during training
    /// (applied before dropout, as in the reference code).
    pub input_noise: f32,
    /// Weight α of this agent's reconstruction error.
    pub weight: f64,
    /// A convolutional front before the hidden layers (the input must then
    /// be `height × width` single-channel images); `None`: dense layers only.
    /// Trains on the CPU's dense engine only. Left out of the serialised
    /// settings when `None`, so the fingerprints of arms without one stay
    /// what they were before the option existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conv: Option<ConvFront>,
}

/// An arm's convolutional front (Gala et al.'s MNIST encoder): a
/// `kernel × kernel` convolution with `maps` feature maps and same padding,
/// ReLU, `pool × pool` max-pooling, then dropout on the pooled features.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvFront {
    /// Feature maps.
    pub maps: usize,
    /// Kernel side (odd).
    pub kernel: usize,
    /// Max-pooling window side (and stride).
    pub pool: usize,
    /// Image height; the input's features are its pixels, row by row.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Dropout rate on the pooled features during training.
    #[serde(default)]
    pub dropout: f32,
}

impl ConvFront {
    /// The front's sizes.
    pub fn shape(&self) -> ConvShape {
        ConvShape {
            maps: self.maps,
            kernel: self.kernel,
            pool: self.pool,
            height: self.height,
            width: self.width,
        }
    }
}

impl ArmConfig {
    /// The paper's transcriptomic arm: 4 × 60 hidden units, input dropout 0.5.
    pub fn transcriptomic() -> Self {
        ArmConfig {
            hidden: vec![60; 4],
            activation: Activation::Elu,
            output: Activation::Linear,
            input_dropout: 0.5,
            input_noise: 0.0,
            weight: 1.0,
            conv: None,
        }
    }

    /// The paper's electrophysiological arm: 4 × 50 hidden units, Gaussian
    /// noise σ = 0.05 then dropout 0.1 on the input.
    pub fn electrophysiological() -> Self {
        ArmConfig {
            hidden: vec![50; 4],
            activation: Activation::Elu,
            output: Activation::Linear,
            input_dropout: 0.1,
            input_noise: 0.05,
            weight: 1.0,
            conv: None,
        }
    }
}

impl Default for ArmConfig {
    fn default() -> Self {
        ArmConfig::electrophysiological()
    }
}

/// Settings of a k-coupled autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaeConfig {
    /// Latent dimension d.
    pub latent_dims: usize,
    /// The coupling function.
    pub coupling: CouplingKind,
    /// Weight λ of the coupling.
    pub lambda: f64,
    /// One arm per modality, in the experiment's modality order. Empty means
    /// the paper's defaults: the first modality gets the T arm, the others the E arm.
    pub arms: Vec<ArmConfig>,
    /// Training steps (mini-batches).
    pub steps: usize,
    /// Cells per mini-batch and modality.
    pub batch_size: usize,
    /// How many of them are paired cells whose codes are coupled; the rest
    /// are drawn from all training cells and only reconstructed.
    pub paired_per_batch: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of the weights, batches and augmentation.
    pub seed: u64,
    /// Report the losses every this many steps.
    pub log_every: usize,
    /// Ridge added to covariances by C_FC.
    pub fc_ridge: f64,
    /// Floor of C_MSV's denominator.
    pub msv_floor: f64,
    /// Running-statistics momentum of the latent batch normalisation (Keras convention).
    pub bn_momentum: f32,
}

impl Default for CaeConfig {
    fn default() -> Self {
        CaeConfig {
            latent_dims: 3,
            coupling: CouplingKind::MinSingularValue,
            lambda: 1.0,
            arms: Vec::new(),
            steps: 5000,
            batch_size: 100,
            paired_per_batch: 75,
            learning_rate: 1e-3,
            seed: 0,
            log_every: 100,
            fc_ridge: 1e-3,
            msv_floor: 0.01,
            bn_momentum: 0.99,
        }
    }
}

impl CaeConfig {
    /// The arm settings for `modalities` agents (defaults filled in).
    pub fn arms_for(&self, modalities: usize) -> Vec<ArmConfig> {
        if self.arms.is_empty() {
            (0..modalities)
                .map(|i| {
                    if i == 0 {
                        ArmConfig::transcriptomic()
                    } else {
                        ArmConfig::electrophysiological()
                    }
                })
                .collect()
        } else {
            self.arms.clone()
        }
    }

    /// Checks the settings for a model of `modalities` agents.
    pub fn validate(&self, modalities: usize) -> Result<(), CaeError> {
        let bad = |field: &str, message: String| {
            Err(CaeError::Config {
                field: field.to_string(),
                message,
            })
        };
        if modalities < 2 {
            return bad("modalities", format!("need at least 2, got {modalities}"));
        }
        if !self.arms.is_empty() && self.arms.len() != modalities {
            return bad(
                "arms",
                format!("{} arms for {modalities} modalities", self.arms.len()),
            );
        }
        if self.latent_dims == 0 {
            return bad("latent_dims", "must be at least 1".into());
        }
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return bad(
                "lambda",
                format!("must be finite and >= 0, got {}", self.lambda),
            );
        }
        if self.batch_size < 2 {
            return bad(
                "batch_size",
                format!("must be at least 2, got {}", self.batch_size),
            );
        }
        if self.paired_per_batch > self.batch_size {
            return bad(
                "paired_per_batch",
                format!(
                    "{} exceeds batch_size {}",
                    self.paired_per_batch, self.batch_size
                ),
            );
        }
        if self.steps == 0 {
            return bad("steps", "must be at least 1".into());
        }
        if self.log_every == 0 {
            return bad("log_every", "must be at least 1".into());
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                format!("must be positive, got {}", self.learning_rate),
            );
        }
        if !(self.fc_ridge >= 0.0 && self.msv_floor >= 0.0) {
            return bad("fc_ridge/msv_floor", "must be non-negative".into());
        }
        if !(0.0..1.0).contains(&self.bn_momentum) {
            return bad(
                "bn_momentum",
                format!("must be in [0, 1), got {}", self.bn_momentum),
            );
        }
        for (i, arm) in self.arms_for(modalities).iter().enumerate() {
            let field = format!("arms[{i}]");
            if arm.hidden.contains(&0) {
                return bad(&field, "hidden widths must be positive".into());
            }
            if !(0.0..1.0).contains(&arm.input_dropout) {
                return bad(
                    &field,
                    format!("input_dropout must be in [0, 1), got {}", arm.input_dropout),
                );
            }
            if !(arm.input_noise >= 0.0 && arm.input_noise.is_finite()) {
                return bad(
                    &field,
                    format!("input_noise must be >= 0, got {}", arm.input_noise),
                );
            }
            if !(arm.weight >= 0.0 && arm.weight.is_finite()) {
                return bad(&field, format!("weight must be >= 0, got {}", arm.weight));
            }
            if let Some(front) = &arm.conv {
                if let Err(e) = front.shape().check() {
                    return bad(&field, e.to_string());
                }
                if !(0.0..1.0).contains(&front.dropout) {
                    return bad(
                        &field,
                        format!("conv dropout must be in [0, 1), got {}", front.dropout),
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        let c = CaeConfig::default();
        assert!(c.validate(2).is_ok());
        assert!(c.validate(3).is_ok());
        assert!(c.validate(1).is_err());
        let bad = CaeConfig {
            paired_per_batch: 200,
            ..CaeConfig::default()
        };
        let message = bad.validate(2).unwrap_err().to_string();
        assert!(message.contains("paired_per_batch"), "{message}");
        let bad = CaeConfig {
            arms: vec![ArmConfig::transcriptomic()],
            ..CaeConfig::default()
        };
        assert!(bad.validate(2).is_err());
    }

    #[test]
    fn a_conv_front_is_optional_and_checked() {
        let arm: ArmConfig = ron::from_str("(hidden: [4], weight: 0.5)").unwrap();
        assert_eq!(arm.conv, None);
        assert!(!ron::to_string(&arm).unwrap().contains("conv"));
        let arm: ArmConfig = ron::from_str(
            "(hidden: [4], conv: Some((maps: 2, kernel: 3, pool: 2, height: 4, width: 6, dropout: 0.4)))",
        )
        .unwrap();
        let front = arm.conv.unwrap();
        assert_eq!(front.shape().outputs(), 2 * 3 * 2);
        let config = CaeConfig {
            arms: vec![arm.clone(), arm.clone()],
            ..CaeConfig::default()
        };
        assert!(config.validate(2).is_ok());
        for bad in [
            ConvFront { kernel: 4, ..front },
            ConvFront { height: 5, ..front },
            ConvFront {
                dropout: 1.0,
                ..front
            },
        ] {
            let arm = ArmConfig {
                conv: Some(bad),
                ..arm.clone()
            };
            let config = CaeConfig {
                arms: vec![arm.clone(), arm],
                ..CaeConfig::default()
            };
            let message = config.validate(2).unwrap_err().to_string();
            assert!(message.contains("arms[0]"), "{message}");
        }
    }
}
