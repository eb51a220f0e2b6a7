//! scanpy's `highly_variable_genes(flavor="seurat_v3", n_top_genes=n)` (one
//! batch), on a dense or CSR table of raw counts:
//!
//! 1. per gene the mean and the unbiased variance (ddof = 1);
//! 2. over the genes with a variance above 0, a degree-2 LOESS of
//!    `log10(variance)` on `log10(mean)` with `span` (default 0.3; see
//!    [`loess`](super::loess)); the regularised SD is `sqrt(10^fitted)` (1 for
//!    genes without variance);
//! 3. every count is clipped at `mean + SD · sqrt(cells)`, and the variance
//!    of the standardised clipped counts, `(N·mean² + Σ x² − 2·mean·Σ x) /
//!    ((N − 1) · SD²)`, is the gene's `variances_norm`;
//! 4. the `n` genes with the largest `variances_norm` are selected (exactly
//!    `n`; a tie goes to the earlier gene).

use super::columns::{column_sums, refuse_stored};
use super::loess::loess_fitted;
use super::{PrepError, StepId};
use crate::data::LoadedTable;

/// Per-gene figures of the `seurat_v3` flavour, in table order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SeuratV3Variances {
    /// Mean count.
    pub means: Vec<f64>,
    /// Unbiased variance of the counts.
    pub variances: Vec<f64>,
    /// Variance of the clipped, standardised counts (scanpy's `variances_norm`).
    pub normalised: Vec<f64>,
}

/// Computes the `seurat_v3` figures; values must be finite and non-negative (counts).
pub(super) fn seurat_v3_variances(
    table: &LoadedTable,
    span: f64,
    step: StepId,
) -> Result<SeuratV3Variances, PrepError> {
    if !(span.is_finite() && span > 0.0) {
        return Err(PrepError::InvalidParameter {
            step,
            field: "span",
            message: format!("{span} is not a share of the genes; expected a number above 0"),
        });
    }
    let genes = table.features().len();
    let cells = table.cells().len() as f64;
    if cells < 2.0 {
        return Err(PrepError::InvalidParameter {
            step,
            field: "method",
            message: format!(
                "SeuratV3 needs at least 2 cells for a variance; the table has {cells}"
            ),
        });
    }
    refuse_stored(table, step, "a finite, non-negative count", |v| {
        !(v.is_finite() && v >= 0.0)
    })?;
    let first = column_sums(table, |_, v| v);
    let means: Vec<f64> = first.sums.iter().map(|s| s / cells).collect();
    // Squared deviations over the stored entries, then the unstored zeros' share.
    let deviations = column_sums(table, |j, v| v - means[j]);
    let variances: Vec<f64> = (0..genes)
        .map(|j| {
            let zeros = cells - first.stored[j] as f64;
            (deviations.squares[j] + zeros * means[j] * means[j]) / (cells - 1.0)
        })
        .collect();
    let varying: Vec<usize> = (0..genes).filter(|&j| variances[j] > 0.0).collect();
    let x: Vec<f64> = varying.iter().map(|&j| means[j].log10()).collect();
    let y: Vec<f64> = varying.iter().map(|&j| variances[j].log10()).collect();
    let fitted = loess_fitted(&x, &y, span).map_err(|e| PrepError::InvalidParameter {
        step,
        field: "method",
        message: format!("SeuratV3 on {} genes with a variance: {e}", varying.len()),
    })?;
    let mut log_variance = vec![0.0; genes];
    for (&j, f) in varying.iter().zip(fitted) {
        log_variance[j] = f;
    }
    let sd: Vec<f64> = log_variance
        .iter()
        .map(|&f| 10_f64.powf(f).sqrt())
        .collect();
    let clip: Vec<f64> = (0..genes)
        .map(|j| sd[j] * cells.sqrt() + means[j])
        .collect();
    let clipped = column_sums(table, |j, v| v.min(clip[j]));
    let normalised = (0..genes)
        .map(|j| {
            let m = means[j];
            (cells * m * m + clipped.squares[j] - 2.0 * clipped.sums[j] * m)
                / ((cells - 1.0) * sd[j] * sd[j])
        })
        .collect();
    Ok(SeuratV3Variances {
        means,
        variances,
        normalised,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::h5ad::{H5adSelection, read_h5ad};

    const STEP: StepId = StepId {
        index: 0,
        kind: "SelectGenes",
    };

    /// scanpy's golden `seurat_v3` output on the fixture: one row per gene of
    /// means, variances, variances_norm, highly_variable.
    fn golden() -> Vec<(f64, f64, f64, bool)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hvg");
        let text = std::fs::read_to_string(dir.join("seurat_v3.csv")).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (m, v, n, hv) = (
            at("means"),
            at("variances"),
            at("variances_norm"),
            at("highly_variable"),
        );
        lines
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                (
                    f[m].parse().unwrap(),
                    f[v].parse().unwrap(),
                    f[n].parse().unwrap(),
                    f[hv] == "True",
                )
            })
            .collect()
    }

    #[test]
    fn equals_scanpys_seurat_v3_on_the_fixture() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hvg");
        let counts = read_h5ad(&dir.join("counts.h5ad"), &H5adSelection::default()).unwrap();
        let ours = seurat_v3_variances(&counts, 0.3, STEP).unwrap();
        let golden = golden();
        assert_eq!(golden.len(), ours.means.len());
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        for (j, &(mean, variance, norm, _)) in golden.iter().enumerate() {
            assert!(close(ours.means[j], mean), "gene {j} mean");
            assert!(close(ours.variances[j], variance), "gene {j} variance");
            assert!(
                close(ours.normalised[j], norm),
                "gene {j}: variances_norm {} vs scanpy's {norm}",
                ours.normalised[j]
            );
        }
        // The same on the dense copy.
        let dense = LoadedTable::Dense(counts.into_dense());
        let again = seurat_v3_variances(&dense, 0.3, STEP).unwrap();
        for (a, b) in again.normalised.iter().zip(&ours.normalised) {
            assert!(close(*a, *b));
        }
    }

    #[test]
    fn negative_counts_and_bad_spans_are_refused() {
        let table = LoadedTable::Dense(crate::data::FeatureTable {
            cells: vec!["a".into(), "b".into()],
            features: vec!["g".into()],
            values: ndarray::array![[1.0], [-2.0]],
        });
        let err = seurat_v3_variances(&table, 0.3, STEP).unwrap_err();
        assert!(err.to_string().contains("non-negative count"), "{err}");
        let err = seurat_v3_variances(&table, 0.0, STEP).unwrap_err();
        assert!(err.to_string().contains("`span`"), "{err}");
    }
}
