//! Validation protocols and metrics: cross-validation folds, per-fold
//! scaling and R².
//!
//! [`cv`] splits cells into folds (including a bit-exact reproduction of the
//! numpy permutation the sBNN paper used), [`scaling`] centres or z-scores a
//! fold with its training statistics, and [`r2`] scores predictions. The
//! numpy-compatible random generator lives in [`numpy_rng`]. [`confusion`]
//! tabulates two labelings and [`clustering`] scores their agreement (ARI,
//! AMI, Hungarian-matched accuracy); [`kmeans`] clusters rows (seeded
//! k-means++). For latent spaces: [`qda`] (quadratic discriminants), [`gmm`] (Gaussian mixtures), [`cca`] (CCA and the PC-CCA
//! baseline), [`neighbours`] (nearest-neighbour distances and the KS test)
//! and [`latent_eval`], which combines them on one cross-validation fold.

pub mod cca;
pub mod clustering;
pub mod confusion;
pub mod cv;
pub mod gmm;
pub mod kmeans;
pub mod labels;
pub mod latent_eval;
pub mod neighbours;
pub mod numpy_rng;
pub mod qda;
pub mod r2;
pub mod scaling;
