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

use crate::nn::NnError;

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
    use crate::models::mixvae::config::{CouplingInput, MixVaeConfig};
    use crate::models::mixvae::head::Head;
    use crate::nn::AdamConfig;
    use crate::nn::dense::{
        Activation, DenseAdam, DenseGrads, DenseLayer, DenseNet, DensePenalties, Workspace,
    };
    use ndarray::{Array1, Array2, Axis};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const CELLS: usize = 64;

    /// Every agent's `q(c | x)` after `steps` Adam steps on the coupled loss
    /// alone (the heads' own terms and the coupling, through the training
    /// step's split), each agent's logits being free per-cell parameters
    /// that start with `start` added to every cell's logits.
    fn q_after(steps: usize, config: &MixVaeConfig, start: &[Array1<f32>]) -> Vec<Array2<f32>> {
        let k = config.categories;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut agents: Vec<DenseNet> = (0..config.agents)
            .map(|a| {
                let mut layer = DenseLayer::glorot(CELLS, k, Activation::Linear, &mut rng).unwrap();
                if let Some(bias) = start.get(a) {
                    layer.bias = bias.to_vec();
                }
                DenseNet::new(vec![layer]).unwrap()
            })
            .collect();
        let mut adams: Vec<DenseAdam> = (0..config.agents)
            .map(|_| DenseAdam::new(AdamConfig::paper(0.05)))
            .collect();
        let one_hot: Vec<f32> = Array2::<f32>::eye(CELLS).iter().copied().collect();
        let mut heads = vec![Head::default(); config.agents];
        let mut workspaces = vec![Workspace::default(); config.agents];
        let zero_noise = vec![0.0f32; CELLS * k];
        for step in 0..=steps {
            let mut u = Vec::new();
            for ((net, head), ws) in agents.iter().zip(&mut heads).zip(&mut workspaces) {
                let logits = net.forward(&one_hot, CELLS, 0, ws).unwrap();
                head.forward(logits, CELLS, &zero_noise, config);
                head.own_terms(config.agents, config);
                if config.agents > 1 {
                    let values = head.coupled(config);
                    u.push(Array2::from_shape_vec((CELLS, k), values).unwrap());
                }
            }
            if step == steps {
                break;
            }
            let gradients = coupling(&u, config.lambda).unwrap().gradients;
            for (a, ((net, head), ws)) in agents
                .iter_mut()
                .zip(&mut heads)
                .zip(&mut workspaces)
                .enumerate()
            {
                let d_u = gradients.get(a).map(|g| g.as_slice().unwrap());
                let d_logits = head.backward(d_u, config).to_vec();
                let mut grads = DenseGrads::default();
                net.backward(&one_hot, CELLS, 0, &d_logits, ws, &mut grads)
                    .unwrap();
                adams[a].step(net, &grads, DensePenalties::NONE).unwrap();
            }
        }
        heads
            .iter()
            .map(|h| Array2::from_shape_vec((CELLS, k), h.q.clone()).unwrap())
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
