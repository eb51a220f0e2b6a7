//! One arm's training step on the dense engine: augmentation, the
//! convolutional front and its feature dropout (if any), encoder,
//! latent normalisation, decoder, weighted reconstruction error, then the
//! backward pass with the coupling's gradient added at the code and a fused
//! Adam update. Every buffer is allocated once and reused.

use rand_chacha::ChaCha8Rng;

use super::arm::{Arm, ArmLayers};
use super::data::Rows;
use crate::nn::dense::{
    BatchNormCache, DenseBatchNorm, Engine, TrainingConv, TrainingNet, weighted_mse_with_grad,
};
use crate::nn::{
    AdamConfig, NnError, ParamStore, add_noise_in_place, dropout_copy, dropout_in_place,
};

/// An arm being trained, with its optimiser state and buffers.
#[derive(Debug)]
pub(super) struct DenseArm {
    conv: Option<TrainingConv>,
    encoder: TrainingNet,
    norm: Option<DenseBatchNorm>,
    decoder: TrainingNet,
    augmentation: Augmentation,
    weight: f32,
    /// The batch of the next or last forward pass.
    batch: Drawn,
    norm_cache: BatchNormCache,
    d_reconstruction: Vec<f32>,
    d_code: Vec<f32>,
    d_pre: Vec<f32>,
    /// The convolutional front's pooled features after dropout (the
    /// encoder's input), and their gradient.
    features: Vec<f32>,
    d_features: Vec<f32>,
}

/// An arm's batch: its rows as drawn (the reconstruction target) and
/// augmented (the encoder's input), row-major.
#[derive(Debug, Default)]
pub(super) struct Drawn {
    rows: usize,
    target: Vec<f32>,
    input: Vec<f32>,
    /// The dropout mask (0 or `1 / (1 − rate)`) of the convolutional
    /// front's pooled features; empty without one.
    mask: Vec<f32>,
}

/// An arm's input augmentation: Gaussian noise, then dropout; and the
/// dropout of a convolutional front's `features` pooled features per row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Augmentation {
    noise: f32,
    dropout: f32,
    features: usize,
    feature_dropout: f32,
}

impl Augmentation {
    /// Draws a batch into `out`: rows `rows` of `matrix`, augmented with
    /// draws from `rng`. Nothing else in a training step draws, so the next
    /// step's batches can be drawn while this step's backward passes run.
    pub(super) fn draw(
        &self,
        matrix: &impl Rows,
        rows: &[usize],
        rng: &mut ChaCha8Rng,
        out: &mut Drawn,
    ) -> Result<(), NnError> {
        out.rows = rows.len();
        out.target.clear();
        for &r in rows {
            matrix.push_row(r, &mut out.target);
        }
        if self.noise == 0.0 {
            // No noise draws: the masked copy is written block by block.
            dropout_copy(&out.target, self.dropout, rng, &mut out.input)?;
        } else {
            out.input.clone_from(&out.target);
            add_noise_in_place(&mut out.input, self.noise, rng)?;
            dropout_in_place(&mut out.input, self.dropout, rng)?;
        }
        out.mask.clear();
        if self.features > 0 {
            out.mask.resize(rows.len() * self.features, 1.0);
            dropout_in_place(&mut out.mask, self.feature_dropout, rng)?;
        }
        Ok(())
    }
}

impl DenseArm {
    /// The arm's current weights from `store`, a fresh optimiser with
    /// `adam`, its encoder and decoder trained on `engine` (the latent
    /// normalisation and the loss stay on the host).
    pub(super) fn new(
        arm: &Arm,
        store: &ParamStore,
        adam: AdamConfig,
        engine: Engine,
    ) -> Result<Self, NnError> {
        let settings = arm.settings();
        let layers = arm.layers(store)?;
        let conv = match layers.conv {
            Some(layer) if engine == Engine::Dense => Some(TrainingConv::new(layer, adam)?),
            Some(_) => {
                return Err(NnError::invalid(
                    "conv",
                    format!(
                        "an arm with a convolutional front trains on the CPU's dense engine only, not {engine:?}"
                    ),
                ));
            }
            None => None,
        };
        Ok(DenseArm {
            augmentation: Augmentation {
                noise: settings.input_noise,
                dropout: settings.input_dropout,
                features: conv.as_ref().map_or(0, |c| c.shape().outputs()),
                feature_dropout: settings.conv.map_or(0.0, |front| front.dropout),
            },
            conv,
            encoder: TrainingNet::on(engine, layers.encoder, adam)?.parallel(),
            norm: layers.norm,
            decoder: TrainingNet::on(engine, layers.decoder, adam)?.parallel(),
            weight: settings.weight as f32,
            batch: Drawn::default(),
            norm_cache: BatchNormCache::default(),
            d_reconstruction: Vec::new(),
            d_code: Vec::new(),
            d_pre: Vec::new(),
            features: Vec::new(),
            d_features: Vec::new(),
        })
    }

    /// How the arm augments its batches.
    pub(super) fn augmentation(&self) -> Augmentation {
        self.augmentation
    }

    /// Takes `drawn` as the batch of the next forward pass, leaving the
    /// last batch's buffers in `drawn` for the next draw.
    pub(super) fn take(&mut self, drawn: &mut Drawn) {
        std::mem::swap(&mut self.batch, drawn);
    }

    /// The forward pass on the batch of the last [`DenseArm::take`]. Returns
    /// the unweighted reconstruction error; the code is then [`DenseArm::code`].
    pub(super) fn forward(&mut self) -> Result<f32, NnError> {
        let rows = self.batch.rows;
        let input: &[f32] = match &mut self.conv {
            Some(conv) => {
                let pooled = conv.forward(&self.batch.input, rows)?;
                self.features.clear();
                self.features
                    .extend(pooled.iter().zip(&self.batch.mask).map(|(f, m)| f * m));
                &self.features
            }
            None => &self.batch.input,
        };
        let pre = self.encoder.forward(input, rows)?;
        let code: &[f32] = match &mut self.norm {
            Some(norm) => {
                norm.forward_train(pre, rows, &mut self.norm_cache)?;
                &self.norm_cache.output
            }
            None => pre,
        };
        let reconstruction = self.decoder.forward(code, rows)?;
        Ok(weighted_mse_with_grad(
            reconstruction,
            &self.batch.target,
            self.weight,
            &mut self.d_reconstruction,
        ))
    }

    /// The batch's latent codes after [`DenseArm::forward`], `rows × d` row-major.
    pub(super) fn code(&self) -> &[f32] {
        match &self.norm {
            Some(_) => &self.norm_cache.output,
            None => self.encoder.output(),
        }
    }

    /// The backward pass of `α · reconstruction error` plus a term whose
    /// gradient with respect to the code is `d_coupling` (if any).
    pub(super) fn backward(&mut self, d_coupling: Option<&[f32]>) -> Result<(), NnError> {
        let rows = self.batch.rows;
        let code: &[f32] = match &self.norm {
            Some(_) => &self.norm_cache.output,
            None => self.encoder.output(),
        };
        self.decoder
            .backward(code, rows, &self.d_reconstruction, Some(&mut self.d_code))?;
        if let Some(extra) = d_coupling {
            if extra.len() != self.d_code.len() {
                return Err(NnError::shape(
                    "coupling gradient",
                    self.d_code.len(),
                    extra.len(),
                ));
            }
            self.d_code.iter_mut().zip(extra).for_each(|(d, e)| *d += e);
        }
        let d_pre = match &self.norm {
            Some(norm) => {
                norm.backward(&self.d_code, rows, &mut self.norm_cache, &mut self.d_pre)?;
                &self.d_pre
            }
            None => &self.d_code,
        };
        match &mut self.conv {
            Some(conv) => {
                self.encoder
                    .backward(&self.features, rows, d_pre, Some(&mut self.d_features))?;
                self.d_features
                    .iter_mut()
                    .zip(&self.batch.mask)
                    .for_each(|(d, m)| *d *= m);
                conv.backward(&self.d_features)
            }
            None => self.encoder.backward(&self.batch.input, rows, d_pre, None),
        }
    }

    /// One Adam step of the encoder and the decoder from the last backward pass.
    pub(super) fn step(&mut self) -> Result<(), NnError> {
        if let Some(conv) = &mut self.conv {
            conv.step()?;
        }
        self.encoder.step()?;
        self.decoder.step()
    }

    /// [`DenseArm::backward`], then [`DenseArm::step`].
    pub(super) fn backward_and_step(&mut self, d_coupling: Option<&[f32]>) -> Result<(), NnError> {
        self.backward(d_coupling)?;
        self.step()
    }

    /// The trained layers.
    pub(super) fn layers(&mut self) -> Result<ArmLayers, NnError> {
        self.encoder.sync()?;
        self.decoder.sync()?;
        Ok(ArmLayers {
            conv: self.conv.as_ref().map(TrainingConv::layer),
            encoder: self.encoder.net.clone(),
            norm: self.norm.clone(),
            decoder: self.decoder.net.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::cae::ArmConfig;
    use crate::nn::{DeviceChoice, Mode, Var, loss};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    /// The dense arm's gradients against the tape's for the same weights,
    /// batch and augmentation draws: `α · mse + Σ z ⊙ g` for a fixed `g`.
    #[test]
    fn gradients_match_the_tape() {
        for norm in [None, Some(0.9f32)] {
            let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let settings = ArmConfig {
                hidden: vec![6, 5],
                input_noise: 0.1,
                input_dropout: 0.2,
                weight: 0.7,
                ..ArmConfig::electrophysiological()
            };
            let arm = Arm::new(&mut store, "a", 4, 2, &settings, norm, &mut rng).unwrap();
            let data = Array2::from_shape_simple_fn((9, 4), || rng.random_range(-1.0f32..1.0));
            let rows = [3usize, 0, 8, 5, 1];
            let g: Vec<f32> = (0..10).map(|_| rng.random_range(-0.5f32..0.5)).collect();

            let mut dense =
                DenseArm::new(&arm, &store, AdamConfig::keras(1e-3), Engine::Dense).unwrap();
            let mut drawn = Drawn::default();
            dense
                .augmentation()
                .draw(&data, &rows, &mut ChaCha8Rng::seed_from_u64(5), &mut drawn)
                .unwrap();
            dense.take(&mut drawn);
            dense.forward().unwrap();
            dense.backward(Some(&g)).unwrap();

            let x = Var::from_array(store.device(), &data.select(ndarray::Axis(0), &rows)).unwrap();
            let target =
                Var::from_array(store.device(), &data.select(ndarray::Axis(0), &rows)).unwrap();
            let z = arm
                .encode(
                    &mut store,
                    x,
                    Mode::Train,
                    &mut ChaCha8Rng::seed_from_u64(5),
                )
                .unwrap();
            let (z1, z2) = z.fork();
            let recon = loss::mse(arm.decode(&store, z1).unwrap(), target).unwrap();
            let coupling = z2
                .mul(Var::from_vec(store.device(), 5, 2, g.clone()).unwrap())
                .unwrap()
                .sum()
                .unwrap();
            let total = recon.scale(0.7).unwrap().add(coupling).unwrap();
            let mut grads = total.backward().unwrap();

            let names = ["a.enc0", "a.enc1", "a.latent"]
                .map(|n| (n, &dense.encoder))
                .into_iter()
                .enumerate()
                .chain(
                    ["a.dec0", "a.dec1", "a.out"]
                        .map(|n| (n, &dense.decoder))
                        .into_iter()
                        .enumerate(),
                );
            for (l, (name, net)) in names {
                for (part, dense_grad) in [
                    ("weight", &net.grads().weight[l]),
                    ("bias", &net.grads().bias[l]),
                ] {
                    let id = store.id(&format!("{name}.{part}")).unwrap();
                    let tape = grads.of(&store, id).unwrap();
                    for (t, d) in tape.iter().zip(dense_grad) {
                        assert!(
                            (t - d).abs() < 1e-4 * (1.0 + t.abs()),
                            "{name}.{part} (norm {norm:?}): tape {t} vs dense {d}"
                        );
                    }
                }
            }
        }
    }

    fn conv_settings(dropout: f32) -> ArmConfig {
        ArmConfig {
            hidden: vec![5],
            input_noise: 0.0,
            input_dropout: 0.0,
            weight: 0.7,
            conv: Some(crate::models::cae::ConvFront {
                maps: 2,
                kernel: 3,
                pool: 2,
                height: 4,
                width: 6,
                dropout,
            }),
            ..ArmConfig::electrophysiological()
        }
    }

    /// `α · mse + Σ z ⊙ g` of `dense`'s forward pass on its batch.
    fn objective(dense: &mut DenseArm, weight: f32, g: &[f32]) -> f64 {
        let recon = f64::from(dense.forward().unwrap() * weight);
        recon
            + dense
                .code()
                .iter()
                .zip(g)
                .map(|(&z, &g)| f64::from(z * g))
                .sum::<f64>()
    }

    /// The convolutional front's gradients, through feature dropout, the
    /// encoder, the latent normalisation and the decoder, agree with central
    /// finite differences of the arm's objective.
    #[test]
    fn conv_front_gradients_agree_with_finite_differences() {
        let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let settings = conv_settings(0.3);
        let arm = Arm::new(&mut store, "a", 24, 2, &settings, Some(0.9), &mut rng).unwrap();
        let bias = store.id("a.conv.bias").unwrap();
        store
            .set_vector(bias, &ndarray::Array1::from_vec(vec![0.05, -0.02]))
            .unwrap();
        let data = Array2::from_shape_simple_fn((7, 24), || rng.random_range(0.0f32..1.0));
        let rows = [3usize, 0, 6, 5, 1];
        let g: Vec<f32> = (0..10).map(|_| rng.random_range(-0.5f32..0.5)).collect();
        let adam = AdamConfig::keras(1e-3);
        let run = |store: &ParamStore| {
            let mut dense = DenseArm::new(&arm, store, adam, Engine::Dense).unwrap();
            let mut drawn = Drawn::default();
            dense
                .augmentation()
                .draw(&data, &rows, &mut ChaCha8Rng::seed_from_u64(5), &mut drawn)
                .unwrap();
            assert!(drawn.mask.contains(&0.0), "some features are dropped");
            dense.take(&mut drawn);
            dense
        };
        let mut dense = run(&store);
        objective(&mut dense, 0.7, &g);
        dense.backward(Some(&g)).unwrap();
        let grads = dense.conv.as_ref().unwrap().grads();
        for (name, analytic) in [
            ("a.conv.weight", &grads.weight[0]),
            ("a.conv.bias", &grads.bias[0]),
        ] {
            let id = store.id(name).unwrap();
            let values = store.values(id).unwrap();
            for (i, &a) in analytic.iter().enumerate() {
                let mut at = |delta: f32| {
                    let mut shifted = values.clone();
                    shifted[i] += delta;
                    let shape = store.shape(id).unwrap();
                    if shape.len() == 2 {
                        let m = Array2::from_shape_vec((shape[0], shape[1]), shifted).unwrap();
                        store.set_matrix(id, &m).unwrap();
                    } else {
                        store
                            .set_vector(id, &ndarray::Array1::from_vec(shifted))
                            .unwrap();
                    }
                    objective(&mut run(&store), 0.7, &g)
                };
                // A step may cross a ReLU's or a pooling window's kink: the
                // gradient must agree at one of the step sizes.
                let numeric: Vec<f64> = [1e-2f32, 3e-3, 1e-3]
                    .into_iter()
                    .map(|h| (at(h) - at(-h)) / (2.0 * f64::from(h)))
                    .collect();
                at(0.0);
                assert!(
                    numeric
                        .iter()
                        .any(|n| (n - f64::from(a)).abs() < 1e-2 * (0.1 + n.abs())),
                    "{name}[{i}]: finite differences {numeric:?} vs backward {a}"
                );
            }
        }
        assert!(grads.weight[0].iter().any(|&v| v.abs() > 1e-3));
    }

    /// A convolutional front trains on the CPU's dense engine only; the
    /// tensor backends refuse it with a message, and the tape refuses to
    /// train it (it encodes with it at inference).
    #[test]
    fn a_conv_front_is_refused_off_the_dense_engine() {
        let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let arm = Arm::new(&mut store, "a", 24, 2, &conv_settings(0.0), None, &mut rng).unwrap();
        for engine in [Engine::Cuda(0), Engine::TensorCpu] {
            let message = DenseArm::new(&arm, &store, AdamConfig::keras(1e-3), engine)
                .unwrap_err()
                .to_string();
            assert!(message.contains("dense engine"), "{message}");
        }
        let zeros = Array2::zeros((3, 24));
        let x = Var::from_array(store.device(), &zeros).unwrap();
        let mut eval_rng = ChaCha8Rng::seed_from_u64(0);
        assert!(
            arm.pre_latent(&store, x, Mode::Train, &mut eval_rng)
                .is_err()
        );
        let x = Var::from_array(store.device(), &zeros).unwrap();
        let z = arm
            .pre_latent(&store, x, Mode::Eval, &mut eval_rng)
            .unwrap();
        assert_eq!(z.to_array().unwrap().dim(), (3, 2));
        // The image must have as many pixels as the data has features.
        let mut other = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let message = Arm::new(&mut other, "a", 25, 2, &conv_settings(0.0), None, &mut rng)
            .unwrap_err()
            .to_string();
        assert!(message.contains("4x6"), "{message}");
    }

    /// Draws a mini-batch of `rows` (through the arm's augmentation) and runs
    /// the forward pass on it.
    fn draw_and_forward(
        dense: &mut DenseArm,
        data: &Array2<f32>,
        rows: &[usize],
        rng: &mut ChaCha8Rng,
    ) {
        let mut drawn = Drawn::default();
        dense
            .augmentation()
            .draw(data, rows, rng, &mut drawn)
            .unwrap();
        dense.take(&mut drawn);
        dense.forward().unwrap();
    }

    /// The dense engine's codes after training match the model's inference
    /// codes (the front run on the host from the store's weights).
    #[test]
    fn trained_conv_weights_reach_the_model() {
        let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let arm = Arm::new(&mut store, "a", 24, 2, &conv_settings(0.0), None, &mut rng).unwrap();
        let before = store.values(store.id("a.conv.weight").unwrap()).unwrap();
        let data = Array2::from_shape_simple_fn((6, 24), || rng.random_range(0.0f32..1.0));
        let rows: Vec<usize> = (0..6).collect();
        let mut dense =
            DenseArm::new(&arm, &store, AdamConfig::keras(1e-2), Engine::Dense).unwrap();
        for _ in 0..5 {
            draw_and_forward(&mut dense, &data, &rows, &mut rng);
            dense.backward_and_step(None).unwrap();
        }
        draw_and_forward(&mut dense, &data, &rows, &mut rng);
        let codes = dense.code().to_vec();
        arm.set_layers(&mut store, &dense.layers().unwrap())
            .unwrap();
        let after = store.values(store.id("a.conv.weight").unwrap()).unwrap();
        assert_ne!(before, after);
        let x = Var::from_array(store.device(), &data).unwrap();
        let z = arm
            .pre_latent(&store, x, Mode::Eval, &mut rng)
            .unwrap()
            .to_array()
            .unwrap();
        for (a, b) in z.iter().zip(&codes) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
