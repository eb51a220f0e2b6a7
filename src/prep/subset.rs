//! Shared plumbing for steps: keeping a subset of cells or features of a
//! table, and the outcome a step hands back to the report.

use ndarray::{Array2, Axis};

use super::StepDetail;
use crate::data::FeatureTable;

/// What a step removed and any figures it wants reported.
#[derive(Debug)]
pub(super) struct Outcome {
    pub dropped_cells: Vec<String>,
    pub dropped_features: Vec<String>,
    pub detail: StepDetail,
}

impl Outcome {
    /// A step that removed nothing and has nothing to add.
    pub fn nothing() -> Self {
        Self::detail(StepDetail::None)
    }

    /// A step that removed nothing but reports figures.
    pub fn detail(detail: StepDetail) -> Self {
        Outcome {
            dropped_cells: Vec::new(),
            dropped_features: Vec::new(),
            detail,
        }
    }
}

/// Keeps the cells (rows) for which `keep` is true; returns the table and
/// the ids of the removed cells.
pub(super) fn keep_cells(table: FeatureTable, keep: &[bool]) -> (FeatureTable, Vec<String>) {
    if keep.iter().all(|&k| k) {
        return (table, Vec::new());
    }
    let rows: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    let dropped = table
        .cells
        .iter()
        .zip(keep)
        .filter(|(_, k)| !**k)
        .map(|(c, _)| c.clone())
        .collect();
    let values = table.values.select(Axis(0), &rows);
    let cells = rows
        .iter()
        .filter_map(|&i| table.cells.get(i).cloned())
        .collect();
    (
        FeatureTable {
            cells,
            features: table.features,
            values,
        },
        dropped,
    )
}

/// Keeps the features (columns) at `columns`, in that order; every index
/// must be in range (callers compute them from the table). The new matrix is
/// filled row by row, so a row-major input is read along its rows.
pub(super) fn take_features(table: FeatureTable, columns: &[usize]) -> FeatureTable {
    let mut values = Array2::zeros((table.values.nrows(), columns.len()));
    for (mut target, source) in values.rows_mut().into_iter().zip(table.values.rows()) {
        for (t, &j) in target.iter_mut().zip(columns) {
            *t = source[j];
        }
    }
    let features = columns
        .iter()
        .filter_map(|&j| table.features.get(j).cloned())
        .collect();
    FeatureTable {
        cells: table.cells,
        features,
        values,
    }
}

/// Keeps the features for which `keep` is true, in their current order;
/// returns the table and the names of the removed features.
pub(super) fn keep_features(table: FeatureTable, keep: &[bool]) -> (FeatureTable, Vec<String>) {
    if keep.iter().all(|&k| k) {
        return (table, Vec::new());
    }
    let columns: Vec<usize> = (0..keep.len()).filter(|&j| keep[j]).collect();
    let dropped = table
        .features
        .iter()
        .zip(keep)
        .filter(|(_, k)| !**k)
        .map(|(f, _)| f.clone())
        .collect();
    (take_features(table, &columns), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn table() -> FeatureTable {
        FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into()],
            features: vec!["x".into(), "y".into()],
            values: array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
        }
    }

    #[test]
    fn keep_cells_keeps_rows_and_names_the_rest() {
        let (kept, dropped) = keep_cells(table(), &[true, false, true]);
        assert_eq!(kept.cells, ["a", "c"]);
        assert_eq!(kept.values, array![[1.0, 2.0], [5.0, 6.0]]);
        assert_eq!(dropped, ["b"]);
    }

    #[test]
    fn take_features_reorders_columns() {
        let kept = take_features(table(), &[1, 0]);
        assert_eq!(kept.features, ["y", "x"]);
        assert_eq!(kept.values, array![[2.0, 1.0], [4.0, 3.0], [6.0, 5.0]]);
    }

    #[test]
    fn keep_features_names_the_dropped() {
        let (kept, dropped) = keep_features(table(), &[false, true]);
        assert_eq!(kept.features, ["y"]);
        assert_eq!(kept.values, array![[2.0], [4.0], [6.0]]);
        assert_eq!(dropped, ["x"]);
    }
}
