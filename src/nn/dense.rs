//! The dense engine: a fused CPU path for fully connected networks
//! (stacks of dense layers with ELU, ReLU or linear activations, batch
//! normalisation without scale or shift), for models whose speed matters more
//! than the generality of the tape ([`crate::nn::Var`]). The sBNN and the
//! coupled autoencoder train on it.
//!
//! Compared with the tape this saves, per step: recording and replaying the
//! graph, cloning gradients out of it, every temporary tensor, the input
//! gradient of the lowest trained layer, and all work below it (a frozen
//! prefix is run once per phase with [`DenseNet::forward_range`] and its output
//! cached by the caller). Element-wise work runs in SIMD loops dispatched at
//! run time ([`kernels`]). The optimiser ([`DenseAdam`]) fuses the group lasso
//! on the first layer's rows, the L2 penalties and the Adam update into one
//! pass over each parameter; with [`DenseNet::backward_deferred`] and
//! [`DenseAdam::step_with_product`] it also forms the lowest trained layer's
//! weight gradient block by block as it updates it (the same values, without
//! writing the whole gradient to memory). Gradients computed elsewhere (a coupling's, by
//! hand) enter through [`DenseNet::backward`]'s output gradient or
//! [`DenseBatchNorm::backward`]; [`DenseNet::backward_to_input`] chains one
//! network into another.
//!
//! Every backward pass agrees with central finite differences (see the tests).
//!
//! A convolutional front ([`ConvLayer`], trained as [`TrainingConv`]) turns
//! single-channel images into pooled features for a dense network; it runs
//! on the dense engine only.
//!
//! The same networks also train on a tensor device ([`TensorNet`], dfdx's
//! CUDA device or its CPU device), chosen through an [`Engine`]; a training
//! loop written against [`NetTrainer`] runs on either. The sBNN's does.

mod adam;
mod batch_norm;
mod conv;
mod engine;
pub(crate) mod kernels;
mod loss;
mod net;
mod parallel;
mod store;
mod tensor_net;
mod training;

pub use adam::{DenseAdam, DensePenalties};
pub use batch_norm::{BatchNormCache, DenseBatchNorm};
pub use conv::{ConvLayer, ConvShape, TrainingConv};
pub use engine::{Engine, NetTrainer};
pub use loss::{mse_with_grad, softmax_cross_entropy_with_grad, weighted_mse_with_grad};
pub use net::{Activation, DenseGrads, DenseLayer, DenseNet, WeightProduct, Workspace};
pub use parallel::{alongside, for_each_net};
pub use tensor_net::TensorNet;
pub use training::TrainingNet;
