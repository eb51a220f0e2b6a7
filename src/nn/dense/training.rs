//! A network being trained on the dense engine: its layers with their
//! activation buffers, gradients and optimiser state, so that a model made of
//! several networks (encoder, normalisation, decoder, heads) keeps one of
//! these per network and chains them by passing gradients between them.

use super::{DenseAdam, DenseGrads, DenseNet, DensePenalties, Workspace};
use crate::nn::{AdamConfig, NnError};

/// A [`DenseNet`] with everything one training step needs.
#[derive(Debug, Clone)]
pub struct TrainingNet {
    /// The layers.
    pub net: DenseNet,
    ws: Workspace,
    grads: DenseGrads,
    adam: DenseAdam,
}

impl TrainingNet {
    /// `net` with a fresh optimiser.
    pub fn new(net: DenseNet, adam: AdamConfig) -> Self {
        TrainingNet {
            net,
            ws: Workspace::default(),
            grads: DenseGrads::default(),
            adam: DenseAdam::new(adam),
        }
    }

    /// The same, with its large matrix products on the current rayon pool
    /// (bit-for-bit the same results, see [`Workspace::parallel`]).
    pub fn parallel(mut self) -> Self {
        self.ws = Workspace::parallel();
        self
    }

    /// The forward pass on `rows` rows of `x`; returns the output.
    pub fn forward(&mut self, x: &[f32], rows: usize) -> Result<&[f32], NnError> {
        self.net.forward(x, rows, 0, &mut self.ws)
    }

    /// The output of the last forward pass.
    pub fn output(&self) -> &[f32] {
        self.ws.output(&self.net)
    }

    /// The gradients of the last forward pass (on the same `x`) given
    /// `∂loss/∂output`; with `d_input`, also `∂loss/∂x`.
    pub fn backward(
        &mut self,
        x: &[f32],
        rows: usize,
        d_output: &[f32],
        d_input: Option<&mut Vec<f32>>,
    ) -> Result<(), NnError> {
        match d_input {
            Some(d_input) => self.net.backward_to_input(
                x,
                rows,
                0,
                d_output,
                &mut self.ws,
                &mut self.grads,
                d_input,
            ),
            None => self
                .net
                .backward(x, rows, 0, d_output, &mut self.ws, &mut self.grads),
        }
    }

    /// One Adam step from the last backward pass's gradients.
    pub fn step(&mut self) -> Result<(), NnError> {
        self.adam
            .step(&mut self.net, &self.grads, DensePenalties::NONE)
            .map(|_| ())
    }

    /// The gradients of the last backward pass.
    pub fn grads(&self) -> &DenseGrads {
        &self.grads
    }
}
