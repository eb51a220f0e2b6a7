//! The coupled objective (paper Eq. 6 with the mini-batch variance scaling of
//! §4.3), and the distances on the simplex it uses.
//!
//! To minimise, with `A` agents:
//! `max(A − 1, 1) Σ_a [rec_a + β KL_a] + λ Σ_{a<b} d²_σ(a, b) − Σ_{a<b} (H_a + H_b)`,
//! where `rec_a = ½ Σ_g (x̂ − x)²` and `H_a = −Σ_k q_k ln q_k` are averaged
//! over the mini-batch, and `d²_σ(a, b) = Σ_k (σ_ak⁻¹ ln(c_ak + δ) − σ_bk⁻¹ ln(c_bk + δ))²`
//! with `c` the agents' category samples (the paper) or their probabilities
//! `q` (MMIDAS), `σ²_ak` the mini-batch variance of `c_·k` plus
//! `variance_eps`, and `δ` the zero replacement `log_floor`.
//!
//! Optionally (`balance_weight > 0`, not in the paper or MMIDAS) each agent also
//! pays `balance_weight · KL(c̄ ‖ uniform)` for its mini-batch mean `c̄`, which
//! keeps every category in use.

use super::agent::{AgentPass, PROB_EPS};
use super::config::{CouplingInput, MixVaeConfig};
use crate::nn::{self, NnError, Scalar, Var};

/// The loss of one mini-batch and its parts (per-batch means).
pub(crate) struct CoupledLoss {
    /// What is minimised.
    pub total: Scalar,
    /// Sum over agents of the reconstruction terms.
    pub reconstruction: f64,
    /// Sum over agents of the state KL terms.
    pub kl: f64,
    /// Sum over pairs of d²_σ.
    pub distance: f64,
    /// Sum over agents of the category entropy `H(c | x)`.
    pub entropy: f64,
}

/// The coupled loss of the agents' passes against their own inputs.
pub(crate) fn coupled_loss(
    passes: Vec<AgentPass>,
    targets: Vec<Var>,
    config: &MixVaeConfig,
) -> Result<CoupledLoss, NnError> {
    let agents = passes.len();
    let weight = (agents.max(2) - 1) as f32;
    let mut total: Option<Scalar> = None;
    let mut add = |term: Scalar| -> Result<(), NnError> {
        total = Some(match total.take() {
            None => term,
            Some(t) => t.add(term)?,
        });
        Ok(())
    };
    let (mut reconstruction, mut kl_sum, mut distance, mut entropy) = (0.0, 0.0, 0.0, 0.0);
    let mut scaled_logs: Vec<Vec<Var>> = Vec::new();
    for (pass, target) in passes.into_iter().zip(targets) {
        let genes = target.shape().1 as f32;
        let rec = nn::loss::mse(pass.reconstruction, target)?.scale(0.5 * genes)?;
        reconstruction += rec.value()? as f64;
        add(rec.scale(weight)?)?;
        if let Some(kl) = pass.kl {
            kl_sum += kl.value()? as f64;
            add(kl.scale(weight * config.beta)?)?;
        }
        let (rows, categories) = pass.log_q.shape();
        let (log_q, for_q) = pass.log_q.fork();
        let q = for_q.exp()?;
        let mut sample = pass.sample;
        let q = if config.balance_weight > 0.0 {
            // The balance term sees what the coupling compares. It always
            // reaches the loss, so it takes the handle that carries the
            // backward history.
            let (for_balance, q) = match config.coupling_input {
                CouplingInput::Samples => {
                    let (for_balance, rest) = sample.fork();
                    sample = rest;
                    (for_balance, q)
                }
                CouplingInput::Probabilities => q.fork(),
            };
            let balance = category_balance(for_balance, rows, categories)?;
            add(balance.scale(config.balance_weight)?)?;
            q
        } else {
            q
        };
        if agents < 2 {
            continue;
        }
        let rows = rows as f32;
        let (q, q_for_coupling) = q.fork();
        // Σ_{a<b} (H_a + H_b) counts every agent's entropy A − 1 times.
        let neg_entropy = q.mul(log_q)?.sum()?.scale(1.0 / rows)?;
        entropy -= neg_entropy.value()? as f64;
        add(neg_entropy.scale((agents - 1) as f32)?)?;
        let compared = match config.coupling_input {
            CouplingInput::Samples => sample,
            CouplingInput::Probabilities => q_for_coupling,
        };
        let (for_spread, compared) = compared.fork();
        let inv_sd = for_spread
            .column_variance()?
            .add_scalar(config.variance_eps)?
            .powf(-0.5)?;
        let floored_log = compared.add_scalar(config.log_floor)?.ln()?;
        let mut scaled = floored_log.mul_broadcast_row(inv_sd)?;
        let mut copies = Vec::with_capacity(agents - 1);
        for _ in 1..agents - 1 {
            let (a, b) = scaled.fork();
            copies.push(a);
            scaled = b;
        }
        copies.push(scaled);
        scaled_logs.push(copies);
    }
    for a in 0..scaled_logs.len() {
        for b in a + 1..scaled_logs.len() {
            let ua = take(&mut scaled_logs, a)?;
            let ub = take(&mut scaled_logs, b)?;
            let rows = ua.shape().0 as f32;
            let d2 = ua.sub(ub)?.square()?.sum()?.scale(1.0 / rows)?;
            distance += d2.value()? as f64;
            add(d2.scale(config.lambda)?)?;
        }
    }
    let total = total.ok_or(NnError::NoGradient)?;
    Ok(CoupledLoss {
        total,
        reconstruction,
        kl: kl_sum,
        distance,
        entropy,
    })
}

/// `KL(q̄ ‖ uniform)` of the mini-batch's mean category probabilities `q̄`:
/// zero when the batch uses all categories equally.
fn category_balance(q: Var, rows: usize, categories: usize) -> Result<Scalar, NnError> {
    let averaging = Var::from_vec(&q.device(), 1, rows, vec![1.0 / rows as f32; rows])?;
    let (m1, m2) = averaging.matmul(q)?.fork();
    m1.mul(
        m2.add_scalar(PROB_EPS)?
            .ln()?
            .add_scalar((categories as f32).ln())?,
    )?
    .sum()
}

fn take(copies: &mut [Vec<Var>], agent: usize) -> Result<Var, NnError> {
    copies
        .get_mut(agent)
        .and_then(Vec::pop)
        .ok_or_else(|| NnError::Backend(format!("no copy of agent {agent}'s log q left")))
}

/// The centred log-ratio transform `clr(c)_k = ln c_k − (1/K) Σ_j ln c_j`.
pub fn clr(c: &[f64]) -> Vec<f64> {
    let logs: Vec<f64> = c.iter().map(|v| v.ln()).collect();
    let mean = logs.iter().sum::<f64>() / logs.len().max(1) as f64;
    logs.iter().map(|l| l - mean).collect()
}

/// The squared Aitchison distance `‖clr(a) − clr(b)‖²` of two compositions.
pub fn aitchison_distance_sq(a: &[f64], b: &[f64]) -> f64 {
    clr(a)
        .iter()
        .zip(clr(b))
        .map(|(x, y)| (x - y) * (x - y))
        .sum()
}

/// The mini-batch-variance distance of §4.3,
/// `d²_σ = Σ_k (ln a_k / σ_ak − ln b_k / σ_bk)²`, for given standard deviations.
pub fn d_sigma_sq(a: &[f64], b: &[f64], sigma_a: &[f64], sigma_b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .zip(sigma_a.iter().zip(sigma_b))
        .map(|((x, y), (sx, sy))| {
            let d = x.ln() / sx - y.ln() / sy;
            d * d
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Adam, AdamConfig, Device, DeviceChoice, Linear, ParamStore};
    use ndarray::{Array1, Array2, Axis};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const CELLS: usize = 64;

    /// Every agent's `q(c | x)` after `steps` Adam steps on the coupled loss
    /// alone, each agent's logits being free per-cell parameters that start
    /// with `start` added to every cell's logits.
    fn q_after(steps: usize, config: &MixVaeConfig, start: &[Array1<f32>]) -> Vec<Array2<f32>> {
        let k = config.categories;
        let device = Device::open(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut store = ParamStore::on(device.clone());
        let agents: Vec<Linear> = (0..config.agents)
            .map(|a| Linear::new(&mut store, &format!("a{a}"), CELLS, k, &mut rng).unwrap())
            .collect();
        for (a, bias) in start.iter().enumerate() {
            let id = store.id(&format!("a{a}.bias")).unwrap();
            store.set_vector(id, bias).unwrap();
        }
        let one_hot = Array2::<f32>::eye(CELLS);
        let mut adam = Adam::new(AdamConfig::paper(0.05));
        let log_qs = |store: &ParamStore| -> Vec<Var> {
            agents
                .iter()
                .map(|lin| {
                    let x = Var::from_array(&device, &one_hot).unwrap();
                    lin.forward(store, x).unwrap().log_softmax().unwrap()
                })
                .collect()
        };
        for _ in 0..steps {
            let zeros = || Var::from_array(&device, &Array2::zeros((CELLS, k))).unwrap();
            // As in the agents' forward pass, the history travels with the
            // handle that reaches the reconstruction (here a zero one).
            let passes = log_qs(&store)
                .into_iter()
                .map(|log_q| {
                    let (history, log_q) = log_q.fork();
                    AgentPass {
                        sample: zeros(),
                        log_q,
                        reconstruction: history.scale(0.0).unwrap(),
                        kl: None,
                        state_mean: zeros(),
                    }
                })
                .collect();
            let targets = (0..config.agents).map(|_| zeros()).collect();
            let loss = coupled_loss(passes, targets, config).unwrap();
            let mut grads = loss.total.backward().unwrap();
            adam.step(&mut store, &mut grads).unwrap();
        }
        log_qs(&store)
            .into_iter()
            .map(|lq| lq.exp().unwrap().to_array().unwrap())
            .collect()
    }

    fn categories(q: &Array2<f32>) -> Vec<usize> {
        q.rows()
            .into_iter()
            .map(|r| super::super::agent::argmax(r.iter().copied()))
            .collect()
    }

    fn agreement(q: &[Array2<f32>]) -> f64 {
        let (a, b) = (categories(&q[0]), categories(&q[1]));
        a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / CELLS as f64
    }

    #[test]
    fn the_coupling_pulls_two_agents_to_the_same_categories() {
        let config = MixVaeConfig {
            categories: 5,
            lambda: 1.0,
            log_floor: 1e-3,
            // Near-uniform starting q: with MMIDAS' ε the scaled distance
            // outweighs the entropy terms that favour uniform q.
            variance_eps: 1e-8,
            coupling_input: CouplingInput::Probabilities,
            ..MixVaeConfig::default()
        };
        let before = agreement(&q_after(0, &config, &[]));
        let after = agreement(&q_after(300, &config, &[]));
        assert!(before < 0.4, "random logits agree on {before}");
        assert!(after > 0.95, "after training on the coupling: {after}");
    }

    #[test]
    fn the_balance_term_evens_out_the_mean_category_probabilities() {
        let config = MixVaeConfig {
            agents: 1,
            categories: 4,
            balance_weight: 1.0,
            coupling_input: CouplingInput::Probabilities,
            ..MixVaeConfig::default()
        };
        let skewed = [Array1::from(vec![2.0f32, 0.0, 0.0, 0.0])];
        let largest_mean_q = |q: &[Array2<f32>]| {
            q[0].mean_axis(Axis(0))
                .unwrap()
                .iter()
                .copied()
                .fold(0.0f32, f32::max)
        };
        let before = largest_mean_q(&q_after(0, &config, &skewed));
        let after = largest_mean_q(&q_after(300, &config, &skewed));
        assert!(before > 0.6, "start: {before}");
        assert!(after < 0.27, "after balancing: {after}");
    }
}
