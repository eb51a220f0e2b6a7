//! The dense engine's networks on a tensor device: the same layers, backward
//! pass, penalties and Adam update as [`DenseNet`] and [`super::DenseAdam`],
//! written once with dfdx's tensor operations on runtime-shaped matrices and
//! generic over the device, so that it trains on a CUDA GPU and the very same
//! code runs on dfdx's CPU device, where it is checked against the dense
//! engine (see the tests).
//!
//! The backward pass is written by hand (no tape), as the dense engine's is:
//! `δ = ∂loss/∂h ⊙ act′(h)` with the derivative read from the layer's output,
//! `∂W = xᵀ δ`, `∂b = Σ_rows δ`, `∂x = δ Wᵀ`. Losses stay on the host: the
//! output of a forward pass comes back to it, and the loss's gradient goes to
//! the device for the backward pass (a batch of outputs each way).

use dfdx::shapes::{Axes2, Axis, HasShape};
use dfdx::tensor::{Cache, Tensor};
use dfdx::tensor_ops::{
    BroadcastTo, ChooseFrom, Device as TensorDevice, PermuteTo, SumTo, TryAdd, TryDiv, TryGt,
    TryMatMul, TryMul, TrySub,
};

use super::{Activation, DenseGrads, DenseNet, DensePenalties};
use crate::nn::NnError;
use crate::nn::adam::{AdamClock, AdamConfig};

/// A matrix on the device.
type Mat<D> = Tensor<(usize, usize), f32, D>;
/// A vector on the device.
type Vect<D> = Tensor<(usize,), f32, D>;

/// A backend failure as text, so that no dfdx error type leaves `nn`.
fn backend(error: impl std::fmt::Display) -> NnError {
    NnError::Backend(error.to_string())
}

/// One dense layer's parameters on the device.
#[derive(Debug, Clone)]
struct Layer<D: TensorDevice<f32>> {
    inputs: usize,
    outputs: usize,
    weight: Mat<D>,
    bias: Vect<D>,
    activation: Activation,
    trainable: bool,
    bias_l2: bool,
}

/// Adam's moments of one layer.
#[derive(Debug, Clone)]
struct Moments<D: TensorDevice<f32>> {
    m_w: Mat<D>,
    v_w: Mat<D>,
    m_b: Vect<D>,
    v_b: Vect<D>,
}

/// The gradients of one trainable layer from the last backward pass.
#[derive(Debug, Clone)]
struct LayerGrads<D: TensorDevice<f32>> {
    weight: Mat<D>,
    bias: Vect<D>,
}

/// A [`DenseNet`] and its Adam state on a tensor device `D`.
#[derive(Debug, Clone)]
pub struct TensorNet<D: TensorDevice<f32>> {
    dev: D,
    layers: Vec<Layer<D>>,
    /// The batch input of the last forward pass, the layer it entered at and its rows.
    input: Option<(Mat<D>, usize, usize)>,
    /// Outputs of layers `from..` of the last forward pass (index `l − from`).
    acts: Vec<Mat<D>>,
    /// The last forward pass's output, on the host.
    output: Vec<f32>,
    /// Gradients of the last backward pass, per layer (`None` for layers it did not reach).
    grads: Vec<Option<LayerGrads<D>>>,
    config: AdamConfig,
    clock: AdamClock,
    moments: Vec<Option<Moments<D>>>,
    /// Penalty value of each layer that has stayed frozen since it was last computed.
    frozen_penalty: Vec<Option<(DensePenalties, f32)>>,
}

impl<D: TensorDevice<f32>> TensorNet<D> {
    /// `net`'s layers on `dev`, with a fresh optimiser.
    pub fn new(dev: D, net: &DenseNet, adam: AdamConfig) -> Result<Self, NnError> {
        let mut this = TensorNet {
            dev,
            layers: Vec::new(),
            input: None,
            acts: Vec::new(),
            output: Vec::new(),
            grads: Vec::new(),
            config: adam,
            clock: AdamClock::default(),
            moments: Vec::new(),
            frozen_penalty: Vec::new(),
        };
        this.upload(net)?;
        Ok(this)
    }

    /// Replaces the parameters (and trainable flags) with `net`'s. The
    /// optimiser state is kept for every layer whose shape is unchanged, as
    /// the dense engine's optimiser keeps it across changes to the weights.
    pub fn upload(&mut self, net: &DenseNet) -> Result<(), NnError> {
        let mut layers = Vec::with_capacity(net.layers.len());
        for layer in &net.layers {
            layers.push(Layer {
                inputs: layer.inputs,
                outputs: layer.outputs,
                weight: self
                    .dev
                    .try_tensor_from_vec(layer.weight.clone(), (layer.inputs, layer.outputs))
                    .map_err(backend)?,
                bias: self
                    .dev
                    .try_tensor_from_vec(layer.bias.clone(), (layer.outputs,))
                    .map_err(backend)?,
                activation: layer.activation,
                trainable: layer.trainable,
                bias_l2: layer.bias_l2,
            });
        }
        self.moments.resize(layers.len(), None);
        for (moments, layer) in self.moments.iter_mut().zip(&layers) {
            if moments
                .as_ref()
                .is_some_and(|m| m.m_w.shape() != &(layer.inputs, layer.outputs))
            {
                *moments = None;
            }
        }
        self.frozen_penalty = vec![None; layers.len()];
        self.layers = layers;
        self.input = None;
        self.acts.clear();
        self.grads.clear();
        Ok(())
    }

    /// Writes the parameters into `net`, which must have the same layer shapes.
    pub fn download(&self, net: &mut DenseNet) -> Result<(), NnError> {
        if net.layers.len() != self.layers.len() {
            return Err(NnError::shape(
                "TensorNet::download",
                format!("{} layers", self.layers.len()),
                net.layers.len(),
            ));
        }
        for (host, layer) in net.layers.iter_mut().zip(&self.layers) {
            if (host.inputs, host.outputs) != (layer.inputs, layer.outputs) {
                return Err(NnError::shape(
                    "TensorNet::download",
                    format!("a {}x{} layer", layer.inputs, layer.outputs),
                    format!("{}x{}", host.inputs, host.outputs),
                ));
            }
            host.weight = layer.weight.as_vec();
            host.bias = layer.bias.as_vec();
        }
        Ok(())
    }

    /// A fresh optimiser (step 0, zero moments) with `config`.
    pub fn reset_optimizer(&mut self, config: AdamConfig) {
        self.config = config;
        self.clock = AdamClock::default();
        self.moments = vec![None; self.layers.len()];
        self.frozen_penalty = vec![None; self.layers.len()];
    }

    /// Frees the device's cached buffers (see [`crate::nn::Device::empty_cache`]).
    pub fn empty_cache(&self) -> Result<(), NnError>
    where
        D: Cache,
    {
        self.dev.try_empty_cache().map_err(backend)
    }

    /// The forward pass of layers `from..` on `rows` rows of `x` (the input of
    /// layer `from`); returns the network's output, on the host.
    pub fn forward(&mut self, x: &[f32], rows: usize, from: usize) -> Result<&[f32], NnError> {
        let inputs = self.layers.get(from).map(|l| l.inputs).ok_or_else(|| {
            NnError::invalid("forward", format!("layer {from} of {}", self.layers.len()))
        })?;
        if x.len() != rows * inputs {
            return Err(NnError::shape(
                "forward input",
                format!("{rows}x{inputs}"),
                format!("{} values", x.len()),
            ));
        }
        let x = self
            .dev
            .try_tensor_from_vec(x.to_vec(), (rows, inputs))
            .map_err(backend)?;
        self.acts.clear();
        let mut h = x.clone();
        for layer in &self.layers[from..] {
            let z = h
                .try_matmul(layer.weight.clone())
                .and_then(|z| {
                    let b = layer
                        .bias
                        .clone()
                        .try_broadcast_like::<_, Axis<0>>(&(rows, layer.outputs))?;
                    z.try_add(b)
                })
                .map_err(backend)?;
            h = activate(layer.activation, z).map_err(backend)?;
            self.acts.push(h.clone());
        }
        self.output = h.as_vec();
        self.input = Some((x, from, rows));
        Ok(&self.output)
    }

    /// The backward pass after [`TensorNet::forward`], given `∂loss/∂output`
    /// (on the host): keeps the gradients of every trainable layer from the
    /// lowest trainable one up, which [`TensorNet::step`] consumes.
    pub fn backward(&mut self, d_output: &[f32]) -> Result<(), NnError> {
        self.backward_through(d_output, false, false).map(|_| ())
    }

    /// As [`TensorNet::backward`], and also returns `∂loss/∂x` (`rows ×
    /// inputs`, on the host) for the batch the forward pass took, for a
    /// network that feeds on another trained one (a decoder on a code).
    pub fn backward_to_input(&mut self, d_output: &[f32]) -> Result<Vec<f32>, NnError> {
        let d_input = self.backward_through(d_output, true, false)?;
        Ok(d_input.map(|d| d.as_vec()).unwrap_or_default())
    }

    /// As [`TensorNet::backward`] (with `to_input`, as
    /// [`TensorNet::backward_to_input`], whose `∂loss/∂x` it returns; empty
    /// otherwise), but adds this pass's gradients to those kept from the
    /// backward passes before it, so that one [`TensorNet::step`] takes
    /// their sum: a network run on several batches (agents) in one step.
    pub fn backward_adding(
        &mut self,
        d_output: &[f32],
        to_input: bool,
    ) -> Result<Vec<f32>, NnError> {
        let d_input = self.backward_through(d_output, to_input, true)?;
        Ok(d_input.map(|d| d.as_vec()).unwrap_or_default())
    }

    /// The backward pass; with `to_input`, down to the input's gradient,
    /// which it returns; with `add`, its gradients added to the kept ones.
    fn backward_through(
        &mut self,
        d_output: &[f32],
        to_input: bool,
        add: bool,
    ) -> Result<Option<Mat<D>>, NnError> {
        let (x, from, rows) = self
            .input
            .clone()
            .ok_or_else(|| NnError::invalid("backward", "called before a forward pass"))?;
        let last = self.layers.len() - 1;
        let outputs = self.layers[last].outputs;
        if d_output.len() != rows * outputs {
            return Err(NnError::shape(
                "backward",
                format!("{rows}x{outputs}"),
                format!("{} values", d_output.len()),
            ));
        }
        let lowest = match self.layers[from..].iter().position(|l| l.trainable) {
            _ if to_input => from,
            Some(offset) => from + offset,
            None => return Err(NnError::NoGradient),
        };
        if !add || self.grads.len() != self.layers.len() {
            self.grads = vec![None; self.layers.len()];
        }
        // The gradient with respect to the current layer's output; below the
        // lowest layer, the input's (kept only when asked for).
        let mut d_h: Option<Mat<D>> = Some(
            self.dev
                .try_tensor_from_vec(d_output.to_vec(), (rows, outputs))
                .map_err(backend)?,
        );
        for l in (lowest..=last).rev() {
            let Some(d_h_now) = d_h.take() else { break };
            let layer = &self.layers[l];
            let h = &self.acts[l - from];
            let delta =
                activation_backward(&self.dev, layer.activation, d_h_now, h).map_err(backend)?;
            let input = if l == from {
                &x
            } else {
                &self.acts[l - 1 - from]
            };
            if layer.trainable {
                let weight = input
                    .clone()
                    .try_permute::<_, Axes2<1, 0>>()
                    .and_then(|xt| xt.try_matmul(delta.clone()))
                    .map_err(backend)?;
                let bias = delta
                    .clone()
                    .try_sum::<(usize,), Axis<0>>()
                    .map_err(backend)?;
                self.grads[l] = Some(match self.grads[l].take() {
                    Some(kept) => LayerGrads {
                        weight: kept.weight.try_add(weight).map_err(backend)?,
                        bias: kept.bias.try_add(bias).map_err(backend)?,
                    },
                    None => LayerGrads { weight, bias },
                });
            }
            if l == lowest && !to_input {
                break;
            }
            d_h = Some(
                layer
                    .weight
                    .clone()
                    .try_permute::<_, Axes2<1, 0>>()
                    .and_then(|wt| delta.try_matmul(wt))
                    .map_err(backend)?,
            );
        }
        Ok(d_h.filter(|_| to_input))
    }

    /// The output of the last forward pass, on the host.
    pub fn output(&self) -> &[f32] {
        &self.output
    }

    /// The gradients of the last backward pass on the host, in the dense
    /// engine's form (empty for the layers it did not reach).
    pub fn grads(&self) -> DenseGrads {
        let mut out = DenseGrads::default();
        for l in 0..self.layers.len() {
            let (w, b) = match self.grads.get(l).and_then(Option::as_ref) {
                Some(g) => (g.weight.as_vec(), g.bias.as_vec()),
                None => (Vec::new(), Vec::new()),
            };
            out.weight.push(w);
            out.bias.push(b);
        }
        out
    }

    /// One Adam step (tf.keras' rule, [`super::DenseAdam`]'s) on every
    /// trainable layer from the last backward pass's gradients plus the
    /// penalties' (group lasso on layer 0's rows, L2); returns the penalties'
    /// value on all layers, frozen ones included.
    pub fn step(&mut self, penalties: DensePenalties) -> Result<f32, NnError> {
        let size = self.clock.tick(&self.config)?;
        let c = self.config;
        let update = Update {
            lr: size.lr_t as f32,
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            eps: size.eps_raw as f32,
        };
        self.moments.resize(self.layers.len(), None);
        self.frozen_penalty.resize(self.layers.len(), None);
        let mut penalty = 0.0f32;
        for l in 0..self.layers.len() {
            let first = l == 0;
            if !self.layers[l].trainable {
                let value = match self.frozen_penalty[l] {
                    Some((at, value)) if at == penalties => value,
                    _ => penalty_of(&self.layers[l], first, penalties).map_err(backend)?,
                };
                self.frozen_penalty[l] = Some((penalties, value));
                penalty += value;
                continue;
            }
            self.frozen_penalty[l] = None;
            let grads = self.grads.get(l).and_then(Option::as_ref).ok_or_else(|| {
                NnError::shape(
                    "Adam gradients",
                    format!("gradients for trainable layer {l}"),
                    "none",
                )
            })?;
            let layer = &self.layers[l];
            let (inputs, outputs) = (layer.inputs, layer.outputs);
            let moments = match self.moments[l].take() {
                Some(m) => m,
                None => Moments {
                    m_w: self
                        .dev
                        .try_zeros_like(&(inputs, outputs))
                        .map_err(backend)?,
                    v_w: self
                        .dev
                        .try_zeros_like(&(inputs, outputs))
                        .map_err(backend)?,
                    m_b: self.dev.try_zeros_like(&(outputs,)).map_err(backend)?,
                    v_b: self.dev.try_zeros_like(&(outputs,)).map_err(backend)?,
                },
            };
            let (weight, gw, value) =
                weight_gradient(layer, &grads.weight, first, penalties).map_err(backend)?;
            penalty += value;
            let (weight, m_w, v_w) = update
                .apply(weight, gw, moments.m_w, moments.v_w)
                .map_err(backend)?;
            let bias = layer.bias.clone();
            let gb = if layer.bias_l2 && penalties.l2 != 0.0 {
                penalty += penalties.l2 * sum_of_squares(&bias).map_err(backend)?;
                bias.clone()
                    .try_mul(2.0 * penalties.l2)
                    .and_then(|p| grads.bias.clone().try_add(p))
                    .map_err(backend)?
            } else {
                grads.bias.clone()
            };
            let (bias, m_b, v_b) = update
                .apply(bias, gb, moments.m_b, moments.v_b)
                .map_err(backend)?;
            let layer = &mut self.layers[l];
            layer.weight = weight;
            layer.bias = bias;
            self.moments[l] = Some(Moments { m_w, v_w, m_b, v_b });
        }
        Ok(penalty)
    }
}

/// `act(z)`: ELU as `relu(z) + exp(min(z, 0)) − 1`, ReLU, or the identity.
fn activate<D: TensorDevice<f32>>(activation: Activation, z: Mat<D>) -> Result<Mat<D>, D::Err> {
    match activation {
        Activation::Elu => {
            let negative = z
                .clone()
                .try_clamp(f32::NEG_INFINITY, 0.0)?
                .try_exp()?
                .try_sub(1.0)?;
            z.try_relu()?.try_add(negative)
        }
        Activation::Relu => z.try_relu(),
        Activation::Linear => Ok(z),
    }
}

/// `d_h ⊙ act′`, the derivative read from the layer's output `h`: for the
/// ELU `min(h, 0) + 1` (1 where `h > 0`, `exp(z) = h + 1` elsewhere), for the
/// ReLU 1 where `h > 0` and 0 elsewhere.
fn activation_backward<D: TensorDevice<f32>>(
    dev: &D,
    activation: Activation,
    d_h: Mat<D>,
    h: &Mat<D>,
) -> Result<Mat<D>, D::Err> {
    match activation {
        Activation::Elu => {
            let derivative = h.clone().try_clamp(f32::NEG_INFINITY, 0.0)?.try_add(1.0)?;
            d_h.try_mul(derivative)
        }
        Activation::Relu => {
            let zeros = dev.try_zeros_like(h.shape())?;
            h.clone().try_gt(0.0)?.try_choose(d_h, zeros)
        }
        Activation::Linear => Ok(d_h),
    }
}

/// `Σ v²` over a tensor, on the host.
fn sum_of_squares<S: dfdx::shapes::Shape, D: TensorDevice<f32>>(
    v: &Tensor<S, f32, D>,
) -> Result<f32, D::Err> {
    Ok(v.clone().try_square()?.try_sum::<(), _>()?.as_vec()[0])
}

/// The squared norm of each row of a weight.
fn row_squares<D: TensorDevice<f32>>(weight: &Mat<D>) -> Result<Vect<D>, D::Err> {
    weight.clone().try_square()?.try_sum::<(usize,), Axis<1>>()
}

/// The penalties' value on one (frozen) layer.
fn penalty_of<D: TensorDevice<f32>>(
    layer: &Layer<D>,
    first: bool,
    penalties: DensePenalties,
) -> Result<f32, D::Err> {
    let squares = row_squares(&layer.weight)?.as_vec();
    let mut total = 0.0;
    for sq in squares {
        total += penalties.l2 * sq;
        if first && penalties.group_lasso > 0.0 {
            total += penalties.group_lasso * (sq + penalties.eps).sqrt();
        }
    }
    if layer.bias_l2 {
        total += penalties.l2 * sum_of_squares(&layer.bias)?;
    }
    Ok(total)
}

/// A trainable layer's weight, its gradient with the penalties' added
/// (`factor · w` per row, `factor = 2·l2 + lasso/‖row‖`, `‖row‖ = √(Σ w² +
/// eps)`, no lasso term for a zero norm) and the penalties' value on it.
fn weight_gradient<D: TensorDevice<f32>>(
    layer: &Layer<D>,
    grad: &Mat<D>,
    first: bool,
    penalties: DensePenalties,
) -> Result<(Mat<D>, Mat<D>, f32), D::Err> {
    let weight = layer.weight.clone();
    if penalties == DensePenalties::NONE {
        return Ok((weight, grad.clone(), 0.0));
    }
    let lasso = if first { penalties.group_lasso } else { 0.0 };
    let shape = (layer.inputs, layer.outputs);
    let squares = row_squares(&weight)?;
    let mut value = penalties.l2 * squares.clone().try_sum::<(), _>()?.as_vec()[0];
    let factor = if lasso > 0.0 {
        let norms = squares.try_add(penalties.eps)?.try_sqrt()?;
        value += lasso * norms.clone().try_sum::<(), _>()?.as_vec()[0];
        // A zero norm (a zero row, eps = 0) adds no lasso term: the clamp
        // keeps the factor finite, and it multiplies a zero row.
        norms
            .try_clamp(f32::MIN_POSITIVE, f32::INFINITY)?
            .try_recip()?
            .try_mul(lasso)?
            .try_add(2.0 * penalties.l2)?
    } else {
        layer
            .weight
            .device()
            .try_zeros_like(&(layer.inputs,))?
            .try_add(2.0 * penalties.l2)?
    };
    let factor = factor.try_broadcast_like::<_, Axis<1>>(&shape)?;
    let gradient = grad.clone().try_add(weight.clone().try_mul(factor)?)?;
    Ok((weight, gradient, value))
}

/// A parameter and its two moments after an update.
type Updated<S, D> = (Tensor<S, f32, D>, Tensor<S, f32, D>, Tensor<S, f32, D>);

/// The bias-corrected Adam update of one step.
#[derive(Debug, Clone, Copy)]
struct Update {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
}

impl Update {
    /// `m = β₁m + (1 − β₁)g`, `v = β₂v + (1 − β₂)g²`, `w −= lr · m / (√v + eps)`;
    /// returns the new `w`, `m` and `v`.
    fn apply<S: dfdx::shapes::Shape, D: TensorDevice<f32>>(
        &self,
        w: Tensor<S, f32, D>,
        g: Tensor<S, f32, D>,
        m: Tensor<S, f32, D>,
        v: Tensor<S, f32, D>,
    ) -> Result<Updated<S, D>, D::Err> {
        let m = m
            .try_mul(self.beta1)?
            .try_add(g.clone().try_mul(1.0 - self.beta1)?)?;
        let v = v
            .try_mul(self.beta2)?
            .try_add(g.clone().try_mul(1.0 - self.beta2)?.try_mul(g)?)?;
        let step = m
            .clone()
            .try_mul(self.lr)?
            .try_div(v.clone().try_sqrt()?.try_add(self.eps)?)?;
        Ok((w.try_sub(step)?, m, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::dense::{DenseAdam, DenseLayer, Workspace, mse_with_grad};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `a` and `b` agree within `rel` of their size (plus a small absolute floor).
    fn assert_close(a: &[f32], b: &[f32], rel: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= rel * scale,
                "{what}[{i}]: {x} vs {y} (scale {scale})"
            );
        }
    }

    /// Every activation, a layer without L2 on its bias and random biases.
    fn net(rng: &mut ChaCha8Rng) -> DenseNet {
        let mut layers = vec![
            DenseLayer::glorot(40, 24, Activation::Elu, rng).unwrap(),
            DenseLayer::glorot(24, 12, Activation::Relu, rng).unwrap(),
            DenseLayer::glorot(12, 2, Activation::Linear, rng).unwrap(),
            DenseLayer::glorot(2, 12, Activation::Elu, rng).unwrap(),
            DenseLayer::glorot(12, 5, Activation::Linear, rng).unwrap(),
        ];
        for layer in &mut layers {
            for b in &mut layer.bias {
                *b = rng.random_range(-0.3..0.3);
            }
        }
        layers[4].bias_l2 = false;
        DenseNet::new(layers).unwrap()
    }

    #[test]
    fn forward_gradients_and_adam_steps_match_the_dense_engine() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let start = net(&mut rng);
        let rows = 19;
        let x: Vec<f32> = (0..rows * 40)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let y: Vec<f32> = (0..rows * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
        let lasso = DensePenalties {
            group_lasso: 0.05,
            l2: 1e-3,
            eps: 1e-12,
        };
        // (penalties, the first trainable layer, the layer the batch enters at)
        for (penalties, frozen, from) in [
            (lasso, 0, 0),
            (DensePenalties::NONE, 0, 0),
            (lasso, 2, 0),
            (lasso, 1, 1),
        ] {
            let mut dense = start.clone();
            for (l, layer) in dense.layers.iter_mut().enumerate() {
                layer.trainable = l >= frozen;
            }
            let x = if from == 0 {
                x.clone()
            } else {
                start.forward_range(&x, rows, 0, from).unwrap()
            };
            let config = AdamConfig::keras(1e-2);
            let mut tensor = TensorNet::new(dfdx::tensor::Cpu::default(), &dense, config).unwrap();
            let mut adam = DenseAdam::new(config);
            let (mut ws, mut grads, mut d) =
                (Workspace::default(), DenseGrads::default(), Vec::new());
            let case = format!("{penalties:?}, frozen below {frozen}, from {from}");
            for step in 0..4 {
                let out = dense.forward(&x, rows, from, &mut ws).unwrap().to_vec();
                let on_device = tensor.forward(&x, rows, from).unwrap().to_vec();
                assert_close(&on_device, &out, 1e-4, &format!("{case}: output {step}"));
                mse_with_grad(&out, &y, &mut d);
                dense
                    .backward(&x, rows, from, &d, &mut ws, &mut grads)
                    .unwrap();
                tensor.backward(&d).unwrap();
                let tensor_grads = tensor.grads();
                for l in 0..dense.layers.len() {
                    if !dense.layers[l].trainable || l < from {
                        assert!(tensor_grads.weight[l].is_empty(), "{case}: layer {l}");
                        continue;
                    }
                    let what = format!("{case}: step {step} layer {l}");
                    assert_close(&tensor_grads.weight[l], &grads.weight[l], 1e-4, &what);
                    assert_close(&tensor_grads.bias[l], &grads.bias[l], 1e-4, &what);
                }
                let want = adam.step(&mut dense, &grads, penalties).unwrap();
                let got = tensor.step(penalties).unwrap();
                assert!(
                    (want - got).abs() <= 1e-4 * want.abs().max(1e-6),
                    "{case}: penalty {got} vs {want}"
                );
            }
            let mut back = start.clone();
            tensor.download(&mut back).unwrap();
            for (l, (a, b)) in back.layers.iter().zip(&dense.layers).enumerate() {
                let what = format!("{case}: weights of layer {l} after 4 steps");
                assert_close(&a.weight, &b.weight, 1e-4, &what);
                assert_close(&a.bias, &b.bias, 1e-4, &what);
                if l < frozen {
                    assert_eq!(a.weight, start.layers[l].weight, "{what}: frozen");
                }
            }
            assert_ne!(back, start, "{case}: training moved nothing");
        }
    }

    #[test]
    fn the_input_gradient_matches_the_dense_engine() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let rows = 7;
        let x: Vec<f32> = (0..rows * 40)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let d: Vec<f32> = (0..rows * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
        for trainable in [true, false] {
            let mut dense = net(&mut rng);
            dense
                .layers
                .iter_mut()
                .for_each(|l| l.trainable = trainable);
            let mut tensor = TensorNet::new(
                dfdx::tensor::Cpu::default(),
                &dense,
                AdamConfig::keras(1e-3),
            )
            .unwrap();
            let (mut ws, mut grads, mut want) =
                (Workspace::default(), DenseGrads::default(), Vec::new());
            dense.forward(&x, rows, 0, &mut ws).unwrap();
            dense
                .backward_to_input(&x, rows, 0, &d, &mut ws, &mut grads, Some(&mut want))
                .unwrap();
            tensor.forward(&x, rows, 0).unwrap();
            let got = tensor.backward_to_input(&d).unwrap();
            assert_close(
                &got,
                &want,
                1e-4,
                &format!("input gradient, trainable {trainable}"),
            );
            let got_grads = tensor.grads();
            for l in 0..dense.layers.len() {
                assert_eq!(got_grads.weight[l].is_empty(), !trainable);
                if trainable {
                    assert_close(&got_grads.weight[l], &grads.weight[l], 1e-4, "weight");
                }
            }
        }
    }

    #[test]
    fn gradients_added_over_several_passes_are_their_sum() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut dense = net(&mut rng);
        dense.layers[1].trainable = false;
        let rows = 6;
        let batches: Vec<(Vec<f32>, Vec<f32>)> = (0..3)
            .map(|_| {
                let x = (0..rows * 40)
                    .map(|_| rng.random_range(-2.0..2.0))
                    .collect();
                let d = (0..rows * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
                (x, d)
            })
            .collect();
        let (mut ws, mut grads) = (Workspace::default(), DenseGrads::default());
        let mut sum = DenseGrads::default();
        let mut d_inputs = Vec::new();
        for (x, d) in &batches {
            let mut d_input = Vec::new();
            dense.forward(x, rows, 0, &mut ws).unwrap();
            dense
                .backward_to_input(x, rows, 0, d, &mut ws, &mut grads, Some(&mut d_input))
                .unwrap();
            d_inputs.push(d_input);
            sum.add(&grads);
        }
        let mut tensor = TensorNet::new(
            dfdx::tensor::Cpu::default(),
            &dense,
            AdamConfig::keras(1e-3),
        )
        .unwrap();
        // A plain backward pass first: the gradients it leaves are replaced, not added to.
        tensor.forward(&batches[1].0, rows, 0).unwrap();
        tensor.backward(&batches[1].1).unwrap();
        for (i, (x, d)) in batches.iter().enumerate() {
            tensor.forward(x, rows, 0).unwrap();
            let d_input = if i == 0 {
                tensor.backward_to_input(d).unwrap()
            } else {
                tensor.backward_adding(d, true).unwrap()
            };
            assert_close(&d_input, &d_inputs[i], 1e-4, &format!("input gradient {i}"));
        }
        let got = tensor.grads();
        for l in 0..dense.layers.len() {
            let what = format!("summed gradients of layer {l}");
            assert_eq!(got.weight[l].is_empty(), l == 1, "{what}");
            if l != 1 {
                assert_close(&got.weight[l], &sum.weight[l], 1e-4, &what);
                assert_close(&got.bias[l], &sum.bias[l], 1e-4, &what);
            }
        }
        assert!(
            tensor
                .backward_adding(&batches[0].1, false)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bad_calls_are_errors_not_panics() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let dense = net(&mut rng);
        let mut tensor = TensorNet::new(
            dfdx::tensor::Cpu::default(),
            &dense,
            AdamConfig::keras(1e-3),
        )
        .unwrap();
        assert!(
            tensor.backward(&[0.0; 5]).is_err(),
            "backward before forward"
        );
        assert!(
            tensor.forward(&[0.0; 39], 1, 0).is_err(),
            "wrong input width"
        );
        assert!(tensor.forward(&[0.0; 40], 1, 9).is_err(), "no such layer");
        tensor.forward(&[0.0; 40], 1, 0).unwrap();
        assert!(tensor.backward(&[0.0; 4]).is_err(), "wrong output gradient");
        let mut other = DenseNet::new(dense.layers[..2].to_vec()).unwrap();
        assert!(tensor.download(&mut other).is_err(), "other shapes");
    }
}
