//! Atlas-scale sparse count matrices streamed into an `.h5ad`, for scale
//! tests: `patchbench simulate --format h5ad --cells 100000 --genes 30000
//! --density 0.05` writes 150 million stored counts while holding one block
//! of cells in memory.
//!
//! Cell `i` has type `i mod types` and a log-normal library factor; gene `j`
//! a log-normal base mean, raised 8-fold in the 5% of genes that mark each
//! type. Each gene of a cell is detected with probability `density` (the gaps
//! between detected genes are geometric), and a detected gene's count is
//! `1 + Poisson(base mean x marker fold x library factor)`. Everything comes
//! from one ChaCha8 stream per block of cells seeded from `seed`, so a config
//! always writes the same file.
//!
//! A paired second modality goes into `obsm["ephys"]` (dense, cells x
//! `ephys_features`): feature `f` of a cell of type `t` is a per-type mean
//! (standard normal, one per type and feature) plus Gaussian noise of SD
//! [`EPHYS_NOISE`], so genes and "electrophysiology" share the type signal as
//! in a Patch-seq set. It comes from its own stream of `seed`: the counts are
//! the same whatever `ephys_features` is.

use std::path::Path;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal, Poisson};

use super::SimulateError;
use crate::data::DataError;
use crate::data::h5ad::{CsrWriter, atomically, dict, write_dense, write_frame};

/// Cells generated and written at a time.
const BLOCK: usize = 4096;
/// Fold change of a type's marker genes.
const MARKER_FOLD: f64 = 8.0;
/// SD of the noise around a type's mean of an `obsm["ephys"]` feature.
pub const EPHYS_NOISE: f64 = 0.5;
/// The ChaCha8 stream of `seed` the `obsm["ephys"]` values come from.
const EPHYS_STREAM: u64 = 2;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseCountsConfig {
    /// Number of cells.
    pub cells: usize,
    /// Number of genes.
    pub genes: usize,
    /// Expected fraction of non-zero counts, in (0, 1].
    pub density: f64,
    /// Number of cell types (the `type` column of `obs`).
    pub types: usize,
    /// Features of the paired modality written as `obsm["ephys"]` (0: none).
    pub ephys_features: usize,
    /// Seed of every draw.
    pub seed: u64,
}

impl SparseCountsConfig {
    fn validate(&self) -> Result<(), SimulateError> {
        let invalid = |field, message: &str| {
            Err(SimulateError::Config {
                field,
                message: message.to_owned(),
            })
        };
        if self.cells == 0 {
            return invalid("cells", "must be at least 1");
        }
        if self.genes == 0 || self.genes > i32::MAX as usize {
            return invalid("genes", "must be from 1 to 2^31 - 1");
        }
        if !(self.density > 0.0 && self.density <= 1.0) {
            return invalid("density", "must lie in (0, 1]");
        }
        if self.types == 0 {
            return invalid("types", "must be at least 1");
        }
        Ok(())
    }
}

/// Draws the counts block by block and writes them as `X` (CSR, `float32`)
/// of the `.h5ad` at `path`, with `obs["type"]`, gene ids as `var_names` and,
/// with `ephys_features > 0`, the paired modality as `obsm["ephys"]`.
/// Returns the number of stored counts.
pub fn write_sparse_counts_h5ad(
    path: &Path,
    config: &SparseCountsConfig,
) -> Result<usize, SimulateError> {
    config.validate()?;
    let numeric = |e: &dyn std::fmt::Display| SimulateError::Numeric(e.to_string());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let base = LogNormal::new(0.0, 1.0).map_err(|e| numeric(&e))?;
    let means: Vec<f64> = (0..config.genes).map(|_| base.sample(&mut rng)).collect();
    let marker_of: Vec<usize> = (0..config.genes)
        .map(|_| {
            if rng.random::<f64>() < 0.05 {
                rng.random_range(0..config.types)
            } else {
                usize::MAX
            }
        })
        .collect();
    let library = LogNormal::new(0.0, 0.3).map_err(|e| numeric(&e))?;
    // ln(1 - density) for geometric gaps; density 1 detects every gene.
    let log_miss = (1.0 - config.density).ln();
    let mut stored = 0;
    let cells: Vec<String> = (0..config.cells).map(|i| format!("cell{i:07}")).collect();
    let genes: Vec<String> = (0..config.genes).map(|j| format!("gene{j:05}")).collect();
    let types: Vec<Option<String>> = (0..config.cells)
        .map(|i| Some(format!("type{}", i % config.types)))
        .collect();
    let ephys = simulate_ephys(config).map_err(|e| numeric(&e))?;
    let mut failure = None;
    let written = atomically(path, |file| {
        let mut writer = CsrWriter::new(file, "X", config.genes)?;
        let mut indptr = Vec::with_capacity(BLOCK + 1);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        for block_start in (0..config.cells).step_by(BLOCK) {
            let mut block_rng =
                ChaCha8Rng::seed_from_u64(config.seed ^ (block_start as u64).rotate_left(32));
            indptr.clear();
            indices.clear();
            data.clear();
            indptr.push(0);
            for i in block_start..(block_start + BLOCK).min(config.cells) {
                let cell_type = i % config.types;
                let factor = library.sample(&mut block_rng);
                let mut j = next_detected(&mut block_rng, log_miss, 0);
                while j < config.genes {
                    let fold = if marker_of[j] == cell_type {
                        MARKER_FOLD
                    } else {
                        1.0
                    };
                    let rate = means[j] * fold * factor;
                    match Poisson::new(rate) {
                        Ok(poisson) => {
                            let count: f64 = poisson.sample(&mut block_rng);
                            indices.push(j as u32);
                            data.push(1.0 + count as f32);
                        }
                        Err(e) => {
                            failure = Some(numeric(&e));
                            return Err(hdf5::Error::from("a Poisson rate is invalid"));
                        }
                    }
                    j = next_detected(&mut block_rng, log_miss, j + 1);
                }
                indptr.push(indices.len());
            }
            stored += data.len();
            writer.append(&indptr, &indices, &data)?;
        }
        writer.finish()?;
        write_frame(file, "obs", &cells, &[("type".to_owned(), types)])?;
        write_frame(file, "var", &genes, &[])?;
        let obsm = dict(file, "obsm")?;
        if let Some(ephys) = &ephys {
            write_dense(&obsm, "ephys", ephys)?;
        }
        for name in ["layers", "obsp", "varm", "varp", "uns"] {
            dict(file, name)?;
        }
        Ok(())
    });
    if let Some(error) = failure {
        return Err(error);
    }
    written.map_err(|e: DataError| SimulateError::Table(e))?;
    Ok(stored)
}

/// The paired modality: cell `i` (type `i mod types`) gets its type's mean
/// of each feature plus noise of SD [`EPHYS_NOISE`]; `None` without features.
fn simulate_ephys(
    config: &SparseCountsConfig,
) -> Result<Option<Array2<f64>>, rand_distr::NormalError> {
    if config.ephys_features == 0 {
        return Ok(None);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(EPHYS_STREAM);
    let standard = Normal::new(0.0, 1.0)?;
    let noise = Normal::new(0.0, EPHYS_NOISE)?;
    let means = Array2::from_shape_fn((config.types, config.ephys_features), |_| {
        standard.sample(&mut rng)
    });
    let values = Array2::from_shape_fn((config.cells, config.ephys_features), |(i, f)| {
        means[[i % config.types, f]] + noise.sample(&mut rng)
    });
    Ok(Some(values))
}

/// The next detected gene at or after `from`: a geometric gap with success probability `density`.
fn next_detected(rng: &mut ChaCha8Rng, log_miss: f64, from: usize) -> usize {
    if log_miss == f64::NEG_INFINITY {
        return from;
    }
    let u: f64 = rng.random::<f64>();
    // P(gap >= k) = (1 - density)^k.
    let gap = ((1.0 - u).ln() / log_miss).floor();
    if gap.is_finite() && gap < (usize::MAX / 2) as f64 {
        from + gap as usize
    } else {
        usize::MAX
    }
}
