//! Steps that remove cells or features by a rule: missing values, empty
//! libraries, constant features, a name pattern, or an explicit list. Each
//! returns the ids or names it removed so the report can list them.

use std::collections::{HashMap, HashSet};

use regex::Regex;

use super::standardise::{column_stats, is_constant};
use super::subset::{Outcome, keep_cells, keep_features, take_features};
use super::{PrepError, StepDetail, StepId};
use crate::data::FeatureTable;

/// How many missing names an error lists before it just counts.
const EXAMPLES: usize = 5;

/// Drops every cell with a NaN in any feature.
pub(super) fn drop_cells_with_missing(table: FeatureTable) -> (FeatureTable, Outcome) {
    let keep: Vec<bool> = table
        .values
        .rows()
        .into_iter()
        .map(|r| !r.iter().any(|v| v.is_nan()))
        .collect();
    cells_outcome(keep_cells(table, &keep))
}

/// Drops every feature with a NaN in any cell.
pub(super) fn drop_features_with_missing(table: FeatureTable) -> (FeatureTable, Outcome) {
    let mut keep = vec![true; table.features.len()];
    for row in table.values.rows() {
        for (k, v) in keep.iter_mut().zip(row) {
            *k &= !v.is_nan();
        }
    }
    features_outcome(keep_features(table, &keep))
}

/// Drops every cell whose values sum to exactly zero.
pub(super) fn drop_zero_library(table: FeatureTable) -> (FeatureTable, Outcome) {
    let keep: Vec<bool> = table
        .values
        .rows()
        .into_iter()
        .map(|r| r.sum() != 0.0)
        .collect();
    cells_outcome(keep_cells(table, &keep))
}

/// Drops every feature that is constant over all cells (the criterion that
/// `Standardise::AllCells` rejects).
pub(super) fn drop_constant_features(table: FeatureTable) -> (FeatureTable, Outcome) {
    let stats = column_stats(&table.values);
    let keep: Vec<bool> = stats.iter().map(|s| !is_constant(s)).collect();
    features_outcome(keep_features(table, &keep))
}

/// Drops every feature whose name matches `pattern`.
pub(super) fn exclude_features(
    table: FeatureTable,
    pattern: &str,
    step: StepId,
) -> Result<(FeatureTable, Outcome), PrepError> {
    let regex = Regex::new(pattern).map_err(|e| PrepError::InvalidRegex {
        step,
        pattern: pattern.to_string(),
        message: e.to_string(),
    })?;
    let keep: Vec<bool> = table.features.iter().map(|f| !regex.is_match(f)).collect();
    Ok(features_outcome(keep_features(table, &keep)))
}

/// Keeps exactly `wanted`, in that order.
pub(super) fn restrict_to_features(
    table: FeatureTable,
    wanted: &[String],
    step: StepId,
) -> Result<(FeatureTable, Outcome), PrepError> {
    let columns = restricted_columns(&table.features, wanted, step)?;
    Ok((take_features(table, &columns), Outcome::nothing()))
}

/// The positions of `wanted` among `features`, in `wanted`'s order; every
/// name must be present once, and the list must be non-empty and unique.
pub(super) fn restricted_columns(
    features: &[String],
    wanted: &[String],
    step: StepId,
) -> Result<Vec<usize>, PrepError> {
    if wanted.is_empty() {
        return Err(PrepError::InvalidParameter {
            step,
            field: "features",
            message: "the list is empty; name at least one feature".to_string(),
        });
    }
    let index = unique_index(features, wanted, step, "feature")?;
    let mut seen = HashSet::new();
    let mut columns = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for name in wanted {
        if !seen.insert(name.as_str()) {
            return Err(PrepError::Duplicate {
                step,
                what: "feature",
                name: name.clone(),
                place: "field `features`",
            });
        }
        match index.get(name.as_str()) {
            Some(&j) => columns.push(j),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(unknown(step, "features", "features", wanted.len(), missing));
    }
    Ok(columns)
}

/// Drops the named cells; every name must be a cell of the table.
pub(super) fn drop_cells(
    table: FeatureTable,
    names: &[String],
    step: StepId,
) -> Result<(FeatureTable, Outcome), PrepError> {
    let present: HashSet<&str> = table.cells.iter().map(String::as_str).collect();
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(unknown(step, "cells", "cells", names.len(), missing));
    }
    let unwanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    let keep: Vec<bool> = table
        .cells
        .iter()
        .map(|c| !unwanted.contains(c.as_str()))
        .collect();
    Ok(cells_outcome(keep_cells(table, &keep)))
}

/// Maps each name in `names` to its position, failing if one that `wanted`
/// asks for occurs twice.
pub(super) fn unique_index<'a>(
    names: &'a [String],
    wanted: &[String],
    step: StepId,
    what: &'static str,
) -> Result<HashMap<&'a str, usize>, PrepError> {
    let mut index = HashMap::with_capacity(names.len());
    let mut repeated = HashSet::new();
    for (j, name) in names.iter().enumerate() {
        if index.insert(name.as_str(), j).is_some() {
            repeated.insert(name.as_str());
        }
    }
    match wanted.iter().find(|w| repeated.contains(w.as_str())) {
        Some(name) => Err(PrepError::Duplicate {
            step,
            what,
            name: name.clone(),
            place: "the table",
        }),
        None => Ok(index),
    }
}

/// The error for names a step lists that the table lacks.
pub(super) fn unknown(
    step: StepId,
    field: &'static str,
    what: &'static str,
    listed: usize,
    missing: Vec<String>,
) -> PrepError {
    PrepError::Unknown {
        step,
        field,
        what,
        count: missing.len(),
        listed,
        examples: missing.into_iter().take(EXAMPLES).collect(),
    }
}

fn cells_outcome((table, dropped_cells): (FeatureTable, Vec<String>)) -> (FeatureTable, Outcome) {
    let outcome = Outcome {
        dropped_cells,
        dropped_features: Vec::new(),
        detail: StepDetail::None,
    };
    (table, outcome)
}

fn features_outcome(
    (table, dropped_features): (FeatureTable, Vec<String>),
) -> (FeatureTable, Outcome) {
    let outcome = Outcome {
        dropped_cells: Vec::new(),
        dropped_features,
        detail: StepDetail::None,
    };
    (table, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    const STEP: StepId = StepId {
        index: 3,
        kind: "Test",
    };

    fn table() -> FeatureTable {
        FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into()],
            features: vec![
                "Gad1".into(),
                "ERCC-00009".into(),
                "Sst".into(),
                "ERCC-00108".into(),
            ],
            values: array![
                [1.0, 2.0, 0.0, 0.0],
                [0.0, 0.0, 0.0, 0.0],
                [f64::NAN, 1.0, 0.0, 3.0]
            ],
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn drop_cells_with_missing_removes_the_nan_cell() {
        let (kept, outcome) = drop_cells_with_missing(table());
        assert_eq!(kept.cells, ["a", "b"]);
        assert_eq!(kept.values.nrows(), 2);
        assert_eq!(outcome.dropped_cells, ["c"]);
    }

    #[test]
    fn drop_features_with_missing_removes_the_nan_feature() {
        let (kept, outcome) = drop_features_with_missing(table());
        assert_eq!(kept.features, ["ERCC-00009", "Sst", "ERCC-00108"]);
        assert_eq!(outcome.dropped_features, ["Gad1"]);
        assert_eq!(
            kept.values,
            array![[2.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 3.0]]
        );
    }

    #[test]
    fn drop_zero_library_removes_empty_cells_only() {
        let (kept, outcome) = drop_zero_library(table());
        assert_eq!(kept.cells, ["a", "c"]);
        assert_eq!(outcome.dropped_cells, ["b"]);
    }

    #[test]
    fn drop_constant_features_removes_constant_columns() {
        let t = FeatureTable {
            cells: names(&["a", "b"]),
            features: names(&["flat", "varies", "zero"]),
            values: array![[0.1, 1.0, 0.0], [0.1, 2.0, 0.0]],
        };
        let (kept, outcome) = drop_constant_features(t);
        assert_eq!(kept.features, ["varies"]);
        assert_eq!(outcome.dropped_features, ["flat", "zero"]);
    }

    #[test]
    fn exclude_features_drops_matching_names() {
        let (kept, outcome) = exclude_features(table(), "^ERCC-", STEP).unwrap();
        assert_eq!(kept.features, ["Gad1", "Sst"]);
        assert_eq!(outcome.dropped_features, ["ERCC-00009", "ERCC-00108"]);
        assert_eq!(kept.values.column(0)[0], 1.0);
    }

    #[test]
    fn exclude_features_rejects_a_bad_regex() {
        let err = exclude_features(table(), "ERCC-(", STEP).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("steps[3] (Test): field `pattern`: \"ERCC-(\""),
            "{text}"
        );
        assert!(text.contains("unclosed group"), "{text}");
    }

    #[test]
    fn restrict_keeps_listed_features_in_list_order() {
        let (kept, _) = restrict_to_features(table(), &names(&["Sst", "Gad1"]), STEP).unwrap();
        assert_eq!(kept.features, ["Sst", "Gad1"]);
        assert_eq!(kept.values.column(1)[0], 1.0);
        assert_eq!(kept.values.column(0)[0], 0.0);
    }

    #[test]
    fn restrict_lists_missing_names_with_a_count() {
        let wanted = names(&["Gad1", "m1", "m2", "m3", "m4", "m5", "m6"]);
        let err = restrict_to_features(table(), &wanted, STEP).unwrap_err();
        assert_eq!(
            err.to_string(),
            "steps[3] (Test): field `features`: 6 of the 7 listed features are not in the table: \
             m1, m2, m3, m4, m5, ..."
        );
    }

    #[test]
    fn restrict_rejects_duplicates_and_empty_lists() {
        let err = restrict_to_features(table(), &names(&["Sst", "Sst"]), STEP).unwrap_err();
        assert!(
            matches!(err, PrepError::Duplicate { ref name, .. } if name == "Sst"),
            "{err}"
        );
        let err = restrict_to_features(table(), &[], STEP).unwrap_err();
        assert!(
            matches!(
                err,
                PrepError::InvalidParameter {
                    field: "features",
                    ..
                }
            ),
            "{err}"
        );
        let mut twice = table();
        twice.features[2] = "Gad1".into();
        let err = restrict_to_features(twice, &names(&["Gad1"]), STEP).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"Gad1\" occurs more than once in the table"),
            "{err}"
        );
    }

    #[test]
    fn drop_cells_removes_named_cells_and_rejects_unknown_ones() {
        let (kept, outcome) = drop_cells(table(), &names(&["c", "a"]), STEP).unwrap();
        assert_eq!(kept.cells, ["b"]);
        assert_eq!(outcome.dropped_cells, ["a", "c"]);
        let err = drop_cells(table(), &names(&["a", "zz"]), STEP).unwrap_err();
        assert!(
            err.to_string()
                .contains("1 of the 2 listed cells are not in the table: zz"),
            "{err}"
        );
    }
}
