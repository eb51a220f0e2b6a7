//! A convolutional front for the dense engine: one 2-D convolution of a
//! single-channel image (`maps` feature maps, `kernel × kernel`, stride 1,
//! "same" zero padding), ReLU, then non-overlapping `pool × pool` max-pooling.
//!
//! The convolution is a dense layer (`kernel² → maps`, ReLU) applied to every
//! image patch: the forward pass writes the patches of a batch as the rows
//! of one matrix (im2col) and runs that layer on it with the engine's matrix
//! products, so the weights, their gradient and their Adam update are a
//! one-layer [`DenseNet`]'s ([`TrainingNet`]). Max-pooling keeps the index of
//! every window's maximum for the backward pass. The pooled output of an
//! image is laid out position by position, each position's `maps` values
//! together (Keras' `channels_last` flatten). The front is the lowest layer
//! of a network, so no gradient with respect to the image is formed. It runs
//! on the CPU only.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Activation, DenseGrads, DenseLayer, DenseNet, TrainingNet};
use crate::nn::{AdamConfig, NnError};

/// The sizes of a convolutional front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvShape {
    /// Feature maps (output channels).
    pub maps: usize,
    /// Side of the square kernel (odd, for "same" padding).
    pub kernel: usize,
    /// Side of the square max-pooling window (and its stride).
    pub pool: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
}

impl ConvShape {
    /// Checks that the sizes make a front: all positive, an odd kernel, and
    /// image sides divisible by the pooling window.
    pub fn check(&self) -> Result<(), NnError> {
        let bad = |reason: String| Err(NnError::invalid("convolution", reason));
        if self.maps == 0 || self.kernel == 0 || self.pool == 0 {
            return bad(format!(
                "maps, kernel and pool must be positive, got {}, {}, {}",
                self.maps, self.kernel, self.pool
            ));
        }
        if self.kernel.is_multiple_of(2) {
            return bad(format!(
                "the kernel side must be odd for same padding, got {}",
                self.kernel
            ));
        }
        if self.height == 0
            || self.width == 0
            || !self.height.is_multiple_of(self.pool)
            || !self.width.is_multiple_of(self.pool)
        {
            return bad(format!(
                "a {}x{} image does not split into {}x{} pooling windows",
                self.height, self.width, self.pool, self.pool
            ));
        }
        Ok(())
    }

    /// Pixels per image (the input width).
    pub fn inputs(&self) -> usize {
        self.height * self.width
    }

    /// Pooled features per image (the output width).
    pub fn outputs(&self) -> usize {
        (self.height / self.pool) * (self.width / self.pool) * self.maps
    }

    /// Values per patch.
    fn patch(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Writes the `kernel²` patch of every pixel of `rows` images (zero
    /// outside the image) as the rows of `patches`, image by image, pixel
    /// by pixel in row-major order.
    fn im2col(&self, x: &[f32], rows: usize, patches: &mut Vec<f32>) {
        let (h, w, k) = (self.height, self.width, self.kernel);
        let half = k / 2;
        patches.clear();
        patches.resize(rows * h * w * k * k, 0.0);
        for (image, out) in x
            .chunks_exact(h * w)
            .zip(patches.chunks_exact_mut(h * w * k * k))
        {
            for (p, patch) in out.chunks_exact_mut(k * k).enumerate() {
                let (i, j) = (p / w, p % w);
                for di in 0..k {
                    let Some(r) = (i + di).checked_sub(half).filter(|&r| r < h) else {
                        continue;
                    };
                    for dj in 0..k {
                        if let Some(c) = (j + dj).checked_sub(half).filter(|&c| c < w) {
                            patch[di * k + dj] = image[r * w + c];
                        }
                    }
                }
            }
        }
    }

    /// Max-pools `act` (`rows` images of `height × width × maps`) into
    /// `out`, keeping the index into `act` of each window's maximum (the
    /// first one on ties) in `argmax`.
    fn pool_into(&self, act: &[f32], rows: usize, out: &mut Vec<f32>, argmax: &mut Vec<u32>) {
        let (h, w, m, p) = (self.height, self.width, self.maps, self.pool);
        let (ph, pw) = (h / p, w / p);
        out.clear();
        argmax.clear();
        for n in 0..rows {
            for pi in 0..ph {
                for pj in 0..pw {
                    for c in 0..m {
                        let mut best = usize::MAX;
                        for a in 0..p {
                            for b in 0..p {
                                let at = ((n * h + pi * p + a) * w + pj * p + b) * m + c;
                                if best == usize::MAX || act[at] > act[best] {
                                    best = at;
                                }
                            }
                        }
                        out.push(act[best]);
                        argmax.push(best as u32);
                    }
                }
            }
        }
    }
}

/// A convolutional front's weights: its shape and the per-patch dense layer
/// (`kernel² × maps` weight, row-major by kernel position, and `maps` biases).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvLayer {
    /// The sizes.
    pub shape: ConvShape,
    /// The layer applied to every patch.
    pub kernel: DenseLayer,
}

impl ConvLayer {
    /// A front with Keras' `glorot_uniform` convolution kernel (fan-in
    /// `kernel²`, fan-out `kernel² · maps`, row-major draws from `rng`) and
    /// zero biases.
    pub fn glorot(shape: ConvShape, rng: &mut ChaCha8Rng) -> Result<Self, NnError> {
        shape.check()?;
        let (patch, maps) = (shape.patch(), shape.maps);
        let limit = (6.0 / (patch + patch * maps) as f64).sqrt() as f32;
        let weight = (0..patch * maps)
            .map(|_| rng.random_range(-limit..limit))
            .collect();
        ConvLayer::new(shape, weight, vec![0.0; maps])
    }

    /// A front with the given `kernel² × maps` weight and `maps` biases.
    pub fn new(shape: ConvShape, weight: Vec<f32>, bias: Vec<f32>) -> Result<Self, NnError> {
        shape.check()?;
        let (patch, maps) = (shape.patch(), shape.maps);
        if weight.len() != patch * maps || bias.len() != maps {
            return Err(NnError::shape(
                "convolution weights",
                format!("{patch}x{maps} and {maps}"),
                format!("{} and {}", weight.len(), bias.len()),
            ));
        }
        Ok(ConvLayer {
            shape,
            kernel: DenseLayer {
                inputs: patch,
                outputs: maps,
                weight,
                bias,
                activation: Activation::Relu,
                trainable: true,
                bias_l2: true,
            },
        })
    }

    /// The pooled features of `rows` images `x` (`rows × height·width`,
    /// row-major), `rows × outputs`.
    pub fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>, NnError> {
        check_input(&self.shape, x, rows)?;
        let mut patches = Vec::new();
        self.shape.im2col(x, rows, &mut patches);
        let net = DenseNet::new(vec![self.kernel.clone()])?;
        let act = net.forward_range(&patches, rows * self.shape.inputs(), 0, 1)?;
        let (mut out, mut argmax) = (Vec::new(), Vec::new());
        self.shape.pool_into(&act, rows, &mut out, &mut argmax);
        Ok(out)
    }
}

fn check_input(shape: &ConvShape, x: &[f32], rows: usize) -> Result<(), NnError> {
    if x.len() != rows * shape.inputs() {
        return Err(NnError::shape(
            "convolution input",
            format!("{rows}x{} pixels", shape.inputs()),
            format!("{} values", x.len()),
        ));
    }
    Ok(())
}

/// A convolutional front being trained on the dense engine: its kernel as
/// a one-layer [`TrainingNet`] (Adam state included) and the buffers of the
/// last forward pass.
#[derive(Debug)]
pub struct TrainingConv {
    shape: ConvShape,
    net: TrainingNet,
    rows: usize,
    patches: Vec<f32>,
    argmax: Vec<u32>,
    output: Vec<f32>,
    d_act: Vec<f32>,
}

impl TrainingConv {
    /// `layer` with a fresh optimiser.
    pub fn new(layer: ConvLayer, adam: AdamConfig) -> Result<Self, NnError> {
        layer.shape.check()?;
        let net = DenseNet::new(vec![layer.kernel])?;
        Ok(TrainingConv {
            shape: layer.shape,
            net: TrainingNet::new(net, adam).parallel(),
            rows: 0,
            patches: Vec::new(),
            argmax: Vec::new(),
            output: Vec::new(),
            d_act: Vec::new(),
        })
    }

    /// The sizes.
    pub fn shape(&self) -> ConvShape {
        self.shape
    }

    /// The forward pass on `rows` images `x`; returns the pooled features.
    pub fn forward(&mut self, x: &[f32], rows: usize) -> Result<&[f32], NnError> {
        check_input(&self.shape, x, rows)?;
        self.shape.im2col(x, rows, &mut self.patches);
        let act = self
            .net
            .forward(&self.patches, rows * self.shape.inputs())?;
        self.shape
            .pool_into(act, rows, &mut self.output, &mut self.argmax);
        self.rows = rows;
        Ok(&self.output)
    }

    /// The kernel's gradients given `∂loss/∂features` of the last forward pass.
    pub fn backward(&mut self, d_output: &[f32]) -> Result<(), NnError> {
        if d_output.len() != self.output.len() {
            return Err(NnError::shape(
                "convolution backward",
                format!("{} values", self.output.len()),
                d_output.len(),
            ));
        }
        let positions = self.rows * self.shape.inputs();
        self.d_act.clear();
        self.d_act.resize(positions * self.shape.maps, 0.0);
        for (&at, &d) in self.argmax.iter().zip(d_output) {
            self.d_act[at as usize] += d;
        }
        self.net
            .backward(&self.patches, positions, &self.d_act, None)
    }

    /// The gradients of the last backward pass (the kernel's weight and bias).
    pub fn grads(&self) -> DenseGrads {
        self.net.grads()
    }

    /// One Adam step from the last backward pass.
    pub fn step(&mut self) -> Result<(), NnError> {
        self.net.step()
    }

    /// The current weights.
    pub fn layer(&self) -> ConvLayer {
        ConvLayer {
            shape: self.shape,
            kernel: self.net.net.layers[0].clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn shape() -> ConvShape {
        ConvShape {
            maps: 3,
            kernel: 3,
            pool: 2,
            height: 6,
            width: 4,
        }
    }

    /// `Σ features ⊙ g` for fixed `g`: its gradient w.r.t. the features is `g`.
    fn loss(layer: &ConvLayer, x: &[f32], rows: usize, g: &[f32]) -> f64 {
        let out = layer.forward(x, rows).unwrap();
        out.iter().zip(g).map(|(&o, &g)| f64::from(o * g)).sum()
    }

    #[test]
    fn gradients_agree_with_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let layer = ConvLayer::glorot(shape(), &mut rng).unwrap();
        // Biases away from zero so that some windows are all ReLU'd off and
        // others not; inputs spread so that no two window values tie.
        let layer = ConvLayer::new(shape(), layer.kernel.weight, vec![0.1, -0.05, 0.02]).unwrap();
        let rows = 2;
        let x: Vec<f32> = (0..rows * 24)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let g: Vec<f32> = (0..rows * shape().outputs())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut training = TrainingConv::new(layer.clone(), AdamConfig::keras(1e-3)).unwrap();
        assert_eq!(
            training.forward(&x, rows).unwrap(),
            layer.forward(&x, rows).unwrap()
        );
        training.backward(&g).unwrap();
        let grads = training.grads();
        let mut checked = 0;
        for (part, analytic) in [("weight", &grads.weight[0]), ("bias", &grads.bias[0])] {
            for (i, &a) in analytic.iter().enumerate() {
                let shifted = |delta: f32| {
                    let mut l = layer.clone();
                    match part {
                        "weight" => l.kernel.weight[i] += delta,
                        _ => l.kernel.bias[i] += delta,
                    }
                    loss(&l, &x, rows, &g)
                };
                // A step may cross a ReLU's or a pooling window's kink: the
                // gradient must agree at one of the step sizes.
                let numeric: Vec<f64> = [1e-3f32, 3e-4]
                    .into_iter()
                    .map(|h| (shifted(h) - shifted(-h)) / (2.0 * f64::from(h)))
                    .collect();
                assert!(
                    numeric
                        .iter()
                        .any(|n| (n - f64::from(a)).abs() < 2e-3 * (1.0 + n.abs())),
                    "{part}[{i}]: finite differences {numeric:?} vs backward {a}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 9 * 3 + 3);
        assert!(grads.weight[0].iter().any(|&v| v.abs() > 1e-3));
    }

    #[test]
    fn same_padding_and_pooling_give_known_values() {
        // One map, a centre-only kernel of weight 1: the convolution is the
        // image itself, and pooling keeps each 2x2 window's largest pixel.
        let shape = ConvShape {
            maps: 1,
            kernel: 3,
            pool: 2,
            height: 2,
            width: 4,
        };
        let mut weight = vec![0.0; 9];
        weight[4] = 1.0;
        let layer = ConvLayer::new(shape, weight, vec![0.0]).unwrap();
        let x = [1.0, -2.0, 3.0, 0.5, 0.0, 4.0, -1.0, 2.0];
        assert_eq!(layer.forward(&x, 1).unwrap(), vec![4.0, 3.0]);
        // A kernel summing the 3x3 neighbourhood sees zeros outside the image.
        let layer = ConvLayer::new(shape, vec![1.0; 9], vec![0.0]).unwrap();
        let ones = [1.0f32; 8];
        // Every pixel of a 2x4 image has 4 or 6 neighbours (itself included).
        assert_eq!(layer.forward(&ones, 1).unwrap(), vec![6.0, 6.0]);
        assert_eq!(shape.outputs(), 2);
    }

    #[test]
    fn bad_shapes_and_inputs_are_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for bad in [
            ConvShape {
                kernel: 2,
                ..shape()
            },
            ConvShape { maps: 0, ..shape() },
            ConvShape {
                height: 5,
                ..shape()
            },
            ConvShape { pool: 0, ..shape() },
        ] {
            let message = ConvLayer::glorot(bad, &mut rng).unwrap_err().to_string();
            assert!(message.contains("convolution"), "{message}");
        }
        let layer = ConvLayer::glorot(shape(), &mut rng).unwrap();
        assert_eq!(shape().outputs(), 3 * 2 * 3);
        assert!(layer.forward(&[0.0; 23], 1).is_err());
        assert!(ConvLayer::new(shape(), vec![0.0; 26], vec![0.0; 3]).is_err());
        let mut training = TrainingConv::new(layer, AdamConfig::keras(1e-3)).unwrap();
        training.forward(&[0.5; 48], 2).unwrap();
        assert!(training.backward(&[0.0; 5]).is_err());
    }

    #[test]
    fn a_step_lowers_the_loss() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let layer = ConvLayer::glorot(shape(), &mut rng).unwrap();
        let x: Vec<f32> = (0..48).map(|_| rng.random_range(0.0..1.0)).collect();
        let mut training = TrainingConv::new(layer, AdamConfig::keras(1e-2)).unwrap();
        let target = vec![0.3f32; 2 * shape().outputs()];
        let mut losses = Vec::new();
        for _ in 0..20 {
            let out = training.forward(&x, 2).unwrap().to_vec();
            let d: Vec<f32> = out.iter().zip(&target).map(|(o, t)| o - t).collect();
            losses.push(d.iter().map(|v| v * v).sum::<f32>());
            training.backward(&d).unwrap();
            training.step().unwrap();
        }
        assert!(losses[19] < 0.5 * losses[0], "{losses:?}");
    }
}
