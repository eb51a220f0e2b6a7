//! One arm's training step on the dense engine: augmentation, encoder,
//! latent normalisation, decoder, weighted reconstruction error, then the
//! backward pass with the coupling's gradient added at the code and a fused
//! Adam update. Every buffer is allocated once and reused.

use rand_chacha::ChaCha8Rng;

use super::arm::{Arm, ArmLayers};
use super::data::Rows;
use crate::nn::dense::{
    BatchNormCache, DenseBatchNorm, Engine, TrainingNet, weighted_mse_with_grad,
};
use crate::nn::{
    AdamConfig, NnError, ParamStore, add_noise_in_place, dropout_copy, dropout_in_place,
};

/// An arm being trained, with its optimiser state and buffers.
#[derive(Debug)]
pub(super) struct DenseArm {
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
}

/// An arm's batch: its rows as drawn (the reconstruction target) and
/// augmented (the encoder's input), row-major.
#[derive(Debug, Default)]
pub(super) struct Drawn {
    rows: usize,
    target: Vec<f32>,
    input: Vec<f32>,
}

/// An arm's input augmentation: Gaussian noise, then dropout.
#[derive(Debug, Clone, Copy)]
pub(super) struct Augmentation {
    noise: f32,
    dropout: f32,
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
            dropout_copy(&out.target, self.dropout, rng, &mut out.input)
        } else {
            out.input.clone_from(&out.target);
            add_noise_in_place(&mut out.input, self.noise, rng)?;
            dropout_in_place(&mut out.input, self.dropout, rng)
        }
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
        Ok(DenseArm {
            encoder: TrainingNet::on(engine, layers.encoder, adam)?.parallel(),
            norm: layers.norm,
            decoder: TrainingNet::on(engine, layers.decoder, adam)?.parallel(),
            augmentation: Augmentation {
                noise: settings.input_noise,
                dropout: settings.input_dropout,
            },
            weight: settings.weight as f32,
            batch: Drawn::default(),
            norm_cache: BatchNormCache::default(),
            d_reconstruction: Vec::new(),
            d_code: Vec::new(),
            d_pre: Vec::new(),
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
        let pre = self.encoder.forward(&self.batch.input, rows)?;
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
        self.encoder.backward(&self.batch.input, rows, d_pre, None)
    }

    /// One Adam step of the encoder and the decoder from the last backward pass.
    pub(super) fn step(&mut self) -> Result<(), NnError> {
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
}
