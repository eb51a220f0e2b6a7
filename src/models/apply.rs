//! The `Apply` experiment kind: a trained model of another experiment of the
//! same session applied to the cells of a new dataset, through the model
//! artifact its run wrote (see [`crate::artifact`]). It trains nothing; its
//! settings say which model and how to line the new data up with it.

use serde::{Deserialize, Serialize};

use super::method::{Headline, Method, SettingError};
use crate::artifact::MissingPolicy;
use crate::artifact::calibrate::CalibrationCells;

/// Settings of an `Apply` experiment. The experiment's `dataset` holds the
/// new cells: its first modality (of `modalities`) is the model's input
/// (e.g. gene counts), an optional second one the measured targets (e.g.
/// electrophysiology) to score the predictions, and its metadata the labels
/// to score predicted classes. The dataset's recipes are not used: the
/// artifact's fitted preprocessing is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplySpec {
    /// The experiment of this session whose trained model is applied.
    pub model_from: String,
    /// What to do with the model's genes the new data lack.
    #[serde(default)]
    pub missing: MissingPolicy,
    /// Cells to fit a per-feature recalibration on (needs measured targets;
    /// reported next to the uncalibrated numbers, never applied).
    #[serde(default)]
    pub calibrate: Option<CalibrationCells>,
    /// Apply the model only to the cells whose metadata column has this
    /// value (a value ending in `*` is a prefix), like `patchbench apply --where`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<CellFilter>,
    /// Where a model gene is not found by its name, look it up in this
    /// column of the input's feature annotation (an `.h5ad`'s `var` column,
    /// or a column of a delimited features-by-cells table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_column: Option<String>,
    /// Apply this cross-validation fold's model (1-based; k-CAE only) instead
    /// of the model on all cells, like `patchbench apply --fold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fold: Option<usize>,
}

/// Cells whose metadata `column` equals `value` (`value*`: starts with `value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellFilter {
    /// The metadata column.
    pub column: String,
    /// The value, or a prefix followed by `*`.
    pub value: String,
}

/// What an application is judged by: R² of the predicted targets, family
/// accuracy from `z_T` (k-CAE), the mixture VAE's consensus accuracy, cells.
pub const APPLY_HEADLINE: &[Headline] = &[
    Headline::plain("R²", "r2"),
    Headline::plain("family z_T", "family_accuracy_z_T"),
    Headline::plain("consensus acc", "consensus_accuracy"),
    Headline::plain("cells", "cells"),
];

impl Method for ApplySpec {
    fn kind(&self) -> &'static str {
        "apply"
    }

    fn modality_count(&self) -> usize {
        1
    }

    fn max_modalities(&self) -> usize {
        2
    }

    fn validate(&self) -> Result<(), SettingError> {
        if self.model_from.trim().is_empty() {
            return Err(SettingError::new(
                "model_from",
                "name the experiment whose model is applied",
            ));
        }
        if let MissingPolicy::Refuse(max) = self.missing
            && !(0.0..=1.0).contains(&max)
        {
            return Err(SettingError::new(
                "missing",
                format!("Refuse takes a fraction from 0 to 1, got {max}"),
            ));
        }
        if let Some(filter) = &self.filter
            && (filter.column.is_empty() || filter.value.is_empty())
        {
            return Err(SettingError::new(
                "filter",
                "needs a metadata column and a value",
            ));
        }
        match &self.calibrate {
            Some(CalibrationCells::Random(0)) => Err(SettingError::new(
                "calibrate",
                "Random needs at least 1 cell, got 0",
            )),
            Some(CalibrationCells::Ids(ids)) if ids.is_empty() => Err(SettingError::new(
                "calibrate",
                "Ids needs at least one cell id",
            )),
            _ => Ok(()),
        }
    }

    fn headline(&self) -> &'static [Headline] {
        APPLY_HEADLINE
    }

    fn model_from(&self) -> Option<&str> {
        Some(&self.model_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> ApplySpec {
        ron::from_str(text).unwrap()
    }

    #[test]
    fn settings_read_from_ron_with_defaults_and_are_checked() {
        let plain = spec(r#"(model_from: "sbnn")"#);
        assert_eq!(plain.missing, MissingPolicy::Refuse(0.05));
        assert_eq!(plain.calibrate, None);
        assert!(plain.validate().is_ok());
        let full = spec(
            r#"(model_from: "cae", missing: Zero, calibrate: Some(Random(20)),
                filter: Some((column: "date", value: "2019*")), alias_column: Some("symbol"))"#,
        );
        let filter = full.filter.as_ref().unwrap();
        assert_eq!(
            (filter.column.as_str(), filter.value.as_str()),
            ("date", "2019*")
        );
        assert_eq!(full.missing, MissingPolicy::Zero);
        assert_eq!(full.calibrate, Some(CalibrationCells::Random(20)));
        assert_eq!(full.alias_column.as_deref(), Some("symbol"));
        let bad = |text: &str| spec(text).validate().unwrap_err().field;
        assert_eq!(bad(r#"(model_from: " ")"#), "model_from");
        assert_eq!(bad(r#"(model_from: "a", missing: Refuse(1.5))"#), "missing");
        assert_eq!(
            bad(r#"(model_from: "a", filter: Some((column: "date", value: "")))"#),
            "filter"
        );
        assert_eq!(
            bad(r#"(model_from: "a", calibrate: Some(Random(0)))"#),
            "calibrate"
        );
    }
}
