//! The neural-network layer every model builds on: parameters, differentiable
//! operations, losses, penalties, an Adam optimiser and weight files.
//!
//! This module is the only place in patchbench that touches the automatic
//! differentiation backend (dfdx 0.13). Models see only the small,
//! runtime-shaped API below, so a later change of backend touches this folder
//! alone. All tensors are `f32`; matrices are row-major with one row per sample.
//!
//! # Pieces
//! - [`Device`] is created once from a [`DeviceChoice`] (CPU now; CUDA behind the
//!   `cuda` cargo feature).
//! - [`ParamStore`] holds every named parameter, its trainable/frozen flag and
//!   its role. Weights are initialised from a seeded `ChaCha8Rng`, so the same
//!   seed gives the same weights bit for bit.
//! - [`Var`] is a `(batch, features)` activation; [`Scalar`] is a loss. Both
//!   carry the gradient tape only when some trainable parameter fed into them,
//!   so a frozen prefix of a network runs without recording anything.
//! - Layers: [`Linear`], [`BatchNorm`]; element-wise activations are methods
//!   on [`Var`] ([`Var::elu`], [`Var::relu`], [`Var::softmax`], ...); random
//!   layers ([`dropout`], [`gaussian_noise`], [`gumbel_softmax`]) draw from the
//!   caller's seeded generator.
//! - [`external_scalar`] puts a function whose gradient the caller computed
//!   by hand (e.g. a coupling built on a small eigenproblem) on the tape.
//! - Losses in [`loss`], the optimiser [`Adam`], weight files in
//!   [`ParamStore::save`] / [`ParamStore::load_into`].
//! - [`dense`] is the dense engine: a fused CPU path for dense stacks (the
//!   sBNN, the coupled autoencoder) that bypasses the tape where speed matters.
//!
//! # A training step
//! ```
//! use ndarray::Array2;
//! use patchbench::nn::{self, Adam, AdamConfig, DeviceChoice, Linear, ParamStore, Var};
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//!
//! # fn main() -> Result<(), nn::NnError> {
//! let mut rng = ChaCha8Rng::seed_from_u64(7);
//! let mut store = ParamStore::new(DeviceChoice::Cpu)?;
//! let l1 = Linear::new(&mut store, "enc1", 4, 8, &mut rng)?;
//! let l2 = Linear::new(&mut store, "out", 8, 2, &mut rng)?;
//! let mut adam = Adam::new(AdamConfig::keras(1e-3));
//!
//! let x = Array2::<f32>::from_elem((16, 4), 0.5);
//! let y = Array2::<f32>::zeros((16, 2));
//! let xv = Var::from_array(store.device(), &x)?;
//! let yv = Var::from_array(store.device(), &y)?;
//! let h = l1.forward(&store, xv)?.elu()?;
//! let pred = l2.forward(&store, h)?;
//! let loss = nn::loss::mse(pred, yv)?;
//! let value = loss.value()?;
//! let mut grads = loss.backward()?;
//! adam.step(&mut store, &mut grads)?;
//! assert!(value.is_finite());
//! # Ok(())
//! # }
//! ```
//!
//! Freeze a layer with [`Linear::set_trainable`]; the optimiser skips frozen
//! parameters, and layers whose input and parameters are all untraced record
//! nothing on the tape.

mod adam;
pub mod dense;
mod device;
mod error;
mod external;
mod io;
mod layers;
pub mod loss;
mod params;
mod random;
mod reduce;
mod var;

pub use adam::{Adam, AdamConfig, EpsilonStyle};
pub use device::{Device, DeviceChoice};
pub use error::NnError;
pub use external::external_scalar;
pub use layers::{BatchNorm, Linear, Mode};
pub use params::{ParamId, ParamRole, ParamStore};
pub use random::{
    add_noise_in_place, dropout, dropout_copy, dropout_in_place, gaussian_noise, gumbel_noise,
    gumbel_softmax,
};
pub use var::{Grads, Scalar, Var};

/// Checks that every value is finite; names the first offender in the error.
pub fn check_finite(what: &str, values: &[f32]) -> Result<(), NnError> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(NnError::NonFinite {
            what: what.to_string(),
            index,
            value: values.get(index).copied().unwrap_or(f32::NAN),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_finite_accepts_finite_values() {
        assert!(check_finite("x", &[0.0, -1.5, 3.0e30]).is_ok());
    }

    #[test]
    fn check_finite_names_the_first_bad_value() {
        let err = check_finite("loss", &[1.0, f32::INFINITY, f32::NAN]).unwrap_err();
        match err {
            NnError::NonFinite { what, index, .. } => {
                assert_eq!(what, "loss");
                assert_eq!(index, 1);
            }
            other => panic!("unexpected error {other}"),
        }
        assert!(check_finite("w", &[f32::NAN]).is_err());
    }
}
