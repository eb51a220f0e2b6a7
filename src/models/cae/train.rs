//! The training loop: partially paired mini-batches, augmentation, Σ α_i
//! reconstruction + λ · coupling over every pair of agents, Adam.

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::CaeError;
use super::batches::{ArmBatch, BatchSampler, shared_pairs};
use super::config::CaeConfig;
use super::coupling::Coupling;
use super::data::MultiModal;
use super::dense_arm::DenseArm;
use super::model::CoupledAutoencoder;
use crate::nn::AdamConfig;
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
}

/// A trained model and its loss history.
#[derive(Debug)]
pub struct Trained {
    /// The model, with the latent normalisation's inference statistics set
    /// to the population statistics of the training cells.
    pub model: CoupledAutoencoder,
    /// One record per `log_every` steps.
    pub history: Vec<LossRecord>,
}

/// Trains a coupled autoencoder on the cells `train` of `data`. Reports a
/// stage named `stage`, steps and the metrics `loss`, `coupling` and
/// `recon_{i}` through `sink`; stops early with [`CaeError::Cancelled`] when asked.
pub fn train(
    config: &CaeConfig,
    data: &MultiModal,
    train: &[usize],
    stage: &str,
    sink: &mut dyn Sink,
) -> Result<Trained, CaeError> {
    data.validate()?;
    let features: Vec<usize> = data.matrices.iter().map(|m| m.ncols()).collect();
    let mut model = CoupledAutoencoder::new(config, &features)?;
    let coupling = config.coupling.build(config.fc_ridge, config.msv_floor);
    let k = data.modalities();
    let sampler = BatchSampler::new(data, train, config.batch_size, config.paired_per_batch);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(1));
    let adam = AdamConfig::keras(config.learning_rate);
    let mut arms = model
        .arms
        .iter()
        .map(|arm| DenseArm::new(arm, &model.store, adam))
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
    let mut acc_steps = 0usize;
    for step in 1..=config.steps {
        if sink.cancelled() {
            return Err(CaeError::Cancelled);
        }
        let batches = sampler.draw(data, &mut rng);
        let mut total_value = 0.0;
        for (i, (arm, batch)) in arms.iter_mut().zip(&batches).enumerate() {
            let recon = f64::from(arm.forward(&data.matrices[i], &batch.rows, &mut rng)?);
            acc_recon[i] += recon;
            total_value += recon * model.arms[i].settings().weight;
        }
        let d = config.latent_dims;
        let values: Vec<Array2<f64>> = arms
            .iter()
            .map(|arm| {
                let code = arm.code();
                Array2::from_shape_fn((code.len() / d, d), |(r, c)| f64::from(code[r * d + c]))
            })
            .collect();
        for (rms, v) in acc_rms.iter_mut().zip(&values) {
            *rms += v.mapv(|x| x * x).mean().unwrap_or(0.0).sqrt();
        }
        let coupling_value = if config.lambda > 0.0 {
            let (value, grads) = coupling_gradients(coupling.as_ref(), &values, &batches);
            let lambda = config.lambda;
            for (arm, g) in arms.iter_mut().zip(grads) {
                let scaled: Vec<f32> = g.iter().map(|v| (v * lambda) as f32).collect();
                arm.backward(Some(&scaled))?;
                arm.step()?;
            }
            value
        } else {
            for arm in &mut arms {
                arm.backward(None)?;
                arm.step()?;
            }
            0.0
        };
        total_value += coupling_value * config.lambda;
        if !total_value.is_finite() {
            return Err(CaeError::NonFinite { step });
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
            };
            let s = step as u64;
            sink.event(Event::Step { done: s });
            sink.event(Event::Metric {
                name: "loss".into(),
                step: s,
                value: record.total,
            });
            sink.event(Event::Metric {
                name: "coupling".into(),
                step: s,
                value: record.coupling,
            });
            for (i, r) in record.recon.iter().enumerate() {
                sink.event(Event::Metric {
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
            acc_steps = 0;
        }
    }
    for (arm, trained) in model.arms.iter().zip(&arms) {
        arm.set_layers(&mut model.store, &trained.layers())?;
    }
    for i in 0..k {
        let (rows, _) = data.rows_of(i, train);
        let x = data.select(i, &rows);
        let pre = model.pre_latent(i, &x)?;
        let arm = model.arms[i].clone();
        arm.set_population_statistics(&mut model.store, &pre)?;
    }
    model.store.check_finite()?;
    Ok(Trained { model, history })
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
