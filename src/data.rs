//! Loading cells-by-features tables and per-cell metadata, and the [`Dataset`]
//! that pairs modalities by cell id.
//!
//! Every loader returns plain values (`f64`, `NaN` for a missing entry) and a
//! [`DataError`] that names the file, the line and column or the field, and
//! what was expected. Nothing here decides what to do about missing values:
//! that is the preprocessing recipe's job.

mod dataset;
mod error;
mod metadata;
mod read;
pub mod simulate;
mod source;
mod table;

pub use dataset::{CellIndex, Dataset, Modality, PairCounts, Pairing};
pub use error::DataError;
pub use metadata::{Metadata, read_metadata};
pub use read::read_table;
pub use table::{FeatureTable, Orientation, write_table};
