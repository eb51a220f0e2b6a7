//! PC-CCA (Gala et al.'s baseline; the algebra is in [`crate::analysis::cca`])
//! as a method of its own: its kind, modalities, settings check and headline.

use super::{Headline, Method, SettingError, method};
use crate::analysis::cca::PcCcaConfig;

impl Method for PcCcaConfig {
    fn kind(&self) -> &'static str {
        "pc_cca"
    }

    fn modality_count(&self) -> usize {
        2
    }

    fn validate(&self) -> Result<(), SettingError> {
        for (field, value) in [("pcs_a", self.pcs_a), ("pcs_b", self.pcs_b)] {
            if value == 0 {
                return Err(SettingError::new(field, "must be at least 1, got 0"));
            }
        }
        let smaller = self.pcs_a.min(self.pcs_b);
        if self.components == 0 || self.components > smaller {
            return Err(SettingError::new(
                "components",
                format!(
                    "must be between 1 and the smaller PC count ({smaller}), got {}",
                    self.components
                ),
            ));
        }
        Ok(())
    }

    fn headline(&self) -> &'static [Headline] {
        method::LATENT_HEADLINE
    }

    fn has_artifact(&self) -> bool {
        false
    }
}
