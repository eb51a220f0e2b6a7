//! One agent's network: an encoder to a category `c` and a state `s | c`,
//! and a decoder from `(c, s)` back to the data (MMIDAS' per-arm network).

use ndarray::Array2;
use rand_chacha::ChaCha8Rng;

use super::config::{MixVaeConfig, Output, SoftmaxMode, StatePrior};
use crate::nn::{self, BatchNorm, Linear, Mode, NnError, ParamStore, Var};

/// Added to probabilities before taking their logarithm (MMIDAS' ε).
pub(crate) const PROB_EPS: f32 = 1e-8;

/// Encoder and decoder parameters of one agent.
#[derive(Debug, Clone)]
pub(crate) struct AgentNet {
    pub(super) encoder: Vec<(Linear, BatchNorm)>,
    pub(super) low: (Linear, BatchNorm),
    pub(super) logits: Linear,
    pub(super) state_mean: Linear,
    pub(super) state_var: Linear,
    pub(super) prior: Option<(Linear, Linear)>,
    pub(super) decoder: Vec<Linear>,
    pub(super) output: Linear,
}

/// What one agent's evaluation produces.
pub(crate) struct AgentPass {
    /// `ln q`, `(rows, K)`.
    pub log_q: Var,
    /// The state mean μ, `(rows, S)`.
    pub state_mean: Var,
}

fn batch_norm(store: &mut ParamStore, name: &str, n: usize) -> Result<BatchNorm, NnError> {
    let mut bn = BatchNorm::new(store, name, n, false)?;
    // PyTorch momentum 0.01 is a weight of 0.99 on the old statistics.
    bn.momentum = 0.99;
    bn.eps = 1e-5;
    Ok(bn)
}

impl AgentNet {
    /// Registers the parameters of agent `name` for `genes` inputs.
    pub(crate) fn new(
        store: &mut ParamStore,
        name: &str,
        genes: usize,
        config: &MixVaeConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<AgentNet, NnError> {
        let (h, l, k, s) = (
            config.hidden,
            config.low_dim,
            config.categories,
            config.state_dim,
        );
        let mut encoder = Vec::new();
        for i in 0..config.hidden_layers {
            let inputs = if i == 0 { genes } else { h };
            let lin = Linear::new(store, &format!("{name}.enc{i}"), inputs, h, rng)?;
            encoder.push((lin, batch_norm(store, &format!("{name}.enc{i}.bn"), h)?));
        }
        let low = (
            Linear::new(store, &format!("{name}.low"), h, l, rng)?,
            batch_norm(store, &format!("{name}.low.bn"), l)?,
        );
        let logits = Linear::new(store, &format!("{name}.logits"), l, k, rng)?;
        let state_mean = Linear::new(store, &format!("{name}.state_mean"), l + k, s, rng)?;
        let state_var = Linear::new(store, &format!("{name}.state_var"), l + k, s, rng)?;
        let prior = match config.state_prior {
            StatePrior::Standard => None,
            StatePrior::PerCategory => Some((
                Linear::new(store, &format!("{name}.prior_mean"), k, s, rng)?,
                Linear::new(store, &format!("{name}.prior_logvar"), k, s, rng)?,
            )),
        };
        let mut decoder = vec![Linear::new(store, &format!("{name}.dec0"), k + s, l, rng)?];
        for i in 0..config.hidden_layers {
            let inputs = if i == 0 { l } else { h };
            decoder.push(Linear::new(
                store,
                &format!("{name}.dec{}", i + 1),
                inputs,
                h,
                rng,
            )?);
        }
        let output = Linear::new(store, &format!("{name}.out"), h, genes, rng)?;
        Ok(AgentNet {
            encoder,
            low,
            logits,
            state_mean,
            state_var,
            prior,
            decoder,
            output,
        })
    }

    /// The encoder up to the low-dimensional embedding, then `ln q`. In
    /// training the caller has already applied input dropout to `x`.
    fn encode(
        &self,
        store: &mut ParamStore,
        x: Var,
        config: &MixVaeConfig,
        mode: Mode,
    ) -> Result<(Var, Var), NnError> {
        let mut h = x;
        for (lin, bn) in self.encoder.iter().chain(std::iter::once(&self.low)) {
            let z = lin.forward(store, h)?.relu()?;
            h = bn.forward(store, z, mode)?;
        }
        let (low, to_logits) = h.fork();
        let logits = self.logits.forward(store, to_logits)?;
        // `ln q` straight from a log-softmax: MMIDAS' `ln(q + ε)` has no
        // gradient wherever q < ε, which the sharp double softmax reaches
        // for every non-chosen category, so the coupling could not pull
        // disagreeing agents together.
        let log_q = match config.softmax {
            SoftmaxMode::Single => logits.log_softmax()?,
            SoftmaxMode::Double { tau } => logits.softmax()?.scale(1.0 / tau)?.log_softmax()?,
        };
        Ok((low, log_q))
    }

    /// The low-dimensional embedding (the classifier's input) and `q(c | x)`
    /// of `x`, in evaluation mode.
    pub(crate) fn embed(
        &self,
        store: &mut ParamStore,
        x: Var,
        config: &MixVaeConfig,
    ) -> Result<(Array2<f32>, Array2<f32>), NnError> {
        let (low, log_q) = self.encode(store, x, config, Mode::Eval)?;
        Ok((low.to_array()?, log_q.exp()?.to_array()?))
    }

    /// Makes category `to` a copy of category `from` wherever a category
    /// enters the network (state encoder, state prior, decoder), and gives it
    /// the classifier logit of `from` plus `direction · h − threshold` for
    /// the embedding `h`: `to` takes the cells of `from` on the positive side.
    pub(crate) fn split_category(
        &self,
        store: &mut ParamStore,
        from: usize,
        to: usize,
        direction: &[f32],
        threshold: f32,
    ) -> Result<(), NnError> {
        let mut weight = store.matrix(self.logits.weight)?;
        let mut bias = store.vector(self.logits.bias)?;
        if direction.len() != weight.nrows() {
            return Err(NnError::shape(
                "split_category",
                format!("a direction of {} values", weight.nrows()),
                direction.len(),
            ));
        }
        for (i, &d) in direction.iter().enumerate() {
            weight[[i, to]] = weight[[i, from]] + d;
        }
        bias[to] = bias[from] - threshold;
        store.set_matrix(self.logits.weight, &weight)?;
        store.set_vector(self.logits.bias, &bias)?;
        // Input rows that belong to the category: after the embedding's
        // `low_dim` rows in the state encoder, first in the decoder and prior.
        let low_dim = direction.len();
        let mut rows = vec![
            (self.state_mean.weight, low_dim),
            (self.state_var.weight, low_dim),
            (self.decoder[0].weight, 0),
        ];
        if let Some((mean, log_var)) = &self.prior {
            rows.push((mean.weight, 0));
            rows.push((log_var.weight, 0));
        }
        for (id, offset) in rows {
            let mut w = store.matrix(id)?;
            let source = w.row(offset + from).to_owned();
            w.row_mut(offset + to).assign(&source);
            store.set_matrix(id, &w)?;
        }
        Ok(())
    }

    /// Decodes `(c, s)`.
    pub(crate) fn decode(
        &self,
        store: &ParamStore,
        c: Var,
        s: Var,
        config: &MixVaeConfig,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Var, NnError> {
        let s = nn::dropout(s, config.state_dropout, mode, rng)?;
        let mut h = c.concat_cols(s)?;
        for lin in &self.decoder {
            h = lin.forward(store, h)?.relu()?;
        }
        let out = self.output.forward(store, h)?;
        match config.output {
            Output::Relu => out.relu(),
            Output::Linear => Ok(out),
        }
    }

    /// `ln q(c | x)` and the state mean μ of `x` in evaluation mode (the
    /// category is the one-hot argmax of `q`). Training runs on the dense
    /// engine ([`super::dense_agent`]).
    pub(crate) fn evaluate(
        &self,
        store: &mut ParamStore,
        x: Var,
        config: &MixVaeConfig,
    ) -> Result<AgentPass, NnError> {
        let (low, log_q) = self.encode(store, x, config, Mode::Eval)?;
        let c = one_hot_argmax(&log_q.to_array()?, &log_q.device())?;
        let state_mean = self.state_mean.forward(store, low.concat_cols(c)?)?;
        Ok(AgentPass { log_q, state_mean })
    }
}

/// One row per input row, 1 at the row's largest entry.
pub(crate) fn one_hot_argmax(values: &Array2<f32>, device: &nn::Device) -> Result<Var, NnError> {
    let (rows, cols) = values.dim();
    let mut out = vec![0.0f32; rows * cols];
    for (i, row) in values.rows().into_iter().enumerate() {
        let k = argmax(row.iter().copied());
        out[i * cols + k] = 1.0;
    }
    Var::from_vec(device, rows, cols, out)
}

/// Index of the largest value (the first one on ties; 0 for an empty input).
pub(crate) fn argmax(values: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}
