//! Parameterised layers: [`Linear`] (a dense layer `x W + b`, with input
//! pruning) and [`BatchNorm`]. A layer only holds [`ParamId`] handles into a
//! [`ParamStore`]; its forward pass reads the current tensors from the store.

use dfdx::prelude::{Axis, MeanTo, PutTape, SplitTape, TryAdd, TryMatMul};
use dfdx::shapes::HasShape;
use ndarray::{Array1, Array2, Axis as NdAxis};
use rand_chacha::ChaCha8Rng;

use super::NnError;
use super::params::{ParamId, ParamRole, ParamStore};
use super::var::{Node, Var, binary, param_node_mat, param_node_vec, unary};

/// Whether a forward pass is for training (batch statistics, dropout, noise) or inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: stochastic layers are active and batch normalisation uses batch statistics.
    Train,
    /// Inference: deterministic, running statistics.
    Eval,
}

/// A dense layer `y = x W + b`, with `W` of shape `(inputs, outputs)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// The `(inputs, outputs)` kernel; row `g` belongs to input feature `g`.
    pub weight: ParamId,
    /// The bias of length `outputs`.
    pub bias: ParamId,
}

impl Linear {
    /// Registers `{name}.weight` (Glorot uniform from `rng`) and `{name}.bias` (zeros).
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        inputs: usize,
        outputs: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<Linear, NnError> {
        let weight = store.add_glorot(&format!("{name}.weight"), inputs, outputs, rng)?;
        let bias = store.add_zeros(&format!("{name}.bias"), outputs, ParamRole::Bias)?;
        Ok(Linear { weight, bias })
    }

    /// Number of input features.
    pub fn inputs(&self, store: &ParamStore) -> Result<usize, NnError> {
        Ok(store.mat(self.weight)?.shape().0)
    }

    /// Number of outputs.
    pub fn outputs(&self, store: &ParamStore) -> Result<usize, NnError> {
        Ok(store.mat(self.weight)?.shape().1)
    }

    /// Freezes or unfreezes both the weight and the bias.
    pub fn set_trainable(&self, store: &mut ParamStore, trainable: bool) -> Result<(), NnError> {
        store.set_trainable(self.weight, trainable)?;
        store.set_trainable(self.bias, trainable)
    }

    /// `x W + b`. Records nothing when `x` is constant and the layer is frozen.
    pub fn forward(&self, store: &ParamStore, x: Var) -> Result<Var, NnError> {
        let (_, k) = x.shape();
        let (k2, n) = *store.mat(self.weight)?.shape();
        if k != k2 {
            return Err(NnError::shape(
                store.name(self.weight)?,
                format!("input with {k2} columns"),
                k,
            ));
        }
        let b = param_node_vec(store, self.bias)?;
        if b.shape().0 != n {
            return Err(NnError::shape(store.name(self.bias)?, n, b.shape().0));
        }
        let w = param_node_mat(store, self.weight)?;
        let product = Var::traced_or_const(binary!(x.node, w, |a, b| a.try_matmul(b)));
        product.add_row(b)
    }

    /// The Euclidean norm of each weight row, i.e. of each input feature's weights.
    pub fn input_norms(&self, store: &ParamStore) -> Result<Vec<f32>, NnError> {
        let w = store.matrix(self.weight)?;
        Ok(w.rows().into_iter().map(|r| r.dot(&r).sqrt()).collect())
    }

    /// Keeps only the input features `keep` (in that order), shrinking the
    /// weight to `(keep.len(), outputs)`; the bias is unchanged. For inputs
    /// whose dropped features are zero the outputs are unchanged.
    pub fn keep_inputs(&self, store: &mut ParamStore, keep: &[usize]) -> Result<(), NnError> {
        let w = store.matrix(self.weight)?;
        if keep.is_empty() {
            return Err(NnError::invalid("keep", "at least one input must be kept"));
        }
        if let Some(&bad) = keep.iter().find(|&&g| g >= w.nrows()) {
            return Err(NnError::invalid(
                "keep",
                format!("input {bad} out of range 0..{}", w.nrows()),
            ));
        }
        let mut seen = vec![false; w.nrows()];
        for &g in keep {
            if std::mem::replace(&mut seen[g], true) {
                return Err(NnError::invalid("keep", format!("input {g} listed twice")));
            }
        }
        let kept: Array2<f32> = w.select(NdAxis(0), keep);
        store.set_matrix(self.weight, &kept)
    }
}

/// Batch normalisation over the batch axis, with optional learnable scale and shift.
///
/// Training mode normalises with the batch mean and (biased) variance and
/// moves the running statistics towards them: `running = momentum · running +
/// (1 − momentum) · batch`, using the unbiased batch variance for the running
/// variance. Inference mode uses the running statistics. Defaults follow Keras
/// (momentum 0.99, ε 1e-3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNorm {
    /// Learnable scale γ (initialised to ones), if any.
    pub scale: Option<ParamId>,
    /// Learnable shift β (initialised to zeros), if any.
    pub shift: Option<ParamId>,
    /// Running mean (initialised to zeros).
    pub running_mean: ParamId,
    /// Running variance (initialised to ones).
    pub running_var: ParamId,
    /// Weight of the old running statistics in each update.
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub eps: f32,
}

impl BatchNorm {
    /// Registers `{name}.mean`, `{name}.var` and, with `affine`, `{name}.scale` and `{name}.shift`.
    pub fn new(
        store: &mut ParamStore,
        name: &str,
        features: usize,
        affine: bool,
    ) -> Result<BatchNorm, NnError> {
        let (scale, shift) = if affine {
            let s = store.add_vector(
                &format!("{name}.scale"),
                &Array1::ones(features),
                ParamRole::Scale,
            )?;
            let b = store.add_zeros(&format!("{name}.shift"), features, ParamRole::Shift)?;
            (Some(s), Some(b))
        } else {
            (None, None)
        };
        let running_mean =
            store.add_zeros(&format!("{name}.mean"), features, ParamRole::RunningStat)?;
        let running_var = store.add_vector(
            &format!("{name}.var"),
            &Array1::ones(features),
            ParamRole::RunningStat,
        )?;
        Ok(BatchNorm {
            scale,
            shift,
            running_mean,
            running_var,
            momentum: 0.99,
            eps: 1e-3,
        })
    }

    /// Normalises `x`; in [`Mode::Train`] also updates the running statistics in `store`.
    pub fn forward(&self, store: &mut ParamStore, x: Var, mode: Mode) -> Result<Var, NnError> {
        let (rows, cols) = x.shape();
        let features = store.vect(self.running_mean)?.shape().0;
        if cols != features {
            return Err(NnError::shape(
                store.name(self.running_mean)?,
                format!("{features} columns"),
                cols,
            ));
        }
        let normalised = match mode {
            Mode::Eval => {
                let mean = store.vect(self.running_mean)?.clone();
                let var = store.vect(self.running_var)?.clone();
                let inv_std = var.try_add(self.eps)?.try_sqrt()?.try_recip()?;
                x.add_row(Node::Const(mean.try_negate()?))?
                    .mul_row(Node::Const(inv_std))?
            }
            Mode::Train => {
                if rows == 0 {
                    return Err(NnError::shape("batch norm", "a non-empty batch", 0));
                }
                let (x1, x2) = x.node.fork();
                let mean = mean_rows(x1)?;
                let batch_mean = mean.to_vec();
                let centred = Var::traced_or_const(x2).add_row(unary!(mean, |t| t.try_negate()))?;
                let (c1, c2) = centred.node.fork();
                let var = mean_rows(unary!(c1, |t| t.try_square()))?;
                let batch_var = var.to_vec();
                let inv_std = unary!(var, |t| t.try_add(self.eps)?.try_sqrt()?.try_recip());
                self.update_running(store, &batch_mean, &batch_var, rows)?;
                Var::traced_or_const(c2).mul_row(inv_std)?
            }
        };
        let scaled = match self.scale {
            Some(id) => normalised.mul_row(param_node_vec(store, id)?)?,
            None => normalised,
        };
        match self.shift {
            Some(id) => scaled.add_row(param_node_vec(store, id)?),
            None => Ok(scaled),
        }
    }

    fn update_running(
        &self,
        store: &mut ParamStore,
        mean: &[f32],
        var: &[f32],
        rows: usize,
    ) -> Result<(), NnError> {
        let m = self.momentum;
        let bessel = if rows > 1 {
            rows as f32 / (rows - 1) as f32
        } else {
            1.0
        };
        let old_mean = store.vector(self.running_mean)?;
        let old_var = store.vector(self.running_var)?;
        let new_mean = Array1::from_iter(
            old_mean
                .iter()
                .zip(mean)
                .map(|(o, b)| m * o + (1.0 - m) * b),
        );
        let new_var = Array1::from_iter(
            old_var
                .iter()
                .zip(var)
                .map(|(o, b)| m * o + (1.0 - m) * b * bessel),
        );
        store.set_vector(self.running_mean, &new_mean)?;
        store.set_vector(self.running_var, &new_var)
    }
}

/// Column means of a matrix node.
fn mean_rows(x: Node<(usize, usize)>) -> Result<Node<(usize,)>, NnError> {
    Ok(match x {
        Node::Const(t) => Node::Const(t.try_mean::<(usize,), Axis<0>>()?),
        Node::Traced(t) => Node::Traced(t.try_mean::<(usize,), Axis<0>>()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::DeviceChoice;
    use rand::SeedableRng;

    fn store() -> ParamStore {
        ParamStore::new(DeviceChoice::Cpu).unwrap()
    }

    #[test]
    fn linear_computes_x_w_plus_b() {
        let mut s = store();
        let l = Linear::new(&mut s, "l", 2, 3, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let w = Array2::from_shape_vec((2, 3), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        s.set_matrix(l.weight, &w).unwrap();
        s.set_vector(l.bias, &Array1::from_vec(vec![0.5, 0.0, -1.0]))
            .unwrap();
        let x = Var::from_vec(s.device(), 1, 2, vec![1.0, -1.0]).unwrap();
        let y = l.forward(&s, x).unwrap().to_array().unwrap();
        assert_eq!(y.into_raw_vec_and_offset().0, vec![-2.5, -3.0, -4.0]);
        let bad = Var::from_vec(s.device(), 1, 3, vec![0.0; 3]).unwrap();
        assert!(l.forward(&s, bad).is_err());
    }

    #[test]
    fn frozen_layer_on_constant_input_records_nothing() {
        let mut s = store();
        let l = Linear::new(&mut s, "l", 2, 2, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let x = || Var::from_vec(s.device(), 1, 2, vec![1.0, 2.0]).unwrap();
        assert!(l.forward(&s, x()).unwrap().is_traced());
        l.set_trainable(&mut s, false).unwrap();
        let x = Var::from_vec(s.device(), 1, 2, vec![1.0, 2.0]).unwrap();
        assert!(!l.forward(&s, x).unwrap().is_traced());
    }

    #[test]
    fn pruning_keeps_predictions_for_zeroed_inputs() {
        let mut s = store();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let l = Linear::new(&mut s, "l", 6, 4, &mut rng).unwrap();
        s.set_vector(l.bias, &Array1::from_vec(vec![0.1, -0.2, 0.3, 0.0]))
            .unwrap();
        let keep = [4usize, 1, 3];
        let kept_values = Array2::from_shape_fn((5, 3), |(i, j)| (i as f32 - 2.0) * 0.3 + j as f32);
        let mut full = Array2::<f32>::zeros((5, 6));
        for (j, &g) in keep.iter().enumerate() {
            full.column_mut(g).assign(&kept_values.column(j));
        }
        let before = l
            .forward(&s, Var::from_array(s.device(), &full).unwrap())
            .unwrap()
            .to_array()
            .unwrap();
        l.keep_inputs(&mut s, &keep).unwrap();
        assert_eq!(l.inputs(&s).unwrap(), 3);
        let after = l
            .forward(&s, Var::from_array(s.device(), &kept_values).unwrap())
            .unwrap()
            .to_array()
            .unwrap();
        for (a, b) in before.iter().zip(after.iter()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!(l.keep_inputs(&mut s, &[7]).is_err());
        assert!(l.keep_inputs(&mut s, &[0, 0]).is_err());
        assert!(l.keep_inputs(&mut s, &[]).is_err());
    }

    #[test]
    fn batch_norm_normalises_and_tracks_running_statistics() {
        let mut s = store();
        let bn = BatchNorm::new(&mut s, "bn", 2, true).unwrap();
        let x = Array2::from_shape_vec((4, 2), vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0])
            .unwrap();
        let xv = Var::from_array(s.device(), &x).unwrap();
        let y = bn
            .forward(&mut s, xv, Mode::Train)
            .unwrap()
            .to_array()
            .unwrap();
        for col in y.columns() {
            assert!(col.mean().unwrap().abs() < 1e-5);
            let var = col.mapv(|v| v * v).mean().unwrap();
            assert!(var > 0.9 && var < 1.0, "{var}");
        }
        let mean = s.vector(bn.running_mean).unwrap();
        assert!((mean[0] - 0.01 * 2.5).abs() < 1e-6 && (mean[1] - 0.01 * 25.0).abs() < 1e-5);
        let var = s.vector(bn.running_var).unwrap();
        assert!((var[0] - (0.99 + 0.01 * 5.0 / 3.0)).abs() < 1e-5, "{var}");
        // Eval mode uses the running statistics: (x - m) / sqrt(v + eps).
        let xv = Var::from_array(s.device(), &x).unwrap();
        let e = bn
            .forward(&mut s, xv, Mode::Eval)
            .unwrap()
            .to_array()
            .unwrap();
        let expect = (1.0 - mean[0]) / (var[0] + 1e-3).sqrt();
        assert!((e[[0, 0]] - expect).abs() < 1e-5);
        assert_eq!(s.vector(bn.running_mean).unwrap(), mean);
    }
}
