//! The sBNN architecture on the fused dense path: ELU encoder, linear
//! bottleneck, ELU decoder and a linear output (regression) or a softmax head
//! (pre-training classification).

use rand_chacha::ChaCha8Rng;

use super::{SbnnConfig, SbnnError};
use crate::nn::dense::{Activation, DenseLayer, DenseNet};

/// Builds `inputs → encoder… → latent → decoder… → outputs`, Glorot-initialised
/// in layer order from `rng`. The output layer is linear and its bias carries
/// no L2 penalty, as in the reference.
pub fn build(
    config: &SbnnConfig,
    inputs: usize,
    outputs: usize,
    rng: &mut ChaCha8Rng,
) -> Result<DenseNet, SbnnError> {
    let mut widths = vec![inputs];
    widths.extend(&config.encoder);
    widths.push(config.latent);
    widths.extend(&config.decoder);
    let bottleneck = config.encoder.len();
    let mut layers = Vec::with_capacity(widths.len());
    for (index, pair) in widths.windows(2).enumerate() {
        let activation = if index == bottleneck {
            Activation::Linear
        } else {
            Activation::Elu
        };
        layers.push(DenseLayer::glorot(pair[0], pair[1], activation, rng)?);
    }
    layers.push(output_layer(&widths, outputs, rng)?);
    Ok(DenseNet::new(layers)?)
}

/// A fresh linear output layer taking the last decoder width (or the
/// bottleneck's, without a decoder).
fn output_layer(
    widths: &[usize],
    outputs: usize,
    rng: &mut ChaCha8Rng,
) -> Result<DenseLayer, SbnnError> {
    let last = widths.last().copied().unwrap_or(0);
    let mut layer = DenseLayer::glorot(last, outputs, Activation::Linear, rng)?;
    layer.bias_l2 = false;
    Ok(layer)
}

/// Replaces the output layer with a fresh Glorot one of `outputs` units (the
/// weight transfer from the pre-training classifier to the regression).
pub fn replace_head(
    net: &mut DenseNet,
    outputs: usize,
    bias_l2: bool,
    rng: &mut ChaCha8Rng,
) -> Result<(), SbnnError> {
    let last = net.layers.len() - 1;
    let inputs = net.layers[last].inputs;
    let mut layer = DenseLayer::glorot(inputs, outputs, Activation::Linear, rng)?;
    layer.bias_l2 = bias_l2;
    net.layers[last] = layer;
    Ok(())
}

/// Index of the bottleneck layer (its output is the latent code).
pub fn bottleneck(config: &SbnnConfig) -> usize {
    config.encoder.len()
}
