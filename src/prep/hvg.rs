//! scanpy's `highly_variable_genes(flavor="seurat", n_top_genes=n)`, on a
//! dense or CSR table of `ln(x + 1)` normalised values (scanpy's `log1p`):
//!
//! 1. undo the log (`expm1`), then per gene the mean and the unbiased
//!    variance (ddof = 1), in one pass as scanpy: `E[x²] - E[x]²`;
//! 2. a mean of 0 becomes 1e-12; dispersion = variance / mean, 0 becomes
//!    NaN, then `ln`; the mean becomes `ln(1 + mean)`;
//! 3. genes are binned by mean into `n_bins` equal-width bins (pandas `cut`:
//!    edges from the smallest to the largest mean, the first edge lowered by
//!    0.1% of the range, intervals open on the left);
//! 4. each gene's dispersion is z-scored within its bin (mean and SD with
//!    ddof = 1 over the bin's non-NaN dispersions; a bin with one such gene
//!    gives it a normalised dispersion of 1);
//! 5. the genes whose normalised dispersion is at least the `n`-th highest
//!    are selected (ties at the cut-off are all kept, as in scanpy).

use super::columns::{ColumnSums, column_sums, refuse_stored};
use super::{PrepError, StepId};
use crate::data::LoadedTable;

/// Per-gene figures of the `seurat` flavour, in table order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SeuratDispersions {
    /// `ln(1 + mean)` of the un-logged values.
    pub means: Vec<f64>,
    /// `ln(variance / mean)`; NaN for a gene without variance.
    pub dispersions: Vec<f64>,
    /// Dispersions z-scored within their mean bin; NaN where undefined.
    pub normalised: Vec<f64>,
}

/// Computes the `seurat` flavour's figures; values must be finite and above -1.
/// `unlogged`, when given, holds the per-gene sums of the values before the
/// `Log1p` that made `table` (what `expm1` of its values gives back, up to
/// rounding), which spares computing `expm1` of every stored value.
pub(super) fn seurat_dispersions(
    table: &LoadedTable,
    n_bins: usize,
    step: StepId,
    unlogged: Option<&ColumnSums>,
) -> Result<SeuratDispersions, PrepError> {
    let cells = table.cells().len() as f64;
    refuse_stored(table, step, "a finite log1p value above -1", |v| {
        !(v.is_finite() && v > -1.0)
    })?;
    // One pass, as scanpy's `_get_mean_var`: mean of x and of x², variance = E[x²] - E[x]².
    let computed;
    let moments = match unlogged {
        Some(sums) => sums,
        None => {
            computed = column_sums(table, |_, v| v.exp_m1());
            &computed
        }
    };
    let means: Vec<f64> = moments.sums.iter().map(|s| s / cells).collect();
    let correction = if cells > 1.0 {
        cells / (cells - 1.0)
    } else {
        1.0
    };
    let mut log_means = Vec::with_capacity(means.len());
    let mut dispersions = Vec::with_capacity(means.len());
    for (j, &squares) in moments.squares.iter().enumerate() {
        let variance = (squares / cells - means[j] * means[j]) * correction;
        let mean = if means[j] == 0.0 { 1e-12 } else { means[j] };
        let dispersion = variance / mean;
        dispersions.push(if dispersion == 0.0 {
            f64::NAN
        } else {
            dispersion.ln()
        });
        log_means.push(mean.ln_1p());
    }
    let normalised = normalise_within_bins(&log_means, &dispersions, n_bins);
    Ok(SeuratDispersions {
        means: log_means,
        dispersions,
        normalised,
    })
}

/// The bin (0-based) of each value under pandas' `cut(values, bins=n_bins)`.
fn mean_bins(values: &[f64], n_bins: usize) -> Vec<usize> {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if high.partial_cmp(&low) != Some(std::cmp::Ordering::Greater) {
        return vec![0; values.len()];
    }
    let width = high - low;
    // As numpy's linspace: k * step + start, the last edge exactly the end.
    let step = width / n_bins as f64;
    let mut edges: Vec<f64> = (0..=n_bins).map(|k| k as f64 * step + low).collect();
    if let Some(last) = edges.last_mut() {
        *last = high;
    }
    if let Some(first) = edges.first_mut() {
        *first -= width * 0.001;
    }
    values
        .iter()
        .map(|&v| {
            // Intervals (edges[k], edges[k + 1]]: k = (number of edges below v) - 1.
            let below = edges.partition_point(|&e| e < v);
            below.saturating_sub(1).min(n_bins - 1)
        })
        .collect()
}

fn normalise_within_bins(means: &[f64], dispersions: &[f64], n_bins: usize) -> Vec<f64> {
    let bins = mean_bins(means, n_bins.max(1));
    let mut count = vec![0_usize; n_bins.max(1)];
    let mut sum = vec![0.0; n_bins.max(1)];
    for (&b, &d) in bins.iter().zip(dispersions) {
        if !d.is_nan() {
            count[b] += 1;
            sum[b] += d;
        }
    }
    let avg: Vec<f64> = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| if c > 0 { s / c as f64 } else { f64::NAN })
        .collect();
    let mut squares = vec![0.0; n_bins.max(1)];
    for (&b, &d) in bins.iter().zip(dispersions) {
        if !d.is_nan() {
            squares[b] += (d - avg[b]) * (d - avg[b]);
        }
    }
    let (centre, scale): (Vec<f64>, Vec<f64>) = (0..count.len())
        .map(|b| match count[b] {
            0 => (0.0, f64::NAN),
            // One gene in the bin: scanpy sets dev = avg and avg = 0.
            1 => (0.0, avg[b]),
            c => (avg[b], (squares[b] / (c - 1) as f64).sqrt()),
        })
        .unzip();
    bins.iter()
        .zip(dispersions)
        .map(|(&b, &d)| (d - centre[b]) / scale[b])
        .collect()
}

/// The genes scanpy selects with `n_top_genes = n`: normalised dispersion at
/// least the `n`-th highest (NaN never selected), and that cut-off.
pub(super) fn top_genes(normalised: &[f64], n: usize) -> (Vec<bool>, f64) {
    let mut defined: Vec<f64> = normalised.iter().copied().filter(|v| !v.is_nan()).collect();
    defined.sort_by(|a, b| b.total_cmp(a));
    let Some(&cut_off) = defined.get(n.min(defined.len()).saturating_sub(1)) else {
        return (vec![false; normalised.len()], f64::NAN);
    };
    let keep = normalised
        .iter()
        .map(|&v| !v.is_nan() && v >= cut_off)
        .collect();
    (keep, cut_off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_pandas_cut() {
        // Edges 0 -> 0 - 0.01, 2.5, 5, 7.5, 10: intervals open on the left.
        let bins = mean_bins(&[0.0, 2.5, 2.6, 7.5, 10.0], 4);
        assert_eq!(bins, [0, 0, 1, 2, 3]);
        assert_eq!(mean_bins(&[1.0, 1.0], 20), [0, 0]);
    }

    #[test]
    fn dispersions_are_z_scored_within_bins_and_singletons_get_one() {
        let means = [0.0, 0.1, 0.2, 10.0];
        let dispersions = [1.0, 2.0, 3.0, 5.0];
        let normalised = normalise_within_bins(&means, &dispersions, 2);
        // Bin 0: mean 2, SD 1 -> -1, 0, 1; bin 1 holds one gene -> 5 / 5 = 1.
        assert_eq!(normalised, [-1.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn ties_at_the_cut_off_are_kept_and_nan_never() {
        let (keep, cut_off) = top_genes(&[0.5, f64::NAN, 2.0, 0.5, 1.0], 3);
        assert_eq!(cut_off, 0.5);
        assert_eq!(keep, [true, false, true, true, true]);
    }
}
