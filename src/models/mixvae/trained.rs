//! A fitted model's networks kept after training, so that they can be saved
//! beside the session and applied to new cells: restoring them from their
//! weight files and assigning categories to any cells.

use std::path::Path;

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::MixVaeError;
use super::agent::AgentNet;
use super::config::MixVaeConfig;
use super::output::{AgentAssignments, agreement, assign_agent, consensus};
use crate::models::Weights;
use crate::nn::{Device, DeviceChoice, NnError, ParamStore};

/// One trained network (of one agent, or of all of them when `shared`).
pub struct AgentNetwork {
    net: AgentNet,
    store: ParamStore,
}

impl AgentNetwork {
    pub(crate) fn new(net: AgentNet, store: ParamStore) -> Self {
        AgentNetwork { net, store }
    }
}

impl Weights for AgentNetwork {
    fn save(&self, path: &Path) -> Result<(), NnError> {
        self.store.save(path)
    }

    fn restore(&mut self, path: &Path) -> Result<(), NnError> {
        self.store.load_into(path)
    }
}

/// What the agents say about a set of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// One entry per agent.
    pub agents: Vec<AgentAssignments>,
    /// The consensus category: argmax of the agents' mean `q`.
    pub consensus: Vec<usize>,
    /// The agents' mean `q` of the consensus category, per cell.
    pub confidence: Vec<f64>,
    /// Per cell, the fraction of agents whose own category is the consensus.
    pub cell_agreement: Vec<f64>,
    /// Mean over agent pairs of the fraction of cells both put in the same category.
    pub agreement: f64,
}

/// The trained networks of every agent.
pub struct TrainedMixVae {
    networks: Vec<AgentNetwork>,
    config: MixVaeConfig,
}

impl TrainedMixVae {
    pub(crate) fn new(networks: Vec<AgentNetwork>, config: &MixVaeConfig) -> Self {
        TrainedMixVae {
            networks,
            config: config.clone(),
        }
    }

    /// How many networks `config` trains: one when shared, else one per agent.
    pub fn network_count(config: &MixVaeConfig) -> usize {
        if config.shared { 1 } else { config.agents }
    }

    /// The networks, to save (network `i` is file `agent{i}`).
    pub fn into_networks(self) -> Vec<AgentNetwork> {
        self.networks
    }

    /// Rebuilds the networks of `config` for `genes` inputs and loads the
    /// weights that [`Weights::save`] wrote to `files` (one per network).
    pub fn restore(
        genes: usize,
        config: &MixVaeConfig,
        files: &[impl AsRef<Path>],
    ) -> Result<Self, MixVaeError> {
        config.validate()?;
        let count = Self::network_count(config);
        if files.len() != count {
            return Err(MixVaeError::Data(format!(
                "expected {count} weight file(s), one per network, got {}",
                files.len()
            )));
        }
        // The initial values are replaced by the files' values.
        let mut init = ChaCha8Rng::seed_from_u64(config.seed);
        let networks = files
            .iter()
            .enumerate()
            .map(|(a, file)| {
                let mut store = ParamStore::on(Device::open(DeviceChoice::Cpu)?);
                let net =
                    AgentNet::new(&mut store, &format!("agent{a}"), genes, config, &mut init)?;
                let mut network = AgentNetwork { net, store };
                let file = file.as_ref();
                network
                    .restore(file)
                    .map_err(|e| MixVaeError::Data(format!("{}: {e}", file.display())))?;
                Ok(network)
            })
            .collect::<Result<Vec<_>, MixVaeError>>()?;
        Ok(Self::new(networks, config))
    }

    /// Every agent's categories of the rows (cells) of `x`, their consensus,
    /// its confidence and the agents' agreement, in evaluation mode (as
    /// [`super::fit`] evaluates its training cells).
    pub fn assign(&mut self, x: ArrayView2<f32>) -> Result<Assignment, MixVaeError> {
        let config = &self.config;
        let last = self.networks.len().saturating_sub(1);
        let mut agents = Vec::with_capacity(config.agents);
        for a in 0..config.agents {
            let AgentNetwork { net, store } = &mut self.networks[a.min(last)];
            agents.push(assign_agent(net, store, &x, config)?);
        }
        let (consensus, _) = consensus(
            agents.iter().map(|a| &a.probabilities),
            x.nrows(),
            config.categories,
        );
        let mut mean_q = Array2::<f64>::zeros((x.nrows(), config.categories));
        for agent in &agents {
            mean_q += &agent.probabilities.mapv(f64::from);
        }
        mean_q /= agents.len().max(1) as f64;
        let confidence = consensus
            .iter()
            .enumerate()
            .map(|(cell, &c)| mean_q[[cell, c]])
            .collect();
        let cell_agreement = consensus
            .iter()
            .enumerate()
            .map(|(cell, &c)| {
                let same = agents.iter().filter(|a| a.category[cell] == c).count();
                same as f64 / agents.len().max(1) as f64
            })
            .collect();
        Ok(Assignment {
            agreement: agreement(&agents),
            agents,
            consensus,
            confidence,
            cell_agreement,
        })
    }
}
