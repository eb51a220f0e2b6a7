//! The feature-alignment report: how the new data's features line up with
//! what the model was trained on, decided before anything runs. Genes the
//! model needs that the new data lack are listed and handled by an explicit
//! [`MissingPolicy`]; features whose level differs from training by more
//! than [`SCALE_FACTOR`] are counted, and data that look log-transformed
//! when the model saw counts (or the other way round) raise a warning.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::data::FeatureTable;
use crate::prep::{FittedRecipe, Skipped};

/// A feature's mean more than this factor above or below its training mean counts as a scale mismatch.
pub const SCALE_FACTOR: f64 = 10.0;
/// The default share of the model's genes that may be missing before `Refuse` refuses.
pub const DEFAULT_MAX_MISSING: f64 = 0.05;

/// What to do with genes the model needs that the new data lack.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum MissingPolicy {
    /// Treat them as zero counts (read as 0 before the recipe runs).
    Zero,
    /// Give every cell the training mean of the gene (after the recipe).
    TrainingMean,
    /// Refuse when more than this fraction of the model's genes is missing;
    /// below it, use the training mean.
    Refuse(f64),
}

impl Default for MissingPolicy {
    fn default() -> Self {
        MissingPolicy::Refuse(DEFAULT_MAX_MISSING)
    }
}

impl fmt::Display for MissingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MissingPolicy::Zero => write!(f, "zero"),
            MissingPolicy::TrainingMean => write!(f, "training-mean"),
            MissingPolicy::Refuse(max) => write!(f, "refuse:{max}"),
        }
    }
}

impl FromStr for MissingPolicy {
    type Err = String;

    /// `zero`, `training-mean`, `refuse` or `refuse:MAX` (a fraction, e.g. `refuse:0.1`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "zero" => Ok(MissingPolicy::Zero),
            "training-mean" => Ok(MissingPolicy::TrainingMean),
            "refuse" => Ok(MissingPolicy::default()),
            _ => match text.strip_prefix("refuse:").map(str::parse::<f64>) {
                Some(Ok(max)) if (0.0..=1.0).contains(&max) => Ok(MissingPolicy::Refuse(max)),
                _ => Err(format!(
                    "`{text}`: expected zero, training-mean, refuse or refuse:MAX with MAX a fraction from 0 to 1"
                )),
            },
        }
    }
}

/// How the new data's features line up with the model's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignmentReport {
    /// Cells in the new data (after any metadata filter).
    pub cells: usize,
    /// Whether the file held genes in rows (transposed on reading).
    pub transposed: bool,
    /// Genes the model's network reads.
    pub model_genes: usize,
    /// Those the new data lack, in the model's order.
    pub missing: Vec<String>,
    /// The alias column looked in for genes not found by name, if any.
    #[serde(default)]
    pub alias_column: Option<String>,
    /// Features found through it: (the model's name, the data's primary name).
    #[serde(default)]
    pub aliased: Vec<(String, String)>,
    /// Features the preprocessing reads (e.g. the library-size sum).
    pub recipe_features: usize,
    /// How many of those the new data lack (treated as zero counts).
    pub recipe_missing: usize,
    /// Features whose mean is more than [`SCALE_FACTOR`] away from training.
    pub scale_mismatch: Vec<String>,
    /// Warnings (scale, log transform).
    pub warnings: Vec<String>,
    /// The policy for missing genes.
    pub policy: MissingPolicy,
    /// Cells the preprocessing could not handle, skipped.
    pub skipped: Skipped,
}

impl AlignmentReport {
    /// Human-readable lines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{} cells{}; model genes: {} of {} present; preprocessing features: {} of {} present",
            self.cells,
            if self.transposed {
                " (genes in rows)"
            } else {
                ""
            },
            self.model_genes - self.missing.len(),
            self.model_genes,
            self.recipe_features - self.recipe_missing,
            self.recipe_features
        )];
        if let Some(column) = &self.alias_column {
            let names: Vec<String> = self
                .aliased
                .iter()
                .map(|(model, data)| format!("{model} ({data})"))
                .collect();
            lines.push(format!(
                "matched through alias column `{column}` ({}){}{}",
                self.aliased.len(),
                if names.is_empty() { "" } else { ": " },
                sample(&names)
            ));
        }
        if !self.missing.is_empty() {
            lines.push(format!(
                "missing model genes ({}): {}",
                self.missing.len(),
                self.missing.join(", ")
            ));
        }
        lines.push(format!("missing-gene policy: {}", self.policy));
        if !self.scale_mismatch.is_empty() {
            lines.push(format!(
                "{} features with a mean more than {SCALE_FACTOR}x away from training (e.g. {})",
                self.scale_mismatch.len(),
                sample(&self.scale_mismatch)
            ));
        }
        for warning in &self.warnings {
            lines.push(format!("warning: {warning}"));
        }
        if !self.skipped.zero_library.is_empty() {
            lines.push(format!(
                "skipped {} cells with zero library size: {}",
                self.skipped.zero_library.len(),
                sample(&self.skipped.zero_library)
            ));
        }
        if !self.skipped.missing_values.is_empty() {
            lines.push(format!(
                "skipped {} cells with missing values: {}",
                self.skipped.missing_values.len(),
                sample(&self.skipped.missing_values)
            ));
        }
        lines
    }
}

fn sample(names: &[String]) -> String {
    let mut text = names.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 8 {
        text.push_str(&format!(", ... ({} more)", names.len() - 8));
    }
    text
}

/// Why new data cannot be aligned with the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlignError {
    /// The data share no feature with the model.
    #[error(
        "the data share none of the {needed} features the model reads (e.g. {example}); \
         are the feature names of the same kind (symbols, not Ensembl ids)?"
    )]
    NoSharedFeatures {
        /// Features the model reads.
        needed: usize,
        /// The first of them.
        example: String,
    },
    /// Too many of the model's genes are missing for the `Refuse` policy.
    #[error(
        "{missing} of the model's {needed} genes are missing ({percent:.1}%, more than the {max_percent:.1}% allowed): {names}; \
         pass --missing zero or --missing training-mean to apply anyway, or --missing refuse:MAX to allow more"
    )]
    TooManyMissing {
        /// Missing genes.
        missing: usize,
        /// Genes the model reads.
        needed: usize,
        /// Missing share in percent.
        percent: f64,
        /// The policy's limit in percent.
        max_percent: f64,
        /// Their names.
        names: String,
    },
}

/// The new data aligned with a model's fitted recipe.
#[derive(Debug, Clone)]
pub struct Aligned {
    /// Cells × the recipe's inputs, missing features as zeros.
    pub table: FeatureTable,
    /// The report so far (skipped cells are filled in after the recipe).
    pub report: AlignmentReport,
}

/// Lines `raw` (cells × features) up with `recipe`'s inputs for a model
/// whose network reads `model_genes` (prepared features of `recipe`).
pub fn align(
    raw: &FeatureTable,
    recipe: &FittedRecipe,
    model_genes: &[String],
    policy: MissingPolicy,
    transposed: bool,
) -> Result<Aligned, AlignError> {
    let index: HashMap<&str, usize> = raw
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    let columns: Vec<Option<usize>> = recipe
        .inputs
        .iter()
        .map(|f| index.get(f.as_str()).copied())
        .collect();
    if columns.iter().all(Option::is_none) {
        return Err(AlignError::NoSharedFeatures {
            needed: recipe.inputs.len(),
            example: recipe.inputs.first().cloned().unwrap_or_default(),
        });
    }
    let missing: Vec<String> = model_genes
        .iter()
        .filter(|g| !index.contains_key(g.as_str()))
        .cloned()
        .collect();
    if let MissingPolicy::Refuse(max) = policy {
        let share = missing.len() as f64 / model_genes.len().max(1) as f64;
        if share > max {
            return Err(AlignError::TooManyMissing {
                missing: missing.len(),
                needed: model_genes.len(),
                percent: 100.0 * share,
                max_percent: 100.0 * max,
                names: missing.join(", "),
            });
        }
    }
    let mut values = Array2::zeros((raw.cells.len(), recipe.inputs.len()));
    for (j, column) in columns.iter().enumerate() {
        if let Some(c) = column {
            values.column_mut(j).assign(&raw.values.column(*c));
        }
    }
    let (scale_mismatch, warnings) = scale_checks(&values, &columns, recipe);
    let report = AlignmentReport {
        cells: raw.cells.len(),
        transposed,
        model_genes: model_genes.len(),
        missing,
        alias_column: None,
        aliased: Vec::new(),
        recipe_features: recipe.inputs.len(),
        recipe_missing: columns.iter().filter(|c| c.is_none()).count(),
        scale_mismatch,
        warnings,
        policy,
        skipped: Skipped::default(),
    };
    let table = FeatureTable {
        cells: raw.cells.clone(),
        features: recipe.inputs.clone(),
        values,
    };
    Ok(Aligned { table, report })
}

/// Features whose mean is far from training, and warnings about a log transform.
fn scale_checks(
    values: &Array2<f64>,
    columns: &[Option<usize>],
    recipe: &FittedRecipe,
) -> (Vec<String>, Vec<String>) {
    let mut mismatch = Vec::new();
    let mut new_max = f64::NEG_INFINITY;
    let mut train_max = f64::NEG_INFINITY;
    let mut fractional = false;
    for (j, column) in columns.iter().enumerate() {
        if column.is_none() {
            continue;
        }
        let finite: Vec<f64> = values
            .column(j)
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        new_max = finite.iter().copied().fold(new_max, f64::max);
        fractional |= finite.iter().any(|v| v.fract() != 0.0);
        let (train_mean, max) = (recipe.input_means[j], recipe.input_max[j]);
        train_max = train_max.max(max);
        let far = mean > 0.0
            && train_mean > 0.0
            && (mean / train_mean > SCALE_FACTOR || train_mean / mean > SCALE_FACTOR);
        if far {
            mismatch.push(recipe.inputs[j].clone());
        }
    }
    let logs_in_recipe = recipe.steps.iter().any(|s| {
        matches!(
            s,
            crate::prep::FittedStep::Log2p1 | crate::prep::FittedStep::Log1p
        )
    });
    let mut warnings = Vec::new();
    if logs_in_recipe && train_max > 100.0 && new_max <= 25.0 && fractional {
        warnings.push(format!(
            "the data look log-transformed (largest value {new_max:.3}, not whole numbers) while the model \
             was trained on counts (largest value {train_max:.0}): pass the counts, or the predictions are meaningless"
        ));
    } else if train_max <= 25.0 && new_max > 1000.0 {
        warnings.push(format!(
            "the data look like counts (largest value {new_max:.0}) while the model was trained on \
             values up to {train_max:.3} (log-transformed?)"
        ));
    }
    (mismatch, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        assert_eq!("zero".parse(), Ok(MissingPolicy::Zero));
        assert_eq!("training-mean".parse(), Ok(MissingPolicy::TrainingMean));
        assert_eq!("refuse".parse(), Ok(MissingPolicy::Refuse(0.05)));
        assert_eq!("refuse:0.25".parse(), Ok(MissingPolicy::Refuse(0.25)));
        assert!("refuse:2".parse::<MissingPolicy>().is_err());
        assert!("drop".parse::<MissingPolicy>().is_err());
        assert_eq!(MissingPolicy::Refuse(0.25).to_string(), "refuse:0.25");
    }
}
