//! Dense layers and stacks of them: forward and backward passes written out
//! by hand over flat row-major `f32` buffers allocated once ([`Workspace`]);
//! every matrix product is one call into faer's cache-blocked SIMD kernels
//! (single-threaded, so a run is bit-for-bit reproducible and several
//! networks can train on separate threads).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::kernels;
use crate::nn::NnError;

/// The activation after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// Exponential linear unit, α = 1.
    Elu,
    /// Rectified linear unit `max(x, 0)`.
    Relu,
    /// Identity.
    Linear,
}

impl Activation {
    /// Applies the activation to pre-activations in place.
    fn apply(self, values: &mut [f32]) {
        match self {
            Activation::Elu => kernels::elu_in_place(values),
            Activation::Relu => kernels::relu_in_place(values),
            Activation::Linear => {}
        }
    }

    /// Multiplies `delta` by the activation's derivative, read from its output.
    fn backward(self, delta: &mut [f32], output: &[f32]) {
        match self {
            Activation::Elu => kernels::elu_backward(delta, output),
            Activation::Relu => kernels::relu_backward(delta, output),
            Activation::Linear => {}
        }
    }

    /// Writes `d_output` times the activation's derivative (read from its
    /// output) into `delta`, of the same length.
    fn backward_into(self, delta: &mut [f32], d_output: &[f32], output: &[f32]) {
        match self {
            Activation::Elu => kernels::elu_backward_into(delta, d_output, output),
            Activation::Relu => kernels::relu_backward_into(delta, d_output, output),
            Activation::Linear => delta.copy_from_slice(d_output),
        }
    }
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
    /// Whether large matrix products may use the current rayon pool.
    parallel: bool,
}

/// Matrix products with at least this many multiply-adds run on the current
/// rayon pool when a workspace allows it; smaller ones cost more to split
/// than they gain.
const PARALLEL_MACS: usize = 1 << 20;

impl Workspace {
    /// A workspace whose large matrix products run on two threads of the
    /// current rayon pool, each forming half of the output
    /// ([`split_product`]), never splitting the summed dimension, so the
    /// results are bit-for-bit those of one thread (see the tests).
    pub fn parallel() -> Self {
        Workspace {
            parallel: true,
            ..Workspace::default()
        }
    }

    /// Whether a product of `m × k` by `k × n` runs on the rayon pool in
    /// this workspace.
    fn large(&self, m: usize, n: usize, k: usize) -> bool {
        self.parallel && m * n * k >= PARALLEL_MACS
    }

    /// How a product of `m × k` by `k × n` runs in this workspace.
    fn par(&self, m: usize, n: usize, k: usize) -> Par {
        ws_par(self.large(m, n, k))
    }

    /// The output of `net`'s last layer after a forward pass of `net` through
    /// this workspace (empty before one).
    pub fn output(&self, net: &DenseNet) -> &[f32] {
        net.layers
            .len()
            .checked_sub(1)
            .and_then(|last| self.acts.get(last))
            .map_or(&[], Vec::as_slice)
    }
}

/// The pool for a product that is large ([`Workspace::large`]), else one thread.
fn ws_par(large: bool) -> Par {
    if large { Par::rayon(0) } else { Par::Seq }
}

/// Gradients of every layer's weight and bias (zero-length for frozen layers).
#[derive(Debug, Default, Clone)]
pub struct DenseGrads {
    /// `∂loss/∂W` per layer.
    pub weight: Vec<Vec<f32>>,
    /// `∂loss/∂b` per layer.
    pub bias: Vec<Vec<f32>>,
}

impl DenseGrads {
    /// Adds `other` layer by layer (a layer this lacks takes `other`'s), so
    /// that one optimiser step takes the sum of several backward passes.
    pub fn add(&mut self, other: &DenseGrads) {
        let layers = self.weight.len().max(other.weight.len());
        self.weight.resize(layers, Vec::new());
        self.bias.resize(layers, Vec::new());
        let pairs = self
            .weight
            .iter_mut()
            .zip(&other.weight)
            .chain(self.bias.iter_mut().zip(&other.bias));
        for (sum, o) in pairs {
            if sum.is_empty() {
                sum.clone_from(o);
            } else if sum.len() == o.len() {
                sum.iter_mut().zip(o).for_each(|(s, o)| *s += o);
            }
        }
    }
}

/// The weight gradient of one layer left unformed, as the product
/// `inputᵀ · delta` of its batch input and its pre-activation gradient
/// ([`DenseNet::backward_deferred`]), for the optimiser to form a block of
/// weight rows at a time while it updates them
/// ([`super::DenseAdam::step_with_product`]).
#[derive(Debug, Clone, Copy)]
pub struct WeightProduct<'a> {
    /// The layer whose weight gradient this is.
    pub layer: usize,
    /// The layer's batch input, `rows × inputs`, row-major.
    pub input: &'a [f32],
    /// `∂loss/∂(x W + b)` of the batch, `rows × outputs`, row-major.
    pub delta: &'a [f32],
    /// Rows in the batch.
    pub rows: usize,
}

impl WeightProduct<'_> {
    /// Whether the product has the sizes of an `inputs × outputs` weight's gradient.
    pub(super) fn fits(&self, inputs: usize, outputs: usize) -> bool {
        self.input.len() >= self.rows * inputs && self.delta.len() >= self.rows * outputs
    }

    /// Writes rows `first..first + count` of the gradient of an `inputs ×
    /// outputs` weight (`count × outputs`, row-major) into `out`. Each entry is
    /// the same sum over the batch, in the same order, as in the whole product
    /// (see the tests), as long as the block is large enough for faer to use
    /// its general kernel ([`product_rows_per_block`]).
    pub(super) fn rows_into(
        &self,
        first: usize,
        count: usize,
        inputs: usize,
        outputs: usize,
        out: &mut [f32],
    ) {
        let lhs =
            MatRef::from_row_major_slice(&self.input[..self.rows * inputs], self.rows, inputs)
                .transpose()
                .subrows(first, count);
        let rhs =
            MatRef::from_row_major_slice(&self.delta[..self.rows * outputs], self.rows, outputs);
        let dst = MatMut::from_row_major_slice_mut(&mut out[..count * outputs], count, outputs);
        matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, Par::Seq);
    }
}

/// Products of at most this many multiply-adds go to faer's small-matrix
/// kernels (`nano-gemm`), whose sums need not round as its general kernel's do.
const SMALL_PRODUCT_MACS: usize = 16 * 16 * 16;

/// Gradient values formed per block from a [`WeightProduct`] (64 KiB: the
/// block stays in the core's L2 cache until the optimiser consumes it).
const BLOCK_VALUES: usize = 16 * 1024;

/// How many weight rows of an `inputs × outputs` gradient, summed over a batch
/// of `rows`, to form at a time: about [`BLOCK_VALUES`] values, or all rows in
/// one block when some block would fall to faer's small-matrix kernels (so
/// that every entry is the one the whole product gives).
pub(super) fn product_rows_per_block(inputs: usize, outputs: usize, rows: usize) -> usize {
    let block = (BLOCK_VALUES / outputs.max(1)).clamp(1, inputs.max(1));
    let smallest = match inputs % block {
        0 => block,
        rest => rest,
    };
    if smallest * outputs * rows <= SMALL_PRODUCT_MACS {
        inputs
    } else {
        block
    }
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
    par: Par,
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
    if matches!(par, Par::Seq) {
        matmul(out, accum, lhs, rhs, 1.0f32, Par::Seq);
    } else {
        split_product(out, accum, lhs, rhs);
    }
}

/// `dst ← [dst +] lhs · rhs` as two products of about half the output each
/// (the longer side split at a multiple of 16), one on each of two rayon
/// threads, each on one thread: a thread that finds the other busy runs both
/// halves itself instead of waiting for it at a barrier, as a product split
/// by faer does. The halves' entries are the whole product's sums (test
/// `parallel_products_are_bitwise_the_sequential_ones`).
fn split_product(dst: MatMut<'_, f32>, accum: Accum, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    let (m, n) = (dst.nrows(), dst.ncols());
    let half = |len: usize| (len / 2).next_multiple_of(16).min(len);
    if m >= n {
        let top = half(m);
        let (upper, lower) = dst.split_at_row_mut(top);
        let (a, b) = (lhs.subrows(0, top), lhs.subrows(top, m - top));
        rayon::join(
            || matmul(upper, accum, a, rhs, 1.0f32, Par::Seq),
            || matmul(lower, accum, b, rhs, 1.0f32, Par::Seq),
        );
    } else {
        let left = half(n);
        let (first, second) = dst.split_at_col_mut(left);
        let (a, b) = (rhs.subcols(0, left), rhs.subcols(left, n - left));
        rayon::join(
            || matmul(first, accum, lhs, a, 1.0f32, Par::Seq),
            || matmul(second, accum, lhs, b, 1.0f32, Par::Seq),
        );
    }
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
            let par = ws.par(rows, layer.outputs, layer.inputs);
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
                par,
            );
            layer.activation.apply(out);
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
        self.backward_through(x, rows, from, d_output, ws, grads, None, false)
            .map(|_| ())
    }

    /// As [`DenseNet::backward`], but leaves the weight gradient of the lowest
    /// trainable layer unformed (its entry in `grads` empty) and returns it
    /// as a [`WeightProduct`] for [`super::DenseAdam::step_with_product`],
    /// which forms it block by block while updating the weight: the same
    /// values without writing and reading back a whole gradient (the sBNN's
    /// first layer is 1000 × 512). The product is formed on one thread.
    pub fn backward_deferred<'a>(
        &self,
        x: &'a [f32],
        rows: usize,
        from: usize,
        d_output: &'a [f32],
        ws: &'a mut Workspace,
        grads: &mut DenseGrads,
    ) -> Result<WeightProduct<'a>, NnError> {
        let lowest = self.backward_through(x, rows, from, d_output, ws, grads, None, true)?;
        let ws: &'a Workspace = ws;
        let (input, delta) = self.operands(lowest, from, x, d_output, &ws.acts, &ws.delta);
        Ok(WeightProduct {
            layer: lowest,
            input,
            delta,
            rows,
        })
    }

    /// As [`DenseNet::backward`], and when `d_input` is given also writes
    /// `∂loss/∂x` (`rows × inputs_of(from)`) into it, for a network that
    /// feeds on another trained one (a decoder on an encoder's code).
    #[allow(clippy::too_many_arguments)] // backward's arguments and the output
    pub fn backward_to_input(
        &self,
        x: &[f32],
        rows: usize,
        from: usize,
        d_output: &[f32],
        ws: &mut Workspace,
        grads: &mut DenseGrads,
        d_input: Option<&mut Vec<f32>>,
    ) -> Result<(), NnError> {
        self.backward_through(x, rows, from, d_output, ws, grads, d_input, false)
            .map(|_| ())
    }

    /// The backward pass of the public forms; with `defer`, the lowest
    /// trainable layer's weight gradient is left empty. Returns the lowest
    /// layer it reached.
    #[allow(clippy::too_many_arguments)] // the public forms' arguments
    fn backward_through(
        &self,
        x: &[f32],
        rows: usize,
        from: usize,
        d_output: &[f32],
        ws: &mut Workspace,
        grads: &mut DenseGrads,
        mut d_input: Option<&mut Vec<f32>>,
        defer: bool,
    ) -> Result<usize, NnError> {
        let last = self.layers.len() - 1;
        if d_output.len() != rows * self.layers[last].outputs {
            return Err(NnError::shape(
                "backward",
                format!("{rows}x{}", self.layers[last].outputs),
                format!("{} values", d_output.len()),
            ));
        }
        let lowest = match (
            &d_input,
            self.layers[from..].iter().position(|l| l.trainable),
        ) {
            (Some(_), _) => from,
            (None, Some(offset)) => from + offset,
            (None, None) => return Err(NnError::NoGradient),
        };
        grads.weight.resize_with(self.layers.len(), Vec::new);
        grads.bias.resize_with(self.layers.len(), Vec::new);
        for l in (lowest..=last).rev() {
            let layer = &self.layers[l];
            let top_linear = self.reads_d_output(l);
            if l == last && !top_linear {
                ws.delta.resize(d_output.len(), 0.0);
                layer
                    .activation
                    .backward_into(&mut ws.delta, d_output, &ws.acts[l]);
            } else if l < last {
                layer.activation.backward(&mut ws.delta, &ws.acts[l]);
            }
            let large_weight = ws.large(layer.inputs, layer.outputs, rows);
            let large_input = ws.large(rows, layer.inputs, layer.outputs);
            let (input, delta) = self.operands(l, from, x, d_output, &ws.acts, &ws.delta);
            let form_weight = layer.trainable && !(defer && l == lowest);
            // The weight and bias gradients (`inputᵀ · delta` and the column
            // sums of delta), or none (a frozen layer, a deferred product).
            let weight_gradient = |gw: &mut Vec<f32>, gb: &mut Vec<f32>, par: Par| {
                if !layer.trainable {
                    return;
                }
                if form_weight {
                    gw.resize(layer.inputs * layer.outputs, 0.0);
                    gemm(
                        gw,
                        layer.inputs,
                        layer.outputs,
                        rows,
                        input,
                        true,
                        delta,
                        false,
                        false,
                        par,
                    );
                } else {
                    gw.clear();
                }
                gb.clear();
                gb.resize(layer.outputs, 0.0);
                kernels::add_rows(gb, delta);
            };
            // The gradient with respect to the layer's input, `delta · Wᵀ`.
            let input_gradient = |below: &mut Vec<f32>, par: Par| {
                below.resize(rows * layer.inputs, 0.0);
                gemm(
                    below,
                    rows,
                    layer.inputs,
                    layer.outputs,
                    delta,
                    false,
                    &layer.weight,
                    true,
                    false,
                    par,
                );
            };
            let below: Option<&mut Vec<f32>> = match (l > lowest, d_input.as_deref_mut()) {
                (true, _) => Some(&mut ws.delta_below),
                (false, d_input) => d_input,
            };
            let (gw, gb) = (&mut grads.weight[l], &mut grads.bias[l]);
            match below {
                // Two large independent products: one on each of two threads,
                // each on one thread, rather than each split across both
                // (the same sums either way, see the tests).
                Some(below) if form_weight && large_weight && large_input => {
                    rayon::join(
                        || weight_gradient(gw, gb, Par::Seq),
                        || input_gradient(below, Par::Seq),
                    );
                }
                Some(below) => {
                    weight_gradient(gw, gb, ws_par(large_weight));
                    input_gradient(below, ws_par(large_input));
                }
                None => {
                    weight_gradient(gw, gb, ws_par(large_weight));
                    break;
                }
            }
            if l > lowest {
                std::mem::swap(&mut ws.delta, &mut ws.delta_below);
            }
        }
        Ok(lowest)
    }

    /// Whether layer `l`'s delta is the output gradient itself: a linear
    /// output layer's is, with no copy.
    fn reads_d_output(&self, l: usize) -> bool {
        l + 1 == self.layers.len() && self.layers[l].activation == Activation::Linear
    }

    /// Layer `l`'s batch input and delta during the backward pass from layer
    /// `from`: `x` or the activations below it, and `d_output` or the
    /// workspace's delta.
    fn operands<'a>(
        &self,
        l: usize,
        from: usize,
        x: &'a [f32],
        d_output: &'a [f32],
        acts: &'a [Vec<f32>],
        delta: &'a [f32],
    ) -> (&'a [f32], &'a [f32]) {
        let input = if l == from { x } else { &acts[l - 1] };
        let delta = if self.reads_d_output(l) {
            d_output
        } else {
            delta
        };
        (input, delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::dense::mse_with_grad;
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

    /// [`small_net`] from `seed`, then a batch of 3 inputs and targets from the same stream.
    fn net_and_batch(seed: u64) -> (DenseNet, Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = small_net(&mut rng);
        let x: Vec<f32> = (0..15).map(|_| rng.random_range(-1.5..1.5)).collect();
        let y: Vec<f32> = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
        (net, x, y)
    }

    fn loss_of(net: &DenseNet, x: &[f32], y: &[f32]) -> f64 {
        let out = net.forward_range(x, 3, 0, net.layers.len()).unwrap();
        let mut g = Vec::new();
        f64::from(mse_with_grad(&out, y, &mut g))
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (net, x, y) = net_and_batch(3);
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
        let (mut net, x, y) = net_and_batch(4);
        net.layers[0].trainable = false;
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
    fn parallel_products_are_bitwise_the_sequential_ones() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (m, n, k) = (200, 1000, 60);
        let a: Vec<f32> = (0..300_000).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..300_000).map(|_| rng.random_range(-1.0..1.0)).collect();
        // The products of a decoder's widest layer: forward, weight and input
        // gradients; of an encoder's widest layer; of the mixVAE's (batch 256,
        // 100 units); and odd sizes.
        let shapes = [
            (m, n, k),
            (k, n, m),
            (m, k, n),
            (m, k, 1000),
            (1000, k, m),
            (256, 100, 1000),
            (1000, 100, 256),
            (256, 1000, 100),
            (100, 1000, 256),
            (37, 201, 300),
            (301, 17, 300),
        ];
        for (at, bt) in [(false, false), (true, false), (false, true)] {
            for (mm, nn, kk) in shapes {
                for accumulate in [false, true] {
                    let run = |par: Par| {
                        let mut out: Vec<f32> =
                            (0..mm * nn).map(|i| (i % 7) as f32 - 3.0).collect();
                        gemm(&mut out, mm, nn, kk, &a, at, &b, bt, accumulate, par);
                        out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    };
                    assert_eq!(
                        run(Par::Seq),
                        run(Par::rayon(2)),
                        "{mm}x{nn}x{kk} {at} {bt} {accumulate}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_parallel_workspace_gives_bitwise_the_sequential_gradients() {
        // A k-CAE decoder's shapes: its 60 -> 1000 output layer's weight and
        // input gradients are both large, so they run side by side.
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let net = DenseNet::new(vec![
            DenseLayer::glorot(3, 60, Activation::Elu, &mut rng).unwrap(),
            DenseLayer::glorot(60, 60, Activation::Elu, &mut rng).unwrap(),
            DenseLayer::glorot(60, 1000, Activation::Linear, &mut rng).unwrap(),
        ])
        .unwrap();
        let rows = 200;
        let x: Vec<f32> = (0..rows * 3).map(|_| rng.random_range(-2.0..2.0)).collect();
        let d: Vec<f32> = (0..rows * 1000)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let run = |mut ws: Workspace| {
            pool.install(|| {
                let out = net.forward(&x, rows, 0, &mut ws).unwrap().to_vec();
                let mut grads = DenseGrads::default();
                let mut d_input = Vec::new();
                net.backward_to_input(&x, rows, 0, &d, &mut ws, &mut grads, Some(&mut d_input))
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let mut all = vec![bits(&out), bits(&d_input)];
                all.extend(grads.weight.iter().chain(&grads.bias).map(|g| bits(g)));
                all
            })
        };
        assert_eq!(run(Workspace::default()), run(Workspace::parallel()));
    }

    #[test]
    fn product_blocks_are_bitwise_the_whole_gradient() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        // The sBNN's first layer at full and last (short) batches, its pruned
        // first layer, its bottleneck (whose blocks would be small) and an odd shape.
        for (inputs, outputs, rows) in [
            (1000, 512, 32),
            (1000, 512, 4),
            (25, 512, 32),
            (128, 2, 32),
            (128, 2, 4),
            (301, 97, 7),
        ] {
            let x: Vec<f32> = (0..rows * inputs)
                .map(|_| rng.random_range(-2.0..2.0))
                .collect();
            let delta: Vec<f32> = (0..rows * outputs)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut whole = vec![0.0f32; inputs * outputs];
            gemm(
                &mut whole,
                inputs,
                outputs,
                rows,
                &x,
                true,
                &delta,
                false,
                false,
                Par::Seq,
            );
            let product = WeightProduct {
                layer: 0,
                input: &x,
                delta: &delta,
                rows,
            };
            assert!(product.fits(inputs, outputs));
            let block = product_rows_per_block(inputs, outputs, rows);
            let mut blocked = vec![0.0f32; inputs * outputs];
            for first in (0..inputs).step_by(block) {
                let count = block.min(inputs - first);
                product.rows_into(
                    first,
                    count,
                    inputs,
                    outputs,
                    &mut blocked[first * outputs..(first + count) * outputs],
                );
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&whole),
                bits(&blocked),
                "{inputs}x{outputs}, batch {rows}"
            );
        }
        // The sBNN's first layer is formed in several blocks, its bottleneck in one.
        assert!(product_rows_per_block(1000, 512, 4) < 1000);
        assert_eq!(product_rows_per_block(128, 2, 4), 128);
    }

    #[test]
    fn deferred_backward_leaves_the_lowest_weight_gradient_as_its_product() {
        let (net, x, y) = net_and_batch(6);
        let mut ws = Workspace::default();
        let out = net.forward(&x, 3, 0, &mut ws).unwrap().to_vec();
        let mut d = Vec::new();
        mse_with_grad(&out, &y, &mut d);
        let mut full = DenseGrads::default();
        net.backward(&x, 3, 0, &d, &mut ws, &mut full).unwrap();
        let mut deferred = DenseGrads::default();
        let product = net
            .backward_deferred(&x, 3, 0, &d, &mut ws, &mut deferred)
            .unwrap();
        assert_eq!(product.layer, 0);
        let mut formed = vec![0.0f32; 5 * 4];
        product.rows_into(0, 5, 5, 4, &mut formed);
        assert_eq!(formed, full.weight[0]);
        assert!(deferred.weight[0].is_empty());
        assert_eq!(deferred.weight[1..], full.weight[1..]);
        assert_eq!(deferred.bias, full.bias);
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
