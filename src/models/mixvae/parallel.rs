//! The networks' halves of a training step on parallel threads (CPU builds).
//!
//! Each network runs its forward passes on its own thread pool, hands the
//! host its agents' `u_a`, waits for the coupling gradients and finishes
//! with its backward pass; the host meets all of them in between. Only host
//! arrays cross between the threads.

use std::sync::mpsc::{self, Receiver, Sender};

use ndarray::Array2;
use rayon::{ThreadPool, ThreadPoolBuilder};

use super::EpochLoss;
use super::MixVaeError;
use super::config::MixVaeConfig;
use super::train::{Job, Network, couple};
use crate::nn::NnError;

/// One thread pool per network, splitting the machine's cores between them,
/// so that each network's matrix products stay on its own cores.
pub(crate) fn pools(networks: usize) -> Result<Vec<ThreadPool>, MixVaeError> {
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

/// What a network's worker hands the host after its forward passes: its
/// agents' `u_a`, or `None` when it failed (its result then says why).
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

/// One step with network `w` on `pools[w]` doing `jobs[w]`.
pub(crate) fn step(
    pools: &[ThreadPool],
    networks: &mut [Network],
    jobs: Vec<Job>,
    config: &MixVaeConfig,
) -> Result<EpochLoss, MixVaeError> {
    let runs: Vec<Vec<usize>> = jobs.iter().map(|j| j.run.to_vec()).collect();
    let count = jobs.first().map_or(0, |j| j.count);
    let (to_host, from_workers) = mpsc::channel::<Coupled>();
    std::thread::scope(|scope| {
        let mut replies = Vec::with_capacity(jobs.len());
        let mut workers = Vec::with_capacity(jobs.len());
        for ((network, pool), job) in networks.iter_mut().zip(pools).zip(jobs) {
            let (to_worker, from_host) = mpsc::channel::<Vec<Array2<f32>>>();
            replies.push(to_worker);
            let hand_over = HandOver {
                to_host: Some(to_host.clone()),
            };
            workers
                .push(scope.spawn(move || {
                    pool.install(move || work(&job, network, hand_over, from_host))
                }));
        }
        drop(to_host);
        let distance = meet(&from_workers, &replies, &runs, count, config.lambda);
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
        parts.add_coupling(distance?, config.lambda);
        Ok(parts)
    })
}

/// A network's worker: forward passes, the hand-over, then the backward pass.
fn work(
    job: &Job,
    network: &mut Network,
    mut hand_over: HandOver,
    from_host: Receiver<Vec<Array2<f32>>>,
) -> Result<EpochLoss, NnError> {
    let forward = job.forward(network)?;
    hand_over.send(forward.values()?);
    let gradients = from_host
        .recv()
        .map_err(|_| NnError::Backend("the coupling step stopped".into()))?;
    forward.finish(network, &gradients, job.config, job.count)
}

/// The host's side: gathers every agent's `u_a`, computes the coupling, and
/// sends each worker the gradients of its agents. Returns `Σ_{a<b} d²_σ`.
fn meet(
    from_workers: &Receiver<Coupled>,
    replies: &[Sender<Vec<Array2<f32>>>],
    runs: &[Vec<usize>],
    count: usize,
    lambda: f32,
) -> Result<f64, NnError> {
    let stopped = || NnError::Backend("a network's worker stopped".into());
    let mut values = Vec::new();
    for _ in 0..replies.len() {
        values.extend(from_workers.recv().ok().flatten().ok_or_else(stopped)?);
    }
    let coupling = couple(values, runs, count, lambda)?;
    for (reply, mine) in replies.iter().zip(coupling.by_network) {
        reply.send(mine).map_err(|_| stopped())?;
    }
    Ok(coupling.distance)
}
