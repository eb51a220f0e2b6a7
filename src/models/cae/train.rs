//! The training loop: partially paired mini-batches, augmentation, Σ α_i
//! reconstruction + λ · coupling over every pair of agents, Adam.

use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::CaeError;
use super::batches::{ArmBatch, BatchSampler, shared_pairs};
use super::config::CaeConfig;
use super::coupling::Coupling;
use super::data::{MultiModal, Rows};
use super::dense_arm::{Augmentation, DenseArm, Drawn};
use super::model::CoupledAutoencoder;
use crate::nn::dense::{Engine, alongside, for_each_net};
use crate::nn::{AdamConfig, DeviceChoice};
use crate::progress::{Event, Sink};

/// Losses averaged over one logging interval.
#[derive(Debug, Clone, PartialEq)]
pub struct LossRecord {
    /// The last step of the interval (1-based).
    pub step: usize,
    /// Total loss.
    pub total: f64,
    /// Unweighted reconstruction error (mean squared) of each modality.
    pub recon: Vec<f64>,
    /// Coupling cost summed over all pairs of agents (before λ).
    pub coupling: f64,
    /// Root mean square of each modality's batch codes: shrinks towards 0
    /// when a coupling lets the codes collapse to a point.
    pub latent_rms: Vec<f64>,
    /// Largest |correlation| between two latent dimensions of each
    /// modality's batch codes: approaches 1 when a coupling lets the codes
    /// collapse onto a line (NaN for a one-dimensional latent).
    pub latent_abs_corr: Vec<f64>,
}

/// Largest absolute Pearson correlation between two columns of `z` (NaN
/// with fewer than two columns; a constant column counts as uncorrelated).
pub fn max_abs_correlation(z: ArrayView2<'_, f64>) -> f64 {
    let Some(mean) = z.mean_axis(Axis(0)) else {
        return f64::NAN;
    };
    let centred = &z - &mean;
    let cov = centred.t().dot(&centred);
    let mut largest = f64::NAN;
    for i in 0..z.ncols() {
        for j in 0..i {
            let denominator = (cov[[i, i]] * cov[[j, j]]).sqrt();
            let corr = if denominator > 0.0 {
                (cov[[i, j]] / denominator).abs()
            } else {
                0.0
            };
            largest = if largest.is_nan() {
                corr
            } else {
                largest.max(corr)
            };
        }
    }
    largest
}

/// A trained model and its loss history.
#[derive(Debug)]
pub struct Trained {
    /// The model, with the latent normalisation's inference statistics set
    /// to the population statistics of the training cells.
    pub model: CoupledAutoencoder,
    /// One record per `log_every` steps.
    pub history: Vec<LossRecord>,
    /// Wall-clock seconds of the training steps (without the statistics pass).
    pub seconds: f64,
}

/// Trains a coupled autoencoder on the cells `train` of `data` (mini-batches
/// and the latent normalisation's statistics gathered from its matrices, a
/// batch or chunk at a time, never a copy of them). Reports a
/// stage named `stage`, steps and the metrics `loss`, `coupling` and
/// `recon_{i}` through `sink`; stops early with [`CaeError::Cancelled`] when asked.
/// The arms train on the dense engine ([`train_on`] chooses).
pub fn train<M: Rows>(
    config: &CaeConfig,
    data: &MultiModal<M>,
    train: &[usize],
    stage: &str,
    sink: &mut dyn Sink,
) -> Result<Trained, CaeError> {
    train_on(config, data, train, stage, Engine::Dense, sink)
}

/// [`train`] with the arms' encoders and decoders on `engine` (the dense
/// engine on the CPU, or a GPU); the couplings, the latent normalisation,
/// the losses and the evaluation stay on the host.
pub fn train_on<M: Rows>(
    config: &CaeConfig,
    data: &MultiModal<M>,
    train: &[usize],
    stage: &str,
    engine: Engine,
    sink: &mut dyn Sink,
) -> Result<Trained, CaeError> {
    data.validate()?;
    let features: Vec<usize> = data.matrices.iter().map(|m| m.ncols()).collect();
    // The store (evaluation and saving) sits on the GPU the arms train on: a
    // `cuda` build's tape has no CPU device.
    let store_device = match engine {
        Engine::Cuda(ordinal) => DeviceChoice::Cuda(ordinal),
        Engine::Dense | Engine::TensorCpu => DeviceChoice::Cpu,
    };
    let mut model = CoupledAutoencoder::on(config, &features, store_device)?;
    let coupling = config.coupling.build(config.fc_ridge, config.msv_floor);
    let k = data.modalities();
    let sampler = BatchSampler::new(data, train, config.batch_size, config.paired_per_batch);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1));
    let adam = AdamConfig::keras(config.learning_rate);
    let mut arms = model
        .arms
        .iter()
        .map(|arm| DenseArm::new(arm, &model.store, adam, engine))
        .collect::<Result<Vec<_>, _>>()?;
    sink.event(Event::Stage {
        name: stage.to_string(),
        total: config.steps as u64,
    });
    let mut history = Vec::new();
    let mut acc_total = 0.0;
    let mut acc_recon = vec![0.0; k];
    let mut acc_coupling = 0.0;
    let mut acc_rms = vec![0.0; k];
    let mut acc_corr = vec![0.0; k];
    let mut acc_steps = 0usize;
    let augmentations: Vec<Augmentation> = arms.iter().map(DenseArm::augmentation).collect();
    // One step's batches and their augmentation: the only draws from `rng`
    // in a step, so drawing the next step's while this step's backward
    // passes run gives the same numbers in the same order.
    let draw = |rng: &mut ChaCha8Rng, drawn: &mut [Drawn]| -> Result<Vec<ArmBatch>, CaeError> {
        let batches = sampler.draw(data, rng);
        for (((augmentation, out), batch), matrix) in augmentations
            .iter()
            .zip(drawn.iter_mut())
            .zip(&batches)
            .zip(&data.matrices)
        {
            augmentation.draw(matrix, &batch.rows, rng, out)?;
        }
        Ok(batches)
    };
    let mut next: Vec<Drawn> = (0..k).map(|_| Drawn::default()).collect();
    let started = std::time::Instant::now();
    let mut next_batches = draw(&mut rng, &mut next)?;
    for step in 1..=config.steps {
        if sink.cancelled() {
            return Err(CaeError::Cancelled);
        }
        let batches = std::mem::take(&mut next_batches);
        for (arm, drawn) in arms.iter_mut().zip(&mut next) {
            arm.take(drawn);
        }
        // The arms' passes are independent and draw nothing: each runs on
        // its own thread of the rayon pool where the build allows (the same
        // numbers as one after another).
        let recons = for_each_net(&mut arms, |_, arm| arm.forward())?;
        let mut total_value = 0.0;
        for (i, recon) in recons.into_iter().enumerate() {
            let recon = f64::from(recon);
            acc_recon[i] += recon;
            total_value += recon * model.arms[i].settings().weight;
        }
        let diverged = CaeError::NonFinite {
            step,
            learning_rate: config.learning_rate,
        };
        if !acc_recon.iter().all(|r| r.is_finite()) {
            return Err(diverged);
        }
        let d = config.latent_dims;
        let values: Vec<Array2<f64>> = arms
            .iter()
            .map(|arm| {
                let code = arm.code();
                Array2::from_shape_fn((code.len() / d, d), |(r, c)| f64::from(code[r * d + c]))
            })
            .collect();
        for ((rms, corr), v) in acc_rms.iter_mut().zip(&mut acc_corr).zip(&values) {
            *rms += v.mapv(|x| x * x).mean().unwrap_or(0.0).sqrt();
            *corr += max_abs_correlation(v.view());
        }
        let (coupling_value, scaled) = if config.lambda > 0.0 {
            let (value, grads) = coupling_gradients(coupling.as_ref(), &values, &batches);
            if !value.is_finite() {
                return Err(diverged);
            }
            let lambda = config.lambda;
            let scaled: Vec<Vec<f32>> = grads
                .iter()
                .map(|g| g.iter().map(|v| (v * lambda) as f32).collect())
                .collect();
            (value, Some(scaled))
        } else {
            (0.0, None)
        };
        let last = step == config.steps;
        let (stepped, drawn) = alongside(
            || {
                for_each_net(&mut arms, |i, arm| {
                    arm.backward_and_step(scaled.as_ref().map(|s| s[i].as_slice()))
                })
            },
            || (!last).then(|| draw(&mut rng, &mut next)).transpose(),
        );
        stepped?;
        if let Some(batches) = drawn? {
            next_batches = batches;
        }
        total_value += coupling_value * config.lambda;
        if !total_value.is_finite() {
            return Err(diverged);
        }
        acc_total += total_value;
        acc_coupling += coupling_value;
        acc_steps += 1;
        if step % config.log_every == 0 || step == config.steps {
            let n = acc_steps as f64;
            let record = LossRecord {
                step,
                total: acc_total / n,
                recon: acc_recon.iter().map(|r| r / n).collect(),
                coupling: acc_coupling / n,
                latent_rms: acc_rms.iter().map(|r| r / n).collect(),
                latent_abs_corr: acc_corr.iter().map(|c| c / n).collect(),
            };
            let s = step as u64;
            sink.event(Event::Step { done: s });
            sink.event(Event::Metric {
                fold: None,
                name: "loss".into(),
                step: s,
                value: record.total,
            });
            sink.event(Event::Metric {
                fold: None,
                name: "coupling".into(),
                step: s,
                value: record.coupling,
            });
            for (i, r) in record.recon.iter().enumerate() {
                sink.event(Event::Metric {
                    fold: None,
                    name: format!("recon_{i}"),
                    step: s,
                    value: *r,
                });
            }
            history.push(record);
            acc_total = 0.0;
            acc_coupling = 0.0;
            acc_recon.iter_mut().for_each(|r| *r = 0.0);
            acc_rms.iter_mut().for_each(|r| *r = 0.0);
            acc_corr.iter_mut().for_each(|c| *c = 0.0);
            acc_steps = 0;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    for (arm, trained) in model.arms.iter().zip(&mut arms) {
        arm.set_layers(&mut model.store, &trained.layers()?)?;
    }
    for i in 0..k {
        let (rows, _) = data.rows_of(i, train);
        let pre = model.pre_latent_rows(i, &data.matrices[i], &rows)?;
        let arm = model.arms[i].clone();
        arm.set_population_statistics(&mut model.store, &pre)?;
    }
    model.store.check_finite()?;
    Ok(Trained {
        model,
        history,
        seconds,
    })
}

/// The coupling summed over every pair of agents that share cells in this
/// batch, and its gradient with respect to each agent's codes.
fn coupling_gradients(
    coupling: &dyn Coupling,
    codes: &[Array2<f64>],
    batches: &[ArmBatch],
) -> (f64, Vec<Array2<f64>>) {
    let mut value = 0.0;
    let mut grads: Vec<Array2<f64>> = codes.iter().map(|v| Array2::zeros(v.dim())).collect();
    for a in 0..codes.len() {
        for b in a + 1..codes.len() {
            let pairs = shared_pairs(&batches[a], &batches[b]);
            if pairs.is_empty() {
                continue;
            }
            let cost = coupling.cost(codes[a].view(), codes[b].view(), &pairs);
            value += cost.value;
            grads[a] += &cost.grad_a;
            grads[b] += &cost.grad_b;
        }
    }
    (value, grads)
}

#[cfg(test)]
mod tests {
    use super::max_abs_correlation;
    use ndarray::array;

    #[test]
    fn correlation_of_codes_on_a_line_is_one_and_of_independent_codes_zero() {
        let line = array![[1.0, -2.0], [2.0, -4.0], [3.0, -6.0], [5.0, -10.0]];
        assert!((max_abs_correlation(line.view()) - 1.0).abs() < 1e-12);
        let cross = array![[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]];
        assert!(max_abs_correlation(cross.view()).abs() < 1e-12);
        let flat = array![[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]];
        assert_eq!(max_abs_correlation(flat.view()), 0.0);
        assert!(max_abs_correlation(array![[1.0], [2.0]].view()).is_nan());
    }
}
