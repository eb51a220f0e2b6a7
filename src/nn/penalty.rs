//! Weight penalties added to a loss. Like Keras regularisers they are not
//! scaled by the batch size. A penalty on a frozen parameter is a constant
//! (its value is reported, no gradient is recorded).

use dfdx::prelude::{Axis, SumTo, TryAdd, TryMul, ZerosTensor};

use super::params::{ParamId, ParamStore, Value};
use super::var::{param_node_mat, param_node_vec, Node, Scalar};
use super::NnError;

/// `coeff · Σ w²` over all the listed parameters (Keras `l2(coeff)`).
pub fn l2(store: &ParamStore, ids: &[ParamId], coeff: f32) -> Result<Scalar, NnError> {
    let mut total = Scalar { node: Node::Const(store.device().dev.try_zeros_like(&())?) };
    for &id in ids {
        let node = match store.param(id)?.value {
            Value::Matrix(_) => match param_node_mat(store, id)? {
                Node::Const(t) => Node::Const(t.try_square()?.try_sum::<(), _>()?),
                Node::Traced(t) => Node::Traced(t.try_square()?.try_sum::<(), _>()?),
            },
            Value::Vector(_) => match param_node_vec(store, id)? {
                Node::Const(t) => Node::Const(t.try_square()?.try_sum::<(), _>()?),
                Node::Traced(t) => Node::Traced(t.try_square()?.try_sum::<(), _>()?),
            },
        };
        total = total.add(Scalar { node })?;
    }
    total.scale(coeff)
}

/// Group lasso on the rows of a weight matrix: `coeff · Σ_g sqrt(Σ_j W[g, j]² + eps)`.
/// With `eps > 0` an all-zero row has gradient 0 instead of NaN.
pub fn group_lasso(store: &ParamStore, weight: ParamId, coeff: f32, eps: f32) -> Result<Scalar, NnError> {
    if !(eps >= 0.0) {
        return Err(NnError::invalid("eps", format!("must be non-negative, got {eps}")));
    }
    let node = match param_node_mat(store, weight)? {
        Node::Const(t) => Node::Const(
            t.try_square()?.try_sum::<(usize,), Axis<1>>()?.try_add(eps)?.try_sqrt()?.try_sum::<(), _>()?.try_mul(coeff)?,
        ),
        Node::Traced(t) => Node::Traced(
            t.try_square()?.try_sum::<(usize,), Axis<1>>()?.try_add(eps)?.try_sqrt()?.try_sum::<(), _>()?.try_mul(coeff)?,
        ),
    };
    Ok(Scalar { node })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{DeviceChoice, ParamRole};
    use ndarray::{Array1, Array2};

    #[test]
    fn penalties_match_definitions() {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let w = s.add_matrix("w", &Array2::from_shape_vec((2, 2), vec![3.0, 4.0, 0.0, 0.0]).unwrap(), ParamRole::Weight).unwrap();
        let b = s.add_vector("b", &Array1::from_vec(vec![1.0, -2.0]), ParamRole::Bias).unwrap();
        assert!((l2(&s, &[w, b], 0.5).unwrap().value().unwrap() - 0.5 * 30.0).abs() < 1e-5);
        assert_eq!(l2(&s, &[], 0.5).unwrap().value().unwrap(), 0.0);
        let gl = group_lasso(&s, w, 0.1, 0.0).unwrap().value().unwrap();
        assert!((gl - 0.5).abs() < 1e-6, "{gl}");
        assert!(group_lasso(&s, b, 0.1, 0.0).is_err());
    }

    #[test]
    fn group_lasso_gradient_is_zero_on_a_zero_row_with_eps() {
        let mut s = ParamStore::new(DeviceChoice::Cpu).unwrap();
        let w = s.add_matrix("w", &Array2::from_shape_vec((2, 2), vec![3.0, 4.0, 0.0, 0.0]).unwrap(), ParamRole::Weight).unwrap();
        let mut g = group_lasso(&s, w, 0.1, 1e-12).unwrap().backward().unwrap();
        let grad = g.of(&s, w).unwrap();
        let want = [0.1 * 0.6, 0.1 * 0.8, 0.0, 0.0];
        for (a, b) in grad.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{grad:?}");
        }
        s.set_trainable(w, false).unwrap();
        assert!(!group_lasso(&s, w, 0.1, 1e-12).unwrap().is_traced());
    }
}
