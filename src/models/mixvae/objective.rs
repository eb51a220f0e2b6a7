//! The coupled objective (paper Eq. 6 with the mini-batch variance scaling of
//! §4.3), and the distances on the simplex it uses.
//!
//! To minimise, with `A` agents:
//! `max(A − 1, 1) Σ_a [rec_a + β KL_a − η H_a] + λ Σ_{a<b} d²_σ(a, b)`
//! (for A ≥ 2, `(A − 1) Σ_a H_a = Σ_{a<b} (H_a + H_b)`),
//! where `rec_a = ½ Σ_g (x̂ − x)²` and `H_a = −Σ_k q_k ln q_k` are averaged
//! over the mini-batch, η is `entropy_weight` (1 in the paper), and `d²_σ(a, b) = Σ_k (σ_ak⁻¹ ln(c_ak + δ) − σ_bk⁻¹ ln(c_bk + δ))²`
//! with `c` the agents' category samples (the paper) or their probabilities
//! `q` (MMIDAS), `σ²_ak` the mini-batch variance of `c_·k` plus
//! `variance_eps`, and `δ` the zero replacement `log_floor`.
//!
//! Optionally (`balance_weight > 0`, not in the paper or MMIDAS) each agent also
//! pays `balance_weight · KL(c̄ ‖ uniform)` for its mini-batch mean `c̄`, which
//! keeps every category in use.

use ndarray::Array2;

use super::EpochLoss;
use super::agent::{AgentPass, PROB_EPS};
use super::config::{CouplingInput, MixVaeConfig};
use crate::nn::{self, NnError, Scalar, Var};

/// One agent's own terms of the objective, and its side of the coupling.
///
/// The agents' passes run on separate threads, so the only term that joins
/// them, `λ Σ_{a<b} d²_σ(a, b)`, is split: each agent hands the host values
/// of its scaled logarithms `u_a = σ_a⁻¹ ln(c_a + δ)` to [`coupling`], which
/// returns `∂(λ Σ d²_σ)/∂u_a`; [`with_coupling_gradient`] then adds
/// `Σ u_a ⊙ g_a` (with `g_a` constant) to the agent's own loss, whose
/// gradient is the full objective's with respect to that agent's parameters.
pub(crate) struct AgentLoss {
    /// `max(A − 1, 1) [rec + β KL − H] + balance`.
    pub own: Scalar,
    /// The value parts of `own` (`distance` is 0: see [`coupling`]).
    pub parts: EpochLoss,
    /// `u_a`, traced, when there are other agents to compare with.
    pub coupled: Option<Var>,
}

/// One agent's own loss against its input `target`, among `agents` agents.
pub(crate) fn agent_loss(
    pass: AgentPass,
    target: Var,
    agents: usize,
    config: &MixVaeConfig,
) -> Result<AgentLoss, NnError> {
    let weight = (agents.max(2) - 1) as f32;
    let mut parts = EpochLoss::default();
    let genes = target.shape().1 as f32;
    let rec = nn::loss::mse(pass.reconstruction, target)?.scale(0.5 * genes)?;
    parts.reconstruction = rec.value()? as f64;
    let mut own = rec.scale(weight)?;
    if let Some(kl) = pass.kl {
        parts.kl = kl.value()? as f64;
        own = own.add(kl.scale(weight * config.beta)?)?;
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
        own = own.add(balance.scale(config.balance_weight)?)?;
        q
    } else {
        q
    };
    let (q, q_for_coupling) = q.fork();
    // Σ_{a<b} (H_a + H_b) counts every agent's entropy A − 1 times; a single
    // agent keeps its ELBO's `KL(q(c|x) ‖ uniform) = ln K − H` (Eq. 4).
    let neg_entropy = q.mul(log_q)?.sum()?.scale(1.0 / rows as f32)?;
    parts.entropy = -neg_entropy.value()? as f64;
    own = own.add(neg_entropy.scale(weight * config.entropy_weight)?)?;
    parts.total = own.value()? as f64;
    if agents < 2 {
        return Ok(AgentLoss {
            own,
            parts,
            coupled: None,
        });
    }
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
    Ok(AgentLoss {
        own,
        parts,
        coupled: Some(floored_log.mul_broadcast_row(inv_sd)?),
    })
}

/// The coupling term `λ Σ_{a<b} d²_σ(a, b)` with `d²_σ(a, b) = ‖u_a − u_b‖² / rows`.
pub(crate) struct Coupling {
    /// `Σ_{a<b} d²_σ(a, b)` (without λ).
    pub distance: f64,
    /// `∂(λ Σ_{a<b} d²_σ)/∂u_a` for every agent `a`.
    pub gradients: Vec<Array2<f32>>,
}

/// The coupling term of the agents' scaled logarithms `u` (all the same shape).
pub(crate) fn coupling(u: &[Array2<f32>], lambda: f32) -> Result<Coupling, NnError> {
    let Some(first) = u.first() else {
        return Ok(Coupling {
            distance: 0.0,
            gradients: Vec::new(),
        });
    };
    let dim = first.dim();
    if let Some(other) = u.iter().find(|v| v.dim() != dim) {
        return Err(NnError::shape(
            "coupling",
            format!("{dim:?} for every agent"),
            format!("{:?}", other.dim()),
        ));
    }
    let rows = dim.0.max(1) as f64;
    let mut distance = 0.0f64;
    let mut gradients = vec![Array2::<f32>::zeros(dim); u.len()];
    for a in 0..u.len() {
        for b in a + 1..u.len() {
            let diff = &u[a] - &u[b];
            distance += diff.iter().map(|&d| (d as f64) * (d as f64)).sum::<f64>() / rows;
            let step = (2.0 * lambda as f64 / rows) as f32;
            gradients[a].scaled_add(step, &diff);
            gradients[b].scaled_add(-step, &diff);
        }
    }
    Ok(Coupling {
        distance,
        gradients,
    })
}

/// `own + Σ u ⊙ g` for a constant `g`: a loss whose gradient adds `g`'s
/// chain through `u` to `own`'s.
pub(crate) fn with_coupling_gradient(
    own: Scalar,
    u: Var,
    gradient: &Array2<f32>,
) -> Result<Scalar, NnError> {
    let g = Var::from_array(&u.device(), gradient)?;
    own.add(u.mul(g)?.sum()?)
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
    use rand::{Rng, SeedableRng};
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
                .collect::<Vec<_>>();
            // The training step's split: own terms, then the host-side coupling.
            let losses: Vec<AgentLoss> = passes
                .into_iter()
                .map(|pass| agent_loss(pass, zeros(), config.agents, config).unwrap())
                .collect();
            let u: Vec<Array2<f32>> = losses
                .iter()
                .filter_map(|l| l.coupled.as_ref().map(|u| u.to_array().unwrap()))
                .collect();
            let mut gradients = coupling(&u, config.lambda).unwrap().gradients.into_iter();
            let mut total: Option<Scalar> = None;
            for loss in losses {
                let mut own = loss.own;
                if let Some(u) = loss.coupled {
                    own = with_coupling_gradient(own, u, &gradients.next().unwrap()).unwrap();
                }
                total = Some(match total {
                    None => own,
                    Some(t) => t.add(own).unwrap(),
                });
            }
            let mut grads = total.unwrap().backward().unwrap();
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
    fn the_coupling_gradient_matches_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let u: Vec<Array2<f32>> = (0..3)
            .map(|_| Array2::from_shape_simple_fn((4, 3), || rng.random_range(-2.0..2.0)))
            .collect();
        let lambda = 0.7f32;
        let exact = coupling(&u, lambda).unwrap();
        let pairs = [(0, 1), (0, 2), (1, 2)];
        let by_hand: f64 = pairs
            .iter()
            .map(|&(a, b)| (&u[a] - &u[b]).mapv(|d| (d as f64).powi(2)).sum() / 4.0)
            .sum();
        assert!((exact.distance - by_hand).abs() < 1e-9);
        let h = 1e-2f32;
        for a in 0..3 {
            for i in 0..4 {
                for k in 0..3 {
                    let moved = |delta: f32| {
                        let mut v = u.clone();
                        v[a][[i, k]] += delta;
                        lambda as f64 * coupling(&v, lambda).unwrap().distance
                    };
                    let numeric = (moved(h) - moved(-h)) / (2.0 * h as f64);
                    let analytic = exact.gradients[a][[i, k]] as f64;
                    assert!(
                        (numeric - analytic).abs() < 1e-3 * (1.0 + analytic.abs()),
                        "agent {a} [{i}, {k}]: {numeric} by differences, {analytic} returned"
                    );
                }
            }
        }
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
