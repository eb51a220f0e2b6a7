//! What a fitted model says about the cells: per-agent categories, confidences
//! and states, the consensus, agent agreement, and state traversals.

use ndarray::{Array2, Axis, Slice};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::agent::{AgentNet, argmax};
use super::config::MixVaeConfig;
use super::train::{Agents, Network};
use super::{EpochLoss, MixVaeError};
use crate::models::cae::data::{Rows, gather};
use crate::nn::{Mode, NnError, ParamStore, Var};

/// Rows evaluated at once.
const EVAL_CHUNK: usize = 1024;

/// One agent's view of every cell (evaluation mode: no noise, no dropout).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentAssignments {
    /// `argmax_k q(c = k | x)` per cell.
    pub category: Vec<usize>,
    /// `max_k q(c = k | x)` per cell.
    pub confidence: Vec<f32>,
    /// `q(c | x)`, cells x categories.
    pub probabilities: Array2<f32>,
    /// The state mean μ(x, c), cells x state dimensions.
    pub state: Array2<f32>,
}

/// Decoded features as one state dimension moves, for one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traversal {
    /// The category held fixed.
    pub category: usize,
    /// The state dimension that moves.
    pub dim: usize,
    /// The values of that dimension (its category mean ± 2 SD of the cells in the category).
    pub state_values: Vec<f64>,
    /// The features that change most along the traversal, largest change first.
    pub features: Vec<TraversalFeature>,
}

/// One feature's decoded value along a traversal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraversalFeature {
    /// Index of the feature (column of the input).
    pub index: usize,
    /// Name of the feature, filled in by the caller that knows the names.
    pub name: String,
    /// Decoded value at each state value.
    pub values: Vec<f64>,
}

/// A fitted coupled mixture VAE's results on its training cells.
#[derive(Debug, Clone, PartialEq)]
pub struct MixVaeFit {
    /// One entry per agent.
    pub agents: Vec<AgentAssignments>,
    /// The consensus category: argmax of the agents' mean `q`.
    pub consensus: Vec<usize>,
    /// Cells per consensus category (length K).
    pub category_sizes: Vec<usize>,
    /// Mean over agent pairs of the fraction of cells both put in the same category (1 for one agent).
    pub agreement: f64,
    /// Agent 0's state traversals, for every category that holds cells.
    pub traversals: Vec<Traversal>,
    /// Mean loss parts per epoch.
    pub losses: Vec<EpochLoss>,
    /// Wall-clock seconds of every training epoch.
    pub epoch_seconds: Vec<f64>,
    /// How many times an empty category was re-seeded during training.
    pub revived: usize,
    /// One augmented copy of every cell, made by the frozen augmenter
    /// (`None` without augmentation), for judging the augmenter.
    pub augmented: Option<Array2<f32>>,
    /// The score (`restart_by`) of every restart, in order (one entry for a
    /// single fit); the fit is the one at [`MixVaeFit::chosen_restart`].
    pub restart_scores: Vec<f64>,
    /// Which restart the fit is (0 for a single fit).
    pub chosen_restart: usize,
    /// Mean over agents of the fraction of cells whose category on their
    /// augmented copy ([`MixVaeFit::augmented`]) is the cell's own: how far
    /// the categories are invariant to the type-preserving variation (no
    /// labels used; `None` without augmentation).
    pub augment_consistency: Option<f64>,
}

impl MixVaeFit {
    /// Average maximum posterior, the paper's AMP read as a mean over the K
    /// categories of the mean confidence of the cells an agent puts in each
    /// (0 for an unused category), averaged over agents.
    pub fn amp(&self) -> f64 {
        let total: f64 = (0..self.agents.len()).map(|a| self.agent_amp(a)).sum();
        total / self.agents.len().max(1) as f64
    }

    /// The AMP of agent `a` alone (the paper reports agent 1's; NaN for no such agent).
    pub fn agent_amp(&self, a: usize) -> f64 {
        let Some(agent) = self.agents.get(a) else {
            return f64::NAN;
        };
        let k = agent.probabilities.ncols();
        let mut sums = vec![0.0f64; k];
        let mut counts = vec![0usize; k];
        for (&c, &p) in agent.category.iter().zip(&agent.confidence) {
            sums[c] += p as f64;
            counts[c] += 1;
        }
        sums.iter()
            .zip(&counts)
            .map(|(s, &n)| if n > 0 { s / n as f64 } else { 0.0 })
            .sum::<f64>()
            / k as f64
    }

    /// Mean over cells and agents of the maximum posterior (the other reading of AMP).
    pub fn mean_confidence(&self) -> f64 {
        let n: usize = self.agents.iter().map(|a| a.confidence.len()).sum();
        let s: f64 = self
            .agents
            .iter()
            .flat_map(|a| a.confidence.iter())
            .map(|&v| v as f64)
            .sum();
        s / n.max(1) as f64
    }
}

/// The rows of `x` in chunks of at most [`EVAL_CHUNK`], each with its row range.
pub(crate) fn eval_chunks(
    x: &dyn Rows,
) -> impl Iterator<Item = (std::ops::Range<usize>, Array2<f32>)> + '_ {
    chunks_of(x, EVAL_CHUNK)
}

/// The rows of `x` in chunks of at most `rows` (at least 1), each with its
/// row range, gathered as `f32`.
fn chunks_of(
    x: &dyn Rows,
    rows: usize,
) -> impl Iterator<Item = (std::ops::Range<usize>, Array2<f32>)> + '_ {
    let rows = rows.max(1);
    (0..x.nrows()).step_by(rows).map(move |start| {
        let end = (start + rows).min(x.nrows());
        let chunk: Vec<usize> = (start..end).collect();
        (start..end, gather(x, &chunk))
    })
}

/// The consensus category of every cell: the argmax of the agents' mean
/// `q` (all `(cells, K)`), and how many cells each of the K categories holds.
pub(crate) fn consensus<'a>(
    probabilities: impl IntoIterator<Item = &'a Array2<f32>>,
    cells: usize,
    categories: usize,
) -> (Vec<usize>, Vec<usize>) {
    let mut mean_q = Array2::<f32>::zeros((cells, categories));
    for q in probabilities {
        mean_q += q;
    }
    let consensus: Vec<usize> = mean_q
        .rows()
        .into_iter()
        .map(|r| argmax(r.iter().copied()))
        .collect();
    let mut sizes = vec![0usize; categories];
    for &c in &consensus {
        sizes[c] += 1;
    }
    (consensus, sizes)
}

/// Evaluates every agent on all cells and derives consensus, agreement and traversals.
pub(crate) fn evaluate(
    agents: &mut Agents,
    x: &dyn Rows,
    config: &MixVaeConfig,
    rng: &mut ChaCha8Rng,
) -> Result<MixVaeFit, MixVaeError> {
    let cells = x.nrows();
    let mut per_agent = Vec::with_capacity(agents.count);
    for a in 0..agents.count {
        let Network { net, store, .. } = agents.network_mut(a);
        per_agent.push(assign_agent(net, store, x, config)?);
    }
    let (consensus, category_sizes) = consensus(
        per_agent.iter().map(|a| &a.probabilities),
        cells,
        config.categories,
    );
    let traversals = traversals(agents, &per_agent[0], config, rng)?;
    Ok(MixVaeFit {
        agreement: agreement(&per_agent),
        agents: per_agent,
        consensus,
        category_sizes,
        traversals,
        losses: Vec::new(),
        epoch_seconds: Vec::new(),
        revived: 0,
        augmented: None,
        restart_scores: Vec::new(),
        chosen_restart: 0,
        augment_consistency: None,
    })
}

/// Mean over agents of the fraction of rows of `copy` (an augmented copy of
/// the cells) whose category is the one the agent gave the cell itself (`on_cells`).
pub(crate) fn augment_consistency(
    agents: &mut Agents,
    copy: &Array2<f32>,
    on_cells: &[AgentAssignments],
    config: &MixVaeConfig,
) -> Result<f64, MixVaeError> {
    let mut sum = 0.0;
    for (a, own) in on_cells.iter().enumerate() {
        let Network { net, store, .. } = agents.network_mut(a);
        let on_copy = assign_agent(net, store, copy, config)?;
        sum += share_same(&own.category, &on_copy.category);
    }
    Ok(sum / on_cells.len().max(1) as f64)
}

/// One agent's categories, confidences, probabilities and states of the
/// rows of `x` in evaluation mode (in chunks of [`EVAL_CHUNK`] rows).
pub(crate) fn assign_agent(
    net: &AgentNet,
    store: &mut ParamStore,
    x: &dyn Rows,
    config: &MixVaeConfig,
) -> Result<AgentAssignments, MixVaeError> {
    let (probabilities, state) = posteriors(net, store, x, config, EVAL_CHUNK)?;
    let category: Vec<usize> = probabilities
        .rows()
        .into_iter()
        .map(|r| argmax(r.iter().copied()))
        .collect();
    let confidence = probabilities
        .rows()
        .into_iter()
        .map(|r| r.iter().copied().fold(0.0f32, f32::max))
        .collect();
    Ok(AgentAssignments {
        category,
        confidence,
        probabilities,
        state,
    })
}

/// One agent's `q(c | x)` (cells x categories) and state mean (cells x state
/// dimensions) for every row of `x`, evaluated `chunk` rows at a time, so
/// that the activations held at once grow with `chunk`, not with the cells.
///
/// The device's cache is emptied after every chunk: it keeps each freed
/// buffer, and a chunk's input (made from host values) never reuses one, so
/// without it memory grew by one chunk of input per chunk (1.6 GB over
/// 100,000 cells x 2,000 genes and two agents).
fn posteriors(
    net: &AgentNet,
    store: &mut ParamStore,
    x: &dyn Rows,
    config: &MixVaeConfig,
    chunk: usize,
) -> Result<(Array2<f32>, Array2<f32>), NnError> {
    let device = store.device().clone();
    let cells = x.nrows();
    let mut probabilities = Array2::<f32>::zeros((cells, config.categories));
    let mut state = Array2::<f32>::zeros((cells, config.state_dim));
    for (rows, part) in chunks_of(x, chunk) {
        let xb = Var::from_array(&device, &part)?;
        let pass = net.evaluate(store, xb, config)?;
        let q = pass.log_q.exp()?.to_array()?;
        probabilities
            .slice_axis_mut(Axis(0), Slice::from(rows.clone()))
            .assign(&q);
        state
            .slice_axis_mut(Axis(0), Slice::from(rows))
            .assign(&pass.state_mean.to_array()?);
        device.empty_cache()?;
    }
    Ok((probabilities, state))
}

/// Mean over agent pairs of the fraction of cells with the same category.
pub(crate) fn agreement(agents: &[AgentAssignments]) -> f64 {
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for a in 0..agents.len() {
        for b in a + 1..agents.len() {
            sum += share_same(&agents[a].category, &agents[b].category);
            pairs += 1;
        }
    }
    if pairs == 0 { 1.0 } else { sum / pairs as f64 }
}

/// The fraction of the cells of `a` whose category in `b` is the same.
fn share_same(a: &[usize], b: &[usize]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}

/// Decodes, for each used category of agent 0 and each state dimension, a
/// sweep of that dimension over the category's mean ± 2 SD (other dimensions at their mean).
fn traversals(
    agents: &mut Agents,
    agent: &AgentAssignments,
    config: &MixVaeConfig,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Traversal>, MixVaeError> {
    let Network { net, store, .. } = agents.network_mut(0);
    let device = store.device().clone();
    let (k, dims, steps) = (config.categories, config.state_dim, config.traversal_steps);
    let mut out = Vec::new();
    for category in 0..k {
        let members: Vec<usize> = (0..agent.category.len())
            .filter(|&i| agent.category[i] == category)
            .collect();
        if members.is_empty() {
            continue;
        }
        let states = agent.state.select(Axis(0), &members);
        let mean = states.mean_axis(Axis(0)).unwrap_or_default();
        let sd = states.std_axis(Axis(0), 0.0);
        for dim in 0..dims {
            let values: Vec<f64> = (0..steps)
                .map(|i| {
                    let t = if steps > 1 {
                        -2.0 + 4.0 * i as f64 / (steps - 1) as f64
                    } else {
                        0.0
                    };
                    mean[dim] as f64 + t * sd[dim] as f64
                })
                .collect();
            let mut s_grid = Array2::<f32>::zeros((steps, dims));
            let mut c_grid = Array2::<f32>::zeros((steps, k));
            for (i, &v) in values.iter().enumerate() {
                s_grid.row_mut(i).assign(&mean);
                s_grid[[i, dim]] = v as f32;
                c_grid[[i, category]] = 1.0;
            }
            let decoded = net
                .decode(
                    store,
                    Var::from_array(&device, &c_grid)?,
                    Var::from_array(&device, &s_grid)?,
                    config,
                    Mode::Eval,
                    rng,
                )?
                .to_array()?;
            let mut ranked: Vec<(usize, f32)> = decoded
                .columns()
                .into_iter()
                .enumerate()
                .map(|(g, col)| {
                    let hi = col.iter().copied().fold(f32::MIN, f32::max);
                    let lo = col.iter().copied().fold(f32::MAX, f32::min);
                    (g, hi - lo)
                })
                .collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let features = ranked
                .iter()
                .take(config.traversal_genes)
                .map(|&(g, _)| TraversalFeature {
                    index: g,
                    name: String::new(),
                    values: decoded.column(g).iter().map(|&v| v as f64).collect(),
                })
                .collect();
            out.push(Traversal {
                category,
                dim,
                state_values: values,
                features,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::{EVAL_CHUNK, posteriors};
    use crate::models::mixvae::agent::AgentNet;
    use crate::models::mixvae::config::MixVaeConfig;
    use crate::nn::{Device, DeviceChoice, ParamStore};

    #[test]
    fn chunked_evaluation_equals_one_pass() {
        let (cells, genes) = (2000, 40);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let x = Array2::from_shape_fn((cells, genes), |_| rng.random_range(0.0f32..3.0));
        let config = MixVaeConfig {
            hidden: 16,
            hidden_layers: 2,
            ..MixVaeConfig::default()
        };
        let mut store = ParamStore::on(Device::open(DeviceChoice::Cpu).unwrap());
        let net = AgentNet::new(&mut store, "agent0", genes, &config, &mut rng).unwrap();
        assert!(cells > EVAL_CHUNK, "the test needs more than one chunk");
        let (q_chunked, state_chunked) =
            posteriors(&net, &mut store, &x, &config, EVAL_CHUNK).unwrap();
        let (q_whole, state_whole) = posteriors(&net, &mut store, &x, &config, cells).unwrap();
        assert_eq!(q_chunked.dim(), (cells, config.categories));
        assert_eq!(state_chunked.dim(), (cells, config.state_dim));
        let close = |a: &Array2<f32>, b: &Array2<f32>| {
            a.iter()
                .zip(b)
                .all(|(u, v)| (u - v).abs() <= 1e-5 * (1.0 + v.abs()))
        };
        assert!(close(&q_chunked, &q_whole));
        assert!(close(&state_chunked, &state_whole));
        let spread = q_whole.iter().copied().fold(0.0f32, f32::max)
            - q_whole.iter().copied().fold(1.0f32, f32::min);
        assert!(
            spread > 1e-3,
            "q should differ between cells and categories"
        );
    }
}
