//! Confusion matrices between two labelings of the same cells.
//!
//! A [`Confusion`] counts how often each true class met each predicted class.
//! It is stored in results (for the confusion-matrix pane) and is the
//! contingency table the clustering scores in [`super::clustering`] start from.

use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) pairs, with the class names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confusion {
    /// What the matrix compares (e.g. `qda z_E -> rna_family`).
    pub name: String,
    /// Names of the true classes, one per row.
    pub truth: Vec<String>,
    /// Names of the predicted classes (or clusters), one per column.
    pub predicted: Vec<String>,
    /// `counts[row][column]`: cells of true class `row` predicted as `column`.
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// Tabulates two labelings of the same cells. Classes are listed in sorted
    /// order of their names. Returns `None` when the lengths differ.
    pub fn from_labels(name: &str, truth: &[String], predicted: &[String]) -> Option<Confusion> {
        if truth.len() != predicted.len() {
            return None;
        }
        let rows = sorted_unique(truth);
        let columns = sorted_unique(predicted);
        let mut counts = vec![vec![0u64; columns.len()]; rows.len()];
        for (t, p) in truth.iter().zip(predicted) {
            if let (Ok(r), Ok(c)) = (rows.binary_search(t), columns.binary_search(p)) {
                counts[r][c] += 1;
            }
        }
        Some(Confusion {
            name: name.to_string(),
            truth: rows,
            predicted: columns,
            counts,
        })
    }

    /// Tabulates two labelings given as class indices (`0..k`), naming the
    /// classes by the given names. Returns `None` when the lengths differ or an
    /// index has no name.
    pub fn from_indices(
        name: &str,
        truth: &[usize],
        truth_names: &[String],
        predicted: &[usize],
        predicted_names: &[String],
    ) -> Option<Confusion> {
        if truth.len() != predicted.len() {
            return None;
        }
        let mut counts = vec![vec![0u64; predicted_names.len()]; truth_names.len()];
        for (&t, &p) in truth.iter().zip(predicted) {
            *counts.get_mut(t)?.get_mut(p)? += 1;
        }
        Some(Confusion {
            name: name.to_string(),
            truth: truth_names.to_vec(),
            predicted: predicted_names.to_vec(),
            counts,
        })
    }

    /// Number of cells counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Fraction of cells whose predicted class has the same name as their true
    /// class (for classifiers whose classes are the true classes).
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let correct: u64 = self
            .truth
            .iter()
            .enumerate()
            .filter_map(|(r, name)| {
                let c = self.predicted.iter().position(|p| p == name)?;
                Some(self.counts[r][c])
            })
            .sum();
        correct as f64 / total as f64
    }

    /// Each row divided by its sum (rows without cells stay zero).
    pub fn row_normalised(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let sum: u64 = row.iter().sum();
                row.iter()
                    .map(|&c| if sum == 0 { 0.0 } else { c as f64 / sum as f64 })
                    .collect()
            })
            .collect()
    }
}

fn sorted_unique(labels: &[String]) -> Vec<String> {
    let mut unique = labels.to_vec();
    unique.sort();
    unique.dedup();
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn counts_pairs_and_scores_accuracy() {
        let truth = s(&["a", "a", "b", "b", "c"]);
        let pred = s(&["a", "b", "b", "b", "a"]);
        let m = Confusion::from_labels("t", &truth, &pred).unwrap();
        assert_eq!(m.truth, s(&["a", "b", "c"]));
        assert_eq!(m.predicted, s(&["a", "b"]));
        assert_eq!(m.counts, vec![vec![1, 1], vec![0, 2], vec![1, 0]]);
        assert_eq!(m.total(), 5);
        assert!((m.accuracy() - 0.6).abs() < 1e-12);
        assert_eq!(m.row_normalised()[0], vec![0.5, 0.5]);
    }

    #[test]
    fn rejects_mismatched_lengths_and_unknown_indices() {
        assert!(Confusion::from_labels("t", &s(&["a"]), &s(&[])).is_none());
        let names = s(&["x", "y"]);
        assert!(Confusion::from_indices("t", &[0, 2], &names, &[0, 1], &names).is_none());
        let m = Confusion::from_indices("t", &[0, 1, 1], &names, &[0, 1, 0], &names).unwrap();
        assert_eq!(m.counts, vec![vec![1, 0], vec![1, 1]]);
    }
}
