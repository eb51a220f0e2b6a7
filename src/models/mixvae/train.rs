//! Training the agents on mini-batches with the coupled objective.

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::agent::AgentNet;
use super::augment::Augmenter;
use super::config::MixVaeConfig;
use super::objective::{agent_loss, coupling, with_coupling_gradient};
use super::output::{MixVaeFit, evaluate};
use super::revive::{revival_due, revive_empty};
use super::{EpochLoss, MixVaeError};
use crate::nn::{
    self, Adam, AdamConfig, Device, DeviceChoice, Mode, NnError, ParamStore, Scalar, Var,
};
use crate::progress::{Event, Sink};

/// One network: its layout, parameters and optimiser, and its copy of the
/// augmenter, all on the network's own device.
pub(crate) struct Network {
    pub net: AgentNet,
    pub store: ParamStore,
    adam: Adam,
    augmenter: Augmenter,
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
    let networks = if config.shared { 1 } else { config.agents };
    // Agent a's weights come from stream a of one seed (stream 0 for all
    // with `same_init`).
    let init_seed: u64 = rng.random();
    let networks = (0..networks)
        .map(|a| {
            let mut init = ChaCha8Rng::seed_from_u64(init_seed);
            init.set_stream(if config.same_init { 0 } else { a as u64 });
            // Networks train in parallel, so each needs its own device.
            let own_device = Device::open(DeviceChoice::Cpu)?;
            let mut store = ParamStore::on(own_device.clone());
            let net = AgentNet::new(&mut store, &format!("agent{a}"), genes, config, &mut init)?;
            Ok(Network {
                net,
                store,
                adam: Adam::new(AdamConfig::paper(config.learning_rate)),
                augmenter: augmenter.on(&own_device)?,
            })
        })
        .collect::<Result<Vec<_>, NnError>>()?;
    let pools = worker_pools(networks.len())?;
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
            let parts = train_step(&mut agents, &pools, &xb, config, &mut rng)?;
            sum.add(&parts);
            steps += 1;
        }
        for network in &agents.networks {
            network.store.device().empty_cache()?;
        }
        if revival_due(epoch + 1, config) {
            revived += revive_empty(&mut agents, &x, config)?;
        }
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
    for network in &agents.networks {
        network.store.check_finite()?;
    }
    let mut fit = evaluate(&mut agents, &x, config, &mut rng)?;
    fit.losses = losses;
    fit.epoch_seconds = epoch_seconds;
    fit.revived = revived;
    Ok(fit)
}

/// One thread pool per network, splitting the machine's cores between them,
/// so that each network's matrix products stay on its own cores.
fn worker_pools(networks: usize) -> Result<Vec<ThreadPool>, MixVaeError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_network = (cores / networks.max(1)).max(1);
    (0..networks)
        .map(|w| {
            ThreadPoolBuilder::new()
                .num_threads(per_network)
                .thread_name(move |i| format!("mixvae-net{w}-{i}"))
                .build()
                .map_err(|e| MixVaeError::Nn(NnError::Backend(format!("thread pool: {e}"))))
        })
        .collect()
}

/// What a network's worker hands the host after its forward passes: the
/// scaled logarithms `u_a` of its agents, or `None` when it failed (its
/// result then says why).
type Coupled = Option<Vec<(usize, Array2<f32>)>>;

/// Sends `None` to the host if the worker stops (by an error or a panic)
/// before handing over its values, so the host never waits for them.
struct HandOver {
    to_host: Option<Sender<Coupled>>,
}

impl HandOver {
    fn send(&mut self, values: Vec<(usize, Array2<f32>)>) {
        if let Some(tx) = self.to_host.take() {
            // The host only stops listening after an error it reports itself.
            let _ = tx.send(Some(values));
        }
    }
}

impl Drop for HandOver {
    fn drop(&mut self) {
        if let Some(tx) = self.to_host.take() {
            let _ = tx.send(None);
        }
    }
}

/// One optimisation step on the batch `xb`; returns the loss parts.
///
/// Each network runs its agents' passes and its backward pass on its own
/// thread pool; the host meets them in between to compute the coupling term
/// (see [`super::objective::AgentLoss`]). Every agent draws from its own
/// stream seeded from `rng`, so results do not depend on thread timing.
fn train_step(
    agents: &mut Agents,
    pools: &[ThreadPool],
    xb: &Array2<f32>,
    config: &MixVaeConfig,
    rng: &mut ChaCha8Rng,
) -> Result<EpochLoss, MixVaeError> {
    let count = agents.count;
    let seeds: Vec<u64> = (0..count).map(|_| rng.random()).collect();
    let runs: Vec<Vec<usize>> = (0..agents.networks.len())
        .map(|w| agents.run_by(w))
        .collect();
    let (to_host, from_workers) = mpsc::channel::<Coupled>();
    std::thread::scope(|scope| {
        let mut replies = Vec::with_capacity(runs.len());
        let mut workers = Vec::with_capacity(runs.len());
        for ((network, pool), run) in agents.networks.iter_mut().zip(pools).zip(&runs) {
            let (to_worker, from_host) = mpsc::channel::<Vec<Array2<f32>>>();
            replies.push(to_worker);
            let job = WorkerJob {
                run,
                seeds: &seeds,
                count,
                xb,
                config,
            };
            let hand_over = HandOver {
                to_host: Some(to_host.clone()),
            };
            workers.push(
                scope.spawn(move || pool.install(move || job.step(network, hand_over, from_host))),
            );
        }
        drop(to_host);
        let distance = meet_workers(&from_workers, &replies, &runs, count, config.lambda);
        drop(replies);
        let mut parts = EpochLoss::default();
        let mut failure = None;
        for worker in workers {
            match worker.join() {
                Ok(Ok(p)) => parts.add(&p),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        // A worker's own error explains a failed meeting better than the host's.
        if let Some(e) = failure {
            return Err(MixVaeError::Nn(e));
        }
        let distance = distance?;
        parts.distance = distance;
        parts.total += config.lambda as f64 * distance;
        Ok(parts)
    })
}

/// The host's side of a step: gathers every agent's `u_a`, computes the
/// coupling, and sends each worker the gradients of its agents. Returns
/// `Σ_{a<b} d²_σ`.
fn meet_workers(
    from_workers: &Receiver<Coupled>,
    replies: &[Sender<Vec<Array2<f32>>>],
    runs: &[Vec<usize>],
    count: usize,
    lambda: f32,
) -> Result<f64, NnError> {
    let mut u: Vec<Option<Array2<f32>>> = vec![None; count];
    for _ in 0..replies.len() {
        let values = from_workers
            .recv()
            .ok()
            .flatten()
            .ok_or_else(|| NnError::Backend("a network's worker stopped".into()))?;
        for (a, values) in values {
            u[a] = Some(values);
        }
    }
    let u: Vec<Array2<f32>> = u.into_iter().flatten().collect();
    let coupling = coupling(&u, lambda)?;
    let mut gradients = coupling.gradients.into_iter().map(Some).collect::<Vec<_>>();
    for (reply, run) in replies.iter().zip(runs) {
        let mine = run
            .iter()
            .filter_map(|&a| gradients.get_mut(a).and_then(Option::take))
            .collect();
        reply
            .send(mine)
            .map_err(|_| NnError::Backend("a network's worker stopped".into()))?;
    }
    Ok(coupling.distance)
}

/// What one network's worker needs for a step.
struct WorkerJob<'a> {
    /// The agents it runs.
    run: &'a [usize],
    /// Every agent's random seed for this step.
    seeds: &'a [u64],
    /// How many agents there are in all.
    count: usize,
    xb: &'a Array2<f32>,
    config: &'a MixVaeConfig,
}

impl WorkerJob<'_> {
    /// Forward passes of the job's agents, the hand-over to the host, then
    /// the backward pass and the optimiser step of `network`.
    fn step(
        self,
        network: &mut Network,
        mut hand_over: HandOver,
        from_host: Receiver<Vec<Array2<f32>>>,
    ) -> Result<EpochLoss, NnError> {
        let config = self.config;
        let device = network.store.device().clone();
        let mut parts = EpochLoss::default();
        let mut own: Option<Scalar> = None;
        let mut coupled = Vec::new();
        for &a in self.run {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seeds[a]);
            // The agent reconstructs its augmented copy from that copy after
            // input dropout, both built on the host.
            let mut copy = network.augmenter.augment(self.xb, &device, &mut rng)?;
            let target = Var::from_array(&device, &copy)?;
            let values = copy
                .as_slice_mut()
                .ok_or_else(|| NnError::Backend("a non-contiguous batch".into()))?;
            nn::dropout_in_place(values, config.input_dropout, &mut rng)?;
            let (rows, cols) = copy.dim();
            let input = Var::from_vec(&device, rows, cols, copy.into_raw_vec_and_offset().0)?;
            let pass =
                network
                    .net
                    .forward(&mut network.store, input, config, Mode::Train, &mut rng)?;
            let loss = agent_loss(pass, target, self.count, config)?;
            parts.add(&loss.parts);
            own = Some(match own {
                None => loss.own,
                Some(sum) => sum.add(loss.own)?,
            });
            if let Some(u) = loss.coupled {
                coupled.push((a, u));
            }
        }
        let values = coupled
            .iter()
            .map(|(a, u)| Ok((*a, u.to_array()?)))
            .collect::<Result<Vec<_>, NnError>>()?;
        hand_over.send(values);
        let gradients = from_host
            .recv()
            .map_err(|_| NnError::Backend("the coupling step stopped".into()))?;
        let mut total = own.ok_or(NnError::NoGradient)?;
        for ((_, u), g) in coupled.into_iter().zip(&gradients) {
            total = with_coupling_gradient(total, u, g)?;
        }
        let mut grads = total.backward()?;
        network.adam.step(&mut network.store, &mut grads)?;
        Ok(parts)
    }
}
