//! Type discovery across latents (Gala et al. 2019, Fig. 5B): the distance
//! from each query cell to its nearest neighbour among reference cells of
//! the other modality, and a two-sample Kolmogorov–Smirnov test between the
//! distances of a candidate type and those of the other query cells.

use ndarray::ArrayView2;
use statrs::stats_tests::NaNPolicy;
use statrs::stats_tests::ks_test::{KSTwoSampleAlternativeMethod, ks_twosample};

/// Euclidean distance from each row of `query` to its nearest row of `reference`.
pub fn nearest_distances(query: ArrayView2<'_, f64>, reference: ArrayView2<'_, f64>) -> Vec<f64> {
    query
        .rows()
        .into_iter()
        .map(|q| {
            reference
                .rows()
                .into_iter()
                .map(|r| {
                    q.iter()
                        .zip(r.iter())
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect()
}

/// Result of a two-sample KS test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsResult {
    /// The largest distance between the two empirical distribution functions.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Two-sided two-sample Kolmogorov–Smirnov test (statrs). The p-value is
/// exact for small samples (both below 10,000, like SciPy's `method="auto"`
/// without ties) and asymptotic otherwise. `None` if a sample has fewer than
/// two values or contains NaN.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> Option<KsResult> {
    let method = if a.len().max(b.len()) < 10_000 {
        KSTwoSampleAlternativeMethod::TwoSidedExact
    } else {
        KSTwoSampleAlternativeMethod::TwoSidedAsymptotic
    };
    ks_twosample(a.to_vec(), b.to_vec(), method, NaNPolicy::Error)
        .ok()
        .map(|(statistic, p_value)| KsResult { statistic, p_value })
}
