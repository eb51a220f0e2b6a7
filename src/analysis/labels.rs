//! The one label encoder: string labels (some missing) to class indices.

/// In which order classes are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassOrder {
    /// In order of first appearance.
    FirstSeen,
    /// Sorted by name.
    Sorted,
}

/// Labels encoded as class indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classes {
    /// The class of every cell; `None` where the label is missing.
    pub codes: Vec<Option<usize>>,
    /// The class names, by index.
    pub names: Vec<String>,
}

impl Classes {
    /// The cells that have a label and their classes, in cell order.
    pub fn labelled(&self) -> (Vec<usize>, Vec<usize>) {
        self.codes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|c| (i, c)))
            .unzip()
    }
}

/// Encodes `labels` (one per cell, `None` where missing), numbering the
/// classes in `order`.
pub fn encode_labels<S: AsRef<str>>(labels: &[Option<S>], order: ClassOrder) -> Classes {
    let mut names: Vec<String> = Vec::new();
    for label in labels.iter().flatten() {
        if !names.iter().any(|n| n == label.as_ref()) {
            names.push(label.as_ref().to_string());
        }
    }
    if order == ClassOrder::Sorted {
        names.sort();
    }
    let codes = labels
        .iter()
        .map(|label| {
            let label = label.as_ref()?;
            names.iter().position(|n| n == label.as_ref())
        })
        .collect();
    Classes { codes, names }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_classes_in_the_order_asked_and_keeps_missing_labels_missing() {
        let labels = [Some("b"), None, Some("a"), Some("b")];
        let seen = encode_labels(&labels, ClassOrder::FirstSeen);
        assert_eq!(seen.codes, vec![Some(0), None, Some(1), Some(0)]);
        assert_eq!(seen.names, vec!["b", "a"]);
        let sorted = encode_labels(&labels, ClassOrder::Sorted);
        assert_eq!(sorted.codes, vec![Some(1), None, Some(0), Some(1)]);
        assert_eq!(sorted.names, vec!["a", "b"]);
        assert_eq!(seen.labelled(), (vec![0, 2, 3], vec![0, 1, 0]));
    }
}
