//! Seeded k-means: k-means++ seeding, Lloyd iterations, several restarts, the
//! run with the lowest inertia (sum of squared distances to the centres) wins.
//! Used for the sBNN's pre-training labels (K = 20 clusters of the targets).

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Settings of a k-means run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Independent k-means++ restarts; the lowest inertia wins.
    pub restarts: usize,
    /// Lloyd iterations per restart at most.
    pub max_iter: usize,
    /// Seed of the ChaCha8 generator (restart `r` uses stream `r`).
    pub seed: u64,
}

/// A fitted clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// `k × features` centres.
    pub centres: Array2<f64>,
    /// The cluster of every row.
    pub labels: Vec<usize>,
    /// Sum of squared distances of the rows to their centres.
    pub inertia: f64,
}

/// Why k-means could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KMeansError {
    /// k is zero or exceeds the number of rows.
    #[error("k-means needs 1 <= k <= rows, got k = {k} for {rows} rows")]
    BadK {
        /// Requested clusters.
        k: usize,
        /// Rows of the data.
        rows: usize,
    },
    /// No restart or no iteration was asked for.
    #[error("k-means needs at least one restart and one iteration")]
    NoWork,
    /// The data hold NaN or ±∞.
    #[error("k-means input has a non-finite value at row {row}")]
    NonFinite {
        /// The first offending row.
        row: usize,
    },
}

/// Clusters the rows of `data`.
pub fn kmeans(data: ArrayView2<'_, f64>, config: &KMeansConfig) -> Result<KMeans, KMeansError> {
    let (rows, _) = data.dim();
    if config.k == 0 || config.k > rows {
        return Err(KMeansError::BadK { k: config.k, rows });
    }
    if config.restarts == 0 || config.max_iter == 0 {
        return Err(KMeansError::NoWork);
    }
    if let Some(((row, _), _)) = data.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(KMeansError::NonFinite { row });
    }
    let flat: Vec<f64> = data.iter().copied().collect();
    let mut best: Option<KMeans> = None;
    for restart in 0..config.restarts {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(restart as u64);
        let run = lloyd(&flat, data.ncols(), config, &mut rng);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.ok_or(KMeansError::NoWork)
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means++ seeding: the first centre uniformly, each next one with
/// probability proportional to the squared distance to the nearest centre.
fn seed_centres(data: &[f64], cols: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let rows = data.len() / cols;
    let row = |i: usize| &data[i * cols..(i + 1) * cols];
    let mut centres = Vec::with_capacity(k * cols);
    centres.extend_from_slice(row(rng.random_range(0..rows)));
    let mut nearest: Vec<f64> = (0..rows).map(|i| distance2(row(i), &centres)).collect();
    while centres.len() < k * cols {
        let total: f64 = nearest.iter().sum();
        let chosen = if total > 0.0 {
            let mut target = rng.random_range(0.0..total);
            nearest
                .iter()
                .position(|&d| {
                    target -= d;
                    target < 0.0
                })
                .unwrap_or(rows - 1)
        } else {
            rng.random_range(0..rows)
        };
        let start = centres.len();
        centres.extend_from_slice(row(chosen));
        let new = &centres[start..];
        nearest
            .iter_mut()
            .enumerate()
            .for_each(|(i, d)| *d = d.min(distance2(row(i), new)));
    }
    centres
}

fn lloyd(data: &[f64], cols: usize, config: &KMeansConfig, rng: &mut ChaCha8Rng) -> KMeans {
    let rows = data.len() / cols;
    let k = config.k;
    let mut centres = seed_centres(data, cols, k, rng);
    let mut labels = vec![usize::MAX; rows];
    let mut inertia = 0.0;
    for _ in 0..config.max_iter {
        let mut changed = false;
        inertia = 0.0;
        for (i, point) in data.chunks_exact(cols).enumerate() {
            let (label, d) = centres
                .chunks_exact(cols)
                .map(|c| distance2(point, c))
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |best, (j, d)| {
                        if d < best.1 { (j, d) } else { best }
                    },
                );
            inertia += d;
            if labels[i] != label {
                labels[i] = label;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = vec![0.0; k * cols];
        let mut counts = vec![0usize; k];
        for (point, &label) in data.chunks_exact(cols).zip(&labels) {
            counts[label] += 1;
            sums[label * cols..(label + 1) * cols]
                .iter_mut()
                .zip(point)
                .for_each(|(s, p)| *s += p);
        }
        for (j, &count) in counts.iter().enumerate() {
            // An emptied cluster keeps its old centre.
            if count > 0 {
                for (c, s) in centres[j * cols..(j + 1) * cols]
                    .iter_mut()
                    .zip(&sums[j * cols..(j + 1) * cols])
                {
                    *c = s / count as f64;
                }
            }
        }
    }
    KMeans {
        centres: Array2::from_shape_vec((k, cols), centres).unwrap_or_default(),
        labels,
        inertia,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::clustering::adjusted_rand_index;

    fn blobs() -> (Array2<f64>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let mut values = Vec::new();
        let mut truth = Vec::new();
        for i in 0..200 {
            let c = i % 4;
            values.push(centres[c][0] + rng.random_range(-1.0..1.0));
            values.push(centres[c][1] + rng.random_range(-1.0..1.0));
            truth.push(c);
        }
        (Array2::from_shape_vec((200, 2), values).unwrap(), truth)
    }

    #[test]
    fn separable_blobs_are_recovered() {
        let (data, truth) = blobs();
        let config = KMeansConfig {
            k: 4,
            restarts: 5,
            max_iter: 100,
            seed: 17,
        };
        let fit = kmeans(data.view(), &config).unwrap();
        assert_eq!(adjusted_rand_index(&fit.labels, &truth), 1.0);
        assert!(fit.inertia < 200.0 * 2.0);
        assert_eq!(kmeans(data.view(), &config).unwrap(), fit);
    }

    #[test]
    fn bad_settings_are_rejected() {
        let (data, _) = blobs();
        let config = KMeansConfig {
            k: 0,
            restarts: 1,
            max_iter: 10,
            seed: 0,
        };
        assert!(matches!(
            kmeans(data.view(), &config),
            Err(KMeansError::BadK { .. })
        ));
        let config = KMeansConfig { k: 201, ..config };
        assert!(kmeans(data.view(), &config).is_err());
        let config = KMeansConfig {
            k: 2,
            restarts: 0,
            ..config
        };
        assert_eq!(kmeans(data.view(), &config), Err(KMeansError::NoWork));
    }
}
