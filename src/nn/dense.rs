//! A fused, CPU-only path for plain fully connected networks (a stack of dense
//! layers with ELU or linear activations), for models whose speed matters more
//! than the generality of the tape ([`crate::nn::Var`]).
//!
//! Forward and backward passes are written out by hand over flat row-major
//! `f32` buffers that are allocated once ([`Workspace`]); every matrix product
//! is one call into faer's cache-blocked SIMD kernels (single-threaded, so a
//! run is bit-for-bit reproducible and several networks can train on separate
//! threads). Compared with the tape this saves, per step: recording and
//! replaying the graph, cloning gradients out of it, every temporary tensor,
//! the input gradient of the lowest trained layer, and all work below it (a
//! frozen prefix is run once per phase with [`DenseNet::forward_range`] and its
//! output cached by the caller). The optimiser ([`DenseAdam`]) fuses the group
//! lasso on the first layer's rows, the L2 penalties and the Adam update into
//! one pass over each parameter.
//!
//! The gradients agree with central finite differences (see the tests).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::NnError;
use super::adam::AdamConfig;
use super::kernels::{self, AdamUpdate};

/// The activation after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// Exponential linear unit, α = 1.
    Elu,
    /// Identity.
    Linear,
}

/// One fully connected layer `act(x W + b)`; `weight` is `(inputs, outputs)` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// `inputs × outputs` weights, row-major (row `g` belongs to input `g`).
    pub weight: Vec<f32>,
    /// `outputs` biases.
    pub bias: Vec<f32>,
    /// The activation applied to `x W + b`.
    pub activation: Activation,
    /// Whether the optimiser updates this layer.
    pub trainable: bool,
    /// Whether the L2 penalty applies to the bias (Keras' output layers often have none).
    pub bias_l2: bool,
}

impl DenseLayer {
    /// A layer with Keras' `glorot_uniform` weights (row-major draws) and zero biases.
    pub fn glorot(
        inputs: usize,
        outputs: usize,
        activation: Activation,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self, NnError> {
        if inputs == 0 || outputs == 0 {
            return Err(NnError::invalid(
                "dense layer",
                format!("needs positive widths, got {inputs} -> {outputs}"),
            ));
        }
        let limit = (6.0 / (inputs + outputs) as f64).sqrt() as f32;
        let weight = (0..inputs * outputs)
            .map(|_| rng.random_range(-limit..limit))
            .collect();
        Ok(DenseLayer {
            inputs,
            outputs,
            weight,
            bias: vec![0.0; outputs],
            activation,
            trainable: true,
            bias_l2: true,
        })
    }

    /// Euclidean norm of every weight row (one per input).
    pub fn input_norms(&self) -> Vec<f32> {
        self.weight
            .chunks_exact(self.outputs)
            .map(|row| row.iter().map(|w| w * w).sum::<f32>().sqrt())
            .collect()
    }

    /// Keeps only the weight rows of `keep` (in that order): the layer then
    /// takes the matching subset of its former inputs, with unchanged outputs.
    pub fn keep_inputs(&mut self, keep: &[usize]) -> Result<(), NnError> {
        if keep.is_empty() {
            return Err(NnError::invalid("keep_inputs", "keeps no input"));
        }
        let mut weight = Vec::with_capacity(keep.len() * self.outputs);
        for &g in keep {
            let row = self
                .weight
                .get(g * self.outputs..(g + 1) * self.outputs)
                .ok_or_else(|| {
                    NnError::invalid(
                        "keep_inputs",
                        format!("input {g} out of range (layer has {})", self.inputs),
                    )
                })?;
            weight.extend_from_slice(row);
        }
        self.weight = weight;
        self.inputs = keep.len();
        Ok(())
    }

    fn check(&self) -> Result<(), NnError> {
        if self.weight.len() != self.inputs * self.outputs || self.bias.len() != self.outputs {
            return Err(NnError::shape(
                "dense layer",
                format!(
                    "{}x{} weights and {} biases",
                    self.inputs, self.outputs, self.outputs
                ),
                format!(
                    "{} weights and {} biases",
                    self.weight.len(),
                    self.bias.len()
                ),
            ));
        }
        Ok(())
    }
}

/// A stack of dense layers, each feeding the next.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseNet {
    /// The layers, input first.
    pub layers: Vec<DenseLayer>,
}

/// Reusable activation and gradient buffers for batches of up to a given size.
#[derive(Debug, Default, Clone)]
pub struct Workspace {
    /// Output of every layer (after its activation), `rows × outputs`.
    acts: Vec<Vec<f32>>,
    /// Gradient with respect to the current layer's output.
    delta: Vec<f32>,
    /// Gradient with respect to the layer below's output.
    delta_below: Vec<f32>,
}

/// Gradients of every layer's weight and bias (zero-length for frozen layers).
#[derive(Debug, Default, Clone)]
pub struct DenseGrads {
    /// `∂loss/∂W` per layer.
    pub weight: Vec<Vec<f32>>,
    /// `∂loss/∂b` per layer.
    pub bias: Vec<Vec<f32>>,
}

/// `dst (m×n) ← [dst +] op(a) · op(b)`, row-major, where `op(a)` is `m×k`.
#[allow(clippy::too_many_arguments)] // a BLAS-style call
fn gemm(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_transposed: bool,
    b: &[f32],
    b_transposed: bool,
    accumulate: bool,
) {
    let lhs = if a_transposed {
        MatRef::from_row_major_slice(&a[..k * m], k, m).transpose()
    } else {
        MatRef::from_row_major_slice(&a[..m * k], m, k)
    };
    let rhs = if b_transposed {
        MatRef::from_row_major_slice(&b[..n * k], n, k).transpose()
    } else {
        MatRef::from_row_major_slice(&b[..k * n], k, n)
    };
    let out = MatMut::from_row_major_slice_mut(&mut dst[..m * n], m, n);
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    matmul(out, accum, lhs, rhs, 1.0f32, Par::Seq);
}

impl DenseNet {
    /// A network from its layers; consecutive widths must match.
    pub fn new(layers: Vec<DenseLayer>) -> Result<Self, NnError> {
        if layers.is_empty() {
            return Err(NnError::invalid("DenseNet", "needs at least one layer"));
        }
        for layer in &layers {
            layer.check()?;
        }
        for pair in layers.windows(2) {
            if pair[0].outputs != pair[1].inputs {
                return Err(NnError::shape(
                    "DenseNet",
                    format!("a layer taking {} inputs", pair[0].outputs),
                    pair[1].inputs,
                ));
            }
        }
        Ok(DenseNet { layers })
    }

    /// Input width of layer `from`.
    pub fn inputs_of(&self, from: usize) -> usize {
        self.layers.get(from).map_or(0, |l| l.inputs)
    }

    /// Output width of the last layer.
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// The index of the first trainable layer, if any.
    pub fn first_trainable(&self) -> Option<usize> {
        self.layers.iter().position(|l| l.trainable)
    }

    /// Runs layers `from..to` on `rows` rows of `x` (row-major, `rows × inputs_of(from)`),
    /// returning the output of layer `to − 1`. For inference and cached frozen prefixes.
    pub fn forward_range(
        &self,
        x: &[f32],
        rows: usize,
        from: usize,
        to: usize,
    ) -> Result<Vec<f32>, NnError> {
        let mut ws = Workspace::default();
        self.forward_into(x, rows, from, to, &mut ws)?;
        Ok(ws
            .acts
            .get(to.saturating_sub(1))
            .cloned()
            .unwrap_or_default())
    }

    /// Forward pass of layers `from..to`, keeping every layer's output in `ws`.
    fn forward_into(
        &self,
        x: &[f32],
        rows: usize,
        from: usize,
        to: usize,
        ws: &mut Workspace,
    ) -> Result<(), NnError> {
        if from >= to || to > self.layers.len() {
            return Err(NnError::invalid(
                "forward",
                format!("layer range {from}..{to} of {}", self.layers.len()),
            ));
        }
        if x.len() != rows * self.layers[from].inputs {
            return Err(NnError::shape(
                "forward input",
                format!("{rows}x{}", self.layers[from].inputs),
                format!("{} values", x.len()),
            ));
        }
        if ws.acts.len() < self.layers.len() {
            ws.acts.resize_with(self.layers.len(), Vec::new);
        }
        for l in from..to {
            let layer = &self.layers[l];
            let (below, rest) = ws.acts.split_at_mut(l);
            let input: &[f32] = if l == from { x } else { &below[l - 1] };
            let out = &mut rest[0];
            out.resize(rows * layer.outputs, 0.0);
            for row in out.chunks_exact_mut(layer.outputs) {
                row.copy_from_slice(&layer.bias);
            }
            gemm(
                out,
                rows,
                layer.outputs,
                layer.inputs,
                input,
                false,
                &layer.weight,
                false,
                true,
            );
            if layer.activation == Activation::Elu {
                kernels::elu_in_place(out);
            }
        }
        Ok(())
    }

    /// One forward pass of layers `from..` on a batch; returns the network's output.
    pub fn forward<'w>(
        &self,
        x: &[f32],
        rows: usize,
        from: usize,
        ws: &'w mut Workspace,
    ) -> Result<&'w [f32], NnError> {
        let to = self.layers.len();
        self.forward_into(x, rows, from, to, ws)?;
        Ok(&ws.acts[to - 1])
    }

    /// Backward pass after [`DenseNet::forward`] on the same batch `x` (the
    /// input of layer `from`): given `∂loss/∂output`, fills `grads` for every
    /// trainable layer. Stops below the lowest trainable layer, so no input
    /// gradient is computed for it.
    pub fn backward(
        &self,
        x: &[f32],
        rows: usize,
        from: usize,
        d_output: &[f32],
        ws: &mut Workspace,
        grads: &mut DenseGrads,
    ) -> Result<(), NnError> {
        let last = self.layers.len() - 1;
        if d_output.len() != rows * self.layers[last].outputs {
            return Err(NnError::shape(
                "backward",
                format!("{rows}x{}", self.layers[last].outputs),
                format!("{} values", d_output.len()),
            ));
        }
        let lowest = match self.layers[from..].iter().position(|l| l.trainable) {
            Some(offset) => from + offset,
            None => return Err(NnError::NoGradient),
        };
        grads.weight.resize_with(self.layers.len(), Vec::new);
        grads.bias.resize_with(self.layers.len(), Vec::new);
        ws.delta.clear();
        ws.delta.extend_from_slice(d_output);
        for l in (lowest..=last).rev() {
            let layer = &self.layers[l];
            let out = &ws.acts[l];
            if layer.activation == Activation::Elu {
                kernels::elu_backward(&mut ws.delta, out);
            }
            let input: &[f32] = if l == from { x } else { &ws.acts[l - 1] };
            if layer.trainable {
                let gw = &mut grads.weight[l];
                gw.resize(layer.inputs * layer.outputs, 0.0);
                gemm(
                    gw,
                    layer.inputs,
                    layer.outputs,
                    rows,
                    input,
                    true,
                    &ws.delta,
                    false,
                    false,
                );
                let gb = &mut grads.bias[l];
                gb.clear();
                gb.resize(layer.outputs, 0.0);
                kernels::add_rows(gb, &ws.delta);
            }
            if l > lowest {
                ws.delta_below.resize(rows * layer.inputs, 0.0);
                gemm(
                    &mut ws.delta_below,
                    rows,
                    layer.inputs,
                    layer.outputs,
                    &ws.delta,
                    false,
                    &layer.weight,
                    true,
                    false,
                );
                std::mem::swap(&mut ws.delta, &mut ws.delta_below);
            }
        }
        Ok(())
    }
}

/// Mean squared error over all entries and its gradient, written into `grad`.
pub fn mse_with_grad(prediction: &[f32], target: &[f32], grad: &mut Vec<f32>) -> f32 {
    let scale = 2.0 / prediction.len().max(1) as f32;
    grad.clear();
    let mut sum = 0.0f64;
    grad.extend(prediction.iter().zip(target).map(|(p, t)| {
        let d = p - t;
        sum += f64::from(d * d);
        scale * d
    }));
    (sum / prediction.len().max(1) as f64) as f32
}

/// Mean softmax cross-entropy of `logits` (`rows × classes`) against integer
/// `labels`, and its gradient with respect to the logits, written into `grad`.
pub fn softmax_cross_entropy_with_grad(
    logits: &[f32],
    classes: usize,
    labels: &[usize],
    grad: &mut Vec<f32>,
) -> Result<f32, NnError> {
    let rows = labels.len();
    if logits.len() != rows * classes || rows == 0 {
        return Err(NnError::shape(
            "cross entropy",
            format!("{rows}x{classes} logits"),
            logits.len(),
        ));
    }
    grad.clear();
    grad.extend_from_slice(logits);
    let mut total = 0.0f64;
    for (row, &label) in grad.chunks_exact_mut(classes).zip(labels) {
        if label >= classes {
            return Err(NnError::invalid(
                "label",
                format!("{label} is not below the {classes} classes"),
            ));
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        row.iter_mut().for_each(|v| {
            *v = (*v - max).exp();
            sum += *v;
        });
        total -= f64::from((row[label] / sum).ln());
        row.iter_mut().for_each(|v| *v /= sum * rows as f32);
        row[label] -= 1.0 / rows as f32;
    }
    Ok((total / rows as f64) as f32)
}

/// Per-layer Adam moments.
#[derive(Debug, Default, Clone)]
struct LayerMoments {
    m_w: Vec<f32>,
    v_w: Vec<f32>,
    m_b: Vec<f32>,
    v_b: Vec<f32>,
}

/// Penalties folded into [`DenseAdam::step`]; like Keras regularisers they are
/// not scaled by the batch size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensePenalties {
    /// Group lasso `λ Σ_g ‖W₀[g, :]‖` on the rows of the first layer's weight.
    pub group_lasso: f32,
    /// `l2 Σ w²` on every weight and on the biases with `bias_l2`.
    pub l2: f32,
    /// Added inside the group-lasso square root (a zero row then has gradient 0).
    pub eps: f32,
}

/// Adam (tf.keras update rule) over a [`DenseNet`], with the penalties'
/// gradients fused in. Frozen layers are skipped and keep no moments.
#[derive(Debug, Clone)]
pub struct DenseAdam {
    config: AdamConfig,
    step: i32,
    moments: Vec<LayerMoments>,
    /// Penalty value of each layer that has stayed frozen since it was last
    /// computed (a frozen layer does not change, so it is computed once).
    frozen_penalty: Vec<Option<(DensePenalties, f32)>>,
}

impl DenseAdam {
    /// A fresh optimiser (step 0, zero moments), as after a Keras `compile`.
    pub fn new(config: AdamConfig) -> Self {
        DenseAdam {
            config,
            step: 0,
            moments: Vec::new(),
            frozen_penalty: Vec::new(),
        }
    }

    /// Updates every trainable layer from `grads` plus the penalties' gradients;
    /// returns the penalties' value on all layers (frozen ones included, as Keras reports it).
    pub fn step(
        &mut self,
        net: &mut DenseNet,
        grads: &DenseGrads,
        penalties: DensePenalties,
    ) -> Result<f32, NnError> {
        self.step = self
            .step
            .checked_add(1)
            .ok_or_else(|| NnError::invalid("step", "too many steps"))?;
        let c = self.config;
        if !(c.lr.is_finite() && c.lr > 0.0) {
            return Err(NnError::invalid(
                "lr",
                format!("must be positive, got {}", c.lr),
            ));
        }
        let t = self.step;
        let correction2 = (1.0 - c.beta2.powi(t)).sqrt();
        let correction1 = 1.0 - c.beta1.powi(t);
        let (lr_t, eps) = match c.eps_style {
            super::EpsilonStyle::Keras => (c.lr * correction2 / correction1, c.eps),
            super::EpsilonStyle::Paper => (c.lr * correction2 / correction1, c.eps * correction2),
        };
        let update = AdamUpdate {
            lr: lr_t as f32,
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            eps: eps as f32,
        };
        self.moments
            .resize_with(net.layers.len(), LayerMoments::default);
        self.frozen_penalty.resize(net.layers.len(), None);
        let mut penalty = 0.0f32;
        for (l, ((layer, moments), frozen)) in net
            .layers
            .iter_mut()
            .zip(&mut self.moments)
            .zip(&mut self.frozen_penalty)
            .enumerate()
        {
            let l2_factor = 2.0 * penalties.l2;
            if !layer.trainable {
                let value = match *frozen {
                    Some((at, value)) if at == penalties => value,
                    _ => penalty_value(layer, l == 0, penalties),
                };
                *frozen = Some((penalties, value));
                penalty += value;
                continue;
            }
            *frozen = None;
            let (gw, gb) = match (grads.weight.get(l), grads.bias.get(l)) {
                (Some(w), Some(b))
                    if w.len() == layer.weight.len() && b.len() == layer.bias.len() =>
                {
                    (w, b)
                }
                _ => {
                    return Err(NnError::shape(
                        "Adam gradients",
                        format!("gradients for trainable layer {l}"),
                        "none or the wrong size",
                    ));
                }
            };
            moments.m_w.resize(layer.weight.len(), 0.0);
            moments.v_w.resize(layer.weight.len(), 0.0);
            moments.m_b.resize(layer.bias.len(), 0.0);
            moments.v_b.resize(layer.bias.len(), 0.0);
            let cols = layer.outputs;
            let lasso = if l == 0 { penalties.group_lasso } else { 0.0 };
            for (((w, g), m), v) in layer
                .weight
                .chunks_exact_mut(cols)
                .zip(gw.chunks_exact(cols))
                .zip(moments.m_w.chunks_exact_mut(cols))
                .zip(moments.v_w.chunks_exact_mut(cols))
            {
                let sq = kernels::sum_of_squares(w);
                penalty += penalties.l2 * sq;
                let mut factor = l2_factor;
                if lasso > 0.0 {
                    let norm = (sq + penalties.eps).sqrt();
                    penalty += lasso * norm;
                    if norm > 0.0 {
                        factor += lasso / norm;
                    }
                }
                update.apply(w, g, m, v, factor);
            }
            let bias_factor = if layer.bias_l2 {
                penalty += penalties.l2 * kernels::sum_of_squares(&layer.bias);
                l2_factor
            } else {
                0.0
            };
            update.apply(
                &mut layer.bias,
                gb,
                &mut moments.m_b,
                &mut moments.v_b,
                bias_factor,
            );
        }
        Ok(penalty)
    }
}

/// The penalties' value on one (frozen) layer.
fn penalty_value(layer: &DenseLayer, first: bool, penalties: DensePenalties) -> f32 {
    let mut total = 0.0;
    for row in layer.weight.chunks_exact(layer.outputs) {
        let sq = kernels::sum_of_squares(row);
        total += penalties.l2 * sq;
        if first && penalties.group_lasso > 0.0 {
            total += penalties.group_lasso * (sq + penalties.eps).sqrt();
        }
    }
    if layer.bias_l2 {
        total += penalties.l2 * kernels::sum_of_squares(&layer.bias);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn small_net(rng: &mut ChaCha8Rng) -> DenseNet {
        let mut layers = vec![
            DenseLayer::glorot(5, 4, Activation::Elu, rng).unwrap(),
            DenseLayer::glorot(4, 3, Activation::Elu, rng).unwrap(),
            DenseLayer::glorot(3, 2, Activation::Linear, rng).unwrap(),
        ];
        for layer in &mut layers {
            layer
                .bias
                .iter_mut()
                .for_each(|b| *b = rng.random_range(-0.5..0.5));
        }
        DenseNet::new(layers).unwrap()
    }

    fn loss_of(net: &DenseNet, x: &[f32], y: &[f32]) -> f64 {
        let out = net.forward_range(x, 3, 0, net.layers.len()).unwrap();
        let mut g = Vec::new();
        f64::from(mse_with_grad(&out, y, &mut g))
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net = small_net(&mut rng);
        let x: Vec<f32> = (0..15).map(|_| rng.random_range(-1.5..1.5)).collect();
        let y: Vec<f32> = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut ws = Workspace::default();
        let out = net.forward(&x, 3, 0, &mut ws).unwrap().to_vec();
        let mut d = Vec::new();
        mse_with_grad(&out, &y, &mut d);
        let mut grads = DenseGrads::default();
        net.backward(&x, 3, 0, &d, &mut ws, &mut grads).unwrap();
        let h = 1e-2f32;
        for l in 0..net.layers.len() {
            for i in 0..net.layers[l].weight.len() {
                let mut plus = net.clone();
                plus.layers[l].weight[i] += h;
                let mut minus = net.clone();
                minus.layers[l].weight[i] -= h;
                let numeric =
                    (loss_of(&plus, &x, &y) - loss_of(&minus, &x, &y)) / (2.0 * f64::from(h));
                let analytic = f64::from(grads.weight[l][i]);
                assert!(
                    (numeric - analytic).abs() < 2e-3,
                    "layer {l} w{i}: {numeric} vs {analytic}"
                );
            }
            for i in 0..net.layers[l].bias.len() {
                let mut plus = net.clone();
                plus.layers[l].bias[i] += h;
                let mut minus = net.clone();
                minus.layers[l].bias[i] -= h;
                let numeric =
                    (loss_of(&plus, &x, &y) - loss_of(&minus, &x, &y)) / (2.0 * f64::from(h));
                let analytic = f64::from(grads.bias[l][i]);
                assert!(
                    (numeric - analytic).abs() < 2e-3,
                    "layer {l} b{i}: {numeric} vs {analytic}"
                );
            }
        }
    }

    #[test]
    fn frozen_prefix_gives_the_same_gradients_from_cached_features() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut net = small_net(&mut rng);
        net.layers[0].trainable = false;
        let x: Vec<f32> = (0..15).map(|_| rng.random_range(-1.5..1.5)).collect();
        let y: Vec<f32> = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut ws = Workspace::default();
        let out = net.forward(&x, 3, 0, &mut ws).unwrap().to_vec();
        let mut d = Vec::new();
        mse_with_grad(&out, &y, &mut d);
        let mut full = DenseGrads::default();
        net.backward(&x, 3, 0, &d, &mut ws, &mut full).unwrap();
        let cached = net.forward_range(&x, 3, 0, 1).unwrap();
        let out2 = net.forward(&cached, 3, 1, &mut ws).unwrap().to_vec();
        assert_eq!(out, out2);
        let mut partial = DenseGrads::default();
        net.backward(&cached, 3, 1, &d, &mut ws, &mut partial)
            .unwrap();
        assert_eq!(full.weight[1..], partial.weight[1..]);
        assert!(full.weight[0].is_empty());
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let logits = vec![0.3f32, -1.0, 2.0, 0.5, 0.5, -0.2];
        let labels = [2usize, 0];
        let mut g = Vec::new();
        softmax_cross_entropy_with_grad(&logits, 3, &labels, &mut g).unwrap();
        let h = 1e-3f32;
        for i in 0..logits.len() {
            let (mut p, mut m) = (logits.clone(), logits.clone());
            p[i] += h;
            m[i] -= h;
            let mut scratch = Vec::new();
            let lp = softmax_cross_entropy_with_grad(&p, 3, &labels, &mut scratch).unwrap();
            let lm = softmax_cross_entropy_with_grad(&m, 3, &labels, &mut scratch).unwrap();
            assert!(((lp - lm) / (2.0 * h) - g[i]).abs() < 1e-3);
        }
        assert!(softmax_cross_entropy_with_grad(&logits, 3, &[3, 0], &mut g).is_err());
    }

    #[test]
    fn adam_matches_a_hand_computed_keras_step_with_penalties() {
        let layer = DenseLayer {
            inputs: 1,
            outputs: 2,
            weight: vec![3.0, 4.0],
            bias: vec![1.0, 0.0],
            activation: Activation::Linear,
            trainable: true,
            bias_l2: false,
        };
        let mut net = DenseNet::new(vec![layer]).unwrap();
        let grads = DenseGrads {
            weight: vec![vec![0.5, -0.5]],
            bias: vec![vec![1.0, 0.0]],
        };
        let mut adam = DenseAdam::new(AdamConfig::keras(0.1));
        let penalties = DensePenalties {
            group_lasso: 0.5,
            l2: 0.0,
            eps: 0.0,
        };
        let value = adam.step(&mut net, &grads, penalties).unwrap();
        assert!((value - 2.5).abs() < 1e-6);
        // g = 0.5 + 0.5·3/5 = 0.8; first Keras step moves by lr·g/(|g| + ε·...) ≈ lr·sign(g).
        let w = &net.layers[0].weight;
        assert!((w[0] - 2.9).abs() < 1e-5, "{w:?}");
        // g = −0.5 + 0.5·4/5 = −0.1.
        assert!((w[1] - 4.1).abs() < 1e-5, "{w:?}");
        assert!((net.layers[0].bias[0] - 0.9).abs() < 1e-5);
        assert_eq!(net.layers[0].bias[1], 0.0);
    }

    #[test]
    fn keep_inputs_keeps_rows_and_rejects_bad_indices() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut layer = DenseLayer::glorot(4, 3, Activation::Elu, &mut rng).unwrap();
        let original = layer.clone();
        layer.keep_inputs(&[2, 0]).unwrap();
        assert_eq!(layer.inputs, 2);
        assert_eq!(layer.weight[..3], original.weight[6..9]);
        assert_eq!(layer.weight[3..], original.weight[..3]);
        assert!(layer.keep_inputs(&[5]).is_err());
        assert!(layer.keep_inputs(&[]).is_err());
    }
}
