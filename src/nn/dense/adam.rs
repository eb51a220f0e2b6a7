//! Adam (tf.keras update rule) over a [`DenseNet`], with the penalties'
//! gradients (group lasso on the first layer's rows, L2) fused into the one
//! pass over each parameter. The step counter and bias correction are the
//! tape optimiser's ([`AdamClock`]).

use super::kernels::{self, AdamUpdate, RowPenalties};
use super::net::{DenseGrads, DenseLayer, DenseNet, WeightProduct, product_rows_per_block};
use crate::nn::NnError;
use crate::nn::adam::{AdamClock, AdamConfig};

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

impl DensePenalties {
    /// No penalty: the optimiser's update alone.
    pub const NONE: DensePenalties = DensePenalties {
        group_lasso: 0.0,
        l2: 0.0,
        eps: 0.0,
    };
}

/// Adam (tf.keras update rule) over a [`DenseNet`], with the penalties'
/// gradients fused in. Frozen layers are skipped and keep no moments.
#[derive(Debug, Clone)]
pub struct DenseAdam {
    config: AdamConfig,
    clock: AdamClock,
    moments: Vec<LayerMoments>,
    /// Penalty value of each layer that has stayed frozen since it was last
    /// computed (a frozen layer does not change, so it is computed once).
    frozen_penalty: Vec<Option<(DensePenalties, f32)>>,
    /// A block of weight-gradient rows formed from a [`WeightProduct`].
    block: Vec<f32>,
}

impl DenseAdam {
    /// A fresh optimiser (step 0, zero moments), as after a Keras `compile`.
    pub fn new(config: AdamConfig) -> Self {
        DenseAdam {
            config,
            clock: AdamClock::default(),
            moments: Vec::new(),
            frozen_penalty: Vec::new(),
            block: Vec::new(),
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
        self.step_inner(net, grads, penalties, None)
    }

    /// As [`DenseAdam::step`], with the weight gradient of `product.layer`
    /// (left empty in `grads` by [`DenseNet::backward_deferred`]) formed from
    /// the product a block of rows at a time, each block consumed by the
    /// update while it is in cache. The same values as forming it whole.
    pub fn step_with_product(
        &mut self,
        net: &mut DenseNet,
        grads: &DenseGrads,
        penalties: DensePenalties,
        product: WeightProduct<'_>,
    ) -> Result<f32, NnError> {
        self.step_inner(net, grads, penalties, Some(product))
    }

    fn step_inner(
        &mut self,
        net: &mut DenseNet,
        grads: &DenseGrads,
        penalties: DensePenalties,
        product: Option<WeightProduct<'_>>,
    ) -> Result<f32, NnError> {
        let size = self.clock.tick(&self.config)?;
        let c = self.config;
        let update = AdamUpdate {
            lr: size.lr_t as f32,
            beta1: c.beta1 as f32,
            beta2: c.beta2 as f32,
            eps: size.eps_raw as f32,
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
            let (inputs, cols) = (layer.inputs, layer.outputs);
            let product = product.filter(|p| p.layer == l);
            let gw = match (grads.weight.get(l), product) {
                (_, Some(p)) if p.fits(inputs, cols) => WeightGradient::Product(p),
                (Some(w), None) if w.len() == layer.weight.len() => WeightGradient::Formed(w),
                _ => {
                    return Err(NnError::shape(
                        "Adam gradients",
                        format!("weight gradients for trainable layer {l}"),
                        "none or the wrong size",
                    ));
                }
            };
            let gb = match grads.bias.get(l) {
                Some(b) if b.len() == layer.bias.len() => b,
                _ => {
                    return Err(NnError::shape(
                        "Adam gradients",
                        format!("bias gradients for trainable layer {l}"),
                        "none or the wrong size",
                    ));
                }
            };
            moments.m_w.resize(layer.weight.len(), 0.0);
            moments.v_w.resize(layer.weight.len(), 0.0);
            moments.m_b.resize(layer.bias.len(), 0.0);
            moments.v_b.resize(layer.bias.len(), 0.0);
            let rows = RowUpdate {
                update,
                cols,
                penalties: (penalties != DensePenalties::NONE).then_some(RowPenalties {
                    l2: penalties.l2,
                    lasso: if l == 0 { penalties.group_lasso } else { 0.0 },
                    eps: penalties.eps,
                }),
            };
            match gw {
                WeightGradient::Formed(gw) => rows.apply(
                    &mut layer.weight,
                    gw,
                    &mut moments.m_w,
                    &mut moments.v_w,
                    &mut penalty,
                ),
                WeightGradient::Product(p) => {
                    let block = product_rows_per_block(inputs, cols, p.rows);
                    self.block.resize(block * cols, 0.0);
                    for first in (0..inputs).step_by(block) {
                        let count = block.min(inputs - first);
                        let values = first * cols..(first + count) * cols;
                        let g = &mut self.block[..count * cols];
                        p.rows_into(first, count, inputs, cols, g);
                        rows.apply(
                            &mut layer.weight[values.clone()],
                            g,
                            &mut moments.m_w[values.clone()],
                            &mut moments.v_w[values],
                            &mut penalty,
                        );
                    }
                }
            }
            if penalties == DensePenalties::NONE {
                update.apply(&mut layer.bias, gb, &mut moments.m_b, &mut moments.v_b, 0.0);
                continue;
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

/// Where a layer's weight gradient comes from.
enum WeightGradient<'g, 'p> {
    /// Formed by the backward pass.
    Formed(&'g [f32]),
    /// Left as a product, formed here block by block.
    Product(WeightProduct<'p>),
}

/// The update of a block of whole weight rows: with penalties, row by row
/// ([`AdamUpdate::apply_rows`]); without, element by element.
struct RowUpdate {
    update: AdamUpdate,
    cols: usize,
    penalties: Option<RowPenalties>,
}

impl RowUpdate {
    fn apply(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], penalty: &mut f32) {
        match self.penalties {
            Some(p) => self.update.apply_rows(w, g, m, v, self.cols, p, penalty),
            None => self.update.apply(w, g, m, v, 0.0),
        }
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
    use crate::nn::dense::Activation;

    #[test]
    fn steps_on_a_deferred_product_are_bitwise_the_formed_gradients_steps() {
        use crate::nn::dense::{Workspace, mse_with_grad};
        use rand::{Rng, SeedableRng};
        use rand_chacha::ChaCha8Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        // A first layer of 300 × 128 is formed in three blocks (128, 128, 44 rows).
        let layers = vec![
            DenseLayer::glorot(300, 128, Activation::Elu, &mut rng).unwrap(),
            DenseLayer::glorot(128, 2, Activation::Linear, &mut rng).unwrap(),
            DenseLayer::glorot(2, 5, Activation::Linear, &mut rng).unwrap(),
        ];
        let start = DenseNet::new(layers).unwrap();
        let rows = 37;
        let x: Vec<f32> = (0..rows * 300)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let y: Vec<f32> = (0..rows * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
        for penalties in [
            DensePenalties {
                group_lasso: 0.1,
                l2: 1e-4,
                eps: 1e-12,
            },
            DensePenalties::NONE,
        ] {
            let (mut a, mut b) = (start.clone(), start.clone());
            let (mut adam_a, mut adam_b) = (
                DenseAdam::new(AdamConfig::keras(1e-3)),
                DenseAdam::new(AdamConfig::keras(1e-3)),
            );
            let (mut ws_a, mut ws_b) = (Workspace::default(), Workspace::default());
            let (mut g_a, mut g_b) = (DenseGrads::default(), DenseGrads::default());
            let mut d = Vec::new();
            // Batches of 16, 16 and 5 rows, three epochs.
            for batch in [0..16, 16..32, 32..37].iter().cycle().take(9) {
                let n = batch.len();
                let xb = &x[batch.start * 300..batch.end * 300];
                let yb = &y[batch.start * 5..batch.end * 5];
                let out = a.forward(xb, n, 0, &mut ws_a).unwrap();
                mse_with_grad(out, yb, &mut d);
                a.backward(xb, n, 0, &d, &mut ws_a, &mut g_a).unwrap();
                let pa = adam_a.step(&mut a, &g_a, penalties).unwrap();
                let out = b.forward(xb, n, 0, &mut ws_b).unwrap();
                mse_with_grad(out, yb, &mut d);
                let product = b
                    .backward_deferred(xb, n, 0, &d, &mut ws_b, &mut g_b)
                    .unwrap();
                let pb = adam_b
                    .step_with_product(&mut b, &g_b, penalties, product)
                    .unwrap();
                assert_eq!(pa.to_bits(), pb.to_bits());
                assert!(pa > 0.0 || penalties == DensePenalties::NONE);
            }
            assert_eq!(a, b);
            assert_ne!(a, start);
        }
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
}
