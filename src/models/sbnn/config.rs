//! sBNN settings (the paper's values by default) and their validation.

use serde::{Deserialize, Serialize};

use super::SbnnError;

/// Which pre-training weights the regression starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PretrainWeights {
    /// The last pre-training epoch (what the reference code does).
    Last,
    /// The epoch with the lowest unpenalised validation cross-entropy (what the paper says).
    BestValidation,
}

/// Settings of an sBNN run. Every stage of the published schedule is a field;
/// the defaults are the paper's (sbnn.md §3–4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SbnnConfig {
    /// Widths of the ELU encoder layers before the bottleneck.
    pub encoder: Vec<usize>,
    /// Width of the linear bottleneck.
    pub latent: usize,
    /// Widths of the ELU decoder layers after the bottleneck.
    pub decoder: Vec<usize>,
    /// Group-lasso strength on the rows of the first layer (until pruning).
    pub group_lasso: f64,
    /// L2 strength on every kernel and every bias except the output bias.
    pub l2: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Pre-train as a classifier of k-means clusters of the targets.
    pub pretrain: bool,
    /// Number of k-means clusters (K).
    pub clusters: usize,
    /// k-means++ restarts.
    pub kmeans_restarts: usize,
    /// Seed of the k-means restarts.
    pub kmeans_seed: u64,
    /// Cells of clusters smaller than this are left out of pre-training.
    pub min_cluster_size: usize,
    /// Fraction of the pre-training cells (the last ones) held out for validation.
    pub validation_fraction: f64,
    /// Pre-training epochs.
    pub pretrain_epochs: usize,
    /// Pre-training learning rate.
    pub pretrain_lr: f64,
    /// Which pre-training epoch's weights are kept.
    pub pretrain_weights: PretrainWeights,
    /// Epochs with the first two layers frozen (after pre-training; without
    /// pre-training these run with every layer trainable).
    pub frozen_epochs: usize,
    /// Learning rate of the frozen phase.
    pub frozen_lr: f64,
    /// Epochs with every layer trainable, before pruning.
    pub unfrozen_epochs: usize,
    /// Learning rate of the unfrozen phase (fresh Adam state).
    pub unfrozen_lr: f64,
    /// Genes kept when pruning the first layer.
    pub genes: usize,
    /// Epochs after pruning, without the group lasso.
    pub pruned_epochs: usize,
    /// Learning rate after pruning (fresh Adam state).
    pub pruned_lr: f64,
    /// Seed of the weights and the batch shuffles.
    pub seed: u64,
    /// Points per axis of the grid over the latent plane on which the decoder's
    /// predictions are reported.
    pub grid: usize,
    /// Reproduce the reference code's leak: fit the k-means labels on all
    /// cells, test folds included.
    pub leak_kmeans_on_all_cells: bool,
    /// Reproduce the reference code's leak: report each fold at the epoch
    /// with the best test-fold R² after pruning instead of the last epoch.
    pub leak_checkpoint_on_test_fold: bool,
}

impl Default for SbnnConfig {
    fn default() -> Self {
        SbnnConfig {
            encoder: vec![512, 128],
            latent: 2,
            decoder: vec![128, 512],
            group_lasso: 0.1,
            l2: 1e-10,
            batch_size: 32,
            pretrain: true,
            clusters: 20,
            kmeans_restarts: 100,
            kmeans_seed: 17,
            min_cluster_size: 10,
            validation_fraction: 0.4,
            pretrain_epochs: 50,
            pretrain_lr: 1e-4,
            pretrain_weights: PretrainWeights::Last,
            frozen_epochs: 50,
            frozen_lr: 1e-4,
            unfrozen_epochs: 50,
            unfrozen_lr: 5e-5,
            genes: 25,
            pruned_epochs: 100,
            pruned_lr: 5e-5,
            seed: 0,
            grid: 41,
            leak_kmeans_on_all_cells: false,
            leak_checkpoint_on_test_fold: false,
        }
    }
}

/// More regression epochs than anyone trains for: a typo, refused.
const MAX_EPOCHS: usize = 1_000_000;

impl SbnnConfig {
    /// Regression epochs in all (frozen + unfrozen + pruned); saturates
    /// rather than overflowing, so [`SbnnConfig::validate`] can refuse it.
    pub fn regression_epochs(&self) -> usize {
        self.prune_epoch().saturating_add(self.pruned_epochs)
    }

    /// The epoch (0-based, counted over regression epochs) at which the first layer is pruned.
    pub fn prune_epoch(&self) -> usize {
        self.frozen_epochs.saturating_add(self.unfrozen_epochs)
    }

    /// Checks the settings that do not depend on the data.
    pub fn validate(&self) -> Result<(), SbnnError> {
        let bad = |field: &'static str, expected: &'static str, value: String| {
            Err(SbnnError::InvalidSetting {
                field,
                expected,
                value,
            })
        };
        if self.genes == 0 {
            return bad("genes", "at least 1 gene to keep", "0".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size", "at least 1", "0".into());
        }
        if self.latent == 0 {
            return bad("latent", "at least 1 dimension", "0".into());
        }
        if self.encoder.contains(&0) || self.decoder.contains(&0) {
            return bad(
                "encoder/decoder",
                "positive layer widths",
                format!("{:?} / {:?}", self.encoder, self.decoder),
            );
        }
        for (field, lr) in [
            ("pretrain_lr", self.pretrain_lr),
            ("frozen_lr", self.frozen_lr),
            ("unfrozen_lr", self.unfrozen_lr),
            ("pruned_lr", self.pruned_lr),
        ] {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(field, "a finite learning rate > 0", lr.to_string());
            }
        }
        for (field, value) in [("group_lasso", self.group_lasso), ("l2", self.l2)] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, "a finite number >= 0", value.to_string());
            }
        }
        let epochs = self.regression_epochs();
        if epochs == 0 || epochs > MAX_EPOCHS {
            return bad(
                "frozen_epochs + unfrozen_epochs + pruned_epochs",
                "between 1 and 1,000,000 regression epochs",
                epochs.to_string(),
            );
        }
        if self.pretrain {
            if self.clusters < 2 {
                return bad("clusters", "at least 2", self.clusters.to_string());
            }
            if self.kmeans_restarts == 0 {
                return bad("kmeans_restarts", "at least 1", "0".into());
            }
            if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
                return bad(
                    "validation_fraction",
                    "a number strictly between 0 and 1",
                    self.validation_fraction.to_string(),
                );
            }
        }
        if self.grid < 2 {
            return bad("grid", "at least 2 points per axis", self.grid.to_string());
        }
        Ok(())
    }

    /// Checks the settings against data with `genes` inputs and `cells` training cells.
    pub fn validate_for(&self, genes: usize, cells: usize) -> Result<(), SbnnError> {
        self.validate()?;
        if self.genes > genes {
            return Err(SbnnError::TooManyGenes {
                keep: self.genes,
                inputs: genes,
            });
        }
        if self.batch_size > cells {
            return Err(SbnnError::BatchTooLarge {
                batch: self.batch_size,
                cells,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_valid() {
        let c = SbnnConfig::default();
        assert_eq!(
            (c.encoder.clone(), c.latent, c.decoder.clone()),
            (vec![512, 128], 2, vec![128, 512])
        );
        assert_eq!(
            (c.group_lasso, c.batch_size, c.genes, c.clusters),
            (0.1, 32, 25, 20)
        );
        assert_eq!((c.prune_epoch(), c.regression_epochs()), (100, 200));
        assert!(c.validate_for(1000, 1092).is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let with = |f: &dyn Fn(&mut SbnnConfig)| {
            let mut c = SbnnConfig::default();
            f(&mut c);
            c.validate_for(1000, 1000).unwrap_err().to_string()
        };
        assert!(with(&|c| c.genes = 0).contains("genes"));
        assert!(with(&|c| c.genes = 1001).contains("1001 genes"));
        assert!(with(&|c| c.unfrozen_lr = -1e-4).contains("unfrozen_lr"));
        assert!(with(&|c| c.pruned_lr = 0.0).contains("pruned_lr"));
        assert!(with(&|c| c.batch_size = 1001).contains("batch"));
        assert!(with(&|c| c.validation_fraction = 1.0).contains("validation_fraction"));
    }

    #[test]
    fn config_round_trips_through_ron() {
        let c: SbnnConfig = ron::from_str("(genes: 10, seed: 3)").unwrap();
        assert_eq!((c.genes, c.seed, c.batch_size), (10, 3, 32));
        assert_eq!(
            ron::from_str::<SbnnConfig>(&ron::to_string(&c).unwrap()).unwrap(),
            c
        );
        assert!(ron::from_str::<SbnnConfig>("(gnes: 10)").is_err());
    }

    /// Issue 19: epoch counts whose sum overflows `usize` (found by the fuzz
    /// test) are refused with the field named, not a panic.
    #[test]
    fn issue_19_epoch_counts_that_overflow_are_refused() {
        let c = SbnnConfig {
            frozen_epochs: usize::MAX,
            unfrozen_epochs: 1,
            ..SbnnConfig::default()
        };
        let error = c.validate().unwrap_err().to_string();
        assert!(
            error.contains("frozen_epochs + unfrozen_epochs + pruned_epochs"),
            "{error}"
        );
    }
}
