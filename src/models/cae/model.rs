//! The trained k-coupled autoencoder: encoding, reconstruction and
//! cross-modal prediction for cells measured in any one modality.

use ndarray::{Array2, Axis, Slice};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::CaeError;
use super::arm::Arm;
use super::config::CaeConfig;
use super::data::{Rows, gather};
use crate::nn::{DeviceChoice, Mode, ParamStore, Var};

/// Rows per forward pass at inference.
const CHUNK: usize = 512;

/// A coupled autoencoder: one [`Arm`] per modality sharing a latent space.
#[derive(Debug)]
pub struct CoupledAutoencoder {
    pub(super) store: ParamStore,
    pub(super) arms: Vec<Arm>,
    pub(super) config: CaeConfig,
}

impl CoupledAutoencoder {
    /// A freshly initialised model for modalities with `features[i]` features.
    pub fn new(config: &CaeConfig, features: &[usize]) -> Result<Self, CaeError> {
        CoupledAutoencoder::on(config, features, DeviceChoice::Cpu)
    }

    /// As [`CoupledAutoencoder::new`], with the parameter store (the weights
    /// for evaluation and saving) on `device`.
    pub fn on(
        config: &CaeConfig,
        features: &[usize],
        device: DeviceChoice,
    ) -> Result<Self, CaeError> {
        config.validate(features.len())?;
        let mut store = ParamStore::new(device)?;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let norm = config
            .coupling
            .build(config.fc_ridge, config.msv_floor)
            .needs_batch_norm()
            .then_some(config.bn_momentum);
        let arms = config
            .arms_for(features.len())
            .iter()
            .zip(features)
            .enumerate()
            .map(|(i, (arm, &p))| {
                Arm::new(
                    &mut store,
                    &format!("arm{i}"),
                    p,
                    config.latent_dims,
                    arm,
                    norm,
                    &mut rng,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CoupledAutoencoder {
            store,
            arms,
            config: config.clone(),
        })
    }

    /// The settings the model was built with.
    pub fn config(&self) -> &CaeConfig {
        &self.config
    }

    /// Writes the trained weights (with batch-norm statistics) to `path` in
    /// safetensors format; [`CoupledAutoencoder::load_weights`] reads them back
    /// into a model built with the same settings and feature counts.
    pub fn save(&self, path: &std::path::Path) -> Result<(), CaeError> {
        Ok(self.store.save(path)?)
    }

    /// Replaces the weights with those saved at `path` by [`CoupledAutoencoder::save`].
    pub fn load_weights(&mut self, path: &std::path::Path) -> Result<(), CaeError> {
        Ok(self.store.load_into(path)?)
    }

    /// Number of agents.
    pub fn modalities(&self) -> usize {
        self.arms.len()
    }

    fn arm(&self, i: usize) -> Result<&Arm, CaeError> {
        self.arms.get(i).ok_or_else(|| {
            CaeError::Data(format!(
                "no modality {i} in a {}-agent model",
                self.arms.len()
            ))
        })
    }

    /// Applies `f` to the rows `rows` of `matrix`, gathered (as `f32`)
    /// `chunk` rows at a time, and stacks the results. The device's cache is
    /// emptied after every chunk: its freed buffers would otherwise hold every
    /// chunk's input, so memory stays at one chunk's whatever the row count.
    fn chunked<M: Rows + ?Sized>(
        &mut self,
        matrix: &M,
        rows: &[usize],
        out_cols: usize,
        chunk: usize,
        mut f: impl FnMut(&mut ParamStore, Var) -> Result<Var, CaeError>,
    ) -> Result<Array2<f32>, CaeError> {
        let mut out = Array2::<f32>::zeros((rows.len(), out_cols));
        for (start, part) in (0..).step_by(chunk.max(1)).zip(rows.chunks(chunk.max(1))) {
            let x = gather(matrix, part);
            let v = Var::from_array(self.store.device(), &x)?;
            let y = f(&mut self.store, v)?.to_array()?;
            out.slice_axis_mut(Axis(0), Slice::from(start..start + part.len()))
                .assign(&y);
            self.store.device().empty_cache()?;
        }
        Ok(out)
    }

    /// Latent codes of rows `x` of modality `i` (inference mode).
    pub fn encode(&mut self, i: usize, x: &Array2<f32>) -> Result<Array2<f32>, CaeError> {
        let all: Vec<usize> = (0..x.nrows()).collect();
        self.encode_rows(i, x, &all)
    }

    /// Latent codes of the rows `rows` of `matrix`, a matrix of modality `i`
    /// (inference mode), gathered and encoded [`CHUNK`] rows at a time.
    pub fn encode_rows<M: Rows + ?Sized>(
        &mut self,
        i: usize,
        matrix: &M,
        rows: &[usize],
    ) -> Result<Array2<f32>, CaeError> {
        self.encode_in_chunks(i, matrix, rows, CHUNK)
    }

    fn encode_in_chunks<M: Rows + ?Sized>(
        &mut self,
        i: usize,
        matrix: &M,
        rows: &[usize],
        chunk: usize,
    ) -> Result<Array2<f32>, CaeError> {
        let arm = self.arm(i)?.clone();
        let d = self.config.latent_dims;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        self.chunked(matrix, rows, d, chunk, |store, v| {
            Ok(arm.encode(store, v, Mode::Eval, &mut rng)?)
        })
    }

    /// Codes before the latent normalisation of the rows `rows` of
    /// `matrix` (modality `i`, inference mode), [`CHUNK`] rows at a time.
    pub(super) fn pre_latent_rows<M: Rows + ?Sized>(
        &mut self,
        i: usize,
        matrix: &M,
        rows: &[usize],
    ) -> Result<Array2<f32>, CaeError> {
        let arm = self.arm(i)?.clone();
        let d = self.config.latent_dims;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        self.chunked(matrix, rows, d, CHUNK, |store, v| {
            Ok(arm.pre_latent(store, v, Mode::Eval, &mut rng)?)
        })
    }

    /// Modality `j` as decoded from latent codes `z`.
    pub fn decode(
        &mut self,
        j: usize,
        z: &Array2<f32>,
        features: usize,
    ) -> Result<Array2<f32>, CaeError> {
        let arm = self.arm(j)?.clone();
        let all: Vec<usize> = (0..z.nrows()).collect();
        self.chunked(z, &all, features, CHUNK, |store, v| {
            Ok(arm.decode(store, v)?)
        })
    }

    /// Cross-modal prediction: modality `target` (with `features` columns)
    /// predicted from rows `x` of modality `source`, `D_target(E_source(x))`.
    /// With `source == target` this is the reconstruction.
    pub fn predict(
        &mut self,
        source: usize,
        target: usize,
        x: &Array2<f32>,
        features: usize,
    ) -> Result<Array2<f32>, CaeError> {
        let z = self.encode(source, x)?;
        self.decode(target, &z, features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Encoding the rows of an `f64` table chunk by chunk (the device's cache
    /// emptied after each) gives the codes of one pass over an `f32` copy.
    #[test]
    fn chunked_encoding_of_gathered_rows_equals_one_pass() {
        let config = CaeConfig {
            latent_dims: 2,
            ..CaeConfig::default()
        };
        let mut model = CoupledAutoencoder::new(&config, &[5, 3]).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let table = Array2::from_shape_simple_fn((40, 5), || rng.random_range(-2.0f64..2.0));
        let rows: Vec<usize> = (0..40).rev().step_by(2).chain([7, 7]).collect();
        let copy = gather(&table, &rows);
        let whole = model.encode_in_chunks(0, &copy, &(0..rows.len()).collect::<Vec<_>>(), 1000);
        let whole = whole.unwrap();
        for chunk in [1, 3, 7, 22] {
            let chunked = model
                .encode_in_chunks(0, &table.view(), &rows, chunk)
                .unwrap();
            let gap = (&chunked - &whole)
                .mapv(f32::abs)
                .fold(0.0f32, |a, &b| a.max(b));
            assert!(gap < 1e-5, "chunks of {chunk}: codes differ by {gap}");
        }
        let again = model.encode(0, &copy).unwrap();
        assert!((&again - &whole).iter().all(|d| d.abs() < 1e-5));
        assert_eq!(whole.dim(), (22, 2));
    }
}
