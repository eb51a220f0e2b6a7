//! The one error type of preprocessing. Every variant says where in the
//! recipe it arose (the step's index in `steps` and its kind, or the final
//! standardisation) and which feature, cell or field is involved, so a user
//! can fix the RON recipe or the data without reading code.

use std::fmt;

use super::memory::Bytes;

/// Where in a recipe an error arose: the step's 0-based index in the
/// recipe's `steps` list and the step's kind, e.g. `steps[2] (SelectGenes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepId {
    /// 0-based position in [`Recipe::steps`](super::Recipe::steps).
    pub index: usize,
    /// The step's variant name, as written in RON.
    pub kind: &'static str,
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "steps[{}] ({})", self.index, self.kind)
    }
}

/// Why a recipe could not be applied to a table.
#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    /// The input table's names do not match the shape of its matrix.
    #[error(
        "the input table has {cells} cell ids and {features} feature names \
         but a {rows} x {columns} matrix"
    )]
    Shape {
        /// Number of cell ids.
        cells: usize,
        /// Number of feature names.
        features: usize,
        /// Rows of the matrix.
        rows: usize,
        /// Columns of the matrix.
        columns: usize,
    },
    /// The input, or the table left by a step, has no cells or no features.
    #[error(
        "{stage} leaves {cells} cells and {features} features; \
         a model matrix needs at least one of each"
    )]
    Empty {
        /// `the input` or the step, e.g. `steps[0] (DropCellsWithMissing)`.
        stage: String,
        /// Cells left.
        cells: usize,
        /// Features left.
        features: usize,
    },
    /// A step's parameter is out of range.
    #[error("{step}: field `{field}`: {message}")]
    InvalidParameter {
        /// The step.
        step: StepId,
        /// The RON field name.
        field: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// `ExcludeFeatures` was given a pattern that is not a regular expression.
    #[error("{step}: field `pattern`: {pattern:?} is not a valid regular expression: {message}")]
    InvalidRegex {
        /// The step.
        step: StepId,
        /// The pattern as written.
        pattern: String,
        /// The regex crate's explanation.
        message: String,
    },
    /// A step names features or cells that the table does not have.
    #[error(
        "{step}: field `{field}`: {count} of the {listed} listed {what} are not in the table: {}{}",
        .examples.join(", "),
        if *.count > .examples.len() { ", ..." } else { "" }
    )]
    Unknown {
        /// The step.
        step: StepId,
        /// The RON field name.
        field: &'static str,
        /// `features` or `cells`.
        what: &'static str,
        /// How many names are missing.
        count: usize,
        /// How many names the field lists.
        listed: usize,
        /// The first few missing names.
        examples: Vec<String>,
    },
    /// A name that must be unique occurs twice.
    #[error("{step}: {what} {name:?} occurs more than once in {place}")]
    Duplicate {
        /// The step.
        step: StepId,
        /// `feature` or `cell`.
        what: &'static str,
        /// The repeated name.
        name: String,
        /// `the table` or the RON field, e.g. `field \`features\``.
        place: &'static str,
    },
    /// A value that the step cannot handle.
    #[error("{step}: cell {cell:?}, feature {feature:?} has value {value}; expected {expected}")]
    BadValue {
        /// The step.
        step: StepId,
        /// The cell id.
        cell: String,
        /// The feature name.
        feature: String,
        /// The offending value.
        value: f64,
        /// What the step needs.
        expected: &'static str,
    },
    /// `LibrarySizeNormalise` met a cell whose counts sum to zero.
    #[error(
        "{step}: cell {cell:?} has library size 0 over the current {features} features, \
         so it cannot be normalised; put a DropZeroLibrary step before this one"
    )]
    ZeroLibrary {
        /// The step.
        step: StepId,
        /// The cell id.
        cell: String,
        /// Number of features summed over.
        features: usize,
    },
    /// Mean-dropout selection cannot select as many genes as asked.
    #[error(
        "{step}: field `n`: only {possible} genes lie above the mean-dropout curve at any \
         offset ({eligible} genes are detected in enough cells), so n = {n} cannot be reached; \
         lower `n`, `at_least` or `y_offset`"
    )]
    SelectionUnreachable {
        /// The step.
        step: StepId,
        /// The requested number of genes.
        n: usize,
        /// Genes detected in at least `at_least` cells.
        eligible: usize,
        /// The most genes any offset selects.
        possible: usize,
    },
    /// Bisection could not select exactly `n` genes, because of tied genes.
    #[error(
        "{step}: field `n`: no offset selects exactly {n} genes (tied genes); \
         the nearest was {nearest} genes at x0 = {x0}"
    )]
    SelectionNotExact {
        /// The step.
        step: StepId,
        /// The requested number of genes.
        n: usize,
        /// The count selected at the last offset tried.
        nearest: usize,
        /// The last offset tried.
        x0: f64,
    },
    /// `Standardise::AllCells` met a constant column.
    #[error(
        "standardise (AllCells): feature {feature:?} is constant over all {cells} cells, \
         so it cannot be z-scored; drop it first with a DropConstantFeatures step"
    )]
    ZeroVariance {
        /// The feature name.
        feature: String,
        /// Number of cells.
        cells: usize,
    },
    /// A feature's values are too large to z-score: their spread overflows.
    #[error(
        "feature {feature:?} has values too large to standardise (largest magnitude {max_abs:e}): \
         their variance overflows; rescale or log-transform the feature"
    )]
    TooLarge {
        /// The feature name.
        feature: String,
        /// Its largest absolute value.
        max_abs: f64,
    },
    /// Densifying the sparse table would need more memory than is available.
    #[error(
        "{stage} needs the table dense: {cells} cells x {features} features, {needed} as f64, \
         more than the {available} of memory available; select genes while the table is still \
         sparse (a SelectGenes step, e.g. SelectGenes(n: 2000, method: Seurat()) after \
         LibrarySizeNormalise and Log1p) or exclude features before this point; at the end of \
         the recipe, `keep_sparse: true` hands the mixture VAE or the k-CAE the table sparse"
    )]
    DenseTooLarge {
        /// Where: the end of the recipe, or the step that needs the dense table.
        stage: String,
        /// Cells of the dense table.
        cells: usize,
        /// Features of the dense table.
        features: usize,
        /// Bytes the dense table needs.
        needed: Bytes,
        /// Bytes the kernel reports available.
        available: Bytes,
    },
    /// A missing or infinite value is left after all steps.
    #[error(
        "after all steps, cell {cell:?}, feature {feature:?} is {value}; a model matrix must \
         be finite: add a DropCellsWithMissing or DropFeaturesWithMissing step"
    )]
    NotFinite {
        /// The cell id.
        cell: String,
        /// The feature name.
        feature: String,
        /// The value (NaN or infinite).
        value: f64,
    },
}
