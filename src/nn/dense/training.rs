//! A network being trained, on the dense engine or on a tensor device: its
//! layers with their activation buffers, gradients and optimiser state, so
//! that a model made of several networks (encoder, normalisation, decoder,
//! heads) keeps one of these per network and chains them by passing
//! gradients between them (on the host).

use super::engine::TensorTraining;
use super::{DenseAdam, DenseGrads, DenseNet, DensePenalties, Engine, Workspace};
use crate::nn::{AdamConfig, NnError};

/// A [`DenseNet`] with everything one training step needs.
#[derive(Debug)]
pub struct TrainingNet {
    /// The layers. On a tensor device the trained weights live there, and
    /// this copy is brought up to date by [`TrainingNet::sync`].
    pub net: DenseNet,
    backend: Backend,
}

/// Where the training steps run.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per network, made once: the dense state stays inline
enum Backend {
    /// The dense engine, on `net` itself.
    Dense {
        ws: Workspace,
        grads: DenseGrads,
        adam: DenseAdam,
    },
    /// A tensor device, on its own copy of the weights.
    Tensor(Box<dyn TensorTraining>),
}

impl TrainingNet {
    /// `net` on the dense engine with a fresh optimiser.
    pub fn new(net: DenseNet, adam: AdamConfig) -> Self {
        TrainingNet {
            net,
            backend: Backend::Dense {
                ws: Workspace::default(),
                grads: DenseGrads::default(),
                adam: DenseAdam::new(adam),
            },
        }
    }

    /// `net` on `engine` with a fresh optimiser; fails when its device
    /// cannot be opened.
    pub fn on(engine: Engine, net: DenseNet, adam: AdamConfig) -> Result<Self, NnError> {
        Ok(match engine.tensor_net(&net, adam)? {
            None => TrainingNet::new(net, adam),
            Some(on_device) => TrainingNet {
                net,
                backend: Backend::Tensor(on_device),
            },
        })
    }

    /// On the dense engine, with its large matrix products on the current
    /// rayon pool (bit-for-bit the same results, see [`Workspace::parallel`]);
    /// unchanged on a tensor device.
    pub fn parallel(mut self) -> Self {
        if let Backend::Dense { ws, .. } = &mut self.backend {
            *ws = Workspace::parallel();
        }
        self
    }

    /// The forward pass on `rows` rows of `x`; returns the output.
    pub fn forward(&mut self, x: &[f32], rows: usize) -> Result<&[f32], NnError> {
        match &mut self.backend {
            Backend::Dense { ws, .. } => self.net.forward(x, rows, 0, ws),
            Backend::Tensor(on_device) => on_device.forward(x, rows, 0),
        }
    }

    /// The output of the last forward pass.
    pub fn output(&self) -> &[f32] {
        match &self.backend {
            Backend::Dense { ws, .. } => ws.output(&self.net),
            Backend::Tensor(on_device) => on_device.output(),
        }
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
        match &mut self.backend {
            Backend::Dense { ws, grads, .. } => self
                .net
                .backward_to_input(x, rows, 0, d_output, ws, grads, d_input),
            Backend::Tensor(on_device) => match d_input {
                Some(d_input) => {
                    *d_input = on_device.backward_to_input(d_output)?;
                    Ok(())
                }
                None => on_device.backward(d_output),
            },
        }
    }

    /// As [`TrainingNet::backward`], but adds this pass's gradients to those
    /// of the backward passes before it (since the last plain
    /// [`TrainingNet::backward`]), so that one [`TrainingNet::step`] takes
    /// their sum: a network run on several batches in one step, each pass's
    /// forward then backward in turn.
    pub fn backward_adding(
        &mut self,
        x: &[f32],
        rows: usize,
        d_output: &[f32],
        d_input: Option<&mut Vec<f32>>,
    ) -> Result<(), NnError> {
        match &mut self.backend {
            Backend::Dense { ws, grads, .. } => {
                let kept = std::mem::take(grads);
                self.net
                    .backward_to_input(x, rows, 0, d_output, ws, grads, d_input)?;
                grads.add(&kept);
                Ok(())
            }
            Backend::Tensor(on_device) => {
                let d = on_device.backward_adding(d_output, d_input.is_some())?;
                if let Some(d_input) = d_input {
                    *d_input = d;
                }
                Ok(())
            }
        }
    }

    /// One Adam step from the last backward pass's gradients.
    pub fn step(&mut self) -> Result<(), NnError> {
        match &mut self.backend {
            Backend::Dense { grads, adam, .. } => adam
                .step(&mut self.net, grads, DensePenalties::NONE)
                .map(|_| ()),
            Backend::Tensor(on_device) => on_device.step(DensePenalties::NONE).map(|_| ()),
        }
    }

    /// The gradients of the last backward pass.
    pub fn grads(&self) -> DenseGrads {
        match &self.backend {
            Backend::Dense { grads, .. } => grads.clone(),
            Backend::Tensor(on_device) => on_device.grads(),
        }
    }

    /// Replaces the weights with `net`'s (after a change made on the host),
    /// keeping the optimiser state as [`DenseAdam`] keeps it across changes.
    pub fn load(&mut self, net: DenseNet) -> Result<(), NnError> {
        self.net = net;
        match &mut self.backend {
            Backend::Dense { .. } => Ok(()),
            Backend::Tensor(on_device) => on_device.upload(&self.net),
        }
    }

    /// Brings [`TrainingNet::net`] up to date with the trained weights
    /// (nothing to do on the dense engine).
    pub fn sync(&mut self) -> Result<(), NnError> {
        match &self.backend {
            Backend::Dense { .. } => Ok(()),
            Backend::Tensor(on_device) => on_device.download(&mut self.net),
        }
    }
}
