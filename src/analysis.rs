//! Validation protocols and metrics: cross-validation folds, per-fold
//! scaling and R².
//!
//! [`cv`] splits cells into folds (including a bit-exact reproduction of the
//! numpy permutation the sBNN paper used), [`scaling`] centres or z-scores a
//! fold with its training statistics, and [`r2`] scores predictions. The
//! numpy-compatible random generator lives in [`numpy_rng`].

pub mod cv;
pub mod numpy_rng;
pub mod r2;
pub mod scaling;
