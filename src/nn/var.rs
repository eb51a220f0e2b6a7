//! Differentiable values. A [`Var`] is a `(batch, features)` matrix and a
//! [`Scalar`] a single number such as a loss. Each is either constant (no tape)
//! or traced (it carries the record of operations needed for backpropagation).
//! Values become traced only when a trainable parameter flows into them, so
//! inputs and frozen layers cost no bookkeeping. [`Scalar::backward`] turns a
//! traced loss into [`Grads`], which the optimiser consumes.

use dfdx::prelude::{
    Axes2, Axis, Backward, BroadcastTo, Gradients, OwnedTape, PutTape, SplitTape, SumTo, Tensor,
    TensorFromVec, TryAdd, TryConcatAlong, TryMatMul, TryMul, TrySub,
};
use dfdx::shapes::{HasShape, Shape};
use ndarray::Array2;

use super::NnError;
use super::device::{Dev, Device};
use super::params::{Mat, ParamId, ParamStore, Vect};

/// The gradient tape of this build.
pub(crate) type Tp = OwnedTape<f32, Dev>;

/// A tensor with or without a tape.
#[derive(Debug)]
pub(crate) enum Node<S: Shape> {
    /// No trainable parameter flowed into this value.
    Const(Tensor<S, f32, Dev>),
    /// This value carries a gradient tape.
    Traced(Tensor<S, f32, Dev, Tp>),
}

/// Applies a shape-preserving tensor expression to either kind of node.
macro_rules! unary {
    ($node:expr, |$t:ident| $body:expr) => {
        match $node {
            Node::Const($t) => Node::Const($body?),
            Node::Traced($t) => Node::Traced($body?),
        }
    };
}

/// Applies a two-operand tensor expression, moving the tape to the left operand if needed.
macro_rules! binary {
    ($a:expr, $b:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Node::Const($x), Node::Const($y)) => Node::Const($body?),
            (Node::Traced($x), Node::Const($y)) => Node::Traced($body?),
            (Node::Traced($x), Node::Traced($y)) => Node::Traced($body?),
            (Node::Const(lhs), Node::Traced(rhs)) => {
                let (rhs, tape) = rhs.split_tape();
                let $x = lhs.put_tape(tape);
                let $y = rhs;
                Node::Traced($body?)
            }
        }
    };
}
pub(crate) use {binary, unary};

impl<S: Shape> Node<S> {
    /// The shape of the value.
    pub(crate) fn shape(&self) -> S {
        match self {
            Node::Const(t) => *t.shape(),
            Node::Traced(t) => *t.shape(),
        }
    }

    /// The values in row-major order.
    pub(crate) fn to_vec(&self) -> Vec<f32> {
        match self {
            Node::Const(t) => t.as_vec(),
            Node::Traced(t) => t.as_vec(),
        }
    }

    /// Two handles on the same value; gradients from both reach the inputs as
    /// long as both end up in the loss.
    pub(crate) fn fork(self) -> (Self, Self) {
        match self {
            Node::Const(t) => (Node::Const(t.clone()), Node::Const(t)),
            Node::Traced(t) => {
                let (t, tape) = t.split_tape();
                (
                    Node::Traced(t.clone().put_tape(tape)),
                    Node::Traced(t.put_tape(Tp::default())),
                )
            }
        }
    }

    /// The value without its tape.
    pub(crate) fn detach(self) -> Tensor<S, f32, Dev> {
        match self {
            Node::Const(t) => t,
            Node::Traced(t) => t.split_tape().0,
        }
    }

    /// The device the value lives on.
    pub(crate) fn dev(&self) -> Dev {
        match self {
            Node::Const(t) => t.device().clone(),
            Node::Traced(t) => t.device().clone(),
        }
    }

    /// Whether the value carries a tape.
    pub(crate) fn is_traced(&self) -> bool {
        matches!(self, Node::Traced(_))
    }
}

/// A parameter as a graph node: traced when trainable, constant when frozen.
pub(crate) fn param_node_mat(
    store: &ParamStore,
    id: ParamId,
) -> Result<Node<(usize, usize)>, NnError> {
    let t: &Mat = store.mat(id)?;
    Ok(if store.is_trainable(id)? {
        Node::Traced(t.clone().put_tape(Tp::default()))
    } else {
        Node::Const(t.clone())
    })
}

/// A vector parameter as a graph node: traced when trainable, constant when frozen.
pub(crate) fn param_node_vec(store: &ParamStore, id: ParamId) -> Result<Node<(usize,)>, NnError> {
    let t: &Vect = store.vect(id)?;
    Ok(if store.is_trainable(id)? {
        Node::Traced(t.clone().put_tape(Tp::default()))
    } else {
        Node::Const(t.clone())
    })
}

/// A `(batch, features)` activation.
#[derive(Debug)]
pub struct Var {
    pub(crate) node: Node<(usize, usize)>,
}

/// A single differentiable number, typically a loss or a penalty.
#[derive(Debug)]
pub struct Scalar {
    pub(crate) node: Node<()>,
}

/// Gradients of a loss with respect to every traced parameter.
#[derive(Debug)]
pub struct Grads {
    pub(crate) inner: Gradients<f32, Dev>,
}

impl Var {
    /// A constant matrix with the values of `a`.
    pub fn from_array(device: &Device, a: &Array2<f32>) -> Result<Var, NnError> {
        let (r, c) = a.dim();
        let data: Vec<f32> = match a.as_slice() {
            Some(values) => values.to_vec(),
            None => a.iter().copied().collect(),
        };
        Ok(Var {
            node: Node::Const(device.dev.try_tensor_from_vec(data, (r, c))?),
        })
    }

    /// A constant matrix from row-major values.
    pub fn from_vec(
        device: &Device,
        rows: usize,
        cols: usize,
        data: Vec<f32>,
    ) -> Result<Var, NnError> {
        if data.len() != rows * cols {
            return Err(NnError::shape(
                "Var::from_vec",
                format!("{} values", rows * cols),
                data.len(),
            ));
        }
        Ok(Var {
            node: Node::Const(device.dev.try_tensor_from_vec(data, (rows, cols))?),
        })
    }

    pub(crate) fn traced_or_const(node: Node<(usize, usize)>) -> Var {
        Var { node }
    }

    /// The device this value lives on.
    pub fn device(&self) -> Device {
        Device {
            dev: self.node.dev(),
        }
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        self.node.shape()
    }

    /// Whether this value carries a gradient tape.
    pub fn is_traced(&self) -> bool {
        self.node.is_traced()
    }

    /// A copy of the values.
    pub fn to_array(&self) -> Result<Array2<f32>, NnError> {
        Array2::from_shape_vec(self.shape(), self.node.to_vec())
            .map_err(|e| NnError::Backend(e.to_string()))
    }

    /// The same values with no gradient flowing back through them.
    pub fn detach(self) -> Var {
        Var {
            node: Node::Const(self.node.detach()),
        }
    }

    /// Two handles on this value, for using it twice (gradients of both uses
    /// are summed as long as both reach the loss).
    pub fn fork(self) -> (Var, Var) {
        let (a, b) = self.node.fork();
        (Var { node: a }, Var { node: b })
    }

    fn same_shape(&self, other: &Var, op: &str) -> Result<(), NnError> {
        if self.shape() != other.shape() {
            return Err(NnError::shape(
                op,
                format!("{:?}", self.shape()),
                format!("{:?}", other.shape()),
            ));
        }
        Ok(())
    }

    /// Element-wise sum.
    #[allow(clippy::should_implement_trait)] // fallible, so not `std::ops::Add`
    pub fn add(self, other: Var) -> Result<Var, NnError> {
        self.same_shape(&other, "add")?;
        Ok(Var {
            node: binary!(self.node, other.node, |a, b| a.try_add(b)),
        })
    }

    /// Element-wise difference.
    #[allow(clippy::should_implement_trait)] // fallible, so not `std::ops::Sub`
    pub fn sub(self, other: Var) -> Result<Var, NnError> {
        self.same_shape(&other, "sub")?;
        Ok(Var {
            node: binary!(self.node, other.node, |a, b| a.try_sub(b)),
        })
    }

    /// Element-wise product.
    #[allow(clippy::should_implement_trait)] // fallible, so not `std::ops::Mul`
    pub fn mul(self, other: Var) -> Result<Var, NnError> {
        self.same_shape(&other, "mul")?;
        Ok(Var {
            node: binary!(self.node, other.node, |a, b| a.try_mul(b)),
        })
    }

    /// Matrix product `self · other`.
    pub fn matmul(self, other: Var) -> Result<Var, NnError> {
        let ((_, k), (k2, n)) = (self.shape(), other.shape());
        if k != k2 {
            return Err(NnError::shape(
                "matmul",
                format!("({k}, {n})"),
                format!("({k2}, {n})"),
            ));
        }
        Ok(Var {
            node: binary!(self.node, other.node, |a, b| a.try_matmul(b)),
        })
    }

    /// Columns of `self` followed by columns of `other` (same number of rows).
    pub fn concat_cols(self, other: Var) -> Result<Var, NnError> {
        let ((r1, _), (r2, _)) = (self.shape(), other.shape());
        if r1 != r2 {
            return Err(NnError::shape(
                "concat_cols",
                format!("{r1} rows"),
                format!("{r2} rows"),
            ));
        }
        Ok(Var {
            node: binary!(self.node, other.node, |a, b| (a, b)
                .try_concat_along(Axis::<1>)),
        })
    }

    /// Multiplies every element by `factor`.
    pub fn scale(self, factor: f32) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_mul(factor)),
        })
    }

    /// Adds `value` to every element.
    pub fn add_scalar(self, value: f32) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_add(value)),
        })
    }

    /// Adds a row vector to every row (`x + 1 vᵀ`).
    pub(crate) fn add_row(self, row: Node<(usize,)>) -> Result<Var, NnError> {
        let shape = self.shape();
        check_row(shape, row.shape().0, "add_row")?;
        Ok(Var {
            node: binary!(self.node, row, |x, v| x
                .try_add(v.try_broadcast_like::<_, Axis<0>>(&shape)?)),
        })
    }

    /// Multiplies every row element-wise by a row vector.
    pub(crate) fn mul_row(self, row: Node<(usize,)>) -> Result<Var, NnError> {
        let shape = self.shape();
        check_row(shape, row.shape().0, "mul_row")?;
        Ok(Var {
            node: binary!(self.node, row, |x, v| x
                .try_mul(v.try_broadcast_like::<_, Axis<0>>(&shape)?)),
        })
    }

    /// Rectified linear unit `max(x, 0)`.
    pub fn relu(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_relu()),
        })
    }

    /// Exponential linear unit with α = 1: `x` for `x > 0`, `exp(x) − 1` otherwise.
    pub fn elu(self) -> Result<Var, NnError> {
        let (a, b) = self.node.fork();
        let positive = unary!(a, |t| t.try_relu());
        let negative = unary!(b, |t| t
            .try_clamp(f32::MIN, 0.0)?
            .try_exp()?
            .try_sub(1.0f32));
        Ok(Var {
            node: binary!(positive, negative, |p, n| p.try_add(n)),
        })
    }

    /// Hyperbolic tangent.
    pub fn tanh(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_tanh()),
        })
    }

    /// Logistic sigmoid.
    pub fn sigmoid(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_sigmoid()),
        })
    }

    /// Element-wise exponential.
    pub fn exp(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_exp()),
        })
    }

    /// Element-wise square.
    pub fn square(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_square()),
        })
    }

    /// Softmax over each row.
    pub fn softmax(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_softmax::<Axis<1>>()),
        })
    }

    /// Log-softmax over each row.
    pub fn log_softmax(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_log_softmax::<Axis<1>>()),
        })
    }

    /// Sum of all elements.
    pub fn sum(self) -> Result<Scalar, NnError> {
        let node = match self.node {
            Node::Const(t) => Node::Const(t.try_sum::<(), Axes2<0, 1>>()?),
            Node::Traced(t) => Node::Traced(t.try_sum::<(), Axes2<0, 1>>()?),
        };
        Ok(Scalar { node })
    }

    /// Mean of all elements.
    pub fn mean(self) -> Result<Scalar, NnError> {
        let (r, c) = self.shape();
        if r * c == 0 {
            return Err(NnError::shape(
                "mean",
                "a non-empty matrix",
                format!("({r}, {c})"),
            ));
        }
        self.sum()?.scale(1.0 / (r * c) as f32)
    }
}

fn check_row(shape: (usize, usize), len: usize, op: &str) -> Result<(), NnError> {
    if shape.1 != len {
        return Err(NnError::shape(
            op,
            format!("a row of {}", shape.1),
            format!("a row of {len}"),
        ));
    }
    Ok(())
}

impl Scalar {
    /// The current value.
    pub fn value(&self) -> Result<f32, NnError> {
        self.node
            .to_vec()
            .first()
            .copied()
            .ok_or_else(|| NnError::Backend("empty scalar".to_string()))
    }

    /// Whether gradients can be taken.
    pub fn is_traced(&self) -> bool {
        self.node.is_traced()
    }

    /// Sum of two scalars.
    #[allow(clippy::should_implement_trait)] // fallible, so not `std::ops::Add`
    pub fn add(self, other: Scalar) -> Result<Scalar, NnError> {
        Ok(Scalar {
            node: binary!(self.node, other.node, |a, b| a.try_add(b)),
        })
    }

    /// Multiplies by `factor`.
    pub fn scale(self, factor: f32) -> Result<Scalar, NnError> {
        Ok(Scalar {
            node: unary!(self.node, |t| t.try_mul(factor)),
        })
    }

    /// Adds a constant.
    pub fn add_scalar(self, value: f32) -> Result<Scalar, NnError> {
        Ok(Scalar {
            node: unary!(self.node, |t| t.try_add(value)),
        })
    }

    /// Backpropagates; fails if the value is NaN/infinite or depends on no trainable parameter.
    pub fn backward(self) -> Result<Grads, NnError> {
        super::check_finite("loss", &[self.value()?])?;
        match self.node {
            Node::Const(_) => Err(NnError::NoGradient),
            Node::Traced(t) => Ok(Grads {
                inner: t.try_backward()?,
            }),
        }
    }
}

impl Grads {
    /// The gradient of parameter `id` in row-major order (zeros if the loss did not depend on it).
    pub fn of(&mut self, store: &ParamStore, id: ParamId) -> Result<Vec<f32>, NnError> {
        match &store.param(id)?.value {
            super::params::Value::Matrix(t) => self.copy(t),
            super::params::Value::Vector(t) => self.copy(t),
        }
    }

    fn copy<S: Shape>(&mut self, t: &Tensor<S, f32, Dev>) -> Result<Vec<f32>, NnError> {
        self.inner.get_or_alloc_mut(t)?;
        Ok(self.inner.get(t).as_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::DeviceChoice;

    fn dev() -> Device {
        Device::open(DeviceChoice::Cpu).unwrap()
    }

    #[test]
    fn element_wise_ops_compute_values() {
        let d = dev();
        let a = Var::from_vec(&d, 2, 2, vec![1.0, -2.0, 0.5, 0.0]).unwrap();
        let b = Var::from_vec(&d, 2, 2, vec![3.0, 1.0, 2.0, -1.0]).unwrap();
        let (a1, a2) = a.fork();
        let (b1, b2) = b.fork();
        assert_eq!(
            a1.add(b1)
                .unwrap()
                .to_array()
                .unwrap()
                .into_raw_vec_and_offset()
                .0,
            vec![4.0, -1.0, 2.5, -1.0]
        );
        let prod = a2.mul(b2).unwrap();
        assert_eq!(
            prod.to_array().unwrap().into_raw_vec_and_offset().0,
            vec![3.0, -2.0, 1.0, -0.0]
        );
        let elu = Var::from_vec(&d, 1, 3, vec![-1.0, 0.0, 2.0])
            .unwrap()
            .elu()
            .unwrap();
        let v = elu.to_array().unwrap().into_raw_vec_and_offset().0;
        assert!(
            (v[0] - ((-1.0f32).exp() - 1.0)).abs() < 1e-6 && v[1] == 0.0 && v[2] == 2.0,
            "{v:?}"
        );
        let sm = Var::from_vec(&d, 1, 2, vec![0.0, 2.0f32.ln()])
            .unwrap()
            .softmax()
            .unwrap();
        let p = sm.to_array().unwrap().into_raw_vec_and_offset().0;
        assert!((p[0] - 1.0 / 3.0).abs() < 1e-6 && (p[1] - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn shape_mismatches_are_errors_not_panics() {
        let d = dev();
        let a = Var::from_vec(&d, 2, 2, vec![0.0; 4]).unwrap();
        let b = Var::from_vec(&d, 2, 3, vec![0.0; 6]).unwrap();
        assert!(matches!(a.add(b), Err(NnError::Shape { .. })));
        assert!(Var::from_vec(&d, 2, 2, vec![0.0; 3]).is_err());
        let a = Var::from_vec(&d, 2, 2, vec![0.0; 4]).unwrap();
        let c = Var::from_vec(&d, 3, 2, vec![0.0; 6]).unwrap();
        assert!(a.matmul(c).is_err());
    }

    #[test]
    fn constant_loss_has_no_gradient() {
        let d = dev();
        let a = Var::from_vec(&d, 1, 2, vec![1.0, 2.0]).unwrap();
        let loss = a.sum().unwrap();
        assert_eq!(loss.value().unwrap(), 3.0);
        assert!(matches!(loss.backward(), Err(NnError::NoGradient)));
    }
}
