//! One agent's autoencoder: augmented input → (optionally a convolutional
//! front and dropout on its pooled features) → hidden layers → linear latent
//! (batch-normalised without scale or shift for every coupling but the plain
//! one) → mirrored hidden layers → reconstruction. The decoder is dense in
//! every case.

use ndarray::{Array1, Array2};
use rand_chacha::ChaCha8Rng;

use super::config::{Activation, ArmConfig};
use crate::nn::dense::{self, ConvLayer, DenseBatchNorm, DenseNet};
use crate::nn::{self, BatchNorm, Linear, Mode, NnError, ParamId, ParamRole, ParamStore, Var};

/// The dense engine's form of an arm's layers: the encoder up to the
/// (linear) latent layer, the latent normalisation, and the decoder.
#[derive(Debug, Clone)]
pub(super) struct ArmLayers {
    pub conv: Option<ConvLayer>,
    pub encoder: DenseNet,
    pub norm: Option<DenseBatchNorm>,
    pub decoder: DenseNet,
}

/// The layers of one agent.
#[derive(Debug, Clone)]
pub struct Arm {
    settings: ArmConfig,
    /// The convolutional front's kernel (`kernel² × maps`) and biases.
    conv: Option<(ParamId, ParamId)>,
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

impl From<Activation> for dense::Activation {
    fn from(activation: Activation) -> Self {
        match activation {
            Activation::Linear => dense::Activation::Linear,
            Activation::Relu => dense::Activation::Relu,
            Activation::Elu => dense::Activation::Elu,
        }
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
        let conv = match &settings.conv {
            Some(front) => {
                let shape = front.shape();
                let layer = ConvLayer::glorot(shape, rng)?;
                if inputs != shape.inputs() {
                    return Err(NnError::invalid(
                        "conv",
                        format!(
                            "a {}x{} image has {} pixels, the data {inputs} features",
                            shape.height,
                            shape.width,
                            shape.inputs()
                        ),
                    ));
                }
                let weight =
                    Array2::from_shape_vec((layer.kernel.inputs, shape.maps), layer.kernel.weight)
                        .map_err(|e| NnError::invalid("conv", e.to_string()))?;
                let w =
                    store.add_matrix(&format!("{name}.conv.weight"), &weight, ParamRole::Weight)?;
                let b =
                    store.add_zeros(&format!("{name}.conv.bias"), shape.maps, ParamRole::Bias)?;
                width = shape.outputs();
                Some((w, b))
            }
            None => None,
        };
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
            conv,
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

    /// The convolutional front's weights, if the arm has one.
    fn conv_layer(&self, store: &ParamStore) -> Result<Option<ConvLayer>, NnError> {
        match (&self.conv, &self.settings.conv) {
            (Some((w, b)), Some(front)) => Ok(Some(ConvLayer::new(
                front.shape(),
                store.values(*w)?,
                store.values(*b)?,
            )?)),
            _ => Ok(None),
        }
    }

    /// The code before batch normalisation; augmentation only in
    /// [`Mode::Train`]. An arm with a convolutional front runs it on the
    /// host, outside the tape, so it only encodes in [`Mode::Eval`] here
    /// (it trains on the dense engine).
    pub fn pre_latent(
        &self,
        store: &ParamStore,
        x: Var,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Var, NnError> {
        let x = nn::gaussian_noise(x, self.settings.input_noise, mode, rng)?;
        let mut h = nn::dropout(x, self.settings.input_dropout, mode, rng)?;
        if let Some(conv) = self.conv_layer(store)? {
            if mode == Mode::Train {
                return Err(NnError::invalid(
                    "conv",
                    "an arm with a convolutional front trains on the dense engine only",
                ));
            }
            let pixels = h.to_array()?;
            let rows = pixels.nrows();
            let flat: Vec<f32> = pixels.iter().copied().collect();
            let features = conv.forward(&flat, rows)?;
            let features = Array2::from_shape_vec((rows, conv.shape.outputs()), features)
                .map_err(|e| NnError::invalid("conv", e.to_string()))?;
            h = Var::from_array(store.device(), &features)?;
        }
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

    /// The arm's current weights in the dense engine's form.
    pub(super) fn layers(&self, store: &ParamStore) -> Result<ArmLayers, NnError> {
        let hidden = self.settings.activation.into();
        let mut encoder = self
            .encoder
            .iter()
            .map(|l| l.to_dense(store, hidden))
            .collect::<Result<Vec<_>, _>>()?;
        encoder.push(self.latent.to_dense(store, dense::Activation::Linear)?);
        let mut decoder = self
            .decoder
            .iter()
            .map(|l| l.to_dense(store, hidden))
            .collect::<Result<Vec<_>, _>>()?;
        decoder.push(self.output.to_dense(store, self.settings.output.into())?);
        Ok(ArmLayers {
            conv: self.conv_layer(store)?,
            encoder: DenseNet::new(encoder)?,
            norm: self.norm.map(|bn| bn.to_dense(store)).transpose()?,
            decoder: DenseNet::new(decoder)?,
        })
    }

    /// Writes weights trained on the dense engine back into the store.
    pub(super) fn set_layers(
        &self,
        store: &mut ParamStore,
        layers: &ArmLayers,
    ) -> Result<(), NnError> {
        if let (Some((w, b)), Some(conv)) = (&self.conv, &layers.conv) {
            let kernel = &conv.kernel;
            let weight =
                Array2::from_shape_vec((kernel.inputs, kernel.outputs), kernel.weight.clone())
                    .map_err(|e| NnError::invalid("conv", e.to_string()))?;
            store.set_matrix(*w, &weight)?;
            store.set_vector(*b, &Array1::from_vec(kernel.bias.clone()))?;
        }
        let encoder = self.encoder.iter().chain(std::iter::once(&self.latent));
        for (lin, layer) in encoder.zip(&layers.encoder.layers) {
            lin.set_from_dense(store, layer)?;
        }
        let decoder = self.decoder.iter().chain(std::iter::once(&self.output));
        for (lin, layer) in decoder.zip(&layers.decoder.layers) {
            lin.set_from_dense(store, layer)?;
        }
        match (&self.norm, &layers.norm) {
            (Some(bn), Some(norm)) => bn.set_from_dense(store, norm),
            _ => Ok(()),
        }
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
