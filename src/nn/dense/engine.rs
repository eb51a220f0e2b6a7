//! Which backend trains a [`DenseNet`]: the dense engine on the CPU, or the
//! same network on a tensor device ([`TensorNet`]): a CUDA GPU, or dfdx's CPU
//! device, which runs the GPU backend's code where no GPU is (to check it).
//! A model's training loop is written once against [`NetTrainer`]; the host
//! [`DenseNet`] stays the model's view of its weights, brought up to date by
//! [`NetTrainer::sync`].

use super::{DenseAdam, DenseGrads, DenseNet, DensePenalties, TensorNet, Workspace};
use crate::nn::{AdamConfig, Device, DeviceChoice, NnError};

/// The backend that trains a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// The dense engine on the CPU (the fast path; the default).
    #[default]
    Dense,
    /// The tensor backend on dfdx's CPU device: the GPU backend's code,
    /// run on the CPU (slower than [`Engine::Dense`]; for checking it).
    TensorCpu,
    /// The tensor backend on the CUDA GPU with this ordinal.
    Cuda(usize),
}

impl Engine {
    /// The engine that trains on `device`: the dense engine on the CPU, the
    /// tensor backend on a GPU.
    pub fn for_device(device: DeviceChoice) -> Engine {
        match device {
            DeviceChoice::Cpu => Engine::Dense,
            DeviceChoice::Cuda(ordinal) => Engine::Cuda(ordinal),
        }
    }

    /// A trainer on this engine with a fresh optimiser; fails (without a
    /// panic) when the device cannot be opened: a build without the `cuda`
    /// feature, or a machine without a usable GPU.
    pub fn trainer(self, adam: AdamConfig) -> Result<Box<dyn NetTrainer>, NnError> {
        Ok(match self {
            Engine::Dense => Box::new(DenseTrainer::new(adam)),
            Engine::TensorCpu => Box::new(TensorTrainer::new(dfdx::tensor::Cpu::default(), adam)),
            Engine::Cuda(ordinal) => {
                let device = Device::open(DeviceChoice::Cuda(ordinal))?;
                Box::new(TensorTrainer::new(device.dev, adam))
            }
        })
    }
}

/// Trains one [`DenseNet`] a batch at a time. Between [`NetTrainer::sync`]
/// calls the trainer may hold the current weights elsewhere (on a GPU), so
/// the host network is read or changed (evaluation, pruning, trainable
/// flags, checkpoints) only after `sync`; the next forward pass takes it up
/// again.
pub trait NetTrainer: std::fmt::Debug {
    /// The forward pass of layers `from..` on `rows` rows of `x` (the input
    /// of layer `from`); returns the output, on the host.
    fn forward(
        &mut self,
        net: &DenseNet,
        x: &[f32],
        rows: usize,
        from: usize,
    ) -> Result<&[f32], NnError>;

    /// After [`NetTrainer::forward`] on the same batch: the backward pass
    /// from `∂loss/∂output`, then one Adam step on the trainable layers with
    /// the penalties' gradients added; returns the penalties' value.
    fn backward_step(
        &mut self,
        net: &mut DenseNet,
        x: &[f32],
        rows: usize,
        from: usize,
        d_output: &[f32],
        penalties: DensePenalties,
    ) -> Result<f32, NnError>;

    /// Brings `net` up to date with the trained weights.
    fn sync(&mut self, net: &mut DenseNet) -> Result<(), NnError>;

    /// Starts a fresh optimiser (step 0, zero moments) with `config`, as
    /// recompiling a Keras model does.
    fn reset(&mut self, config: AdamConfig);
}

/// The dense engine: the network's own buffers are the weights.
#[derive(Debug)]
struct DenseTrainer {
    ws: Workspace,
    grads: DenseGrads,
    adam: DenseAdam,
}

impl DenseTrainer {
    fn new(adam: AdamConfig) -> Self {
        DenseTrainer {
            ws: Workspace::default(),
            grads: DenseGrads::default(),
            adam: DenseAdam::new(adam),
        }
    }
}

impl NetTrainer for DenseTrainer {
    fn forward(
        &mut self,
        net: &DenseNet,
        x: &[f32],
        rows: usize,
        from: usize,
    ) -> Result<&[f32], NnError> {
        net.forward(x, rows, from, &mut self.ws)
    }

    fn backward_step(
        &mut self,
        net: &mut DenseNet,
        x: &[f32],
        rows: usize,
        from: usize,
        d_output: &[f32],
        penalties: DensePenalties,
    ) -> Result<f32, NnError> {
        let product =
            net.backward_deferred(x, rows, from, d_output, &mut self.ws, &mut self.grads)?;
        self.adam
            .step_with_product(net, &self.grads, penalties, product)
    }

    fn sync(&mut self, _: &mut DenseNet) -> Result<(), NnError> {
        Ok(())
    }

    fn reset(&mut self, config: AdamConfig) {
        self.adam = DenseAdam::new(config);
    }
}

/// The tensor backend: the weights and the optimiser state live on the
/// device from the first forward pass after a [`NetTrainer::sync`] to the next.
#[derive(Debug)]
struct TensorTrainer<D: dfdx::tensor_ops::Device<f32>> {
    dev: D,
    config: AdamConfig,
    /// The network on the device, once taken up.
    net: Option<TensorNet<D>>,
    /// Whether the device holds the current weights (the host's are stale).
    current: bool,
}

impl<D: dfdx::tensor_ops::Device<f32>> TensorTrainer<D> {
    fn new(dev: D, config: AdamConfig) -> Self {
        TensorTrainer {
            dev,
            config,
            net: None,
            current: false,
        }
    }

    /// The network on the device, with the host's weights taken up if they
    /// may have changed.
    fn take_up(&mut self, net: &DenseNet) -> Result<&mut TensorNet<D>, NnError> {
        if !self.current {
            match &mut self.net {
                Some(on_device) => on_device.upload(net)?,
                None => self.net = Some(TensorNet::new(self.dev.clone(), net, self.config)?),
            }
            self.current = true;
        }
        self.net
            .as_mut()
            .ok_or_else(|| NnError::invalid("tensor trainer", "no network on the device"))
    }
}

impl<D: dfdx::tensor_ops::Device<f32> + dfdx::tensor::Cache> NetTrainer for TensorTrainer<D> {
    fn forward(
        &mut self,
        net: &DenseNet,
        x: &[f32],
        rows: usize,
        from: usize,
    ) -> Result<&[f32], NnError> {
        self.take_up(net)?.forward(x, rows, from)
    }

    fn backward_step(
        &mut self,
        net: &mut DenseNet,
        _x: &[f32],
        _rows: usize,
        _from: usize,
        d_output: &[f32],
        penalties: DensePenalties,
    ) -> Result<f32, NnError> {
        let on_device = self.take_up(net)?;
        on_device.backward(d_output)?;
        on_device.step(penalties)
    }

    fn sync(&mut self, net: &mut DenseNet) -> Result<(), NnError> {
        if let (true, Some(on_device)) = (self.current, &self.net) {
            on_device.download(net)?;
            on_device.empty_cache()?;
        }
        self.current = false;
        Ok(())
    }

    fn reset(&mut self, config: AdamConfig) {
        self.config = config;
        if let Some(on_device) = &mut self.net {
            on_device.reset_optimizer(config);
        }
    }
}

/// What a training net must be to move between threads: `Send` in a build
/// without CUDA, so a model may train several nets on the rayon pool (the
/// k-CAE's arms); nothing in a `cuda` build, whose device (its CUDA stream)
/// is not `Send` and whose nets therefore train on one thread (see
/// [`super::for_each_net`]).
#[cfg(not(feature = "cuda"))]
pub(crate) trait Movable: Send {}
#[cfg(not(feature = "cuda"))]
impl<T: Send> Movable for T {}
/// What a training net must be to move between threads: nothing in a `cuda`
/// build (see the CPU build's definition).
#[cfg(feature = "cuda")]
pub(crate) trait Movable {}
#[cfg(feature = "cuda")]
impl<T> Movable for T {}

/// A [`TensorNet`] on any device, as one type: what [`super::TrainingNet`]
/// holds when it trains on the tensor backend.
pub(super) trait TensorTraining: std::fmt::Debug + Movable {
    /// [`TensorNet::forward`].
    fn forward(&mut self, x: &[f32], rows: usize, from: usize) -> Result<&[f32], NnError>;
    /// The last forward pass's output, on the host.
    fn output(&self) -> &[f32];
    /// [`TensorNet::backward`].
    fn backward(&mut self, d_output: &[f32]) -> Result<(), NnError>;
    /// [`TensorNet::backward_to_input`].
    fn backward_to_input(&mut self, d_output: &[f32]) -> Result<Vec<f32>, NnError>;
    /// [`TensorNet::backward_adding`].
    fn backward_adding(&mut self, d_output: &[f32], to_input: bool) -> Result<Vec<f32>, NnError>;
    /// [`TensorNet::step`].
    fn step(&mut self, penalties: DensePenalties) -> Result<f32, NnError>;
    /// [`TensorNet::grads`].
    fn grads(&self) -> DenseGrads;
    /// [`TensorNet::download`], then frees the device's cached buffers.
    fn download(&self, net: &mut DenseNet) -> Result<(), NnError>;
    /// [`TensorNet::upload`] (the optimiser state kept).
    fn upload(&mut self, net: &DenseNet) -> Result<(), NnError>;
}

impl<D: dfdx::tensor_ops::Device<f32> + dfdx::tensor::Cache> TensorTraining for TensorNet<D>
where
    TensorNet<D>: Movable,
{
    fn forward(&mut self, x: &[f32], rows: usize, from: usize) -> Result<&[f32], NnError> {
        TensorNet::forward(self, x, rows, from)
    }

    fn output(&self) -> &[f32] {
        TensorNet::output(self)
    }

    fn backward(&mut self, d_output: &[f32]) -> Result<(), NnError> {
        TensorNet::backward(self, d_output)
    }

    fn backward_to_input(&mut self, d_output: &[f32]) -> Result<Vec<f32>, NnError> {
        TensorNet::backward_to_input(self, d_output)
    }

    fn backward_adding(&mut self, d_output: &[f32], to_input: bool) -> Result<Vec<f32>, NnError> {
        TensorNet::backward_adding(self, d_output, to_input)
    }

    fn step(&mut self, penalties: DensePenalties) -> Result<f32, NnError> {
        TensorNet::step(self, penalties)
    }

    fn grads(&self) -> DenseGrads {
        TensorNet::grads(self)
    }

    fn download(&self, net: &mut DenseNet) -> Result<(), NnError> {
        TensorNet::download(self, net)?;
        self.empty_cache()
    }

    fn upload(&mut self, net: &DenseNet) -> Result<(), NnError> {
        TensorNet::upload(self, net)
    }
}

impl Engine {
    /// `net` on this engine's tensor device with a fresh optimiser, or
    /// `None` for the dense engine.
    pub(super) fn tensor_net(
        self,
        net: &DenseNet,
        adam: AdamConfig,
    ) -> Result<Option<Box<dyn TensorTraining>>, NnError> {
        Ok(match self {
            Engine::Dense => None,
            Engine::TensorCpu => Some(Box::new(TensorNet::new(
                dfdx::tensor::Cpu::default(),
                net,
                adam,
            )?)),
            Engine::Cuda(ordinal) => {
                let device = Device::open(DeviceChoice::Cuda(ordinal))?;
                Some(Box::new(TensorNet::new(device.dev, net, adam)?))
            }
        })
    }
}
