//! Feature selection: the `n` most variable features, or the mean-dropout
//! heuristic of Kobak & Berens (2019) used by the sBNN paper. Both read the
//! row-major matrix row by row into per-feature accumulators (one pass for
//! mean-dropout, two for variance), so 42,000 genes x 1,300 cells cost a few
//! vector-length buffers and no allocation per gene. Selected features keep
//! their current order.
//!
//! Mean-dropout: for each gene, `zero_rate` is the fraction of cells with a
//! count at or below `threshold` and `mean_expr` the mean `log2` count over
//! the other (detected) cells. Genes detected in fewer than `at_least` cells
//! (or in none) are not candidates. A candidate is selected when
//! `zero_rate > exp(-decay * (mean_expr - x0)) + y_offset`. Fewer genes pass
//! as `x0` grows, so `x0` is found by bisection, as in the reference code:
//! start at 5 with the bracket 0..10 (widened first if `n` lies outside it),
//! move towards the side that fixes the count, stop when exactly `n` genes
//! pass, at most 100 steps.

use super::columns::{ColumnSums, column_sums, refuse_stored};
use super::hvg::{seurat_dispersions, top_genes};
use super::hvg_v3::seurat_v3_variances;
use super::sparse::{bad_stored_value, for_each_stored};
use super::subset::{Outcome, keep_features};
use super::{GeneSelection, PrepError, StepDetail, StepId};
use crate::data::LoadedTable;

/// Most bisection steps, as in the reference code.
const MAX_BISECTIONS: usize = 100;
/// Most doublings when widening the initial bracket.
const MAX_WIDENINGS: usize = 64;

/// Keeps `n` features chosen by `method`, dense or sparse as the table came.
pub(super) fn select_genes(
    table: LoadedTable,
    n: usize,
    method: &GeneSelection,
    step: StepId,
) -> Result<(LoadedTable, Outcome), PrepError> {
    select_genes_with(table, n, method, step, None)
}

/// [`select_genes`], with the per-gene sums of the values before the `Log1p`
/// that made `table` when they are known (used by `Seurat`, see
/// [`seurat_dispersions`]).
pub(super) fn select_genes_with(
    table: LoadedTable,
    n: usize,
    method: &GeneSelection,
    step: StepId,
    unlogged: Option<&ColumnSums>,
) -> Result<(LoadedTable, Outcome), PrepError> {
    let available = table.features().len();
    if n == 0 || n > available {
        return Err(PrepError::InvalidParameter {
            step,
            field: "n",
            message: format!(
                "asked for {n} features; expected 1 to {available}, the features in the table"
            ),
        });
    }
    let (keep, detail) = match *method {
        GeneSelection::Variance => by_variance(&table, n, step)?,
        GeneSelection::MeanDropout {
            threshold,
            at_least,
            decay,
            y_offset,
        } => {
            let curve = Curve {
                threshold,
                at_least,
                decay,
                y_offset,
            };
            by_mean_dropout(&table, n, &curve, step)?
        }
        GeneSelection::Seurat { n_bins } => by_seurat(&table, n, n_bins, step, unlogged)?,
        GeneSelection::SeuratV3 { span } => {
            let figures = seurat_v3_variances(&table, span, step)?;
            let (keep, smallest_selected) = top_n(&figures.normalised, n);
            (keep, StepDetail::SeuratV3 { smallest_selected })
        }
    };
    let table = match table {
        LoadedTable::Dense(t) => LoadedTable::Dense(keep_features(t, &keep).0),
        LoadedTable::Sparse(t) => LoadedTable::Sparse(t.keep_columns(&keep)),
    };
    Ok((table, Outcome::detail(detail)))
}

/// The `n` largest of `scores` (ties to the earlier feature) as a mask, and the smallest kept.
fn top_n(scores: &[f64], n: usize) -> (Vec<bool>, f64) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![false; scores.len()];
    let mut smallest_selected = f64::INFINITY;
    for &j in order.iter().take(n) {
        keep[j] = true;
        smallest_selected = smallest_selected.min(scores[j]);
    }
    (keep, smallest_selected)
}

fn by_variance(
    table: &LoadedTable,
    n: usize,
    step: StepId,
) -> Result<(Vec<bool>, StepDetail), PrepError> {
    let expected = "a finite value (drop missing values first)";
    refuse_stored(table, step, expected, |v| !v.is_finite())?;
    let (keep, smallest_selected) = top_n(&variances(table), n);
    Ok((keep, StepDetail::Variance { smallest_selected }))
}

/// Population variance of every column from the stored entries: the zeros
/// left out contribute `mean^2` each to the squared deviations.
fn variances(table: &LoadedTable) -> Vec<f64> {
    let cells = table.cells().len().max(1) as f64;
    let first = column_sums(table, |_, v| v);
    let means: Vec<f64> = first.sums.iter().map(|s| s / cells).collect();
    let deviations = column_sums(table, |j, v| v - means[j]);
    (0..means.len())
        .map(|j| {
            let zeros = cells - first.stored[j] as f64;
            (deviations.squares[j] + zeros * means[j] * means[j]) / cells
        })
        .collect()
}

fn by_seurat(
    table: &LoadedTable,
    n: usize,
    n_bins: usize,
    step: StepId,
    unlogged: Option<&ColumnSums>,
) -> Result<(Vec<bool>, StepDetail), PrepError> {
    if n_bins == 0 {
        return Err(PrepError::InvalidParameter {
            step,
            field: "n_bins",
            message: "expected at least 1 bin".into(),
        });
    }
    let figures = seurat_dispersions(table, n_bins, step, unlogged)?;
    let (keep, cut_off) = top_genes(&figures.normalised, n);
    let selected = keep.iter().filter(|&&k| k).count();
    Ok((keep, StepDetail::Seurat { cut_off, selected }))
}

/// The parameters of the mean-dropout selection curve.
struct Curve {
    threshold: f64,
    at_least: usize,
    decay: f64,
    y_offset: f64,
}

impl Curve {
    fn validate(&self, step: StepId) -> Result<(), PrepError> {
        let invalid = |field, message: &str| {
            Err(PrepError::InvalidParameter {
                step,
                field,
                message: message.to_string(),
            })
        };
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return invalid("threshold", "expected a finite count >= 0");
        }
        if !(self.decay.is_finite() && self.decay > 0.0) {
            return invalid("decay", "expected a finite value > 0");
        }
        if !self.y_offset.is_finite() {
            return invalid("y_offset", "expected a finite value");
        }
        Ok(())
    }
}

/// Zero rate and mean log2 expression of the candidate genes.
struct Candidates {
    columns: Vec<usize>,
    zero_rate: Vec<f64>,
    mean_expr: Vec<f64>,
}

impl Candidates {
    fn count(&self, curve: &Curve, x0: f64) -> usize {
        self.zero_rate
            .iter()
            .zip(&self.mean_expr)
            .filter(|&(&z, &m)| z > (-curve.decay * (m - x0)).exp() + curve.y_offset)
            .count()
    }
}

fn candidates(table: &LoadedTable, curve: &Curve, step: StepId) -> Result<Candidates, PrepError> {
    let genes = table.features().len();
    let mut detected = vec![0_usize; genes];
    let mut log_sums = vec![0.0; genes];
    for_each_stored(table, |i, j, v| {
        if !(v.is_finite() && v >= 0.0) {
            return Err(bad_stored_value(
                table,
                step,
                (i, j, v),
                "a finite, non-negative count",
            ));
        }
        if v > curve.threshold {
            detected[j] += 1;
            log_sums[j] += v.log2();
        }
        Ok(())
    })?;
    let cells = table.cells().len() as f64;
    let mut found = Candidates {
        columns: Vec::new(),
        zero_rate: Vec::new(),
        mean_expr: Vec::new(),
    };
    for (j, (&d, &s)) in detected.iter().zip(&log_sums).enumerate() {
        if d > 0 && d >= curve.at_least {
            found.columns.push(j);
            found.zero_rate.push(1.0 - d as f64 / cells);
            found.mean_expr.push(s / d as f64);
        }
    }
    Ok(found)
}

fn by_mean_dropout(
    table: &LoadedTable,
    n: usize,
    curve: &Curve,
    step: StepId,
) -> Result<(Vec<bool>, StepDetail), PrepError> {
    curve.validate(step)?;
    let genes = candidates(table, curve, step)?;
    let possible = genes
        .zero_rate
        .iter()
        .filter(|&&z| z > curve.y_offset)
        .count();
    if n > possible {
        return Err(PrepError::SelectionUnreachable {
            step,
            n,
            eligible: genes.columns.len(),
            possible,
        });
    }
    let (x0, iterations) =
        bisect(&genes, curve, n).map_err(|(nearest, x0)| PrepError::SelectionNotExact {
            step,
            n,
            nearest,
            x0,
        })?;
    let mut keep = vec![false; table.features().len()];
    for ((&j, &z), &m) in genes
        .columns
        .iter()
        .zip(&genes.zero_rate)
        .zip(&genes.mean_expr)
    {
        if let Some(k) = keep.get_mut(j) {
            *k = z > (-curve.decay * (m - x0)).exp() + curve.y_offset;
        }
    }
    let detail = StepDetail::MeanDropout {
        x0,
        eligible: genes.columns.len(),
        iterations,
    };
    Ok((keep, detail))
}

/// The offset at which exactly `n` candidates pass and the bisection steps
/// taken, or the last count and offset tried.
fn bisect(genes: &Candidates, curve: &Curve, n: usize) -> Result<(f64, usize), (usize, f64)> {
    let (mut low, mut up) = (0.0_f64, 10.0_f64);
    let mut width = 10.0;
    for _ in 0..MAX_WIDENINGS {
        if genes.count(curve, low) >= n {
            break;
        }
        low -= width;
        width *= 2.0;
    }
    width = 10.0;
    for _ in 0..MAX_WIDENINGS {
        if genes.count(curve, up) <= n {
            break;
        }
        up += width;
        width *= 2.0;
    }
    let mut x0 = (low + up) / 2.0;
    let mut count = 0;
    for iteration in 1..=MAX_BISECTIONS {
        count = genes.count(curve, x0);
        if count == n {
            return Ok((x0, iteration));
        }
        if count < n {
            up = x0;
            x0 = (x0 + low) / 2.0;
        } else {
            low = x0;
            x0 = (x0 + up) / 2.0;
        }
    }
    Err((count, x0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::FeatureTable;

    /// The selection on a dense table, handing back the dense table.
    fn select_genes(
        table: FeatureTable,
        n: usize,
        method: &GeneSelection,
        step: StepId,
    ) -> Result<(FeatureTable, Outcome), PrepError> {
        let (table, outcome) = super::select_genes(LoadedTable::Dense(table), n, method, step)?;
        Ok((table.into_dense(), outcome))
    }
    use ndarray::Array2;

    const STEP: StepId = StepId {
        index: 0,
        kind: "SelectGenes",
    };

    fn mean_dropout(at_least: usize) -> GeneSelection {
        GeneSelection::MeanDropout {
            threshold: 0.0,
            at_least,
            decay: 1.5,
            y_offset: 0.02,
        }
    }

    /// Genes detected in `d` of 10 cells with count `2^m` there, so their
    /// zero rate is `1 - d/10` and their mean log2 expression exactly `m`.
    fn count_table(genes: &[(usize, i32)]) -> FeatureTable {
        let cells = 10;
        let mut values = Array2::zeros((cells, genes.len()));
        for (j, &(d, m)) in genes.iter().enumerate() {
            for i in 0..d {
                values[(i, j)] = 2f64.powi(m);
            }
        }
        FeatureTable {
            cells: (0..cells).map(|i| format!("c{i}")).collect(),
            features: (0..genes.len()).map(|j| format!("g{j}")).collect(),
            values,
        }
    }

    #[test]
    fn variance_keeps_the_most_variable_in_table_order() {
        let table = FeatureTable {
            cells: vec!["a".into(), "b".into()],
            features: vec!["low".into(), "high".into(), "mid".into(), "flat".into()],
            values: ndarray::array![[0.0, 0.0, 0.0, 3.0], [1.0, 10.0, 4.0, 3.0]],
        };
        let (out, outcome) = select_genes(table, 2, &GeneSelection::Variance, STEP).unwrap();
        assert_eq!(out.features, ["high", "mid"]);
        assert_eq!(out.values.row(1).to_vec(), [10.0, 4.0]);
        // Population variance of {0, 4} is 4.
        assert_eq!(
            outcome.detail,
            StepDetail::Variance {
                smallest_selected: 4.0
            }
        );
    }

    #[test]
    fn mean_dropout_hits_n_exactly_with_the_known_genes() {
        // A gene passes iff x0 < m + ln(zero_rate - 0.02) / 1.5 =: its critical offset.
        let genes = [
            (5, 3),
            (2, 6),
            (8, 2),
            (9, 1),
            (3, 4),
            (1, 9),
            (6, 5),
            (4, 8),
            (10, 12),
            (7, 3),
        ];
        let critical: Vec<f64> = genes
            .iter()
            .map(|&(d, m)| {
                let zero_rate = 1.0 - d as f64 / 10.0;
                if zero_rate > 0.02 {
                    f64::from(m) + (zero_rate - 0.02).ln() / 1.5
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        // g5 (detected in 1 cell) has the largest critical offset but is not a candidate.
        let candidates: Vec<usize> = (0..genes.len()).filter(|&j| genes[j].0 >= 2).collect();
        let mut ranked = candidates.clone();
        ranked.sort_by(|&a, &b| critical[b].total_cmp(&critical[a]));
        for n in 1..=7 {
            let (out, outcome) =
                select_genes(count_table(&genes), n, &mean_dropout(2), STEP).unwrap();
            let mut expected: Vec<usize> = ranked[..n].to_vec();
            expected.sort();
            let names: Vec<String> = expected.iter().map(|j| format!("g{j}")).collect();
            assert_eq!(out.features, names, "n = {n}");
            let StepDetail::MeanDropout { x0, eligible, .. } = outcome.detail else {
                panic!("wrong detail {:?}", outcome.detail)
            };
            assert_eq!(eligible, 9);
            assert!(x0 < critical[ranked[n - 1]], "n = {n}: x0 {x0}");
            if n < ranked.len() {
                assert!(x0 >= critical[ranked[n]], "n = {n}: x0 {x0}");
            }
        }
    }

    #[test]
    fn mean_dropout_first_step_is_x0_5() {
        // Critical offsets 3 + ln(0.48)/1.5 = 2.51 and 9 + ln(0.58)/1.5 = 8.64:
        // at the start value x0 = 5 exactly one gene passes.
        let (_, outcome) =
            select_genes(count_table(&[(5, 3), (4, 9)]), 1, &mean_dropout(1), STEP).unwrap();
        assert_eq!(
            outcome.detail,
            StepDetail::MeanDropout {
                x0: 5.0,
                eligible: 2,
                iterations: 1
            }
        );
    }

    #[test]
    fn mean_dropout_widens_the_bracket_when_n_needs_it() {
        // Critical offsets m + ln(0.48)/1.5 = m - 0.49: -10.49, 19.51 and 25.51.
        let table = count_table(&[(5, -10), (5, 20), (5, 26)]);
        let (out, outcome) = select_genes(table.clone(), 1, &mean_dropout(1), STEP).unwrap();
        assert_eq!(out.features, ["g2"]);
        let StepDetail::MeanDropout { x0, .. } = outcome.detail else {
            panic!("{:?}", outcome.detail)
        };
        assert!((19.51..25.51).contains(&x0), "{x0}");
        let (out, outcome) = select_genes(table, 3, &mean_dropout(1), STEP).unwrap();
        assert_eq!(out.features, ["g0", "g1", "g2"]);
        let StepDetail::MeanDropout { x0, .. } = outcome.detail else {
            panic!("{:?}", outcome.detail)
        };
        assert!(x0 < -10.49, "{x0}");
    }

    #[test]
    fn mean_dropout_threshold_counts_low_values_as_zeros() {
        let mut table = count_table(&[(5, 3), (5, 3)]);
        // g1 holds 20 in the cells where g0 is 0: at threshold 0 it is
        // detected everywhere (zero rate 0, never selected); at threshold 10
        // it is the only gene detected at all.
        for i in 5..10 {
            table.values[(i, 1)] = 20.0;
        }
        let (out, _) = select_genes(table.clone(), 1, &mean_dropout(1), STEP).unwrap();
        assert_eq!(out.features, ["g0"]);
        let at_10 = GeneSelection::MeanDropout {
            threshold: 10.0,
            at_least: 1,
            decay: 1.5,
            y_offset: 0.02,
        };
        let (out, outcome) = select_genes(table.clone(), 1, &at_10, STEP).unwrap();
        assert_eq!(out.features, ["g1"]);
        assert!(matches!(
            outcome.detail,
            StepDetail::MeanDropout { eligible: 1, .. }
        ));
        let err = select_genes(table, 2, &mean_dropout(1), STEP).unwrap_err();
        assert!(
            matches!(
                err,
                PrepError::SelectionUnreachable {
                    possible: 1,
                    eligible: 2,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn mean_dropout_reports_ties_and_unreachable_n() {
        let tied = count_table(&[(5, 3), (5, 3), (2, 1)]);
        let err = select_genes(tied, 1, &mean_dropout(1), STEP).unwrap_err();
        assert!(
            matches!(err, PrepError::SelectionNotExact { n: 1, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("steps[0] (SelectGenes): field `n`: no offset"),
            "{err}"
        );
        let err =
            select_genes(count_table(&[(5, 3), (10, 3)]), 2, &mean_dropout(1), STEP).unwrap_err();
        assert!(err.to_string().contains("only 1 genes lie above"), "{err}");
    }

    #[test]
    fn selection_rejects_bad_parameters_and_values() {
        let table = count_table(&[(5, 3), (4, 9)]);
        let err = select_genes(table.clone(), 3, &GeneSelection::Variance, STEP).unwrap_err();
        assert!(
            err.to_string()
                .contains("field `n`: asked for 3 features; expected 1 to 2"),
            "{err}"
        );
        let err = select_genes(table.clone(), 0, &mean_dropout(1), STEP).unwrap_err();
        assert!(matches!(
            err,
            PrepError::InvalidParameter { field: "n", .. }
        ));
        let bad = GeneSelection::MeanDropout {
            threshold: 0.0,
            at_least: 1,
            decay: 0.0,
            y_offset: 0.02,
        };
        let err = select_genes(table.clone(), 1, &bad, STEP).unwrap_err();
        assert!(matches!(
            err,
            PrepError::InvalidParameter { field: "decay", .. }
        ));
        let mut negative = table;
        negative.values[(2, 1)] = -1.0;
        let err = select_genes(negative.clone(), 1, &mean_dropout(1), STEP).unwrap_err();
        assert!(
            err.to_string()
                .contains("cell \"c2\", feature \"g1\" has value -1"),
            "{err}"
        );
        negative.values[(2, 1)] = f64::NAN;
        let err = select_genes(negative, 1, &GeneSelection::Variance, STEP).unwrap_err();
        assert!(
            matches!(err, PrepError::BadValue { ref cell, .. } if cell == "c2"),
            "{err}"
        );
    }
}
