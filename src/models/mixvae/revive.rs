//! Re-seeding empty categories (not in the paper or MMIDAS). A category that
//! no cell falls in takes over half of the largest category, as k-means
//! implementations relocate empty clusters and split-and-merge EM splits
//! crowded components: the cells of the largest category are halved along
//! the first principal axis of agent 0's embedding (a category is split at
//! most once per pass), and every network's
//! classifier gets a logit for the empty category that prefers the half on
//! the positive side, while the rest of the network treats the two alike
//! (see [`AgentNet::split_category`](super::agent::AgentNet::split_category)).
//! Training then pulls the halves apart or lets one die again.

use ndarray::{Array1, Array2, Axis};

use super::agent::argmax;
use super::config::MixVaeConfig;
use super::output::{consensus, eval_chunks};
use super::train::{Agents, Network};
use crate::models::cae::data::Rows;
use crate::nn::{NnError, Var};

/// Logit margin by which a re-seeded category wins (or loses) at the mean
/// embedding of either half. Small, because the new logit also grows along
/// its direction away from the split category: with a margin of 1 on M1, new
/// categories took every cell of smaller ones and a pass that planned 22
/// used categories left 9.
const MARGIN: f32 = 0.05;

/// Whether empty categories are re-seeded after `epochs_done` epochs: every
/// `revive_every` epochs in the second half of training, the last epoch
/// included (so the returned fit has no empty category unless no category
/// could be split; `MixVaeFit::revived` counts the re-seedings). Earlier, the balance
/// term is still spreading the cells over the categories (on M1, 13 of 77
/// hold cells after 10 epochs), and splitting then cost accuracy.
pub(crate) fn revival_due(epochs_done: usize, config: &MixVaeConfig) -> bool {
    config.revive_every > 0
        && epochs_done.is_multiple_of(config.revive_every)
        && 2 * epochs_done > config.epochs
}

/// Passes of [`revive_empty`] at most: a new category can take the last
/// cells of a small one, which the next pass then re-seeds.
const MAX_PASSES: usize = 4;

/// Re-seeds every category that no cell of `x` falls in (by the agents'
/// consensus), pass after pass until none is empty or a pass changes
/// nothing; returns how many re-seedings there were.
pub(crate) fn revive_empty(
    agents: &mut Agents,
    x: &dyn Rows,
    config: &MixVaeConfig,
) -> Result<usize, NnError> {
    let mut revived = 0;
    for _ in 0..MAX_PASSES {
        let pass = revive_pass(agents, x, config)?;
        if pass == 0 {
            break;
        }
        revived += pass;
    }
    Ok(revived)
}

/// One pass: splits the largest categories into the empty ones, each
/// category at most once; returns how many were re-seeded.
fn revive_pass(agents: &mut Agents, x: &dyn Rows, config: &MixVaeConfig) -> Result<usize, NnError> {
    let k = config.categories;
    let mut embeddings = Vec::with_capacity(agents.count);
    let mut probabilities = Vec::with_capacity(agents.count);
    for a in 0..agents.count {
        let (low, q) = embed_all(agents.network_mut(a), x, config)?;
        embeddings.push(low);
        probabilities.push(q);
    }
    let (mut consensus, mut sizes) = consensus(&probabilities, x.nrows(), k);
    // A category split once is not split again in the same pass: a second
    // split of it would compete with the first for the same cells.
    let mut split = vec![false; k];
    let mut revived = 0;
    for empty in 0..k {
        if sizes[empty] > 0 {
            continue;
        }
        let largest = argmax(
            sizes
                .iter()
                .zip(&split)
                .map(|(&n, &done)| if done { -1.0 } else { n as f32 }),
        );
        let members: Vec<usize> = (0..consensus.len())
            .filter(|&i| consensus[i] == largest)
            .collect();
        if split[largest] || members.len() < 2 {
            break;
        }
        let side = principal_halves(&embeddings[0].select(Axis(0), &members));
        for w in 0..agents.networks.len() {
            // A shared network splits along agent 0's embedding.
            let low = embeddings[w.min(embeddings.len() - 1)].select(Axis(0), &members);
            let Some((direction, threshold)) = separating_direction(&low, &side) else {
                continue;
            };
            let Network { net, store, .. } = &mut agents.networks[w];
            net.split_category(store, largest, empty, &direction, threshold)?;
        }
        for (&i, &positive) in members.iter().zip(&side) {
            if positive {
                consensus[i] = empty;
                sizes[empty] += 1;
                sizes[largest] -= 1;
            }
        }
        split[largest] = true;
        split[empty] = true;
        revived += 1;
    }
    Ok(revived)
}

/// Agent `a`'s embedding and `q` for every cell of `x`, in chunks.
fn embed_all(
    network: &mut Network,
    x: &dyn Rows,
    config: &MixVaeConfig,
) -> Result<(Array2<f32>, Array2<f32>), NnError> {
    let device = network.store.device().clone();
    let mut lows = Vec::new();
    let mut qs = Vec::new();
    for (_, chunk) in eval_chunks(x) {
        let (low, q) = network.net.embed(
            &mut network.store,
            Var::from_array(&device, &chunk)?,
            config,
        )?;
        lows.push(low);
        qs.push(q);
        // Each chunk's input buffer would stay in the device's cache otherwise.
        device.empty_cache()?;
    }
    let join = |parts: Vec<Array2<f32>>| -> Result<Array2<f32>, NnError> {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views).map_err(|e| NnError::Backend(e.to_string()))
    };
    Ok((join(lows)?, join(qs)?))
}

/// Which rows of `low` lie above the median of their projection on the
/// first principal axis (found by power iteration from a fixed start, so
/// the split is reproducible).
fn principal_halves(low: &Array2<f32>) -> Vec<bool> {
    let mean = low.mean_axis(Axis(0)).unwrap_or_default();
    let centred = low - &mean;
    let covariance = centred.t().dot(&centred);
    let dims = covariance.nrows();
    let mut axis = Array1::from_shape_fn(dims, |i| 1.0 + i as f32 / dims.max(1) as f32);
    for _ in 0..100 {
        let next = covariance.dot(&axis);
        let norm = next.dot(&next).sqrt();
        if norm <= f32::EPSILON {
            break;
        }
        axis = next / norm;
    }
    let projection = centred.dot(&axis);
    let mut sorted = projection.to_vec();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    projection.iter().map(|&p| p >= median).collect()
}

/// A direction `v` and threshold `t` with `v · h − t` equal to `+MARGIN` at
/// the mean embedding of the rows marked `true` in `side` and `−MARGIN` at
/// the mean of the others; `None` when either side is empty or the means coincide.
fn separating_direction(low: &Array2<f32>, side: &[bool]) -> Option<(Vec<f32>, f32)> {
    let rows =
        |wanted: bool| -> Vec<usize> { (0..side.len()).filter(|&i| side[i] == wanted).collect() };
    let positive = low.select(Axis(0), &rows(true)).mean_axis(Axis(0))?;
    let negative = low.select(Axis(0), &rows(false)).mean_axis(Axis(0))?;
    let gap = &positive - &negative;
    let squared = gap.dot(&gap);
    if squared <= f32::EPSILON {
        return None;
    }
    let direction = gap * (2.0 * MARGIN / squared);
    let midpoint = (&positive + &negative) * 0.5;
    let threshold = direction.dot(&midpoint);
    Some((direction.to_vec(), threshold))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_halves_split_two_clouds_apart() {
        // Two clouds along the diagonal of a 3-D embedding.
        let low = Array2::from_shape_fn((40, 3), |(i, j)| {
            let centre = if i < 20 { -3.0 } else { 3.0 };
            centre + ((i * 7 + j * 3) % 5) as f32 * 0.1
        });
        let side = principal_halves(&low);
        assert!(side[..20].iter().all(|&s| s == side[0]));
        assert!(side[20..].iter().all(|&s| s != side[0]));
    }

    #[test]
    fn the_separating_direction_gives_the_margin_at_the_two_means() {
        let low =
            Array2::from_shape_vec((4, 2), vec![0.0, 0.0, 2.0, 0.0, 4.0, 2.0, 6.0, 2.0]).unwrap();
        let side = [false, false, true, true];
        let (v, t) = separating_direction(&low, &side).unwrap();
        let score = |h: [f32; 2]| v[0] * h[0] + v[1] * h[1] - t;
        assert!((score([5.0, 2.0]) - MARGIN).abs() < 1e-5);
        assert!((score([1.0, 0.0]) + MARGIN).abs() < 1e-5);
        assert!(separating_direction(&low, &[true; 4]).is_none());
    }
}
