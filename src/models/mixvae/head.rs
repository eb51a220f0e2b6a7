//! An agent's categorical head on the dense engine: `ln q(c | x)` from the
//! classifier's logits, the Gumbel-softmax category sample `c`, the head's
//! own terms of the objective (entropy and the optional balance term, see
//! [`super::objective`]) and its side `u_a` of the coupling, each with its
//! backward pass written out over flat row-major buffers (`rows × K`).
//!
//! A step fills the buffers once ([`Head::forward`], [`Head::own_terms`],
//! [`Head::coupled`]); the agent then adds the networks' gradient with
//! respect to `c` into [`Head::d_sample`] and [`Head::backward`] returns
//! `∂loss/∂logits`.

use super::agent::PROB_EPS;
use super::config::{CouplingInput, MixVaeConfig, SoftmaxMode};
use crate::nn::dense::kernels;

/// Buffers of one agent's head, reused from step to step.
#[derive(Debug, Default, Clone)]
pub(crate) struct Head {
    rows: usize,
    k: usize,
    /// `softmax(logits)` (the inner softmax of [`SoftmaxMode::Double`]).
    inner: Vec<f32>,
    /// `ln q`.
    pub log_q: Vec<f32>,
    /// `q`.
    pub q: Vec<f32>,
    /// The relaxed sample `softmax((ln q + g) / T)`.
    soft: Vec<f32>,
    /// The sample `c` the networks see: `soft`, or its one-hot argmax (hard).
    pub sample: Vec<f32>,
    /// `ln(compared + δ)` of the coupling.
    floored_log: Vec<f32>,
    /// Per category: mean, and `(σ² + ε)^(−1/2)` of the compared values.
    mean: Vec<f32>,
    inv_sd: Vec<f32>,
    /// `∂loss/∂c`, added to by the agent's networks before [`Head::backward`].
    pub d_sample: Vec<f32>,
    d_q: Vec<f32>,
    d_log_q: Vec<f32>,
    d_logits: Vec<f32>,
}

/// `scale · x` into `out`, less each row's maximum.
fn shifted_rows(x: &[f32], k: usize, scale: f32, out: &mut Vec<f32>) {
    out.clear();
    out.extend(x.iter().map(|v| v * scale));
    for row in out.chunks_exact_mut(k) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.iter_mut().for_each(|v| *v -= max);
    }
}

/// Row-wise `softmax(scale · x)` into `out`.
fn softmax_rows(x: &[f32], k: usize, scale: f32, out: &mut Vec<f32>) {
    shifted_rows(x, k, scale, out);
    kernels::exp_in_place(out);
    for row in out.chunks_exact_mut(k) {
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

/// Row-wise `log_softmax(scale · x)` into `log_p` and its exponential,
/// `softmax(scale · x)`, into `p`.
fn log_softmax_rows(x: &[f32], k: usize, scale: f32, log_p: &mut Vec<f32>, p: &mut Vec<f32>) {
    shifted_rows(x, k, scale, log_p);
    p.clear();
    p.extend_from_slice(log_p);
    kernels::exp_in_place(p);
    for (lr, pr) in log_p.chunks_exact_mut(k).zip(p.chunks_exact_mut(k)) {
        let sum: f32 = pr.iter().sum();
        let log_sum = sum.ln();
        lr.iter_mut().for_each(|v| *v -= log_sum);
        pr.iter_mut().for_each(|v| *v /= sum);
    }
}

/// `d_in = p ⊙ (d_out − Σ_k p_k d_out_k)` per row: the backward pass of a
/// softmax with output `p`.
fn softmax_backward(d_out: &[f32], p: &[f32], k: usize, d_in: &mut Vec<f32>) {
    d_in.clear();
    d_in.resize(d_out.len(), 0.0);
    for ((d, g), p) in d_in
        .chunks_exact_mut(k)
        .zip(d_out.chunks_exact(k))
        .zip(p.chunks_exact(k))
    {
        let dot: f32 = g.iter().zip(p).map(|(g, p)| g * p).sum();
        for ((d, g), p) in d.iter_mut().zip(g).zip(p) {
            *d = p * (g - dot);
        }
    }
}

/// `d_in = d_out − q Σ_k d_out_k` per row: the backward pass of a log-softmax
/// whose output exponentiates to `q`.
fn log_softmax_backward(d_out: &[f32], q: &[f32], k: usize, d_in: &mut Vec<f32>) {
    d_in.clear();
    d_in.resize(d_out.len(), 0.0);
    for ((d, g), q) in d_in
        .chunks_exact_mut(k)
        .zip(d_out.chunks_exact(k))
        .zip(q.chunks_exact(k))
    {
        let sum: f32 = g.iter().sum();
        for ((d, g), q) in d.iter_mut().zip(g).zip(q) {
            *d = g - q * sum;
        }
    }
}

/// The weight `max(A − 1, 1)` of every agent's own terms among `agents`.
pub(crate) fn own_weight(agents: usize) -> f32 {
    (agents.max(2) - 1) as f32
}

impl Head {
    /// `ln q` and `q` from `logits` (`rows × K`) and the sample `c` with the
    /// Gumbel noise `gumbel` (as many values).
    pub(crate) fn forward(
        &mut self,
        logits: &[f32],
        rows: usize,
        gumbel: &[f32],
        config: &MixVaeConfig,
    ) {
        let k = config.categories;
        (self.rows, self.k) = (rows, k);
        match config.softmax {
            SoftmaxMode::Single => log_softmax_rows(logits, k, 1.0, &mut self.log_q, &mut self.q),
            SoftmaxMode::Double { tau } => {
                softmax_rows(logits, k, 1.0, &mut self.inner);
                log_softmax_rows(&self.inner, k, 1.0 / tau, &mut self.log_q, &mut self.q);
            }
        }
        self.sample.clear();
        self.sample
            .extend(self.log_q.iter().zip(gumbel).map(|(l, g)| l + g));
        softmax_rows(&self.sample, k, 1.0 / config.temperature, &mut self.soft);
        self.sample.clear();
        self.sample.extend_from_slice(&self.soft);
        if config.hard {
            for row in self.sample.chunks_exact_mut(k) {
                let best = super::agent::argmax(row.iter().copied());
                row.iter_mut().enumerate().for_each(|(j, v)| {
                    *v = if j == best { 1.0 } else { 0.0 };
                });
            }
        }
        self.d_sample.clear();
        self.d_sample.resize(rows * k, 0.0);
        self.d_q.clear();
        self.d_q.resize(rows * k, 0.0);
        self.d_log_q.clear();
        self.d_log_q.resize(rows * k, 0.0);
    }

    /// The values the balance term and the coupling compare (`c` or `q`).
    fn compared(&self, config: &MixVaeConfig) -> &[f32] {
        match config.coupling_input {
            CouplingInput::Samples => &self.sample,
            CouplingInput::Probabilities => &self.q,
        }
    }

    /// The head's own terms among `agents` agents: returns `(H, balance)`
    /// (the entropy `H = −Σ q ln q / rows` and `KL(c̄ ‖ uniform)`, 0 without
    /// a balance weight) and adds their gradients, weighted as in the
    /// objective, into the head's buffers.
    pub(crate) fn own_terms(&mut self, agents: usize, config: &MixVaeConfig) -> (f64, f64) {
        let (rows, k) = (self.rows, self.k);
        let n = rows as f32;
        let scale = own_weight(agents) * config.entropy_weight / n;
        let mut neg_entropy = 0.0f64;
        for ((d, q), l) in self.d_log_q.iter_mut().zip(&self.q).zip(&self.log_q) {
            neg_entropy += f64::from(q * l);
            *d += scale * q * (l + 1.0);
        }
        let mut balance = 0.0f64;
        if config.balance_weight > 0.0 {
            let mut mean = vec![0.0f32; k];
            for row in self.compared(config).chunks_exact(k) {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v / n);
            }
            let ln_k = (k as f32).ln();
            let slope: Vec<f32> = mean
                .iter()
                .map(|&m| {
                    let log = (m + PROB_EPS).ln() + ln_k;
                    balance += f64::from(m * log);
                    config.balance_weight * (log + m / (m + PROB_EPS)) / n
                })
                .collect();
            let target = match config.coupling_input {
                CouplingInput::Samples => &mut self.d_sample,
                CouplingInput::Probabilities => &mut self.d_q,
            };
            for row in target.chunks_exact_mut(k) {
                row.iter_mut().zip(&slope).for_each(|(d, s)| *d += s);
            }
        }
        (-neg_entropy / f64::from(n), balance)
    }

    /// `u_a = σ_a⁻¹ ln(compared + δ)` with the unbiased column variances σ²
    /// of the compared values plus `variance_eps`.
    pub(crate) fn coupled(&mut self, config: &MixVaeConfig) -> Vec<f32> {
        let (rows, k) = (self.rows, self.k);
        let compared = match config.coupling_input {
            CouplingInput::Samples => &self.sample,
            CouplingInput::Probabilities => &self.q,
        };
        self.mean.clear();
        self.mean.resize(k, 0.0);
        for row in compared.chunks_exact(k) {
            self.mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        self.mean.iter_mut().for_each(|m| *m /= rows as f32);
        self.inv_sd.clear();
        self.inv_sd.resize(k, 0.0);
        for row in compared.chunks_exact(k) {
            for ((s, v), m) in self.inv_sd.iter_mut().zip(row).zip(&self.mean) {
                *s += (v - m) * (v - m);
            }
        }
        let denominator = rows.saturating_sub(1).max(1) as f32;
        self.inv_sd
            .iter_mut()
            .for_each(|s| *s = (*s / denominator + config.variance_eps).powf(-0.5));
        self.floored_log.resize(compared.len(), 0.0);
        kernels::ln_shifted(&mut self.floored_log, compared, config.log_floor);
        self.floored_log
            .chunks_exact(k)
            .flat_map(|row| row.iter().zip(&self.inv_sd).map(|(l, s)| l * s))
            .collect()
    }

    /// Adds the chain of `d_u = ∂loss/∂u_a` (after [`Head::coupled`]) to the
    /// compared values' gradient.
    fn coupling_backward(&mut self, d_u: &[f32], config: &MixVaeConfig) {
        let (rows, k) = (self.rows, self.k);
        // ∂loss/∂σ⁻¹ per column, then through σ⁻¹ = (σ² + ε)^(−1/2).
        let mut d_var = vec![0.0f32; k];
        for (g, l) in d_u.chunks_exact(k).zip(self.floored_log.chunks_exact(k)) {
            d_var
                .iter_mut()
                .zip(g.iter().zip(l))
                .for_each(|(d, (g, l))| *d += g * l);
        }
        d_var
            .iter_mut()
            .zip(&self.inv_sd)
            .for_each(|(d, s)| *d *= -0.5 * s * s * s);
        let two_over = 2.0 / rows.saturating_sub(1).max(1) as f32;
        let (compared, target) = match config.coupling_input {
            CouplingInput::Samples => (&self.sample, &mut self.d_sample),
            CouplingInput::Probabilities => (&self.q, &mut self.d_q),
        };
        for ((t, c), g) in target
            .chunks_exact_mut(k)
            .zip(compared.chunks_exact(k))
            .zip(d_u.chunks_exact(k))
        {
            for j in 0..k {
                t[j] += g[j] * self.inv_sd[j] / (c[j] + config.log_floor)
                    + d_var[j] * two_over * (c[j] - self.mean[j]);
            }
        }
    }

    /// `∂loss/∂logits` from the gradient with respect to the sample (in
    /// [`Head::d_sample`]), the own terms' (from [`Head::own_terms`]) and,
    /// for a coupled agent, `d_u = ∂loss/∂u_a`.
    pub(crate) fn backward(&mut self, d_u: Option<&[f32]>, config: &MixVaeConfig) -> &[f32] {
        let k = self.k;
        if let Some(d_u) = d_u {
            self.coupling_backward(d_u, config);
        }
        // c → the relaxed sample (straight through for a hard c) → ln q.
        let mut d_z = Vec::new();
        softmax_backward(&self.d_sample, &self.soft, k, &mut d_z);
        let inv_t = 1.0 / config.temperature;
        for (((d, z), dq), q) in self
            .d_log_q
            .iter_mut()
            .zip(&d_z)
            .zip(&self.d_q)
            .zip(&self.q)
        {
            *d += z * inv_t + dq * q;
        }
        match config.softmax {
            SoftmaxMode::Single => {
                log_softmax_backward(&self.d_log_q, &self.q, k, &mut self.d_logits);
            }
            SoftmaxMode::Double { tau } => {
                log_softmax_backward(&self.d_log_q, &self.q, k, &mut d_z);
                d_z.iter_mut().for_each(|d| *d /= tau);
                softmax_backward(&d_z, &self.inner, k, &mut self.d_logits);
            }
        }
        &self.d_logits
    }
}
