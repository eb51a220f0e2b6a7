//! One agent's autoencoder: augmented input → hidden layers → linear latent
//! (batch-normalised without scale or shift for every coupling but the plain
//! one) → mirrored hidden layers → reconstruction.

use ndarray::{Array1, Array2};
use rand_chacha::ChaCha8Rng;

use super::config::{Activation, ArmConfig};
use crate::nn::{self, BatchNorm, Linear, Mode, NnError, ParamStore, Var};

/// The layers of one agent.
#[derive(Debug, Clone)]
pub struct Arm {
    settings: ArmConfig,
    encoder: Vec<Linear>,
    latent: Linear,
    norm: Option<BatchNorm>,
    decoder: Vec<Linear>,
    output: Linear,
}

fn activate(x: Var, activation: Activation) -> Result<Var, NnError> {
    match activation {
        Activation::Linear => Ok(x),
        Activation::Relu => x.relu(),
        Activation::Elu => x.elu(),
    }
}

impl Arm {
    /// Registers the layers of agent `name` with `inputs` features.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        inputs: usize,
        latent_dims: usize,
        settings: &ArmConfig,
        batch_norm: Option<f32>,
        rng: &mut ChaCha8Rng,
    ) -> Result<Arm, NnError> {
        let mut encoder = Vec::new();
        let mut width = inputs;
        for (i, &h) in settings.hidden.iter().enumerate() {
            encoder.push(Linear::new(
                store,
                &format!("{name}.enc{i}"),
                width,
                h,
                rng,
            )?);
            width = h;
        }
        let latent = Linear::new(store, &format!("{name}.latent"), width, latent_dims, rng)?;
        let norm = match batch_norm {
            Some(momentum) => {
                let mut bn = BatchNorm::new(store, &format!("{name}.bn"), latent_dims, false)?;
                bn.momentum = momentum;
                bn.eps = 1e-6;
                Some(bn)
            }
            None => None,
        };
        let mut decoder = Vec::new();
        width = latent_dims;
        for (i, &h) in settings.hidden.iter().rev().enumerate() {
            decoder.push(Linear::new(
                store,
                &format!("{name}.dec{i}"),
                width,
                h,
                rng,
            )?);
            width = h;
        }
        let output = Linear::new(store, &format!("{name}.out"), width, inputs, rng)?;
        Ok(Arm {
            settings: settings.clone(),
            encoder,
            latent,
            norm,
            decoder,
            output,
        })
    }

    /// The settings this arm was built with.
    pub fn settings(&self) -> &ArmConfig {
        &self.settings
    }

    /// The code before batch normalisation; augmentation only in [`Mode::Train`].
    pub fn pre_latent(
        &self,
        store: &ParamStore,
        x: Var,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Var, NnError> {
        let x = nn::gaussian_noise(x, self.settings.input_noise, mode, rng)?;
        let mut h = nn::dropout(x, self.settings.input_dropout, mode, rng)?;
        for layer in &self.encoder {
            h = activate(layer.forward(store, h)?, self.settings.activation)?;
        }
        self.latent.forward(store, h)
    }

    /// The latent code `z`.
    pub fn encode(
        &self,
        store: &mut ParamStore,
        x: Var,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Var, NnError> {
        let pre = self.pre_latent(store, x, mode, rng)?;
        match &self.norm {
            Some(bn) => bn.forward(store, pre, mode),
            None => Ok(pre),
        }
    }

    /// The reconstruction `D(z)`.
    pub fn decode(&self, store: &ParamStore, z: Var) -> Result<Var, NnError> {
        let mut h = z;
        for layer in &self.decoder {
            h = activate(layer.forward(store, h)?, self.settings.activation)?;
        }
        activate(self.output.forward(store, h)?, self.settings.output)
    }

    /// Sets the latent normalisation's inference statistics to the mean and
    /// unbiased variance of the pre-normalisation codes `pre` (one row per
    /// training cell), instead of the running averages of the last batches.
    pub fn set_population_statistics(
        &self,
        store: &mut ParamStore,
        pre: &Array2<f32>,
    ) -> Result<(), NnError> {
        let Some(bn) = &self.norm else {
            return Ok(());
        };
        let n = pre.nrows();
        if n < 2 {
            return Ok(());
        }
        let mean: Array1<f32> = pre.mean_axis(ndarray::Axis(0)).unwrap_or_default();
        let var = Array1::from_iter(
            pre.columns()
                .into_iter()
                .zip(mean.iter())
                .map(|(c, &m)| c.iter().map(|&v| (v - m) * (v - m)).sum::<f32>() / (n - 1) as f32),
        );
        store.set_vector(bn.running_mean, &mean)?;
        store.set_vector(bn.running_var, &var)
    }
}
