//! Seeded synthetic Patch-seq data with known ground truth, and atlas-scale
//! sparse count matrices streamed into `.h5ad` files for scale tests.
//!
//! [`simulate`] turns a [`SimulationConfig`] into a [`SimulatedData`]: cells of
//! a two-level type hierarchy (family -> type), each with a continuous
//! within-type state, negative-binomial gene counts driven by family and type
//! markers and a few state genes, and electrophysiological features that are
//! nonlinear in the type and in the state. Some cells have only expression
//! (T-only) or only ephys (E-only). [`SimulatedData::write`] stores the result
//! in the same file formats as the real M1 Patch-seq data, plus a README.
//!
//! Everything is reproducible: each stage draws from its own ChaCha8 stream of
//! the configured seed, and nothing iterates over a hash map, so the same
//! config always gives byte-identical files.

mod config;
mod ephys;
mod expression;
mod hierarchy;
mod output;
mod sparse_counts;

use std::path::PathBuf;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use config::SimulationConfig;
pub use ephys::{EphysFeature, EphysKind, StateShape};
pub use expression::{ExpressionTruth, StateGene};
pub use hierarchy::{CellType, Hierarchy, SimulatedCell};
pub use output::FILE_NAMES;
pub use sparse_counts::{EPHYS_NOISE, SparseCountsConfig, write_sparse_counts_h5ad};

use crate::data::{DataError, FeatureTable};

/// Why a dataset could not be simulated or written.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A configuration field has an unusable value.
    #[error("simulation config: field `{field}` {message}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A random draw got parameters it cannot use (should not happen with a validated config).
    #[error("simulation failed: {0}")]
    Numeric(String),
    /// A file or directory could not be written.
    #[error("{path}: cannot write: {cause}", path = .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error. Shown in the message and not
        /// offered as `source()`, so a printed error chain names it once.
        cause: std::io::Error,
    },
    /// A table could not be written.
    #[error(transparent)]
    Table(#[from] DataError),
}

/// Everything the simulator knows: the config, the ground truth, and the
/// measured tables.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedData {
    /// The config the data was drawn from.
    pub config: SimulationConfig,
    /// Families and types.
    pub hierarchy: Hierarchy,
    /// Marker genes, state genes and expression profiles.
    pub expression_truth: ExpressionTruth,
    /// How each ephys feature depends on type and state.
    pub ephys_truth: Vec<EphysFeature>,
    /// Per-cell ground truth, for every cell whatever its modalities.
    pub metadata: Vec<SimulatedCell>,
    /// Gene counts (cells x genes) of the cells with expression.
    pub expression: FeatureTable,
    /// Ephys values (cells x features) of the cells with ephys.
    pub ephys: FeatureTable,
}

/// Random stream of each stage, so changing one stage's settings leaves the
/// draws of the others alone where their own settings are unchanged.
#[derive(Clone, Copy)]
enum Stream {
    Hierarchy = 1,
    ExpressionTruth = 2,
    EphysTruth = 3,
    Counts = 4,
    EphysValues = 5,
}

fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}

/// Validates `config` and draws a dataset from it.
pub fn simulate(config: &SimulationConfig) -> Result<SimulatedData, SimulateError> {
    config.validate()?;
    let hierarchy = hierarchy::build_hierarchy(config);
    let type_families: Vec<usize> = hierarchy.types.iter().map(|t| t.family).collect();
    let metadata = hierarchy::draw_cells(
        config,
        &hierarchy,
        &mut stream(config.cells_seed(), Stream::Hierarchy),
    )?;
    let expression_truth = expression::build_expression_truth(
        config,
        &type_families,
        &mut stream(config.seed, Stream::ExpressionTruth),
    )?;
    let ephys_truth = ephys::build_ephys_truth(
        config,
        &type_families,
        &mut stream(config.seed, Stream::EphysTruth),
    );
    let expression = expression::draw_counts(
        config,
        &expression_truth,
        &metadata,
        &mut stream(config.cells_seed(), Stream::Counts),
    )?;
    let ephys = ephys::draw_ephys(
        config,
        &ephys_truth,
        &metadata,
        &mut stream(config.cells_seed(), Stream::EphysValues),
    )?;
    Ok(SimulatedData {
        config: config.clone(),
        hierarchy,
        expression_truth,
        ephys_truth,
        metadata,
        expression,
        ephys,
    })
}
