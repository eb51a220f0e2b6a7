//! The coupled objective (paper Eq. 6 with the mini-batch variance scaling of
//! §4.3, as MMIDAS implements it), and the distances on the simplex it uses.
//!
//! To minimise, with `A` agents:
//! `max(A − 1, 1) Σ_a [rec_a + β KL_a] + λ Σ_{a<b} d²_σ(a, b) − Σ_{a<b} (H_a + H_b)`,
//! where `rec_a = ½ Σ_g (x̂ − x)²` and `H_a = −Σ_k q_k ln q_k` are averaged
//! over the mini-batch, and `d²_σ(a, b) = Σ_k (σ_ak⁻¹ ln q_ak − σ_bk⁻¹ ln q_bk)²`
//! with `σ²_ak` the mini-batch variance of `q_·k` (plus `variance_eps`).
//!
//! Optionally (`balance_weight > 0`, not in the paper or MMIDAS) each agent also
//! pays `balance_weight · KL(q̄ ‖ uniform)` for its mini-batch mean `q̄`, which
//! keeps every category in use when training is short.

use super::agent::{AgentPass, PROB_EPS};
use super::config::MixVaeConfig;
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
        let q = if config.balance_weight > 0.0 {
            let (q, for_balance) = q.fork();
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
        let (q1, q2) = q.fork();
        let (lq1, lq2) = log_q.fork();
        // Σ_{a<b} (H_a + H_b) counts every agent's entropy A − 1 times.
        let neg_entropy = q1.mul(lq1)?.sum()?.scale(1.0 / rows)?;
        entropy -= neg_entropy.value()? as f64;
        add(neg_entropy.scale((agents - 1) as f32)?)?;
        let inv_sd = q2
            .column_variance()?
            .add_scalar(config.variance_eps)?
            .powf(-0.5)?;
        let mut scaled = lq2.mul_broadcast_row(inv_sd)?;
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
