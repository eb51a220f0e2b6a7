use super::{FeatureTable, Metadata};

/// One measured modality (e.g. `T` for transcriptome, `E` for electrophysiology).
#[derive(Debug, Clone, PartialEq)]
pub struct Modality {
    /// Short name used in sessions and model configs.
    pub name: String,
    /// The cells x features values.
    pub table: FeatureTable,
}

/// Named modalities measured on overlapping sets of cells, plus per-cell labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The modalities, in the order the session lists them.
    pub modalities: Vec<Modality>,
    /// Per-cell labels, if the session names a metadata file.
    pub metadata: Option<Metadata>,
}

/// How the cells of two modalities match up by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairing {
    /// Row indices `(in a, in b)` of cells present in both, in `a`'s order.
    pub paired: Vec<(usize, usize)>,
    /// Rows of `a` whose cell is absent from `b`.
    pub only_a: Vec<usize>,
    /// Rows of `b` whose cell is absent from `a`.
    pub only_b: Vec<usize>,
}
