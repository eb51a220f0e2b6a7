//! Preprocessing recipes: what turns a loaded modality into a model matrix.
//!
//! A [`Recipe`] is data stored in the RON session: an ordered list of
//! [`Step`]s (dropping cells or features, selecting genes, library-size
//! normalisation, logs) and a [`Standardise`] scope. [`Recipe::apply`] runs it
//! on a [`FeatureTable`](crate::data::FeatureTable) and returns the
//! [`Prepared`] table with a [`Report`] of everything each step did: which
//! cells it dropped, how many features it kept, the offset it chose. Nothing is
//! dropped silently, and a problem is a [`PrepError`] that names the step, the
//! field, and the feature or cell involved.

mod columns;
mod error;
mod filter;
mod fitted;
mod hvg;
mod hvg_v3;
mod loess;
mod memory;
mod recipe;
mod report;
mod select;
mod sparse;
mod standardise;
mod subset;
mod transform;

pub use error::{PrepError, StepId};
pub use fitted::{FittedRecipe, FittedStep, Skipped};
pub use memory::{Bytes, dense_shortfall};
pub use recipe::{GeneSelection, Prepared, Recipe, Standardise, Step};
pub use report::{Report, StepDetail, StepReport};
