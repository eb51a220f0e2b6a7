//! Training the agents on mini-batches with the coupled objective.

use std::time::Instant;

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::agent::AgentNet;
use super::augment::Augmenter;
use super::config::MixVaeConfig;
use super::objective::coupled_loss;
use super::output::{MixVaeFit, evaluate};
use super::{EpochLoss, MixVaeError};
use crate::nn::{self, Adam, AdamConfig, Device, DeviceChoice, Mode, ParamStore, Var};
use crate::progress::{Event, Sink};

/// The trained networks of all agents (one shared network when `config.shared`).
pub(crate) struct Agents {
    pub store: ParamStore,
    pub nets: Vec<AgentNet>,
    pub count: usize,
}

impl Agents {
    /// The network agent `a` uses.
    pub(crate) fn net(&self, a: usize) -> &AgentNet {
        &self.nets[a.min(self.nets.len() - 1)]
    }
}

/// Fits a coupled mixture VAE to the rows (cells) of `x` and evaluates it on them.
///
/// Reports a stage per phase and a `loss` metric per epoch to `sink`, and
/// stops with [`MixVaeError::Cancelled`] when the sink asks.
pub fn fit(
    x: ArrayView2<f32>,
    config: &MixVaeConfig,
    sink: &mut dyn Sink,
) -> Result<MixVaeFit, MixVaeError> {
    config.validate()?;
    let (cells, genes) = x.dim();
    if cells < 2 || genes == 0 {
        return Err(MixVaeError::Data(format!(
            "expected at least 2 cells and 1 feature, got {cells} x {genes}"
        )));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(MixVaeError::Data(format!(
            "value {} at cell {}, feature {} is not finite",
            x.iter().nth(i).copied().unwrap_or(f32::NAN),
            i / genes,
            i % genes
        )));
    }
    let x = x.to_owned();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let device = Device::open(DeviceChoice::Cpu)?;
    let augmenter = Augmenter::build(&config.augmentation, &x, &device, &mut rng, sink)?;
    let mut store = ParamStore::on(device.clone());
    let networks = if config.shared { 1 } else { config.agents };
    // Agent a's weights come from stream a of one seed (stream 0 for all
    // with `same_init`).
    let init_seed: u64 = rng.random();
    let nets = (0..networks)
        .map(|a| {
            let mut init = ChaCha8Rng::seed_from_u64(init_seed);
            init.set_stream(if config.same_init { 0 } else { a as u64 });
            AgentNet::new(&mut store, &format!("agent{a}"), genes, config, &mut init)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut agents = Agents {
        store,
        nets,
        count: config.agents,
    };
    let mut adam = Adam::new(AdamConfig::paper(config.learning_rate));
    let mut order: Vec<usize> = (0..cells).collect();
    let batch = config.batch_size.min(cells);
    let mut losses = Vec::with_capacity(config.epochs);
    let mut epoch_seconds = Vec::with_capacity(config.epochs);
    sink.event(Event::Stage {
        name: format!("mixVAE, {} agent(s)", config.agents),
        total: config.epochs as u64,
    });
    for epoch in 0..config.epochs {
        if sink.cancelled() {
            return Err(MixVaeError::Cancelled);
        }
        let start = Instant::now();
        order.shuffle(&mut rng);
        let mut sum = EpochLoss::default();
        let mut steps = 0usize;
        for chunk in order.chunks(batch) {
            // d_σ needs a mini-batch variance: skip a last batch of one cell.
            if chunk.len() < 2 {
                continue;
            }
            let xb = x.select(Axis(0), chunk);
            let parts = train_step(&mut agents, &augmenter, &xb, config, &mut adam, &mut rng)?;
            sum.add(&parts);
            steps += 1;
        }
        agents.store.device().empty_cache()?;
        let mean = sum.scaled(1.0 / steps.max(1) as f64);
        epoch_seconds.push(start.elapsed().as_secs_f64());
        sink.event(Event::Metric {
            name: "loss".into(),
            step: epoch as u64,
            value: mean.total,
        });
        sink.event(Event::Step {
            done: epoch as u64 + 1,
        });
        losses.push(mean);
    }
    agents.store.check_finite()?;
    let mut fit = evaluate(&mut agents, &x, config, &mut rng)?;
    fit.losses = losses;
    fit.epoch_seconds = epoch_seconds;
    Ok(fit)
}

/// One optimisation step on the batch `xb`; returns the loss parts.
fn train_step(
    agents: &mut Agents,
    augmenter: &Augmenter,
    xb: &Array2<f32>,
    config: &MixVaeConfig,
    adam: &mut Adam,
    rng: &mut ChaCha8Rng,
) -> Result<EpochLoss, MixVaeError> {
    let device = agents.store.device().clone();
    let mut passes = Vec::with_capacity(agents.count);
    let mut targets = Vec::with_capacity(agents.count);
    for a in 0..agents.count {
        // The agent reconstructs its augmented copy from that copy after
        // input dropout, both built on the host.
        let mut copy = augmenter.augment(xb, &device, rng)?;
        let target = Var::from_array(&device, &copy)?;
        let values = copy
            .as_slice_mut()
            .ok_or_else(|| MixVaeError::Data("a non-contiguous batch".into()))?;
        nn::dropout_in_place(values, config.input_dropout, rng)?;
        let (rows, cols) = copy.dim();
        let input = Var::from_vec(&device, rows, cols, copy.into_raw_vec_and_offset().0)?;
        let net = agents.net(a).clone();
        passes.push(net.forward(&mut agents.store, input, config, Mode::Train, rng)?);
        targets.push(target);
    }
    let loss = coupled_loss(passes, targets, config)?;
    let parts = EpochLoss {
        total: loss.total.value()? as f64,
        reconstruction: loss.reconstruction,
        kl: loss.kl,
        distance: loss.distance,
        entropy: loss.entropy,
    };
    let mut grads = loss.total.backward()?;
    adam.step(&mut agents.store, &mut grads)?;
    Ok(parts)
}
