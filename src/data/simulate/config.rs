//! The knobs of the simulator and their validation.
//!
//! [`SimulationConfig`] is plain data that can be read from RON or JSON (every
//! field has a default, unknown fields are rejected). [`SimulationConfig::validate`]
//! checks it before anything is generated, so a bad value is reported by field
//! name instead of surfacing later as a numeric failure.

use serde::{Deserialize, Serialize};

use super::SimulateError;

/// Parameters of a simulated Patch-seq dataset. The defaults give 9 types in
/// 3 families, 600 cells, 500 genes (3 of them spike-ins) and 12 ephys features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulationConfig {
    /// Seed of every random draw; the same config always gives the same data.
    pub seed: u64,
    /// Seed of the cells alone (each cell's type and state, its counts and
    /// electrophysiology), where it differs from `seed`, which then draws only
    /// the generative truth (markers, gene means, electrophysiology
    /// programmes): two data sets with the same `seed` and different
    /// `cells_seed` are new cells of the same types, as a second data set
    /// recorded from the same tissue would be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells_seed: Option<u64>,
    /// Number of families (top level of the type hierarchy).
    pub families: usize,
    /// Number of types in each family.
    pub types_per_family: usize,
    /// Number of cells, whatever modalities they have.
    pub cells: usize,
    /// Number of genes, spike-ins included.
    pub genes: usize,
    /// How many of the genes are ERCC-style spike-ins (technical, not biological).
    pub spike_ins: usize,
    /// Marker genes up-regulated in every type of a family, per family.
    pub family_markers: usize,
    /// Marker genes up-regulated in one type only, per type.
    pub type_markers: usize,
    /// Genes whose expression follows the continuous within-type state.
    pub state_genes: usize,
    /// Fold change of a marker gene where it is expressed (at least 1).
    pub marker_fold_change: f64,
    /// Largest fold change of a state gene between state 0 and state 1 (at least 1).
    pub state_fold_change: f64,
    /// Negative-binomial dispersion `phi` (variance = mean + phi * mean^2); 0 gives Poisson counts.
    pub dispersion: f64,
    /// Median library size (expected total biological counts per cell).
    pub library_size: f64,
    /// Standard deviation of the natural log of the library size across cells.
    pub library_spread: f64,
    /// Number of electrophysiological features.
    pub ephys_features: usize,
    /// Standard deviation of the ephys noise, in units of the typical between-type spread.
    pub ephys_noise: f64,
    /// Fraction of cells with expression only (no ephys), in [0, 1).
    pub t_only_fraction: f64,
    /// Fraction of cells with ephys only (no expression), in [0, 1).
    pub e_only_fraction: f64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            cells_seed: None,
            families: 3,
            types_per_family: 3,
            cells: 600,
            genes: 500,
            spike_ins: 3,
            family_markers: 10,
            type_markers: 6,
            state_genes: 8,
            marker_fold_change: 8.0,
            state_fold_change: 4.0,
            dispersion: 0.3,
            library_size: 10000.0,
            library_spread: 0.4,
            ephys_features: 12,
            ephys_noise: 0.3,
            t_only_fraction: 0.1,
            e_only_fraction: 0.05,
        }
    }
}

/// The largest median library size accepted; far above any real cell and far
/// below the limits of the Poisson sampler.
const MAX_LIBRARY_SIZE: f64 = 1e9;

impl SimulationConfig {
    /// Number of cell types (families times types per family).
    pub fn types(&self) -> usize {
        self.families.saturating_mul(self.types_per_family)
    }

    /// The seed the cells are drawn from: `cells_seed`, or `seed` if unset.
    pub fn cells_seed(&self) -> u64 {
        self.cells_seed.unwrap_or(self.seed)
    }

    /// Number of biological (non-spike-in) genes.
    pub fn biological_genes(&self) -> usize {
        self.genes.saturating_sub(self.spike_ins)
    }

    /// Checks every field; the error names the first offending field.
    pub fn validate(&self) -> Result<(), SimulateError> {
        let bad =
            |field: &'static str, message: String| Err(SimulateError::Config { field, message });
        if self.families == 0 {
            return bad("families", "must be at least 1".into());
        }
        if self.types_per_family == 0 {
            return bad("types_per_family", "must be at least 1".into());
        }
        if self.cells == 0 {
            return bad("cells", "must be at least 1".into());
        }
        if self.cells < self.types() {
            return bad(
                "cells",
                format!(
                    "is {} but must be at least the number of types ({} families x {} types = {}) so every type has cells",
                    self.cells,
                    self.families,
                    self.types_per_family,
                    self.types()
                ),
            );
        }
        if self.spike_ins >= self.genes {
            return bad(
                "genes",
                format!(
                    "is {} but must exceed spike_ins ({}) to leave biological genes",
                    self.genes, self.spike_ins
                ),
            );
        }
        let markers = self
            .families
            .saturating_mul(self.family_markers)
            .saturating_add(self.types().saturating_mul(self.type_markers))
            .saturating_add(self.state_genes);
        if markers > self.biological_genes() {
            return bad(
                "genes",
                format!(
                    "has {} biological genes but the markers need {markers} ({} families x {} family_markers + {} types x {} type_markers + {} state_genes)",
                    self.biological_genes(),
                    self.families,
                    self.family_markers,
                    self.types(),
                    self.type_markers,
                    self.state_genes
                ),
            );
        }
        check_at_least("marker_fold_change", self.marker_fold_change, 1.0)?;
        check_at_least("state_fold_change", self.state_fold_change, 1.0)?;
        check_at_least("dispersion", self.dispersion, 0.0)?;
        check_at_least("library_spread", self.library_spread, 0.0)?;
        check_at_least("ephys_noise", self.ephys_noise, 0.0)?;
        if !(self.library_size.is_finite()
            && self.library_size > 0.0
            && self.library_size <= MAX_LIBRARY_SIZE)
        {
            return bad(
                "library_size",
                format!(
                    "is {} but must be in (0, {MAX_LIBRARY_SIZE:e}]",
                    self.library_size
                ),
            );
        }
        if self.ephys_features == 0 {
            return bad("ephys_features", "must be at least 1".into());
        }
        check_fraction("t_only_fraction", self.t_only_fraction)?;
        check_fraction("e_only_fraction", self.e_only_fraction)?;
        if self.t_only_fraction + self.e_only_fraction >= 1.0 {
            return bad(
                "e_only_fraction",
                format!(
                    "t_only_fraction ({}) + e_only_fraction ({}) must be below 1 so some cells are paired",
                    self.t_only_fraction, self.e_only_fraction
                ),
            );
        }
        Ok(())
    }
}

fn check_at_least(field: &'static str, value: f64, minimum: f64) -> Result<(), SimulateError> {
    if value.is_finite() && value >= minimum {
        Ok(())
    } else {
        Err(SimulateError::Config {
            field,
            message: format!("is {value} but must be a finite number >= {minimum}"),
        })
    }
}

fn check_fraction(field: &'static str, value: f64) -> Result<(), SimulateError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(SimulateError::Config {
            field,
            message: format!("is {value} but must be in [0, 1)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &SimulationConfig) -> &'static str {
        match config.validate() {
            Err(SimulateError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn default_is_valid() {
        assert!(SimulationConfig::default().validate().is_ok());
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let base = SimulationConfig::default();
        assert_eq!(
            field_of(&SimulationConfig {
                cells: 0,
                ..base.clone()
            }),
            "cells"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                cells: 5,
                ..base.clone()
            }),
            "cells"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                families: 0,
                ..base.clone()
            }),
            "families"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                types_per_family: 0,
                ..base.clone()
            }),
            "types_per_family"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                genes: 50,
                ..base.clone()
            }),
            "genes"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                genes: 3,
                ..base.clone()
            }),
            "genes"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                t_only_fraction: 1.0,
                ..base.clone()
            }),
            "t_only_fraction"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                e_only_fraction: -0.1,
                ..base.clone()
            }),
            "e_only_fraction"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                t_only_fraction: 0.6,
                e_only_fraction: 0.4,
                ..base.clone()
            }),
            "e_only_fraction"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                dispersion: f64::NAN,
                ..base.clone()
            }),
            "dispersion"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                library_size: 0.0,
                ..base.clone()
            }),
            "library_size"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                marker_fold_change: 0.5,
                ..base.clone()
            }),
            "marker_fold_change"
        );
        assert_eq!(
            field_of(&SimulationConfig {
                ephys_features: 0,
                ..base
            }),
            "ephys_features"
        );
    }

    #[test]
    fn error_message_explains_marker_budget() {
        let config = SimulationConfig {
            genes: 60,
            ..SimulationConfig::default()
        };
        let message = config
            .validate()
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default();
        assert!(message.contains("genes"), "{message}");
        assert!(message.contains("markers need 92"), "{message}");
    }

    #[test]
    fn partial_ron_keeps_defaults_and_rejects_unknown_fields() {
        let config: SimulationConfig = ron::from_str("(cells: 40, seed: 3)").unwrap();
        assert_eq!(config.cells, 40);
        assert_eq!(config.seed, 3);
        assert_eq!(config.genes, SimulationConfig::default().genes);
        assert!(ron::from_str::<SimulationConfig>("(cels: 40)").is_err());
    }
}
