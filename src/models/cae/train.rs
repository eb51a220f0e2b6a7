//! The training loop: partially paired mini-batches, augmentation, Σ α_i
//! reconstruction + λ · coupling over every pair of agents, Adam.

use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::CaeError;
use super::batches::{BatchSampler, shared_pairs};
use super::config::CaeConfig;
use super::data::MultiModal;
use super::model::CoupledAutoencoder;
use crate::nn::{Adam, AdamConfig, Mode, Scalar, Var, external_scalar, loss};
use crate::progress::{Event, Sink};

/// Steps between emptying the backend's buffer cache: tensors made from input
/// batches land in it and are never reused, so without this a 10,000-step run
/// grows by gigabytes.
const CACHE_FLUSH_STEPS: usize = 50;

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
    let mut adam = Adam::new(AdamConfig::keras(config.learning_rate));
    let weights: Vec<f64> = model.arms.iter().map(|a| a.settings().weight).collect();
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
    for step in 1..=config.steps {
        if sink.cancelled() {
            return Err(CaeError::Cancelled);
        }
        let batches = sampler.draw(data, &mut rng);
        let mut terms: Vec<Scalar> = Vec::new();
        let mut codes: Vec<Var> = Vec::with_capacity(k);
        for (i, batch) in batches.iter().enumerate() {
            let x = data.select(i, &batch.rows);
            let input = Var::from_array(model.store.device(), &x)?;
            let target = Var::from_array(model.store.device(), &x)?;
            let arm = model.arms[i].clone();
            let z = arm.encode(&mut model.store, input, Mode::Train, &mut rng)?;
            let (z_dec, z_keep) = z.fork();
            let recon = loss::mse(arm.decode(&model.store, z_dec)?, target)?;
            acc_recon[i] += f64::from(recon.value()?);
            terms.push(recon.scale(weights[i] as f32)?);
            codes.push(z_keep);
        }
        let diverged = CaeError::NonFinite {
            step,
            learning_rate: config.learning_rate,
        };
        if !acc_recon.iter().all(|r| r.is_finite()) {
            return Err(diverged);
        }
        let mut coupling_value = 0.0;
        let values: Vec<Array2<f64>> = codes
            .iter()
            .map(|z| z.to_array().map(|a| a.mapv(f64::from)))
            .collect::<Result<_, _>>()?;
        for ((rms, corr), v) in acc_rms.iter_mut().zip(&mut acc_corr).zip(&values) {
            *rms += v.mapv(|x| x * x).mean().unwrap_or(0.0).sqrt();
            *corr += max_abs_correlation(v.view());
        }
        if config.lambda > 0.0 {
            let mut grads: Vec<Array2<f64>> =
                values.iter().map(|v| Array2::zeros(v.dim())).collect();
            for a in 0..k {
                for b in a + 1..k {
                    let pairs = shared_pairs(&batches[a], &batches[b]);
                    if pairs.is_empty() {
                        continue;
                    }
                    let cost = coupling.cost(values[a].view(), values[b].view(), &pairs);
                    coupling_value += cost.value;
                    grads[a] += &cost.grad_a;
                    grads[b] += &cost.grad_b;
                }
            }
            if !coupling_value.is_finite() {
                return Err(diverged);
            }
            let lambda = config.lambda;
            let scaled: Vec<Array2<f32>> = grads
                .iter()
                .map(|g| g.mapv(|v| (v * lambda) as f32))
                .collect();
            let term = external_scalar(codes, (coupling_value * lambda) as f32, &scaled)?;
            terms.push(term);
        }
        let mut total = terms.remove(0);
        for t in terms {
            total = total.add(t)?;
        }
        let total_value = f64::from(total.value()?);
        if !total_value.is_finite() {
            return Err(diverged);
        }
        let mut grads = total.backward()?;
        adam.step(&mut model.store, &mut grads)?;
        if step % CACHE_FLUSH_STEPS == 0 {
            model.store.device().empty_cache()?;
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
