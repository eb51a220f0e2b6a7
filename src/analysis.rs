//! Validation protocols and metrics: cross-validation folds, per-fold
//! scaling and R².
//!
//! [`cv`] splits cells into folds (including a bit-exact reproduction of the
//! numpy permutation the sBNN paper used), [`scaling`] centres or z-scores a
//! fold with its training statistics, and [`r2`] scores predictions. The
//! numpy-compatible random generator lives in [`numpy_rng`]. [`confusion`]
//! tabulates two labelings and [`clustering`] scores their agreement (ARI,
//! AMI, Hungarian-matched accuracy). [`kmeans`] clusters rows (seeded k-means++).

pub mod clustering;
pub mod confusion;
pub mod cv;
pub mod kmeans;
pub mod numpy_rng;
pub mod r2;
pub mod scaling;
