//! Moving weights between a [`ParamStore`] (a model's device-backed home of
//! named parameters, which saves, loads and runs on the tape on any device)
//! and the dense engine, which trains them on the CPU.

use ndarray::{Array1, Array2};

use super::{Activation, DenseBatchNorm, DenseLayer};
use crate::nn::{BatchNorm, Linear, NnError, ParamStore};

impl Linear {
    /// This layer's current weights as a dense-engine layer with `activation`
    /// (trainable as in the store, bias under the L2 penalty).
    pub fn to_dense(
        &self,
        store: &ParamStore,
        activation: Activation,
    ) -> Result<DenseLayer, NnError> {
        Ok(DenseLayer {
            inputs: self.inputs(store)?,
            outputs: self.outputs(store)?,
            weight: store.values(self.weight)?,
            bias: store.values(self.bias)?,
            activation,
            trainable: store.is_trainable(self.weight)?,
            bias_l2: true,
        })
    }

    /// Writes a dense-engine layer's weights (of this layer's shape) into the store.
    pub fn set_from_dense(
        &self,
        store: &mut ParamStore,
        layer: &DenseLayer,
    ) -> Result<(), NnError> {
        let shape = (self.inputs(store)?, self.outputs(store)?);
        if shape != (layer.inputs, layer.outputs) {
            return Err(NnError::shape(
                store.name(self.weight)?,
                format!("{shape:?}"),
                format!("{:?}", (layer.inputs, layer.outputs)),
            ));
        }
        let weight = Array2::from_shape_vec(shape, layer.weight.clone())
            .map_err(|e| NnError::Backend(e.to_string()))?;
        store.set_matrix(self.weight, &weight)?;
        store.set_vector(self.bias, &Array1::from_vec(layer.bias.clone()))
    }
}

impl BatchNorm {
    /// This normalisation as a dense-engine one, if it has no scale or shift.
    pub fn to_dense(&self, store: &ParamStore) -> Result<DenseBatchNorm, NnError> {
        if self.scale.is_some() || self.shift.is_some() {
            return Err(NnError::invalid(
                store.name(self.running_mean)?,
                "the dense engine normalises without scale or shift",
            ));
        }
        Ok(DenseBatchNorm {
            running_mean: store.values(self.running_mean)?,
            running_var: store.values(self.running_var)?,
            momentum: self.momentum,
            eps: self.eps,
        })
    }

    /// Writes a dense-engine normalisation's running statistics into the store.
    pub fn set_from_dense(
        &self,
        store: &mut ParamStore,
        norm: &DenseBatchNorm,
    ) -> Result<(), NnError> {
        let want = store.shape(self.running_mean)?;
        if want != [norm.columns()] {
            return Err(NnError::shape(
                store.name(self.running_mean)?,
                format!("{want:?}"),
                norm.columns(),
            ));
        }
        store.set_vector(
            self.running_mean,
            &Array1::from_vec(norm.running_mean.clone()),
        )?;
        store.set_vector(
            self.running_var,
            &Array1::from_vec(norm.running_var.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{DeviceChoice, Mode, Var};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_linear_layer_round_trips_and_computes_the_same() {
        let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let lin = Linear::new(&mut store, "l", 3, 2, &mut rng).unwrap();
        let mut layer = lin.to_dense(&store, Activation::Linear).unwrap();
        layer.bias = vec![0.5, -0.25];
        lin.set_from_dense(&mut store, &layer).unwrap();
        let x = vec![1.0f32, 2.0, -1.0];
        let tape = lin
            .forward(
                &store,
                Var::from_vec(store.device(), 1, 3, x.clone()).unwrap(),
            )
            .unwrap()
            .to_array()
            .unwrap();
        let net = super::super::DenseNet::new(vec![layer.clone()]).unwrap();
        let dense = net.forward_range(&x, 1, 0, 1).unwrap();
        for (a, b) in tape.iter().zip(&dense) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        layer.inputs = 2;
        assert!(lin.set_from_dense(&mut store, &layer).is_err());
    }

    #[test]
    fn batch_norm_statistics_round_trip() {
        let mut store = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let bn = BatchNorm::new(&mut store, "bn", 2, false).unwrap();
        let mut dense = bn.to_dense(&store).unwrap();
        dense.running_mean = vec![1.0, 2.0];
        dense.running_var = vec![4.0, 9.0];
        bn.set_from_dense(&mut store, &dense).unwrap();
        let x = Var::from_vec(store.device(), 1, 2, vec![3.0, 2.0]).unwrap();
        let y = bn
            .forward(&mut store, x, Mode::Eval)
            .unwrap()
            .to_array()
            .unwrap()
            .into_raw_vec_and_offset()
            .0;
        let mut want = Vec::new();
        dense.forward_eval(&[3.0, 2.0], 1, &mut want).unwrap();
        assert!((y[0] - want[0]).abs() < 1e-6 && (y[1] - want[1]).abs() < 1e-6);
        let affine = BatchNorm::new(&mut store, "affine", 2, true).unwrap();
        assert!(affine.to_dense(&store).is_err());
    }
}
