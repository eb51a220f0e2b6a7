//! The Adam optimiser (Kingma and Ba) over a [`ParamStore`].
//!
//! Bias correction and the step counter ([`AdamClock`], shared with the dense
//! optimiser), the learning rate, per-parameter moment buffers and frozen
//! flags are handled here. The
//! element-wise update itself runs as the backend's fused device kernel
//! (`dfdx::tensor_ops::AdamConfig::try_update`): one pass over the parameter,
//! gradient and both moment buffers, in place, with no copies, on the CPU or the
//! GPU alike. (dfdx offers no safe mutable access to a tensor's buffer, and
//! `unsafe` is forbidden in this crate, so a hand-written loop would have to
//! copy every parameter in and out each step.)
//!
//! Two placements of ε are offered. [`EpsilonStyle::Keras`] is tf.keras'
//! `w −= lr·sqrt(1−β₂ᵗ)/(1−β₁ᵗ) · m / (sqrt(v) + ε)`; it equals the paper's
//! form `w −= lr · m̂ / (sqrt(v̂) + ε')` with `ε' = ε / sqrt(1−β₂ᵗ)`, which is
//! how it is passed to the kernel. [`EpsilonStyle::Paper`] uses ε directly.

use dfdx::tensor::Storage;
use dfdx::tensor_ops::AdamConfig as KernelConfig;

use super::NnError;
use super::device::Dev;
use super::params::{ParamRole, ParamStore, Value};
use super::var::Grads;

/// Where ε enters the update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EpsilonStyle {
    /// tf.keras: ε is added to `sqrt(v)` before bias correction.
    Keras,
    /// Kingma and Ba / PyTorch: ε is added to `sqrt(v̂)`.
    Paper,
}

/// Adam hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Numerical-stability constant.
    pub eps: f64,
    /// Where `eps` enters the update.
    pub eps_style: EpsilonStyle,
}

impl AdamConfig {
    /// tf.keras defaults (β₁ 0.9, β₂ 0.999, ε 1e-7, Keras placement) with learning rate `lr`.
    pub fn keras(lr: f64) -> Self {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            eps_style: EpsilonStyle::Keras,
        }
    }

    /// The paper's defaults (β₁ 0.9, β₂ 0.999, ε 1e-8) with learning rate `lr`.
    pub fn paper(lr: f64) -> Self {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            eps_style: EpsilonStyle::Paper,
        }
    }

    fn validate(&self) -> Result<(), NnError> {
        let ok = |v: f64| v.is_finite();
        if !(ok(self.lr) && self.lr > 0.0) {
            return Err(NnError::invalid(
                "lr",
                format!("must be positive, got {}", self.lr),
            ));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(ok(b) && (0.0..1.0).contains(&b)) {
                return Err(NnError::invalid(
                    name,
                    format!("must be in [0, 1), got {b}"),
                ));
            }
        }
        if !(ok(self.eps) && self.eps >= 0.0) {
            return Err(NnError::invalid(
                "eps",
                format!("must be non-negative, got {}", self.eps),
            ));
        }
        Ok(())
    }
}

/// Adam's step counter and bias correction, shared by the tape optimiser
/// ([`Adam`]) and the dense one ([`crate::nn::dense::DenseAdam`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AdamClock {
    step: i32,
}

/// The bias-corrected quantities of one step `t`, in both of the forms the
/// update can be written in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StepSize {
    /// The step number, from 1.
    pub t: i32,
    /// `lr · sqrt(1 − β₂ᵗ) / (1 − β₁ᵗ)`, for `w −= lr_t · m / (sqrt(v) + eps_raw)`.
    pub lr_t: f64,
    /// ε added to `sqrt(v)` in that form.
    pub eps_raw: f64,
    /// ε added to `sqrt(v̂)` in the form `w −= lr · m̂ / (sqrt(v̂) + eps_hat)`.
    pub eps_hat: f64,
}

impl AdamClock {
    /// Validates `config`, advances the counter and returns this step's sizes.
    pub(crate) fn tick(&mut self, config: &AdamConfig) -> Result<StepSize, NnError> {
        config.validate()?;
        self.step = self
            .step
            .checked_add(1)
            .ok_or_else(|| NnError::invalid("step", "too many steps"))?;
        let t = self.step;
        let correction2 = (1.0 - config.beta2.powi(t)).sqrt();
        let correction1 = 1.0 - config.beta1.powi(t);
        let (eps_raw, eps_hat) = match config.eps_style {
            EpsilonStyle::Keras => (config.eps, config.eps / correction2),
            EpsilonStyle::Paper => (config.eps * correction2, config.eps),
        };
        Ok(StepSize {
            t,
            lr_t: config.lr * correction2 / correction1,
            eps_raw,
            eps_hat,
        })
    }

    /// Steps taken so far.
    pub(crate) fn steps(&self) -> u32 {
        self.step.unsigned_abs()
    }
}

/// First and second moments of one parameter, on the device.
#[derive(Debug)]
struct Moments {
    m: <Dev as Storage<f32>>::Vec,
    v: <Dev as Storage<f32>>::Vec,
    len: usize,
}

/// Adam state: the step counter and the moments of every parameter it has updated.
#[derive(Debug)]
pub struct Adam {
    config: AdamConfig,
    clock: AdamClock,
    moments: Vec<Option<Moments>>,
}

impl Adam {
    /// A fresh optimiser (step 0, zero moments).
    pub fn new(config: AdamConfig) -> Self {
        Adam {
            config,
            clock: AdamClock::default(),
            moments: Vec::new(),
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// Changes the learning rate from the next step on, keeping the state.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Number of steps taken since creation or the last [`Adam::reset`].
    pub fn steps(&self) -> u32 {
        self.clock.steps()
    }

    /// Forgets all moments and the step counter (what recompiling a Keras model does).
    pub fn reset(&mut self) {
        self.clock = AdamClock::default();
        self.moments.clear();
    }

    /// One update of every trainable parameter from `grads`. Frozen parameters
    /// and running statistics are skipped entirely. A trainable parameter the
    /// loss did not depend on gets a zero gradient.
    pub fn step(&mut self, store: &mut ParamStore, grads: &mut Grads) -> Result<(), NnError> {
        let size = self.clock.tick(&self.config)?;
        let (t, eps) = (size.t, size.eps_hat);
        let (b1, b2) = (self.config.beta1, self.config.beta2);
        let dev = store.device().dev.clone();
        if self.moments.len() < store.len() {
            self.moments.resize_with(store.len(), || None);
        }
        for (index, param) in store.params.iter_mut().enumerate() {
            if !param.trainable || param.role == ParamRole::RunningStat {
                continue;
            }
            let kernel = KernelConfig {
                lr: self.config.lr,
                betas: [b1, b2],
                eps,
                weight_decay: None,
            };
            let len = param.value.dims().iter().product();
            let slot = self
                .moments
                .get_mut(index)
                .ok_or_else(|| NnError::UnknownParam(param.name.clone()))?;
            if slot.as_ref().is_none_or(|m| m.len != len) {
                *slot = Some(Moments {
                    m: dev.try_alloc_len(len)?,
                    v: dev.try_alloc_len(len)?,
                    len,
                });
            }
            let moments = slot
                .as_mut()
                .ok_or_else(|| NnError::UnknownParam(param.name.clone()))?;
            match &mut param.value {
                Value::Matrix(w) => {
                    let g = grads.inner.get_or_alloc_mut(w)?;
                    kernel.try_update(t, w, &mut moments.m, &mut moments.v, g)?;
                }
                Value::Vector(w) => {
                    let g = grads.inner.get_or_alloc_mut(w)?;
                    kernel.try_update(t, w, &mut moments.m, &mut moments.v, g)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{DeviceChoice, Var, loss};
    use ndarray::{Array1, Array2};

    /// One parameter vector w, loss = Σ c_i w_i (gradient c), stepped by hand in f64.
    fn run(config: AdamConfig, steps: usize) -> (Vec<f32>, Vec<f64>) {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let w0 = [0.5f32, -1.0, 2.0];
        let c = [0.3f32, -2.0, 1e-4];
        let w = s
            .add_matrix(
                "w",
                &Array2::from_shape_vec((3, 1), w0.to_vec()).unwrap(),
                ParamRole::Weight,
            )
            .unwrap();
        let mut adam = Adam::new(config);
        let (mut m, mut v, mut want) = ([0f64; 3], [0f64; 3], w0.map(f64::from));
        for t in 1..=steps as i32 {
            let x = Var::from_vec(s.device(), 1, 3, c.to_vec()).unwrap();
            let x_w = crate::nn::Linear {
                weight: w,
                bias: s
                    .id("b")
                    .unwrap_or_else(|| s.add_zeros("b", 1, ParamRole::Bias).unwrap()),
            };
            s.set_trainable(x_w.bias, false).unwrap();
            let mut grads = x_w
                .forward(&s, x)
                .unwrap()
                .sum()
                .unwrap()
                .backward()
                .unwrap();
            adam.step(&mut s, &mut grads).unwrap();
            for i in 0..3 {
                let g = c[i] as f64;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let (bc1, bc2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.999f64.powi(t));
                want[i] -= match config.eps_style {
                    EpsilonStyle::Keras => {
                        config.lr * bc2.sqrt() / bc1 * m[i] / (v[i].sqrt() + config.eps)
                    }
                    EpsilonStyle::Paper => {
                        config.lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + config.eps)
                    }
                };
            }
        }
        (s.values(w).unwrap(), want.to_vec())
    }

    #[test]
    fn matches_hand_computed_steps() {
        for config in [
            AdamConfig::keras(0.01),
            AdamConfig::paper(0.01),
            AdamConfig {
                eps: 1e-3,
                ..AdamConfig::keras(0.01)
            },
        ] {
            let (got, want) = run(config, 3);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() < 1e-6,
                    "{config:?}: {got:?} vs {want:?}"
                );
            }
        }
        // With a large ε the two placements differ measurably.
        let (k, _) = run(
            AdamConfig {
                eps: 1e-3,
                ..AdamConfig::keras(0.01)
            },
            1,
        );
        let (p, _) = run(
            AdamConfig {
                eps: 1e-3,
                ..AdamConfig::paper(0.01)
            },
            1,
        );
        assert!((k[2] - p[2]).abs() > 1e-4, "{k:?} {p:?}");
    }

    #[test]
    fn frozen_parameters_do_not_move_and_reset_restarts_bias_correction() {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut rng = rand::SeedableRng::seed_from_u64(1);
        let a = crate::nn::Linear::new(&mut s, "a", 2, 2, &mut rng).unwrap();
        let b = crate::nn::Linear::new(&mut s, "b", 2, 1, &mut rng).unwrap();
        a.set_trainable(&mut s, false).unwrap();
        let before_a = s.values(a.weight).unwrap();
        let before_b = s.values(b.weight).unwrap();
        let mut adam = Adam::new(AdamConfig::keras(0.1));
        let x = Var::from_array(s.device(), &Array2::from_elem((4, 2), 1.0)).unwrap();
        let y = Var::from_array(s.device(), &Array2::from_elem((4, 1), 3.0)).unwrap();
        let h = a.forward(&s, x).unwrap();
        assert!(!h.is_traced());
        let mut g = loss::mse(b.forward(&s, h).unwrap(), y)
            .unwrap()
            .backward()
            .unwrap();
        adam.step(&mut s, &mut g).unwrap();
        assert_eq!(s.values(a.weight).unwrap(), before_a);
        let after_b = s.values(b.weight).unwrap();
        // The first Adam step moves every coordinate by lr (sign of the gradient).
        for (x, y) in before_b.iter().zip(&after_b) {
            assert!(((x - y).abs() - 0.1).abs() < 1e-4, "{x} {y}");
        }
        assert_eq!(adam.steps(), 1);
        adam.reset();
        assert_eq!(adam.steps(), 0);
        adam.set_learning_rate(0.5);
        assert_eq!(adam.config().lr, 0.5);
        s.set_vector(b.bias, &Array1::zeros(1)).unwrap();
        let bad = Adam::new(AdamConfig::keras(-1.0)).step(&mut s, &mut g);
        assert!(bad.is_err());
    }
}
