//! The seam between a method and the rest of patchbench.
//!
//! Every method implements [`Method`] on its settings: the session asks it
//! for the method's kind, how many modalities it needs and whether its
//! settings are valid; the batch summary, the runs table and sorting show its
//! [`Headline`] metrics first; trained networks are saved through [`Weights`].
//! `ModelSpec::method` (in the session) is the one place that matches on the
//! kind of a model besides the runner's dispatch.

use std::path::Path;

use crate::nn::NnError;

/// A setting of a method that is out of range, with the field that holds it
/// (relative to the model's settings, e.g. `rank` or `arms[1].hidden`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {message}")]
pub struct SettingError {
    /// The field, relative to the model's settings.
    pub field: String,
    /// What was expected and what was found.
    pub message: String,
}

impl SettingError {
    /// `field` is wrong as `message` says.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        SettingError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A metric a method is judged by: shown in the batch summary and first in
/// the runs table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headline {
    /// Column title (`CV R²`, `family z_E`, ...).
    pub label: &'static str,
    /// Name of the metric in a result's `metrics`.
    pub metric: &'static str,
    /// Name of its standard deviation over folds or seeds, if the result has one.
    pub sd: Option<&'static str>,
}

impl Headline {
    /// A metric without a spread.
    pub const fn plain(label: &'static str, metric: &'static str) -> Self {
        Headline {
            label,
            metric,
            sd: None,
        }
    }

    /// A metric with its standard deviation.
    pub const fn with_sd(label: &'static str, metric: &'static str, sd: &'static str) -> Self {
        Headline {
            label,
            metric,
            sd: Some(sd),
        }
    }
}

/// The headline of the regression methods (sRRR, sBNN): cross-validated R²
/// and the number of genes selected.
pub const REGRESSION_HEADLINE: &[Headline] = &[
    Headline::with_sd("CV R²", "cv_r2_mean", "cv_r2_sd"),
    Headline::plain("genes", "n_genes"),
];

/// The headline of the latent-space methods judged by
/// `analysis::latent_eval` (k-CAE, PC-CCA): family accuracy from `z_E`,
/// cross-modal accuracy and the error of predicting E from T.
pub const LATENT_HEADLINE: &[Headline] = &[
    Headline::with_sd("family z_E", "qda_acc_e_family", "qda_acc_e_family_sd"),
    Headline::with_sd(
        "family z_T→z_E",
        "qda_acc_cross_family",
        "qda_acc_cross_family_sd",
    ),
    Headline::with_sd("E from T", "cross_e_from_t", "cross_e_from_t_sd"),
];

/// What patchbench needs to know about a method, implemented on its settings.
pub trait Method {
    /// Short lower-case name of the method, as in `--json` output (`srrr`, ...).
    fn kind(&self) -> &'static str;

    /// How many modalities the method needs.
    fn modality_count(&self) -> usize;

    /// The most modalities the method takes (more than
    /// [`Method::modality_count`] where the further ones are optional).
    fn max_modalities(&self) -> usize {
        self.modality_count()
    }

    /// Checks the settings that do not depend on the data.
    fn validate(&self) -> Result<(), SettingError>;

    /// The metrics the method is judged by, most important first.
    fn headline(&self) -> &'static [Headline];

    /// The metadata columns the settings name, each with the field that names
    /// it (e.g. `("labels", "rna_type")`); such a method needs metadata.
    fn label_columns(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }

    /// Whether a run writes a model artifact that an `Apply` experiment can use.
    fn has_artifact(&self) -> bool {
        true
    }

    /// The experiment whose trained model this one applies (only `Apply`).
    fn model_from(&self) -> Option<&str> {
        None
    }
}

/// A trained network that is kept beside the session as a safetensors file.
pub trait Weights {
    /// Writes the network to `path`.
    fn save(&self, path: &Path) -> Result<(), NnError>;

    /// Replaces the network's weights with those [`Weights::save`] wrote to `path`.
    fn restore(&mut self, path: &Path) -> Result<(), NnError>;
}
