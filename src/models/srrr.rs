//! Sparse reduced-rank regression (sRRR), the linear baseline of the sBNN paper.
//!
//! `Y ≈ X W Vᵀ` with `VᵀV = I` and a group lasso on the rows of `W` (one gene
//! across all components), fitted at glmnet's `1/(2n)` scale so that the paper's
//! λ grid selects the same number of genes. [`moments`] holds the covariance
//! form the solvers work on, [`group_lasso`] the W-step, [`procrustes`] the
//! V-step, [`ridge`] the closed-form relaxed refit, [`fit`] the alternating
//! algorithm and [`cv`] the paper's λ-selection protocol. This file holds the
//! configuration and the module's error type.

pub mod cv;
pub mod fit;
pub mod group_lasso;
pub mod moments;
pub mod procrustes;
pub mod ridge;

pub use cv::{FinalFit, LambdaRow, RankedGene, SrrrCvResult, SrrrSelection, cross_validate};
pub use fit::{SrrrFit, fit};

use serde::{Deserialize, Serialize};

use super::{Headline, Method, SettingError, method};
use crate::analysis::r2::R2Error;
use crate::analysis::scaling::ScalingError;

/// Settings of an sRRR run; the defaults are the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SrrrConfig {
    /// Number of latent components `r` (columns of `W` and `V`).
    pub rank: usize,
    /// Elastic-net mixing: 1 is a pure group lasso, 0 pure ridge.
    pub alpha: f64,
    /// Penalty strengths to try, at glmnet's `1/(2n)` scale.
    pub lambdas: Vec<f64>,
    /// The number of genes λ is chosen to select.
    pub target_genes: usize,
    /// Accepted distance of the fold-mean gene count from `target_genes`.
    pub tolerance: f64,
    /// Score the ridge refit on the selected genes (relaxed sRRR).
    pub relaxed: bool,
    /// Maximum alternations of W- and V-steps.
    pub max_iter: usize,
    /// Stop when the relative loss changes by less than this.
    pub tol: f64,
}

impl Default for SrrrConfig {
    fn default() -> Self {
        Self {
            rank: 2,
            alpha: 1.0,
            lambdas: (1..=19).map(|i| f64::from(i) / 10.0).collect(),
            target_genes: 25,
            tolerance: 3.0,
            relaxed: true,
            max_iter: 100,
            tol: 1e-6,
        }
    }
}

impl SrrrConfig {
    /// Checks the settings against data with `predictors` columns (genes
    /// after preprocessing) and `responses` columns.
    pub fn validate_for(&self, predictors: usize, responses: usize) -> Result<(), SrrrError> {
        self.validate()?;
        check_rank(self.rank, predictors, responses)
    }

    /// Checks the settings that do not depend on the data.
    pub fn validate(&self) -> Result<(), SrrrError> {
        if self.rank == 0 {
            return Err(SrrrError::ZeroRank);
        }
        if self.lambdas.is_empty() {
            return Err(SrrrError::EmptyLambdaGrid);
        }
        if let Some((index, &value)) = self
            .lambdas
            .iter()
            .enumerate()
            .find(|(_, l)| !(l.is_finite() && **l >= 0.0))
        {
            return Err(SrrrError::InvalidLambda { index, value });
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(SrrrError::AlphaOutOfRange { alpha: self.alpha });
        }
        if !(self.tolerance.is_finite() && self.tolerance >= 0.0) {
            return Err(SrrrError::InvalidSetting {
                field: "tolerance",
                expected: "a finite number >= 0",
                value: self.tolerance,
            });
        }
        if self.max_iter == 0 {
            return Err(SrrrError::InvalidSetting {
                field: "max_iter",
                expected: "at least 1",
                value: 0.0,
            });
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(SrrrError::InvalidSetting {
                field: "tol",
                expected: "a finite number > 0",
                value: self.tol,
            });
        }
        Ok(())
    }
}

impl Method for SrrrConfig {
    fn kind(&self) -> &'static str {
        "srrr"
    }

    fn modality_count(&self) -> usize {
        2
    }

    fn validate(&self) -> Result<(), SettingError> {
        SrrrConfig::validate(self).map_err(|error| {
            let field = match &error {
                SrrrError::ZeroRank
                | SrrrError::RankExceedsPredictors { .. }
                | SrrrError::RankExceedsResponses { .. } => "rank".into(),
                SrrrError::InvalidLambda { index, .. } => format!("lambdas[{index}]"),
                SrrrError::AlphaOutOfRange { .. } => "alpha".into(),
                SrrrError::InvalidSetting { field, .. } => (*field).into(),
                _ => "lambdas".into(),
            };
            SettingError::new(field, error.to_string())
        })
    }

    fn headline(&self) -> &'static [Headline] {
        method::REGRESSION_HEADLINE
    }
}

/// A rank of at most the number of predictors and of responses.
pub(crate) fn check_rank(
    rank: usize,
    predictors: usize,
    responses: usize,
) -> Result<(), SrrrError> {
    if rank == 0 {
        return Err(SrrrError::ZeroRank);
    }
    if rank > predictors {
        return Err(SrrrError::RankExceedsPredictors { rank, predictors });
    }
    if rank > responses {
        return Err(SrrrError::RankExceedsResponses { rank, responses });
    }
    Ok(())
}

/// Everything that can go wrong in sRRR.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SrrrError {
    /// `rank` is zero.
    #[error("sRRR rank must be at least 1, got 0")]
    ZeroRank,
    /// `rank` exceeds the number of predictors (genes after preprocessing).
    #[error(
        "sRRR setting `rank` = {rank} exceeds the number of genes after preprocessing ({predictors}); lower `rank` or keep more genes"
    )]
    RankExceedsPredictors {
        /// The requested rank.
        rank: usize,
        /// Columns of X.
        predictors: usize,
    },
    /// `rank` exceeds the number of response columns.
    #[error("sRRR rank {rank} exceeds the number of response features ({responses})")]
    RankExceedsResponses {
        /// The requested rank.
        rank: usize,
        /// Columns of Y.
        responses: usize,
    },
    /// The λ grid is empty.
    #[error("the sRRR lambda grid is empty; give at least one lambda")]
    EmptyLambdaGrid,
    /// A λ is negative or not finite.
    #[error("sRRR lambdas[{index}] = {value} is invalid: expected a finite number >= 0")]
    InvalidLambda {
        /// Position in the grid.
        index: usize,
        /// The value given.
        value: f64,
    },
    /// α outside `[0, 1]`.
    #[error("sRRR alpha = {alpha} is invalid: expected a number in [0, 1]")]
    AlphaOutOfRange {
        /// The value given.
        alpha: f64,
    },
    /// Another setting is out of range.
    #[error("sRRR setting `{field}` = {value} is invalid: expected {expected}")]
    InvalidSetting {
        /// The field's name.
        field: &'static str,
        /// What is accepted.
        expected: &'static str,
        /// The value given.
        value: f64,
    },
    /// X and Y do not describe the same cells, or are empty.
    #[error(
        "sRRR needs X and Y with the same, non-zero number of rows and at least one column: X is {x_rows}x{x_cols}, Y is {y_rows}x{y_cols}"
    )]
    ShapeMismatch {
        /// Rows of X.
        x_rows: usize,
        /// Columns of X.
        x_cols: usize,
        /// Rows of Y.
        y_rows: usize,
        /// Columns of Y.
        y_cols: usize,
    },
    /// An input holds NaN or ±∞.
    #[error("sRRR input {matrix} has a non-finite value at row {row}, column {column}")]
    NonFiniteInput {
        /// Which matrix ("X" or "Y").
        matrix: &'static str,
        /// Row of the value.
        row: usize,
        /// Column of the value.
        column: usize,
    },
    /// A result became NaN or ±∞.
    #[error("sRRR produced a non-finite {what} at lambda = {lambda}")]
    NonFiniteOutput {
        /// What was non-finite.
        what: &'static str,
        /// The penalty being fitted.
        lambda: f64,
    },
    /// A matrix decomposition failed.
    #[error("sRRR {step} failed: {reason}")]
    Decomposition {
        /// Which step.
        step: &'static str,
        /// The solver's message.
        reason: String,
    },
    /// A fold scaling failed.
    #[error("{}", fold.map_or("final fit on all cells".to_string(), |f| format!("fold {f}")))]
    Scaling {
        /// The fold's index; None for the final fit on all cells.
        fold: Option<usize>,
        /// What went wrong.
        source: ScalingError,
    },
    /// Scoring failed.
    #[error("fold {fold}")]
    Score {
        /// The fold's index.
        fold: usize,
        /// What went wrong.
        source: R2Error,
    },
    /// No folds were given.
    #[error("sRRR cross-validation needs at least one fold")]
    NoFolds,
    /// The user stopped the run.
    #[error("sRRR run cancelled")]
    Cancelled,
    /// A worker thread died.
    #[error("an sRRR worker thread stopped unexpectedly")]
    WorkerFailed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers() {
        let config = SrrrConfig::default();
        assert_eq!(config.lambdas.len(), 19);
        assert_eq!(config.lambdas[0], 0.1);
        assert_eq!(config.lambdas[18], 1.9);
        assert_eq!((config.target_genes, config.tolerance), (25, 3.0));
        assert!(config.relaxed && config.alpha == 1.0 && config.max_iter == 100);
        assert!(config.validate_for(1000, 16).is_ok());
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = SrrrConfig::default();
        let with = |f: &dyn Fn(&mut SrrrConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate_for(1000, 16)
        };
        assert_eq!(with(&|c| c.rank = 0), Err(SrrrError::ZeroRank));
        assert_eq!(
            with(&|c| c.rank = 17),
            Err(SrrrError::RankExceedsResponses {
                rank: 17,
                responses: 16
            })
        );
        assert_eq!(
            ok.validate_for(1, 16),
            Err(SrrrError::RankExceedsPredictors {
                rank: 2,
                predictors: 1
            })
        );
        assert_eq!(
            with(&|c| c.lambdas.clear()),
            Err(SrrrError::EmptyLambdaGrid)
        );
        assert_eq!(
            with(&|c| c.lambdas[3] = -0.5),
            Err(SrrrError::InvalidLambda {
                index: 3,
                value: -0.5
            })
        );
        assert_eq!(
            with(&|c| c.alpha = 1.5),
            Err(SrrrError::AlphaOutOfRange { alpha: 1.5 })
        );
        assert!(matches!(
            with(&|c| c.alpha = f64::NAN),
            Err(SrrrError::AlphaOutOfRange { .. })
        ));
        assert!(matches!(
            with(&|c| c.tol = 0.0),
            Err(SrrrError::InvalidSetting { field: "tol", .. })
        ));
        let message = with(&|c| c.lambdas[3] = -0.5).unwrap_err().to_string();
        assert!(message.contains("lambdas[3]"));
    }

    #[test]
    fn config_round_trips_through_ron_and_rejects_unknown_fields() {
        let config = SrrrConfig {
            rank: 16,
            ..SrrrConfig::default()
        };
        let text = ron::to_string(&config).unwrap();
        assert_eq!(ron::from_str::<SrrrConfig>(&text).unwrap(), config);
        let partial: SrrrConfig = ron::from_str("(rank: 3)").unwrap();
        assert_eq!(partial.rank, 3);
        assert_eq!(partial.lambdas, SrrrConfig::default().lambdas);
        assert!(ron::from_str::<SrrrConfig>("(rnak: 3)").is_err());
    }
}
