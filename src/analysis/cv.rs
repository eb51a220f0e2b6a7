//! Cross-validation folds.
//!
//! Three schemes split `n` cells into `k` folds: [`FoldScheme::NumpyContiguous`]
//! reproduces the sBNN paper's protocol bit for bit (a numpy permutation cut into
//! `k` contiguous blocks of `⌊n/k⌋`, so `n mod k` cells are never tested),
//! [`FoldScheme::Shuffled`] is a seeded ChaCha shuffle into near-equal folds that
//! cover every cell, and [`FoldScheme::Stratified`] deals each class out evenly.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::numpy_rng::LegacyRandomState;

mod driver;

pub use driver::{Fit, FitsError, run_fits, run_fits_in_turn};

/// One train/test split: row indices into the full data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    /// Rows the model is fitted on.
    pub train: Vec<usize>,
    /// Rows the model is scored on.
    pub test: Vec<usize>,
}

/// How cells are assigned to folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FoldScheme {
    /// The paper's protocol: `np.random.seed(seed); perm = np.random.permutation(n)`,
    /// fold `f` tests positions `[f·⌊n/k⌋, (f+1)·⌊n/k⌋)` of `perm`.
    NumpyContiguous,
    /// A seeded ChaCha shuffle cut into `k` near-equal folds covering every cell.
    Shuffled,
    /// Like `Shuffled`, but each fold receives its share of every class label.
    Stratified,
}

/// Why folds could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvError {
    /// Fewer than two folds were asked for.
    #[error("cross-validation needs at least 2 folds, got k = {k}")]
    TooFewFolds {
        /// The requested number of folds.
        k: usize,
    },
    /// More folds than cells.
    #[error("cannot split {n} cells into k = {k} folds: k must not exceed the number of cells")]
    MoreFoldsThanCells {
        /// Number of cells.
        n: usize,
        /// The requested number of folds.
        k: usize,
    },
    /// The numpy scheme only accepts seeds numpy accepts.
    #[error("numpy seeds must lie in 0..=4294967295, got {seed}")]
    SeedOutOfRange {
        /// The seed given.
        seed: u64,
    },
    /// Stratified folds were asked for without labels.
    #[error("stratified folds need a label for every cell, but no labels were given")]
    MissingLabels,
    /// The label vector does not match the number of cells.
    #[error("stratified folds need one label per cell: got {labels} labels for {n} cells")]
    LabelCountMismatch {
        /// Number of labels given.
        labels: usize,
        /// Number of cells.
        n: usize,
    },
}

/// Splits `n` cells into `k` folds under `scheme`, reproducibly from `seed`.
///
/// `labels` (one class index per cell) is required by [`FoldScheme::Stratified`]
/// and ignored otherwise.
pub fn k_fold(
    n: usize,
    k: usize,
    seed: u64,
    scheme: FoldScheme,
    labels: Option<&[usize]>,
) -> Result<Vec<Fold>, CvError> {
    if k < 2 {
        return Err(CvError::TooFewFolds { k });
    }
    if k > n {
        return Err(CvError::MoreFoldsThanCells { n, k });
    }
    match scheme {
        FoldScheme::NumpyContiguous => numpy_contiguous(n, k, seed),
        FoldScheme::Shuffled => Ok(shuffled(n, k, seed)),
        FoldScheme::Stratified => {
            let labels = labels.ok_or(CvError::MissingLabels)?;
            if labels.len() != n {
                return Err(CvError::LabelCountMismatch {
                    labels: labels.len(),
                    n,
                });
            }
            Ok(stratified(labels, k, seed))
        }
    }
}

fn numpy_contiguous(n: usize, k: usize, seed: u64) -> Result<Vec<Fold>, CvError> {
    let seed32 = u32::try_from(seed).map_err(|_| CvError::SeedOutOfRange { seed })?;
    let perm = LegacyRandomState::new(seed32).permutation(n);
    let size = n / k;
    Ok((0..k)
        .map(|f| {
            let (start, end) = (f * size, (f + 1) * size);
            let test = perm[start..end].to_vec();
            let train = perm[..start].iter().chain(&perm[end..]).copied().collect();
            Fold { train, test }
        })
        .collect())
}

/// Builds folds from each cell's fold number, with sorted index lists.
fn folds_from_assignment(assignment: &[usize], k: usize) -> Vec<Fold> {
    let mut folds = vec![
        Fold {
            train: Vec::new(),
            test: Vec::new()
        };
        k
    ];
    for (cell, &fold) in assignment.iter().enumerate() {
        for (f, entry) in folds.iter_mut().enumerate() {
            if f == fold {
                entry.test.push(cell);
            } else {
                entry.train.push(cell);
            }
        }
    }
    folds
}

fn shuffled(n: usize, k: usize, seed: u64) -> Vec<Fold> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let mut assignment = vec![0; n];
    for (position, &cell) in order.iter().enumerate() {
        assignment[cell] = position % k;
    }
    folds_from_assignment(&assignment, k)
}

fn stratified(labels: &[usize], k: usize, seed: u64) -> Vec<Fold> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (cell, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(cell);
    }
    // Deal the shuffled members of each class round-robin, continuing the
    // rotation across classes so that fold sizes stay within one of each other.
    let mut assignment = vec![0; labels.len()];
    let mut next_fold = 0;
    for members in by_class.values_mut() {
        members.shuffle(&mut rng);
        for &cell in members.iter() {
            assignment[cell] = next_fold;
            next_fold = (next_fold + 1) % k;
        }
    }
    folds_from_assignment(&assignment, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_partition(folds: &[Fold], n: usize) {
        let mut tested = vec![0; n];
        for fold in folds {
            for &i in &fold.test {
                tested[i] += 1;
            }
            let mut all: Vec<usize> = fold.train.iter().chain(&fold.test).copied().collect();
            all.sort_unstable();
            assert_eq!(
                all,
                (0..n).collect::<Vec<_>>(),
                "train and test must be disjoint and complete"
            );
        }
        assert!(
            tested.iter().all(|&t| t == 1),
            "every cell tested exactly once"
        );
    }

    #[test]
    fn numpy_contiguous_reproduces_the_paper_folds() {
        let folds = k_fold(1213, 10, 42, FoldScheme::NumpyContiguous, None).unwrap();
        assert_eq!(folds.len(), 10);
        // First test cells of fold 0 are the first entries of numpy's permutation
        // (see numpy_rng tests for the Python snippet).
        assert_eq!(&folds[0].test[..3], &[382, 787, 43]);
        let mut tested: Vec<usize> = folds.iter().flat_map(|f| f.test.clone()).collect();
        for fold in &folds {
            assert_eq!(fold.test.len(), 121);
            assert_eq!(fold.train.len(), 1092);
            assert!(fold.test.iter().all(|t| !fold.train.contains(t)));
        }
        tested.sort_unstable();
        tested.dedup();
        assert_eq!(tested.len(), 1210);
        // The last three cells of the permutation are never tested.
        for never in [860, 1126, 1130] {
            assert!(!tested.contains(&never));
        }
    }

    #[test]
    fn shuffled_folds_cover_every_cell_with_near_equal_sizes() {
        let folds = k_fold(23, 4, 5, FoldScheme::Shuffled, None).unwrap();
        assert_partition(&folds, 23);
        let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
        assert_eq!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap(), 1);
        assert_eq!(folds, k_fold(23, 4, 5, FoldScheme::Shuffled, None).unwrap());
        assert_ne!(folds, k_fold(23, 4, 6, FoldScheme::Shuffled, None).unwrap());
    }

    #[test]
    fn stratified_folds_balance_every_class() {
        let labels: Vec<usize> = (0..60)
            .map(|i| {
                if i < 30 {
                    0
                } else if i < 50 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let folds = k_fold(60, 5, 9, FoldScheme::Stratified, Some(&labels)).unwrap();
        assert_partition(&folds, 60);
        for fold in &folds {
            let count = |c| fold.test.iter().filter(|&&i| labels[i] == c).count();
            assert_eq!((count(0), count(1), count(2)), (6, 4, 2));
        }
        let uneven: Vec<usize> = (0..17).map(|i| i % 3).collect();
        let folds = k_fold(17, 4, 1, FoldScheme::Stratified, Some(&uneven)).unwrap();
        assert_partition(&folds, 17);
        for class in 0..3 {
            let counts: Vec<usize> = folds
                .iter()
                .map(|f| f.test.iter().filter(|&&i| uneven[i] == class).count())
                .collect();
            assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn bad_requests_give_clear_errors() {
        assert_eq!(
            k_fold(10, 1, 0, FoldScheme::Shuffled, None),
            Err(CvError::TooFewFolds { k: 1 })
        );
        assert_eq!(
            k_fold(3, 4, 0, FoldScheme::NumpyContiguous, None),
            Err(CvError::MoreFoldsThanCells { n: 3, k: 4 })
        );
        assert_eq!(
            k_fold(10, 2, 0, FoldScheme::Stratified, None),
            Err(CvError::MissingLabels)
        );
        assert_eq!(
            k_fold(10, 2, 0, FoldScheme::Stratified, Some(&[0, 1])),
            Err(CvError::LabelCountMismatch { labels: 2, n: 10 })
        );
        assert_eq!(
            k_fold(10, 2, 1 << 40, FoldScheme::NumpyContiguous, None),
            Err(CvError::SeedOutOfRange { seed: 1 << 40 })
        );
        let message = k_fold(3, 4, 0, FoldScheme::Shuffled, None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("3 cells") && message.contains("k = 4"));
    }
}
