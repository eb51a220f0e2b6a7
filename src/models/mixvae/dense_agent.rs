//! One agent's network trained on the dense engine ([`crate::nn::dense`]) or,
//! piece by piece, on its tensor backend (a GPU, through [`TrainingNet`]):
//! the encoder (dense layers with ReLU, each followed by batch
//! normalisation), the classifier and its categorical head ([`Head`]), the
//! state encoder `s | c` with its per-category prior, and the decoder, with
//! the backward pass of every piece written out by hand (checked against
//! finite differences in the tests).
//!
//! The weights live here while training; [`AgentNet`] and its
//! [`ParamStore`] keep them for evaluation, re-seeding and saving, and
//! [`DenseAgent::save_to`] / [`DenseAgent::load_from`] move them between the
//! two. A network shared by several agents runs one [`AgentRun`] per agent
//! and sums their gradients before its optimiser step (on a tensor device,
//! which keeps one run's activations per piece, each piece repeats a run's
//! forward pass before its backward pass when several runs share it). The
//! batch normalisation, the head, the state sampling and the losses run on
//! the host on either engine.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::EpochLoss;
use super::agent::{AgentNet, PROB_EPS};
use super::config::{MixVaeConfig, Output, StateNoise};
use super::head::{Head, own_weight};
use crate::nn::dense::{
    Activation, BatchNormCache, DenseAdam, DenseBatchNorm, DenseGrads, DenseLayer, DenseNet,
    DensePenalties, Engine, TrainingNet, Workspace,
};
use crate::nn::{self, AdamConfig, Linear, NnError, ParamStore};

/// A piece of the network: on the dense engine with its optimiser and the
/// gradients summed over the step's runs, or on a tensor device.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a handful per agent, made once
enum Part {
    Dense(DensePart),
    Tensor(TensorPart),
}

/// A piece of the network on a tensor device. The device keeps the
/// activations of its last forward pass only, so when several runs (the
/// agents of a shared network) pass through it in a step, each run's
/// backward pass first repeats its forward pass (same weights, same input:
/// the same activations), then adds its gradients to the step's.
#[derive(Debug)]
struct TensorPart {
    training: TrainingNet,
    /// Forward passes since the last step.
    forwards: usize,
    /// Backward passes since the last step.
    runs: usize,
    /// Whether the device holds the activations of the run whose backward
    /// pass comes next (after [`Part::recall`]).
    recalled: bool,
}

impl TensorPart {
    /// Makes the device hold the activations of the run on `x` (`rows` rows).
    fn recall(&mut self, x: &[f32], rows: usize) -> Result<(), NnError> {
        if self.forwards > 1 && !self.recalled {
            self.training.forward(x, rows)?;
            self.recalled = true;
        }
        Ok(())
    }
}

/// A piece of the network on the dense engine, with its optimiser and the
/// gradients summed over the step's runs.
#[derive(Debug, Clone)]
struct DensePart {
    net: DenseNet,
    adam: DenseAdam,
    grads: DenseGrads,
    sum: DenseGrads,
    runs: usize,
}

impl Part {
    fn new(layers: Vec<DenseLayer>, adam: AdamConfig, engine: Engine) -> Result<Part, NnError> {
        let net = DenseNet::new(layers)?;
        Ok(match engine {
            Engine::Dense => Part::Dense(DensePart {
                net,
                adam: DenseAdam::new(adam),
                grads: DenseGrads::default(),
                sum: DenseGrads::default(),
                runs: 0,
            }),
            Engine::TensorCpu | Engine::Cuda(_) => Part::Tensor(TensorPart {
                training: TrainingNet::on(engine, net, adam)?,
                forwards: 0,
                runs: 0,
                recalled: false,
            }),
        })
    }

    /// The host copy of the weights (current on a tensor device only after
    /// [`Part::sync`]).
    fn net(&self) -> &DenseNet {
        match self {
            Part::Dense(part) => &part.net,
            Part::Tensor(part) => &part.training.net,
        }
    }

    /// Brings the host copy of the weights up to date.
    fn sync(&mut self) -> Result<(), NnError> {
        match self {
            Part::Dense(_) => Ok(()),
            Part::Tensor(part) => part.training.sync(),
        }
    }

    /// The forward pass on `rows` rows of `x`, with the activations in `ws`
    /// on the dense engine (on the device otherwise); returns the output.
    fn forward<'a>(
        &'a mut self,
        x: &[f32],
        rows: usize,
        ws: &'a mut Workspace,
    ) -> Result<&'a [f32], NnError> {
        match self {
            Part::Dense(part) => part.net.forward(x, rows, 0, ws),
            Part::Tensor(part) => {
                part.forwards += 1;
                part.recalled = false;
                part.training.forward(x, rows)
            }
        }
    }

    /// The output of the forward pass of the run on `x` (`rows` rows), whose
    /// activations are in `ws` on the dense engine (on a tensor device, its
    /// forward pass repeated if another run's came after it).
    fn output<'a>(
        &'a mut self,
        x: &[f32],
        rows: usize,
        ws: &'a Workspace,
    ) -> Result<&'a [f32], NnError> {
        match self {
            Part::Dense(part) => Ok(ws.output(&part.net)),
            Part::Tensor(part) => {
                part.recall(x, rows)?;
                Ok(part.training.output())
            }
        }
    }

    /// The gradients of one run (added to the step's sum), and `∂loss/∂x`
    /// into `d_input` when given.
    fn backward(
        &mut self,
        x: &[f32],
        rows: usize,
        d_output: &[f32],
        ws: &mut Workspace,
        d_input: Option<&mut Vec<f32>>,
    ) -> Result<(), NnError> {
        let part = match self {
            Part::Dense(part) => part,
            Part::Tensor(part) => {
                part.recall(x, rows)?;
                part.recalled = false;
                part.runs += 1;
                return if part.runs == 1 {
                    part.training.backward(x, rows, d_output, d_input)
                } else {
                    part.training.backward_adding(x, rows, d_output, d_input)
                };
            }
        };
        part.net
            .backward_to_input(x, rows, 0, d_output, ws, &mut part.grads, d_input)?;
        if part.runs == 0 {
            std::mem::swap(&mut part.grads, &mut part.sum);
        } else {
            part.sum.add(&part.grads);
        }
        part.runs += 1;
        Ok(())
    }

    /// One Adam step on the summed gradients.
    fn step(&mut self) -> Result<(), NnError> {
        match self {
            Part::Dense(part) => {
                if part.runs == 0 {
                    return Err(NnError::NoGradient);
                }
                part.runs = 0;
                part.adam
                    .step(&mut part.net, &part.sum, DensePenalties::NONE)
                    .map(|_| ())
            }
            Part::Tensor(part) => {
                if part.runs == 0 {
                    return Err(NnError::NoGradient);
                }
                part.runs = 0;
                part.forwards = 0;
                part.recalled = false;
                part.training.step()
            }
        }
    }

    /// Replaces the weights with `layers` (same shapes), keeping the optimiser state.
    fn load(&mut self, layers: Vec<DenseLayer>) -> Result<(), NnError> {
        let net = DenseNet::new(layers)?;
        for (mine, new) in self.net().layers.iter().zip(&net.layers) {
            if (mine.inputs, mine.outputs) != (new.inputs, new.outputs) {
                return Err(NnError::shape(
                    "mixVAE weights",
                    format!("{}x{}", mine.inputs, mine.outputs),
                    format!("{}x{}", new.inputs, new.outputs),
                ));
            }
        }
        match self {
            Part::Dense(part) => {
                part.net = net;
                Ok(())
            }
            Part::Tensor(part) => part.training.load(net),
        }
    }
}

/// The dense form of an agent's network.
#[derive(Debug)]
pub(crate) struct DenseAgent {
    encoder: Vec<(Part, DenseBatchNorm)>,
    logits: Part,
    state_mean: Part,
    state_var: Part,
    prior: Option<(Part, Part)>,
    decoder: Part,
}

/// One agent's pass through a [`DenseAgent`] in a step: its batch, every
/// activation the backward pass needs, and the gradient buffers.
#[derive(Debug, Default, Clone)]
pub(crate) struct AgentRun {
    /// The network's input (after input dropout), `rows × genes`.
    pub input: Vec<f32>,
    /// The reconstruction target, `rows × genes`.
    pub target: Vec<f32>,
    rows: usize,
    encoder: Vec<(Workspace, BatchNormCache)>,
    logits: Workspace,
    head: Head,
    /// `[low | c]`, the state encoder's input.
    joint: Vec<f32>,
    mean: Workspace,
    var: Workspace,
    prior_mean: Workspace,
    prior_var: Workspace,
    /// `sigmoid` of the variance head, and `ln σ² = ln(sigmoid + ε)`.
    sigmoid: Vec<f32>,
    log_var: Vec<f32>,
    noise: Vec<f32>,
    mask: Vec<f32>,
    /// `[c | s ⊙ mask]`, the decoder's input.
    decoder_in: Vec<f32>,
    decoder: Workspace,
    d_reconstruction: Vec<f32>,
    d_decoder_in: Vec<f32>,
    d_mean: Vec<f32>,
    d_var: Vec<f32>,
    d_prior_mean: Vec<f32>,
    d_prior_var: Vec<f32>,
    d_joint: Vec<f32>,
    d_low: Vec<f32>,
    d_a: Vec<f32>,
    d_b: Vec<f32>,
}

fn layer(store: &ParamStore, lin: &Linear, activation: Activation) -> Result<DenseLayer, NnError> {
    lin.to_dense(store, activation)
}

/// Appends each row of `a` (`a_cols` wide) followed by the row of `b`.
fn concat_rows(a: &[f32], a_cols: usize, b: &[f32], b_cols: usize, out: &mut Vec<f32>) {
    out.clear();
    for (ra, rb) in a.chunks_exact(a_cols).zip(b.chunks_exact(b_cols)) {
        out.extend_from_slice(ra);
        out.extend_from_slice(rb);
    }
}

/// Adds the columns `from..from + cols` of `src` (`width` wide) to `dst` (`cols` wide).
fn add_columns(dst: &mut [f32], src: &[f32], width: usize, from: usize, cols: usize) {
    for (d, s) in dst.chunks_exact_mut(cols).zip(src.chunks_exact(width)) {
        d.iter_mut()
            .zip(&s[from..from + cols])
            .for_each(|(d, s)| *d += s);
    }
}

impl DenseAgent {
    /// The dense form of `net`'s current weights in `store`, with fresh
    /// optimisers, its networks training on `engine` (the batch
    /// normalisation, the categorical head and the losses stay on the host).
    pub(crate) fn from_tape(
        net: &AgentNet,
        store: &ParamStore,
        config: &MixVaeConfig,
        engine: Engine,
    ) -> Result<DenseAgent, NnError> {
        let adam = AdamConfig::paper(config.learning_rate);
        let layers = Self::layers(net, store, config)?;
        let mut encoder = Vec::new();
        for (lin, bn) in layers.encoder {
            encoder.push((Part::new(vec![lin], adam, engine)?, bn));
        }
        let prior = match layers.prior {
            Some((m, v)) => Some((
                Part::new(vec![m], adam, engine)?,
                Part::new(vec![v], adam, engine)?,
            )),
            None => None,
        };
        Ok(DenseAgent {
            encoder,
            logits: Part::new(vec![layers.logits], adam, engine)?,
            state_mean: Part::new(vec![layers.state_mean], adam, engine)?,
            state_var: Part::new(vec![layers.state_var], adam, engine)?,
            prior,
            decoder: Part::new(layers.decoder, adam, engine)?,
        })
    }

    fn layers(
        net: &AgentNet,
        store: &ParamStore,
        config: &MixVaeConfig,
    ) -> Result<Layers, NnError> {
        let mut encoder = Vec::new();
        for (lin, bn) in net.encoder.iter().chain(std::iter::once(&net.low)) {
            encoder.push((layer(store, lin, Activation::Relu)?, bn.to_dense(store)?));
        }
        let prior = match &net.prior {
            Some((m, v)) => Some((
                layer(store, m, Activation::Linear)?,
                layer(store, v, Activation::Linear)?,
            )),
            None => None,
        };
        let mut decoder = Vec::new();
        for lin in &net.decoder {
            decoder.push(layer(store, lin, Activation::Relu)?);
        }
        let out = match config.output {
            Output::Relu => Activation::Relu,
            Output::Linear => Activation::Linear,
        };
        decoder.push(layer(store, &net.output, out)?);
        Ok(Layers {
            encoder,
            logits: layer(store, &net.logits, Activation::Linear)?,
            state_mean: layer(store, &net.state_mean, Activation::Linear)?,
            state_var: layer(store, &net.state_var, Activation::Linear)?,
            prior,
            decoder,
        })
    }

    /// Replaces the weights and normalisation statistics with `net`'s in
    /// `store` (after a change there), keeping the optimisers' state.
    pub(crate) fn load_from(
        &mut self,
        net: &AgentNet,
        store: &ParamStore,
        config: &MixVaeConfig,
    ) -> Result<(), NnError> {
        let layers = Self::layers(net, store, config)?;
        for ((part, norm), (lin, bn)) in self.encoder.iter_mut().zip(layers.encoder) {
            part.load(vec![lin])?;
            *norm = bn;
        }
        self.logits.load(vec![layers.logits])?;
        self.state_mean.load(vec![layers.state_mean])?;
        self.state_var.load(vec![layers.state_var])?;
        if let (Some((pm, pv)), Some((m, v))) = (&mut self.prior, layers.prior) {
            pm.load(vec![m])?;
            pv.load(vec![v])?;
        }
        self.decoder.load(layers.decoder)
    }

    /// Writes the weights and normalisation statistics into `net`'s
    /// parameters in `store` (bringing the host copies up to date first).
    pub(crate) fn save_to(
        &mut self,
        net: &AgentNet,
        store: &mut ParamStore,
    ) -> Result<(), NnError> {
        for part in self.parts_mut() {
            part.sync()?;
        }
        let encoder = net.encoder.iter().chain(std::iter::once(&net.low));
        for ((part, norm), (lin, bn)) in self.encoder.iter().zip(encoder) {
            lin.set_from_dense(store, &part.net().layers[0])?;
            bn.set_from_dense(store, norm)?;
        }
        net.logits
            .set_from_dense(store, &self.logits.net().layers[0])?;
        net.state_mean
            .set_from_dense(store, &self.state_mean.net().layers[0])?;
        net.state_var
            .set_from_dense(store, &self.state_var.net().layers[0])?;
        if let (Some((pm, pv)), Some((m, v))) = (&self.prior, &net.prior) {
            m.set_from_dense(store, &pm.net().layers[0])?;
            v.set_from_dense(store, &pv.net().layers[0])?;
        }
        let decoder = net.decoder.iter().chain(std::iter::once(&net.output));
        for (layer, lin) in self.decoder.net().layers.iter().zip(decoder) {
            lin.set_from_dense(store, layer)?;
        }
        Ok(())
    }

    /// The training forward pass of `run` (its `input` and `target` filled,
    /// `rows` rows) among `agents` agents. Draws the Gumbel noise, the state
    /// noise and the state dropout mask from `rng`, in that order. Returns
    /// the loss parts of the agent's own terms and, with other agents to
    /// compare with, its `u_a` (see [`super::objective`]).
    pub(crate) fn forward(
        &mut self,
        run: &mut AgentRun,
        rows: usize,
        agents: usize,
        config: &MixVaeConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<(EpochLoss, Option<Vec<f32>>), NnError> {
        let (k, s) = (config.categories, config.state_dim);
        let low_dim = config.low_dim;
        run.rows = rows;
        run.encoder
            .resize_with(self.encoder.len(), Default::default);
        for i in 0..self.encoder.len() {
            let (done, rest) = run.encoder.split_at_mut(i);
            let input: &[f32] = match done.last() {
                None => &run.input,
                Some((_, cache)) => &cache.output,
            };
            let (ws, cache) = &mut rest[0];
            let (part, norm) = &mut self.encoder[i];
            let z = part.forward(input, rows, ws)?;
            norm.forward_train(z, rows, cache)?;
        }
        let low: &[f32] = &run.encoder[self.encoder.len() - 1].1.output;
        let logits = self.logits.forward(low, rows, &mut run.logits)?;
        let gumbel = nn::gumbel_noise(rows * k, rng);
        run.head.forward(logits, rows, &gumbel, config);
        concat_rows(low, low_dim, &run.head.sample, k, &mut run.joint);
        let mu = self.state_mean.forward(&run.joint, rows, &mut run.mean)?;
        let pre = self.state_var.forward(&run.joint, rows, &mut run.var)?;
        run.sigmoid.clear();
        run.sigmoid
            .extend(pre.iter().map(|v| 1.0 / (1.0 + (-v).exp())));
        run.log_var.clear();
        run.log_var
            .extend(run.sigmoid.iter().map(|v| (v + PROB_EPS).ln()));
        run.noise.clear();
        run.noise
            .extend((0..rows * s).map(|_| match config.state_noise {
                StateNoise::Gaussian => rng.sample::<f32, _>(StandardNormal),
                StateNoise::UniformHead => rng.random::<f32>(),
            }));
        let n = rows as f32;
        let mut kl = 0.0f64;
        match &mut self.prior {
            None => {
                for (m, lv) in mu.iter().zip(&run.log_var) {
                    kl += f64::from(lv.exp() + m * m - lv - 1.0);
                }
            }
            Some((pm, pv)) => {
                let pm = pm.forward(&run.head.sample, rows, &mut run.prior_mean)?;
                let pv = pv.forward(&run.head.sample, rows, &mut run.prior_var)?;
                for (((m, lv), a), b) in mu.iter().zip(&run.log_var).zip(pm).zip(pv) {
                    kl += f64::from((lv - b).exp() + (m - a) * (m - a) * (-b).exp() + b - lv - 1.0);
                }
            }
        }
        let kl = 0.5 * kl / f64::from(n);
        run.mask.clear();
        run.mask.resize(rows * s, 1.0);
        nn::dropout_in_place(&mut run.mask, config.state_dropout, rng)?;
        let state: Vec<f32> = mu
            .iter()
            .zip(&run.log_var)
            .zip(&run.noise)
            .zip(&run.mask)
            .map(|(((m, lv), e), keep)| (m + (0.5 * lv).exp() * e) * keep)
            .collect();
        concat_rows(&run.head.sample, k, &state, s, &mut run.decoder_in);
        let reconstruction = self
            .decoder
            .forward(&run.decoder_in, rows, &mut run.decoder)?;
        if run.target.len() != reconstruction.len() {
            return Err(NnError::shape(
                "mixVAE target",
                format!("{} values", reconstruction.len()),
                run.target.len(),
            ));
        }
        let weight = own_weight(agents);
        run.d_reconstruction.resize(reconstruction.len(), 0.0);
        let rec =
            0.5 * nn::dense::kernels::squared_error(
                reconstruction,
                &run.target,
                weight / n,
                &mut run.d_reconstruction,
            ) / f64::from(n);
        let (entropy, balance) = run.head.own_terms(agents, config);
        let weight = f64::from(weight);
        let parts = EpochLoss {
            total: weight
                * (rec + f64::from(config.beta) * kl - f64::from(config.entropy_weight) * entropy)
                + f64::from(config.balance_weight) * balance,
            reconstruction: rec,
            kl,
            distance: 0.0,
            entropy,
        };
        let coupled = (agents >= 2).then(|| run.head.coupled(config));
        Ok((parts, coupled))
    }

    /// The backward pass of `run` after [`DenseAgent::forward`], with
    /// `d_u = ∂loss/∂u_a` for a coupled agent; adds the gradients to the
    /// step's sums (call [`DenseAgent::step`] after every run's backward pass).
    pub(crate) fn backward(
        &mut self,
        run: &mut AgentRun,
        agents: usize,
        d_u: Option<&[f32]>,
        config: &MixVaeConfig,
    ) -> Result<(), NnError> {
        let (rows, k, s, low_dim) = (
            run.rows,
            config.categories,
            config.state_dim,
            config.low_dim,
        );
        let n = rows as f32;
        self.decoder.backward(
            &run.decoder_in,
            rows,
            &run.d_reconstruction,
            &mut run.decoder,
            Some(&mut run.d_decoder_in),
        )?;
        add_columns(&mut run.head.d_sample, &run.d_decoder_in, k + s, 0, k);
        // Through s = μ + exp(½ ln σ²) ξ (then the dropout mask) and the KL term.
        let kl_scale = own_weight(agents) * config.beta / n;
        let mu = self.state_mean.output(&run.joint, rows, &run.mean)?;
        run.d_mean.clear();
        run.d_var.clear();
        run.d_prior_mean.clear();
        run.d_prior_var.clear();
        let d_state = run
            .d_decoder_in
            .chunks_exact(k + s)
            .flat_map(|row| &row[k..]);
        match &mut self.prior {
            None => {
                for ((((ds, keep), m), lv), e) in d_state
                    .zip(&run.mask)
                    .zip(mu)
                    .zip(&run.log_var)
                    .zip(&run.noise)
                {
                    let ds = ds * keep;
                    run.d_mean.push(ds + kl_scale * m);
                    run.d_var
                        .push(ds * e * 0.5 * (0.5 * lv).exp() + kl_scale * 0.5 * (lv.exp() - 1.0));
                }
            }
            Some((pm, pv)) => {
                let prior_mean = pm.output(&run.head.sample, rows, &run.prior_mean)?;
                let prior_var = pv.output(&run.head.sample, rows, &run.prior_var)?;
                for ((((((ds, keep), m), lv), e), a), b) in d_state
                    .zip(&run.mask)
                    .zip(mu)
                    .zip(&run.log_var)
                    .zip(&run.noise)
                    .zip(prior_mean)
                    .zip(prior_var)
                {
                    let ds = ds * keep;
                    let precision = (-b).exp();
                    let ratio = (lv - b).exp();
                    run.d_mean.push(ds + kl_scale * (m - a) * precision);
                    run.d_var
                        .push(ds * e * 0.5 * (0.5 * lv).exp() + kl_scale * 0.5 * (ratio - 1.0));
                    run.d_prior_mean.push(-kl_scale * (m - a) * precision);
                    run.d_prior_var
                        .push(kl_scale * 0.5 * (1.0 - ratio - (m - a) * (m - a) * precision));
                }
            }
        }
        // ln σ² = ln(sigmoid(v) + ε).
        for (d, sg) in run.d_var.iter_mut().zip(&run.sigmoid) {
            *d *= sg * (1.0 - sg) / (sg + PROB_EPS);
        }
        let width = low_dim + k;
        self.state_mean.backward(
            &run.joint,
            rows,
            &run.d_mean,
            &mut run.mean,
            Some(&mut run.d_joint),
        )?;
        run.d_low.clear();
        run.d_low.resize(rows * low_dim, 0.0);
        add_columns(&mut run.d_low, &run.d_joint, width, 0, low_dim);
        add_columns(&mut run.head.d_sample, &run.d_joint, width, low_dim, k);
        self.state_var.backward(
            &run.joint,
            rows,
            &run.d_var,
            &mut run.var,
            Some(&mut run.d_joint),
        )?;
        add_columns(&mut run.d_low, &run.d_joint, width, 0, low_dim);
        add_columns(&mut run.head.d_sample, &run.d_joint, width, low_dim, k);
        if let Some((pm, pv)) = &mut self.prior {
            pm.backward(
                &run.head.sample,
                rows,
                &run.d_prior_mean,
                &mut run.prior_mean,
                Some(&mut run.d_joint),
            )?;
            add_columns(&mut run.head.d_sample, &run.d_joint, k, 0, k);
            pv.backward(
                &run.head.sample,
                rows,
                &run.d_prior_var,
                &mut run.prior_var,
                Some(&mut run.d_joint),
            )?;
            add_columns(&mut run.head.d_sample, &run.d_joint, k, 0, k);
        }
        let d_logits = run.head.backward(d_u, config);
        let last = self.encoder.len() - 1;
        self.logits.backward(
            &run.encoder[last].1.output,
            rows,
            d_logits,
            &mut run.logits,
            Some(&mut run.d_joint),
        )?;
        add_columns(&mut run.d_low, &run.d_joint, low_dim, 0, low_dim);
        std::mem::swap(&mut run.d_a, &mut run.d_low);
        for i in (0..self.encoder.len()).rev() {
            let (part, norm) = &mut self.encoder[i];
            let (done, rest) = run.encoder.split_at_mut(i);
            let (ws, cache) = &mut rest[0];
            norm.backward(&run.d_a, rows, cache, &mut run.d_b)?;
            let input: &[f32] = match done.last() {
                None => &run.input,
                Some((_, cache)) => &cache.output,
            };
            let d_input = (i > 0).then_some(&mut run.d_a);
            part.backward(input, rows, &run.d_b, ws, d_input)?;
        }
        Ok(())
    }

    /// One optimiser step of every part on the gradients summed since the last.
    pub(crate) fn step(&mut self) -> Result<(), NnError> {
        for part in self.parts_mut() {
            part.step()?;
        }
        Ok(())
    }

    /// Every part, encoder first, decoder last.
    fn parts_mut(&mut self) -> Vec<&mut Part> {
        let mut parts: Vec<&mut Part> = self.encoder.iter_mut().map(|(p, _)| p).collect();
        parts.push(&mut self.logits);
        parts.push(&mut self.state_mean);
        parts.push(&mut self.state_var);
        if let Some((pm, pv)) = &mut self.prior {
            parts.push(pm);
            parts.push(pv);
        }
        parts.push(&mut self.decoder);
        parts
    }
}

/// An agent's layers in dense form.
struct Layers {
    encoder: Vec<(DenseLayer, DenseBatchNorm)>,
    logits: DenseLayer,
    state_mean: DenseLayer,
    state_var: DenseLayer,
    prior: Option<(DenseLayer, DenseLayer)>,
    decoder: Vec<DenseLayer>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mixvae::config::{CouplingInput, SoftmaxMode, StatePrior};
    use crate::nn::DeviceChoice;
    use rand::SeedableRng;

    const ROWS: usize = 8;
    const GENES: usize = 6;
    const AGENTS: usize = 2;

    fn small(config: MixVaeConfig) -> MixVaeConfig {
        MixVaeConfig {
            hidden: 5,
            hidden_layers: 1,
            low_dim: 3,
            categories: 4,
            state_dim: 2,
            temperature: 0.7,
            balance_weight: 0.4,
            beta: 0.8,
            ..config
        }
    }

    /// Whether layer `l` of `layers` is the decoder's output (`GENES` wide).
    fn part_is_output(l: usize, layers: usize, outputs: usize) -> bool {
        l + 1 == layers && outputs == GENES
    }

    /// The agent's parts, all on the dense engine.
    fn parts_mut(agent: &mut DenseAgent) -> Vec<&mut DensePart> {
        agent
            .parts_mut()
            .into_iter()
            .map(|part| match part {
                Part::Dense(part) => part,
                Part::Tensor(..) => unreachable!("the tests build dense agents"),
            })
            .collect()
    }

    /// A copy of an agent on the dense engine.
    fn copy(agent: &DenseAgent) -> DenseAgent {
        let part = |part: &Part| match part {
            Part::Dense(part) => Part::Dense(part.clone()),
            Part::Tensor(..) => unreachable!("the tests build dense agents"),
        };
        DenseAgent {
            encoder: agent
                .encoder
                .iter()
                .map(|(p, bn)| (part(p), bn.clone()))
                .collect(),
            logits: part(&agent.logits),
            state_mean: part(&agent.state_mean),
            state_var: part(&agent.state_var),
            prior: agent.prior.as_ref().map(|(pm, pv)| (part(pm), part(pv))),
            decoder: part(&agent.decoder),
        }
    }

    /// The agent's own loss plus `Σ u ⊙ d_u`, and a run that has taken it.
    fn loss(
        agent: &mut DenseAgent,
        x: &[f32],
        d_u: &[f32],
        config: &MixVaeConfig,
    ) -> (f64, AgentRun) {
        let mut run = AgentRun {
            input: x.iter().map(|v| v * 0.9).collect(),
            target: x.to_vec(),
            ..AgentRun::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (parts, u) = agent
            .forward(&mut run, ROWS, AGENTS, config, &mut rng)
            .unwrap();
        let coupling: f64 = u
            .unwrap()
            .iter()
            .zip(d_u)
            .map(|(u, g)| f64::from(u * g))
            .sum();
        (parts.total + coupling, run)
    }

    #[test]
    fn every_gradient_matches_finite_differences() {
        let variants = [
            small(MixVaeConfig::default()),
            small(MixVaeConfig {
                softmax: SoftmaxMode::Double { tau: 0.5 },
                coupling_input: CouplingInput::Probabilities,
                state_prior: StatePrior::Standard,
                state_noise: StateNoise::UniformHead,
                output: Output::Linear,
                ..MixVaeConfig::default()
            }),
        ];
        for config in variants {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
            let net = AgentNet::new(&mut store, "a", GENES, &config, &mut rng).unwrap();
            let mut agent = DenseAgent::from_tape(&net, &store, &config, Engine::Dense).unwrap();
            // Biases away from zero so that ReLUs are not at their kinks
            // (the reconstruction's clearly positive).
            for part in parts_mut(&mut agent) {
                let layers = part.net.layers.len();
                for (l, layer) in part.net.layers.iter_mut().enumerate() {
                    let range = if part_is_output(l, layers, layer.outputs) {
                        1.0..2.0
                    } else {
                        0.05..0.3
                    };
                    layer
                        .bias
                        .iter_mut()
                        .for_each(|b| *b = rng.random_range(range.clone()));
                }
            }
            let x: Vec<f32> = (0..ROWS * GENES)
                .map(|_| rng.random_range(0.0..2.0))
                .collect();
            let d_u: Vec<f32> = (0..ROWS * config.categories)
                .map(|_| rng.random_range(-0.2..0.2))
                .collect();
            let mut trained = copy(&agent);
            let (_, mut run) = loss(&mut trained, &x, &d_u, &config);
            trained
                .backward(&mut run, AGENTS, Some(&d_u), &config)
                .unwrap();
            let analytic: Vec<DenseGrads> = parts_mut(&mut trained)
                .into_iter()
                .map(|p| p.sum.clone())
                .collect();
            let h = 1e-2f32;
            let count = parts_mut(&mut agent).len();
            for p in 0..count {
                let layers = parts_mut(&mut agent)[p].net.layers.len();
                for l in 0..layers {
                    let sizes = {
                        let parts = parts_mut(&mut agent);
                        let layer = &parts[p].net.layers[l];
                        [layer.weight.len(), layer.bias.len()]
                    };
                    for (which, size) in sizes.into_iter().enumerate() {
                        for i in (0..size).step_by(3) {
                            let moved = |delta: f32| {
                                let mut moved = copy(&agent);
                                {
                                    let mut parts = parts_mut(&mut moved);
                                    let layer = &mut parts[p].net.layers[l];
                                    let values = if which == 0 {
                                        &mut layer.weight
                                    } else {
                                        &mut layer.bias
                                    };
                                    values[i] += delta;
                                }
                                loss(&mut moved, &x, &d_u, &config).0
                            };
                            let numeric = (moved(h) - moved(-h)) / (2.0 * f64::from(h));
                            let grads = &analytic[p];
                            let exact = f64::from(if which == 0 {
                                grads.weight[l][i]
                            } else {
                                grads.bias[l][i]
                            });
                            assert!(
                                (numeric - exact).abs() < 2e-2 * (1.0 + exact.abs()),
                                "{:?} part {p} layer {l} {} {i}: {numeric} by differences, {exact} by hand",
                                config.softmax,
                                ["weight", "bias"][which]
                            );
                        }
                    }
                }
            }
        }
    }
}
