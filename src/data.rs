//! Loading cells-by-features tables (CSV/TSV, AnnData `.h5ad`, Matrix Market
//! and 10x folders; dense or sparse) and per-cell metadata, and the [`Dataset`]
//! that pairs modalities by cell id.
//!
//! Every loader returns plain values (`f64`, `NaN` for a missing entry; a
//! sparse table's values are `f32`, see [`Csr`]) and a
//! [`DataError`] that names the file, the line and column or the field, and
//! what was expected. Nothing here decides what to do about missing values:
//! that is the preprocessing recipe's job.

mod checked_csr;
mod dataset;
mod error;
pub mod h5ad;
mod matrix;
mod metadata;
mod mtx;
mod prepared;
mod read;
pub mod simulate;
mod source;
mod sparse;
mod table;

pub use dataset::{CellIndex, Dataset, Modality, ModalityIds, PairCounts, Pairing, check_ids};
pub use error::DataError;
pub use matrix::{MatrixFormat, MatrixSource, detect_format, read_matrix};
pub use metadata::{Metadata, read_metadata};
pub use mtx::{MtxFiles, read_mtx};
pub use prepared::{ColumnScaling, PreparedTable, SparseInput};
pub use read::{read_table, read_table_with_text_column};
pub use sparse::{Csr, LoadedTable, SparseTable, csr_from_dense, first_stored_where};
pub use table::{FeatureTable, Orientation, write_table};
