//! Hyperparameters of the coupled mixture VAE and their validation.

use serde::{Deserialize, Serialize};

use super::MixVaeError;

/// How the category probabilities `q(c | x)` are computed from the logits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SoftmaxMode {
    /// `q = softmax(logits)` (the paper).
    Single,
    /// `q = softmax(softmax(logits) / tau)`, the sharpening of the MMIDAS code.
    Double {
        /// The temperature of the second softmax (MMIDAS: 0.005).
        tau: f32,
    },
}

/// What the coupling's distance compares between two agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CouplingInput {
    /// The relaxed category samples `c` (the paper: `E_q(c_a) E_q(c_b) d²(c_a, c_b)`,
    /// with σ the mini-batch spread of `c`). Near one-hot samples make the
    /// expected distance grow with the chance that the agents disagree, so
    /// two agents settle on the same confident category.
    Samples,
    /// The probabilities `q(c | x)` (the MMIDAS code). With the default
    /// `variance_eps` and `log_floor` it did about as well as `Samples` on
    /// the digits (README).
    Probabilities,
}

/// The prior of the continuous state `s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatePrior {
    /// `p(s | c) = N(μ_c, diag σ²_c)` with learned per-category means and
    /// log-variances (the paper's category-dependent prior).
    PerCategory,
    /// `p(s) = N(0, I)` for every category (the MMIDAS code).
    Standard,
}

/// The noise of the state's reparameterisation `s = μ + ξ σ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateNoise {
    /// `ξ ~ N(0, I)`, as the method intends.
    Gaussian,
    /// `ξ ~ U[0, 1)`, faithful to the MMIDAS code at HEAD (a bug there).
    UniformHead,
}

/// The output activation of the decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// `max(x, 0)`, for non-negative data such as log expression (MMIDAS).
    Relu,
    /// No activation, for standardised data.
    Linear,
}

/// What picks the kept fit among restarts (`MixVaeConfig::restarts`); the
/// higher score wins, the first of equals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RestartCriterion {
    /// The share of cells on which the agents agree (needs 2 or more agents).
    #[default]
    Agreement,
    /// The share of augmented copies whose category is their cell's own,
    /// averaged over agents (`MixVaeFit::augment_consistency`; needs an
    /// augmentation).
    Consistency,
}

impl RestartCriterion {
    /// Whether this is the default, so that it is not written.
    fn is_default(&self) -> bool {
        *self == RestartCriterion::Agreement
    }
}

/// How each agent's own copy of a sample is made (type-preserving augmentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Augmentation {
    /// Every agent sees the same sample.
    None,
    /// Each agent sees the sample with entries zeroed with probability `rate`
    /// (survivors scaled by `1 / (1 − rate)`).
    Dropout {
        /// Probability of zeroing an entry, in `[0, 1)`.
        rate: f32,
    },
    /// Each agent sees the sample plus independent `N(0, std²)` noise.
    Noise {
        /// Standard deviation of the noise.
        std: f32,
    },
    /// Each agent sees the sample, read as an image `width` pixels wide,
    /// rotated by its own random angle in `[−degrees, degrees]` (the paper's
    /// cpl-mixVAE^a on MNIST: ±20°) and, when `shift` or `scale` is set,
    /// also shifted and resized by its own random amounts (ours, not the
    /// paper's). Needs every pixel, in image order.
    Rotation {
        /// The largest rotation, in degrees (0 to 180).
        degrees: f32,
        /// The image width in pixels (28 for MNIST); the feature count must
        /// be a multiple of it.
        width: usize,
        /// The largest shift along each axis, in pixels (0, the default:
        /// none; not written when 0).
        #[serde(default, skip_serializing_if = "is_zero")]
        shift: f32,
        /// The largest relative change of size, in `[0, 1)`: each copy is
        /// scaled about the centre by a factor in `[1 − scale, 1 + scale]`
        /// (0, the default: none; not written when 0).
        #[serde(default, skip_serializing_if = "is_zero")]
        scale: f32,
    },
    /// The paper's augmenter: a generator trained on the data before the
    /// mixture model, adding noise in its low-dimensional representation.
    Generator(GeneratorConfig),
}

/// Whether an optional limit is unset, so that it is not written.
fn is_zero(value: &f32) -> bool {
    *value == 0.0
}

/// Whether a count is the default single fit, so that it is not written.
fn is_one(value: &usize) -> bool {
    *value == 1
}

/// Hyperparameters of the type-preserving generator (paper Eq. 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Width of the hidden layers (MMIDAS: 500).
    pub hidden: usize,
    /// Dimension of the low-dimensional representation `z` (MMIDAS: 10).
    pub latent: usize,
    /// Dimension of the noise `n` (MMIDAS: 50).
    pub noise_dim: usize,
    /// Scale of the noise when augmenting (MMIDAS: 0.1) and training.
    pub noise_scale: f32,
    /// Training epochs of the generator.
    pub epochs: usize,
    /// Mini-batch size of the generator's training.
    pub batch_size: usize,
    /// Adam learning rate of generator and discriminator.
    pub learning_rate: f64,
    /// Triplet margin α: noisy samples sit at least α farther from `x` than clean ones.
    pub margin: f32,
    /// Weight of the adversarial term.
    pub adversarial_weight: f32,
    /// Weight of the triplet term.
    pub triplet_weight: f32,
    /// Weight γ of `KL(q(z|x) ‖ q(z|x, n))`.
    pub latent_weight: f32,
    /// Weight of the reconstruction of the noise-free output.
    pub reconstruction_weight: f32,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            hidden: 256,
            latent: 10,
            noise_dim: 50,
            noise_scale: 0.1,
            epochs: 100,
            batch_size: 128,
            learning_rate: 1e-3,
            margin: 0.2,
            adversarial_weight: 1.0,
            triplet_weight: 0.5,
            latent_weight: 0.1,
            reconstruction_weight: 0.5,
        }
    }
}

/// Hyperparameters of a coupled mixture VAE fit. Fields left out of a RON
/// text take the defaults shown: the MMIDAS settings, except for the four
/// coupling settings (`coupling_input`, `variance_eps`, `log_floor`,
/// `same_init`) with which two agents beat one in our runs (README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixVaeConfig {
    /// Number of agents A (1 = the single-agent baseline).
    pub agents: usize,
    /// Number of categories K.
    pub categories: usize,
    /// Dimension of the continuous state s (MMIDAS: 2).
    pub state_dim: usize,
    /// Width of the hidden layers (MMIDAS: 100).
    pub hidden: usize,
    /// Number of hidden layers in encoder and decoder (MMIDAS: 4).
    pub hidden_layers: usize,
    /// Dimension of the encoder's low-dimensional embedding (MMIDAS: 10).
    pub low_dim: usize,
    /// Gumbel-softmax temperature τ, in (0, 1] (MMIDAS: 1; paper MNIST: 0.67).
    pub temperature: f32,
    /// Straight-through Gumbel-softmax: one-hot samples forward, soft gradients back.
    pub hard: bool,
    /// How `q(c | x)` is computed.
    pub softmax: SoftmaxMode,
    /// What the coupling compares.
    pub coupling_input: CouplingInput,
    /// Weight λ of the Aitchison-distance coupling.
    pub lambda: f32,
    /// Weight β of the state KL (MMIDAS: 0.01).
    pub beta: f32,
    /// Weight of `KL(c̄ ‖ uniform)` on each agent's mini-batch mean of what
    /// the coupling compares (the samples `c` or the probabilities `q`; 0 =
    /// off, as in the paper; our addition against unused categories). On
    /// near one-hot samples it evens out the categories' actual use, where
    /// a balanced mean `q` still allows empty categories.
    pub balance_weight: f32,
    /// Weight of the category entropy terms `H(c | x)` (1 = the paper's
    /// confidence penalty; a single agent keeps it as its ELBO's categorical KL).
    pub entropy_weight: f32,
    /// Prior of the state.
    pub state_prior: StatePrior,
    /// Reparameterisation noise of the state.
    pub state_noise: StateNoise,
    /// Dropout on the encoder input (MMIDAS: 0.5).
    pub input_dropout: f32,
    /// Dropout on the state before decoding (MMIDAS: 0.2).
    pub state_dropout: f32,
    /// ε added to the mini-batch variances in d_σ, `σ_k = √(Var + ε)`
    /// (MMIDAS: 1e-8). A small ε lets the weight `1/σ_k` of a rarely used
    /// category reach 10⁴, and the distance is then ruled by mismatched
    /// spreads instead of per-cell disagreement; ε = 1 keeps `1/σ_k` in (0.9, 1].
    pub variance_eps: f32,
    /// The zero replacement δ of the coupling: d²_σ compares `ln(c + δ)`
    /// (MMIDAS: 1e-8, on q). Log-ratios of compositions need positive parts; the
    /// floor also makes two confident agents that agree a minimum of the
    /// distance, where the unfloored `ln q` of the tails keeps growing with
    /// confidence and rewards flat `q`.
    pub log_floor: f32,
    /// Decoder output activation.
    pub output: Output,
    /// Whether all agents share one network (the paper's cpl-mixVAE*); on
    /// the CPU's dense engine only (refused on a GPU).
    pub shared: bool,
    /// Whether the agents' separate networks start from the same random
    /// weights, so that category k means the same to every agent from the
    /// first step and the coupling need not first align their labellings.
    pub same_init: bool,
    /// Every this many epochs in the second half of training, each category
    /// that no cell falls in is re-seeded by splitting the largest one (0:
    /// never; not in the paper or MMIDAS). Without it, a K larger than the
    /// data supports leaves some categories empty (README).
    pub revive_every: usize,
    /// Each agent's type-preserving augmentation.
    pub augmentation: Augmentation,
    /// Whether each agent's batch holds the samples themselves ahead of its
    /// augmented copies, 2N rows in all (MMIDAS: an arm's input is
    /// `concat(x, x_aug)`); the coupling then compares the agents' codes of
    /// the samples and of their copies row by row. Off, as in the paper,
    /// each agent sees only its copy. Not written when off, so the
    /// fingerprints of existing experiments stay what they were.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub with_originals: bool,
    /// How many times to fit from different seeds, keeping the fit that
    /// scores best by `restart_by` (like k-means' restarts; no labels used).
    /// Restart 0 uses `seed` itself, so 1 (the default, not written) is a
    /// single fit. Not in the paper.
    #[serde(skip_serializing_if = "is_one")]
    pub restarts: usize,
    /// What picks the kept fit among restarts (not written when the default).
    #[serde(skip_serializing_if = "RestartCriterion::is_default")]
    pub restart_by: RestartCriterion,
    /// Training epochs.
    pub epochs: usize,
    /// Mini-batch size (at least 2: d_σ needs a mini-batch variance).
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of initialisation, batching and every random draw.
    pub seed: u64,
    /// Points per state traversal.
    pub traversal_steps: usize,
    /// Genes kept per traversal (those that change most).
    pub traversal_genes: usize,
}

impl Default for MixVaeConfig {
    fn default() -> Self {
        MixVaeConfig {
            agents: 2,
            categories: 10,
            state_dim: 2,
            hidden: 100,
            hidden_layers: 4,
            low_dim: 10,
            temperature: 1.0,
            hard: false,
            softmax: SoftmaxMode::Single,
            coupling_input: CouplingInput::Samples,
            lambda: 1.0,
            beta: 1.0,
            balance_weight: 0.0,
            entropy_weight: 1.0,
            state_prior: StatePrior::PerCategory,
            state_noise: StateNoise::Gaussian,
            input_dropout: 0.5,
            state_dropout: 0.2,
            variance_eps: 1.0,
            log_floor: 1e-3,
            output: Output::Relu,
            shared: false,
            same_init: true,
            revive_every: 10,
            augmentation: Augmentation::None,
            with_originals: false,
            restarts: 1,
            restart_by: RestartCriterion::Agreement,
            epochs: 100,
            batch_size: 256,
            learning_rate: 1e-3,
            seed: 0,
            traversal_steps: 9,
            traversal_genes: 8,
        }
    }
}

impl MixVaeConfig {
    /// Checks every field; the error names the field and what was expected.
    pub fn validate(&self) -> Result<(), MixVaeError> {
        let bad = |field: &str, expected: &str, got: String| {
            Err(MixVaeError::Config {
                field: field.to_string(),
                message: format!("expected {expected}, got {got}"),
            })
        };
        let positive = [
            ("agents", self.agents),
            ("state_dim", self.state_dim),
            ("hidden", self.hidden),
            ("hidden_layers", self.hidden_layers),
            ("low_dim", self.low_dim),
            ("epochs", self.epochs),
            ("traversal_steps", self.traversal_steps),
        ];
        for (field, value) in positive {
            if value == 0 {
                return bad(field, "at least 1", value.to_string());
            }
        }
        if self.categories < 2 {
            return bad("categories", "at least 2", self.categories.to_string());
        }
        if self.restarts == 0 {
            return bad("restarts", "at least 1", "0".to_string());
        }
        if self.restarts > 1 && self.restart_by == RestartCriterion::Agreement && self.agents < 2 {
            return bad(
                "restarts",
                "1 with a single agent when restarts are picked by the agents' agreement",
                self.restarts.to_string(),
            );
        }
        if self.restarts > 1
            && self.restart_by == RestartCriterion::Consistency
            && self.augmentation == Augmentation::None
        {
            return bad(
                "restarts",
                "1 without an augmentation when restarts are picked by consistency",
                self.restarts.to_string(),
            );
        }
        if self.batch_size < 2 {
            return bad(
                "batch_size",
                "at least 2 (d_σ needs a mini-batch variance)",
                self.batch_size.to_string(),
            );
        }
        if !(self.temperature > 0.0 && self.temperature <= 1.0) {
            return bad(
                "temperature",
                "a value in (0, 1]",
                self.temperature.to_string(),
            );
        }
        if let SoftmaxMode::Double { tau } = self.softmax
            && !(tau > 0.0 && tau.is_finite())
        {
            return bad("softmax.tau", "a positive number", tau.to_string());
        }
        for (field, value) in [
            ("lambda", self.lambda),
            ("beta", self.beta),
            ("balance_weight", self.balance_weight),
            ("entropy_weight", self.entropy_weight),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return bad(field, "a finite non-negative number", value.to_string());
            }
        }
        for (field, value) in [
            ("input_dropout", self.input_dropout),
            ("state_dropout", self.state_dropout),
        ] {
            if !(0.0..1.0).contains(&value) {
                return bad(field, "a rate in [0, 1)", value.to_string());
            }
        }
        if !(self.log_floor > 0.0 && self.log_floor < 1.0) {
            return bad(
                "log_floor",
                "a number in (0, 1)",
                self.log_floor.to_string(),
            );
        }
        if !(self.variance_eps > 0.0 && self.variance_eps.is_finite()) {
            return bad(
                "variance_eps",
                "a positive number",
                self.variance_eps.to_string(),
            );
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                "a positive number",
                self.learning_rate.to_string(),
            );
        }
        match &self.augmentation {
            Augmentation::None => Ok(()),
            Augmentation::Dropout { rate } if !(0.0..1.0).contains(rate) => {
                bad("augmentation.rate", "a rate in [0, 1)", rate.to_string())
            }
            Augmentation::Noise { std } if !(*std >= 0.0 && std.is_finite()) => bad(
                "augmentation.std",
                "a finite non-negative number",
                std.to_string(),
            ),
            Augmentation::Rotation { degrees, .. } if !(0.0..=180.0).contains(degrees) => bad(
                "augmentation.degrees",
                "an angle in [0, 180]",
                degrees.to_string(),
            ),
            Augmentation::Rotation { width: 0, .. } => {
                bad("augmentation.width", "a positive width", "0".to_string())
            }
            Augmentation::Rotation { shift, .. } if !(*shift >= 0.0 && shift.is_finite()) => bad(
                "augmentation.shift",
                "a finite non-negative number of pixels",
                shift.to_string(),
            ),
            Augmentation::Rotation { scale, .. } if !(0.0..1.0).contains(scale) => bad(
                "augmentation.scale",
                "a relative change of size in [0, 1)",
                scale.to_string(),
            ),
            Augmentation::Generator(g) => g.validate(),
            _ => Ok(()),
        }
    }
}

impl GeneratorConfig {
    fn validate(&self) -> Result<(), MixVaeError> {
        let bad = |field: &str, expected: &str, got: String| {
            Err(MixVaeError::Config {
                field: format!("augmentation.{field}"),
                message: format!("expected {expected}, got {got}"),
            })
        };
        for (field, value) in [
            ("hidden", self.hidden),
            ("latent", self.latent),
            ("noise_dim", self.noise_dim),
            ("epochs", self.epochs),
        ] {
            if value == 0 {
                return bad(field, "at least 1", value.to_string());
            }
        }
        if self.batch_size < 2 {
            return bad("batch_size", "at least 2", self.batch_size.to_string());
        }
        for (field, value) in [
            ("noise_scale", self.noise_scale),
            ("margin", self.margin),
            ("adversarial_weight", self.adversarial_weight),
            ("triplet_weight", self.triplet_weight),
            ("latent_weight", self.latent_weight),
            ("reconstruction_weight", self.reconstruction_weight),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return bad(field, "a finite non-negative number", value.to_string());
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(
                "learning_rate",
                "a positive number",
                self.learning_rate.to_string(),
            );
        }
        Ok(())
    }
}
