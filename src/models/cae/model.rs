//! The trained k-coupled autoencoder: encoding, reconstruction and
//! cross-modal prediction for cells measured in any one modality.

use ndarray::{Array2, Axis, Slice};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::CaeError;
use super::arm::Arm;
use super::config::CaeConfig;
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
        config.validate(features.len())?;
        let mut store = ParamStore::new(DeviceChoice::Cpu)?;
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

    /// Applies `f` to `x` in chunks of rows and stacks the results.
    fn chunked(
        &mut self,
        x: &Array2<f32>,
        out_cols: usize,
        mut f: impl FnMut(&mut ParamStore, Var) -> Result<Var, CaeError>,
    ) -> Result<Array2<f32>, CaeError> {
        let mut out = Array2::<f32>::zeros((x.nrows(), out_cols));
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + CHUNK).min(x.nrows());
            let part = x.slice_axis(Axis(0), Slice::from(start..end)).to_owned();
            let v = Var::from_array(self.store.device(), &part)?;
            let y = f(&mut self.store, v)?.to_array()?;
            out.slice_axis_mut(Axis(0), Slice::from(start..end))
                .assign(&y);
            start = end;
        }
        Ok(out)
    }

    /// Latent codes of rows `x` of modality `i` (inference mode).
    pub fn encode(&mut self, i: usize, x: &Array2<f32>) -> Result<Array2<f32>, CaeError> {
        let arm = self.arm(i)?.clone();
        let d = self.config.latent_dims;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        self.chunked(x, d, |store, v| {
            Ok(arm.encode(store, v, Mode::Eval, &mut rng)?)
        })
    }

    /// Codes before the latent normalisation (inference mode).
    pub(super) fn pre_latent(
        &mut self,
        i: usize,
        x: &Array2<f32>,
    ) -> Result<Array2<f32>, CaeError> {
        let arm = self.arm(i)?.clone();
        let d = self.config.latent_dims;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        self.chunked(x, d, |store, v| {
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
        self.chunked(z, features, |store, v| Ok(arm.decode(store, v)?))
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
