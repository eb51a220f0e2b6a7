//! Trained models that leave the session: a self-contained artifact folder
//! (`manifest.json` and the network's safetensors file) that holds everything
//! needed to apply the model to new cells, and [`apply`](apply::apply), which
//! reads new data, reports how its features line up with the model's
//! ([`align`]), prepares it with the training statistics and predicts.
//!
//! The manifest is versioned ([`manifest::VERSION`]); an artifact of another
//! version is refused with a message naming both versions.

pub mod align;
pub mod apply;
mod apply_cae;
pub mod apply_mixvae;
mod apply_srrr;
pub mod calibrate;
pub mod manifest;
pub mod output;

pub use align::{AlignmentReport, MissingPolicy};
pub use apply::{Application, ApplyInput, LabelPredictions, apply};
pub use apply_mixvae::{CategoryScores, CategorySummary};
pub use manifest::{
    ArtifactError, ArtifactModel, CaeFold, CaePart, CategoryTypes, LabelLevel, Manifest,
    MixVaePart, Provenance, SbnnPart, SrrrPart,
};
