//! Training the agents on mini-batches with the coupled objective.

use std::time::Instant;

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::agent::AgentNet;
use super::augment::Augmenter;
use super::config::{Augmentation, MixVaeConfig, RestartCriterion};
use super::dense_agent::{AgentRun, DenseAgent};
use super::objective::coupling;
use super::output::{MixVaeFit, augment_consistency, evaluate};
use super::revive::{revival_due, revive_empty};
use super::trained::{AgentNetwork, TrainedMixVae};
use super::{EpochLoss, MixVaeError};
use crate::models::cae::data::{Rows, gather};
use crate::nn::dense::Engine;
use crate::nn::{self, Device, DeviceChoice, NnError, ParamStore};
use crate::progress::{Event, Sink};

/// One network: its layout and parameters (trained in `engine`, on the dense
/// engine or a tensor device, kept in `store` for evaluation and
/// re-seeding), one run buffer
/// per agent it runs, and its copy of the augmenter.
pub(crate) struct Network {
    pub net: AgentNet,
    pub store: ParamStore,
    engine: DenseAgent,
    runs: Vec<AgentRun>,
    augmenter: Augmenter,
}

impl Network {
    /// Writes the trained weights into `store` (before evaluating or re-seeding).
    pub(crate) fn save(&mut self) -> Result<(), NnError> {
        self.engine.save_to(&self.net, &mut self.store)
    }

    /// Takes the weights back from `store` after a change there.
    pub(crate) fn load(&mut self, config: &MixVaeConfig) -> Result<(), NnError> {
        self.engine.load_from(&self.net, &self.store, config)
    }
}

/// The trained networks of all agents (one shared network when `config.shared`).
pub(crate) struct Agents {
    pub networks: Vec<Network>,
    pub count: usize,
}

impl Agents {
    /// The network agent `a` uses.
    pub(crate) fn network_mut(&mut self, a: usize) -> &mut Network {
        let last = self.networks.len() - 1;
        &mut self.networks[a.min(last)]
    }

    /// The agents network `w` runs: all of them for one shared network.
    fn run_by(&self, w: usize) -> Vec<usize> {
        if self.networks.len() == 1 {
            (0..self.count).collect()
        } else {
            vec![w]
        }
    }
}

/// Fits a coupled mixture VAE to the rows (cells) of `x` and evaluates it on them.
///
/// `x` is borrowed, never copied: any matrix of [`Rows`] (an `f32` array, or
/// a prepared `f64` table, whose rows are converted to `f32` as they are
/// gathered); mini-batches are gathered from it and the evaluation runs over
/// it in chunks, so memory beyond `x` grows with the batch and chunk sizes
/// (and with cells x categories for the results), not with cells x features
/// (except for the augmented copy of every cell that a fit with augmentation
/// returns).
///
/// Reports a stage per phase and a `loss` metric per epoch to `sink`, and
/// stops with [`MixVaeError::Cancelled`] when the sink asks.
pub fn fit<M: Rows>(
    x: &M,
    config: &MixVaeConfig,
    sink: &mut dyn Sink,
) -> Result<MixVaeFit, MixVaeError> {
    fit_keeping(x, config, sink).map(|(fit, _)| fit)
}

/// Like [`fit`], and also returns the trained networks (to save or apply).
pub fn fit_keeping<M: Rows>(
    x: &M,
    config: &MixVaeConfig,
    sink: &mut dyn Sink,
) -> Result<(MixVaeFit, TrainedMixVae), MixVaeError> {
    fit_keeping_on(x, config, Engine::Dense, sink)
}

/// [`fit_keeping`] with the agents' networks (encoder, classifier, state
/// encoder and prior, decoder) training on `engine`: the dense engine on the
/// CPU, or the tensor backend (a GPU). The batch normalisation, the
/// categorical head, the coupling and the losses stay on the host. A
/// network shared by the agents (`shared: true`) sums its agents' gradients
/// before each optimiser step on either engine.
///
/// With `restarts` above 1, fits that many times (restart 0 from `seed`,
/// the others from seeds drawn from it) and returns the fit that scores
/// highest by `restart_by`, the first of equals.
pub fn fit_keeping_on<M: Rows>(
    x: &M,
    config: &MixVaeConfig,
    engine: Engine,
    sink: &mut dyn Sink,
) -> Result<(MixVaeFit, TrainedMixVae), MixVaeError> {
    let x: &dyn Rows = x;
    check(x, config)?;
    let seeds = restart_seeds(config.seed, config.restarts);
    let count = seeds.len();
    let stage = |restart: usize| {
        if count > 1 {
            format!(
                "mixVAE, {} agent(s), restart {} of {count}",
                config.agents,
                restart + 1
            )
        } else {
            format!("mixVAE, {} agent(s)", config.agents)
        }
    };
    let score = |fit: &MixVaeFit| match config.restart_by {
        RestartCriterion::Agreement => fit.agreement,
        RestartCriterion::Consistency => fit.augment_consistency.unwrap_or(0.0),
    };
    let (mut fit, mut trained) = fit_once(x, config, engine, stage(0), sink)?;
    let mut scores = vec![score(&fit)];
    for (restart, &seed) in seeds.iter().enumerate().skip(1) {
        let run = MixVaeConfig {
            seed,
            ..config.clone()
        };
        let (next, next_trained) = fit_once(x, &run, engine, stage(restart), sink)?;
        let next_score = score(&next);
        scores.push(next_score);
        if next_score > scores[fit.chosen_restart] {
            (fit, trained) = (next, next_trained);
            fit.chosen_restart = restart;
        }
    }
    fit.restart_scores = scores;
    Ok((fit, trained))
}

/// The seed of every restart of a fit from `seed` (`MixVaeConfig::restarts`):
/// `seed` itself first, then draws from it.
pub fn restart_seeds(seed: u64, restarts: usize) -> Vec<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(RESTART_STREAM);
    std::iter::once(seed)
        .chain(std::iter::repeat_with(|| rng.random()))
        .take(restarts)
        .collect()
}

/// The random stream of [`restart_seeds`].
const RESTART_STREAM: u64 = 0x5E5;

/// Checks the settings and the data before any training.
fn check(x: &dyn Rows, config: &MixVaeConfig) -> Result<(), MixVaeError> {
    config.validate()?;
    let (cells, genes) = (x.nrows(), x.ncols());
    if cells < 2 || genes == 0 {
        return Err(MixVaeError::Data(format!(
            "expected at least 2 cells and 1 feature, got {cells} x {genes}"
        )));
    }
    // Checked as the networks see the values (an `f64` beyond `f32`'s range
    // is infinite there).
    let mut row = Vec::with_capacity(genes);
    for cell in 0..cells {
        row.clear();
        x.push_row(cell, &mut row);
        if let Some(feature) = row.iter().position(|v| !v.is_finite()) {
            return Err(MixVaeError::Data(format!(
                "value {} at cell {cell}, feature {feature} is not finite",
                row[feature]
            )));
        }
    }
    if let Augmentation::Rotation { width, .. } = config.augmentation
        && !genes.is_multiple_of(width.max(1))
    {
        return Err(MixVaeError::Config {
            field: "augmentation.width".into(),
            message: format!("{genes} features are not rows of {width}-pixel images"),
        });
    }
    Ok(())
}

/// One fit from `config.seed`, reported to `sink` as the stage `stage`.
fn fit_once(
    x: &dyn Rows,
    config: &MixVaeConfig,
    engine: Engine,
    stage: String,
    sink: &mut dyn Sink,
) -> Result<(MixVaeFit, TrainedMixVae), MixVaeError> {
    let (cells, genes) = (x.nrows(), x.ncols());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // The stores (evaluation, re-seeding, saving) and the augmenter sit on
    // the GPU the networks train on: a `cuda` build's tape has no CPU device.
    let store_choice = match engine {
        Engine::Cuda(ordinal) => DeviceChoice::Cuda(ordinal),
        Engine::Dense | Engine::TensorCpu => DeviceChoice::Cpu,
    };
    let device = Device::open(store_choice)?;
    let augmenter = Augmenter::build(&config.augmentation, x, &device, &mut rng, sink)?;
    let networks = if config.shared { 1 } else { config.agents };
    // Agent a's weights come from stream a of one seed (stream 0 for all
    // with `same_init`).
    let init_seed: u64 = rng.random();
    let networks = (0..networks)
        .map(|a| {
            let mut init = ChaCha8Rng::seed_from_u64(init_seed);
            init.set_stream(if config.same_init { 0 } else { a as u64 });
            // Networks train in parallel, so each needs its own device.
            let own_device = Device::open(store_choice)?;
            let mut store = ParamStore::on(own_device.clone());
            let net = AgentNet::new(&mut store, &format!("agent{a}"), genes, config, &mut init)?;
            Ok(Network {
                engine: DenseAgent::from_tape(&net, &store, config, engine)?,
                net,
                store,
                runs: Vec::new(),
                augmenter: augmenter.on(&own_device)?,
            })
        })
        .collect::<Result<Vec<_>, NnError>>()?;
    let stepper = Stepper::new(networks.len())?;
    let mut agents = Agents {
        networks,
        count: config.agents,
    };
    let mut order: Vec<usize> = (0..cells).collect();
    let batch = config.batch_size.min(cells);
    let mut losses = Vec::with_capacity(config.epochs);
    let mut epoch_seconds = Vec::with_capacity(config.epochs);
    let mut revived = 0;
    sink.event(Event::Stage {
        name: stage,
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
            let parts = stepper.step(&mut agents, x, chunk, config, &mut rng)?;
            sum.add(&parts);
            steps += 1;
        }
        for network in &agents.networks {
            network.store.device().empty_cache()?;
        }
        if revival_due(epoch + 1, config) {
            for network in &mut agents.networks {
                network.save()?;
            }
            let pass = revive_empty(&mut agents, x, config)?;
            if pass > 0 {
                for network in &mut agents.networks {
                    network.load(config)?;
                }
            }
            revived += pass;
        }
        let mean = sum.scaled(1.0 / steps.max(1) as f64);
        epoch_seconds.push(start.elapsed().as_secs_f64());
        sink.event(Event::Metric {
            fold: None,
            name: "loss".into(),
            step: epoch as u64,
            value: mean.total,
        });
        sink.event(Event::Step {
            done: epoch as u64 + 1,
        });
        losses.push(mean);
    }
    for network in &mut agents.networks {
        network.save()?;
        network.store.check_finite()?;
    }
    let mut fit = evaluate(&mut agents, x, config, &mut rng)?;
    fit.losses = losses;
    fit.epoch_seconds = epoch_seconds;
    fit.revived = revived;
    fit.augmented = augmented_copy(&augmenter, x, &device, config.seed)?;
    if let Some(copy) = &fit.augmented {
        fit.augment_consistency =
            Some(augment_consistency(&mut agents, copy, &fit.agents, config)?);
    }
    let networks = agents
        .networks
        .into_iter()
        .map(|n| AgentNetwork::new(n.net, n.store))
        .collect();
    Ok((fit, TrainedMixVae::new(networks, config)))
}

/// One augmented copy of every row of `x`, from its own random stream so
/// that training draws the same numbers with or without it (`None` for no
/// augmentation).
fn augmented_copy(
    augmenter: &Augmenter,
    x: &dyn Rows,
    device: &Device,
    seed: u64,
) -> Result<Option<Array2<f32>>, MixVaeError> {
    if matches!(augmenter, Augmenter::Identity) {
        return Ok(None);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(AUGMENTED_COPY_STREAM);
    let all: Vec<usize> = (0..x.nrows()).collect();
    Ok(Some(augmenter.augment(
        &gather(x, &all),
        device,
        &mut rng,
    )?))
}

/// The random stream of [`augmented_copy`].
const AUGMENTED_COPY_STREAM: u64 = 0xA06;

/// Runs the networks' halves of a training step: on parallel threads in a
/// CPU build with several networks, one after another otherwise (a single
/// network, or CUDA, whose device handles cannot move between threads).
struct Stepper {
    #[cfg(not(feature = "cuda"))]
    pools: Vec<rayon::ThreadPool>,
}

impl Stepper {
    fn new(networks: usize) -> Result<Stepper, MixVaeError> {
        #[cfg(feature = "cuda")]
        let _ = networks;
        Ok(Stepper {
            #[cfg(not(feature = "cuda"))]
            pools: if networks > 1 {
                super::parallel::pools(networks)?
            } else {
                Vec::new()
            },
        })
    }

    /// One optimisation step on the rows `batch` of `x`; returns the loss parts.
    ///
    /// Each network runs its agents' forward passes, the host computes the
    /// coupling term from their `u_a` (see [`super::objective::coupling`]), and
    /// each network runs its backward pass and optimiser step. Every agent
    /// draws from its own stream seeded from `rng`, so results do not depend
    /// on the order or timing of the networks' work.
    fn step(
        &self,
        agents: &mut Agents,
        x: &dyn Rows,
        batch: &[usize],
        config: &MixVaeConfig,
        rng: &mut ChaCha8Rng,
    ) -> Result<EpochLoss, MixVaeError> {
        let count = agents.count;
        let seeds: Vec<u64> = (0..count).map(|_| rng.random()).collect();
        let runs: Vec<Vec<usize>> = (0..agents.networks.len())
            .map(|w| agents.run_by(w))
            .collect();
        let jobs: Vec<Job> = runs
            .iter()
            .map(|run| Job {
                run,
                seeds: &seeds,
                count,
                x,
                batch,
                config,
            })
            .collect();
        #[cfg(not(feature = "cuda"))]
        if !self.pools.is_empty() {
            return super::parallel::step(&self.pools, &mut agents.networks, jobs, config);
        }
        let mut forwards = Vec::with_capacity(jobs.len());
        for (network, job) in agents.networks.iter_mut().zip(&jobs) {
            forwards.push(job.forward(network)?);
        }
        let mut values = Vec::new();
        for forward in &forwards {
            values.extend(forward.values()?);
        }
        let coupling = couple(values, &runs, count, config.lambda)?;
        let mut parts = EpochLoss::default();
        for ((network, forward), g) in agents
            .networks
            .iter_mut()
            .zip(forwards)
            .zip(coupling.by_network)
        {
            parts.add(&forward.finish(network, &g, config, count)?);
        }
        parts.add_coupling(coupling.distance, config.lambda);
        Ok(parts)
    }
}

/// The coupling term of a step, as the networks need it.
pub(crate) struct StepCoupling {
    /// `Σ_{a<b} d²_σ`.
    pub distance: f64,
    /// For each network, the coupling gradients of its agents.
    pub by_network: Vec<Vec<Array2<f32>>>,
}

/// The host's part of a step, from every agent's `u_a` (tagged with the
/// agent); each network's gradients come in the order of its run in `runs`.
pub(crate) fn couple(
    values: Vec<(usize, Array2<f32>)>,
    runs: &[Vec<usize>],
    count: usize,
    lambda: f32,
) -> Result<StepCoupling, NnError> {
    let mut u: Vec<Option<Array2<f32>>> = vec![None; count];
    for (a, v) in values {
        if let Some(slot) = u.get_mut(a) {
            *slot = Some(v);
        }
    }
    let u: Vec<Array2<f32>> = u.into_iter().flatten().collect();
    let coupling = coupling(&u, lambda)?;
    let mut gradients: Vec<Option<Array2<f32>>> =
        coupling.gradients.into_iter().map(Some).collect();
    let by_network = runs
        .iter()
        .map(|run| {
            run.iter()
                .filter_map(|&a| gradients.get_mut(a).and_then(Option::take))
                .collect()
        })
        .collect();
    Ok(StepCoupling {
        distance: coupling.distance,
        by_network,
    })
}

/// What one network does in a step.
pub(crate) struct Job<'a> {
    /// The agents it runs.
    pub run: &'a [usize],
    /// Every agent's random seed for this step.
    seeds: &'a [u64],
    /// How many agents there are in all.
    pub count: usize,
    /// The training matrix and the rows of this step's batch (each agent
    /// gathers its own copy).
    x: &'a dyn Rows,
    batch: &'a [usize],
    pub config: &'a MixVaeConfig,
}

/// What a network's forward passes leave for its backward pass (the
/// activations stay in the network's run buffers).
pub(crate) struct Forward {
    parts: EpochLoss,
    /// Every agent the network ran (in its run order) and its `u_a`, when coupled.
    coupled: Vec<(usize, Option<Array2<f32>>)>,
}

impl Job<'_> {
    /// The forward passes of the job's agents on `network`.
    pub(crate) fn forward(&self, network: &mut Network) -> Result<Forward, NnError> {
        let config = self.config;
        let device = network.store.device().clone();
        let mut parts = EpochLoss::default();
        let mut coupled = Vec::new();
        network.runs.resize_with(self.run.len(), AgentRun::default);
        for (i, &a) in self.run.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seeds[a]);
            // The agent reconstructs its augmented copy from that copy after
            // input dropout, both built on the host; with the originals, the
            // batch's own rows come first.
            let run = &mut network.runs[i];
            network.augmenter.augment_rows_into(
                self.x,
                self.batch,
                &device,
                &mut rng,
                &mut run.target,
            )?;
            let rows = if config.with_originals {
                prepend_rows(self.x, self.batch, &mut run.target);
                2 * self.batch.len()
            } else {
                self.batch.len()
            };
            nn::dropout_copy(&run.target, config.input_dropout, &mut rng, &mut run.input)?;
            let (own, u) = network
                .engine
                .forward(run, rows, self.count, config, &mut rng)?;
            parts.add(&own);
            let u = u
                .map(|u| {
                    Array2::from_shape_vec((rows, config.categories), u)
                        .map_err(|e| NnError::Backend(e.to_string()))
                })
                .transpose()?;
            coupled.push((a, u));
        }
        Ok(Forward { parts, coupled })
    }
}

/// Puts the rows `batch` of `x` ahead of the row-major `values`, in the
/// buffer `values` already holds (no allocation once it has grown).
fn prepend_rows(x: &dyn Rows, batch: &[usize], values: &mut Vec<f32>) {
    let copies = values.len();
    for &r in batch {
        x.push_row(r, values);
    }
    let originals = values.len() - copies;
    values.rotate_right(originals);
}

impl Forward {
    /// The host values of the agents' `u_a`, tagged with the agent.
    pub(crate) fn values(&self) -> Result<Vec<(usize, Array2<f32>)>, NnError> {
        Ok(self
            .coupled
            .iter()
            .filter_map(|(a, u)| u.as_ref().map(|u| (*a, u.clone())))
            .collect())
    }

    /// The backward passes of the network's agents with the coupling
    /// gradients `gradients` (one per coupled agent, in run order), then the
    /// optimiser step of `network`; returns the loss parts.
    pub(crate) fn finish(
        self,
        network: &mut Network,
        gradients: &[Array2<f32>],
        config: &MixVaeConfig,
        count: usize,
    ) -> Result<EpochLoss, NnError> {
        let mut gradients = gradients.iter();
        for ((_, u), run) in self.coupled.iter().zip(&mut network.runs) {
            let d_u = match u {
                Some(_) => Some(
                    gradients
                        .next()
                        .and_then(|g| g.as_slice())
                        .ok_or_else(|| NnError::Backend("a missing coupling gradient".into()))?,
                ),
                None => None,
            };
            network.engine.backward(run, count, d_u, config)?;
        }
        network.engine.step()?;
        Ok(self.parts)
    }
}
