//! Scalars computed outside the tape.
//!
//! Some losses are cheaper and more stable to evaluate by hand than to spell
//! out as tensor operations, for example a coupling that needs the smallest
//! eigenvalue of a small covariance matrix. [`external_scalar`] lets a caller
//! compute such a function `f(X₁, …, X_m)` and its gradients `∂f/∂X_k` in
//! plain Rust and put the result back on the tape: the returned [`Scalar`]
//! has the value `f` and backpropagates exactly the given gradients into the
//! inputs.

use ndarray::Array2;

use super::NnError;
use super::var::{Scalar, Var};

/// A scalar with value `value` whose gradient with respect to `inputs[k]` is
/// `gradients[k]` (same shape as the input).
///
/// Built as `Σ_k ⟨X_k, G_k⟩ + (value − Σ_k ⟨X_k, G_k⟩)`, where the bracket is a
/// constant: the value is `value` (up to `f32` rounding) and only the first sum
/// carries gradients. Inputs that carry no tape contribute nothing.
pub fn external_scalar(
    inputs: Vec<Var>,
    value: f32,
    gradients: &[Array2<f32>],
) -> Result<Scalar, NnError> {
    if inputs.len() != gradients.len() {
        return Err(NnError::shape(
            "external_scalar",
            format!("{} gradients", inputs.len()),
            gradients.len(),
        ));
    }
    if !value.is_finite() {
        return Err(NnError::NonFinite {
            what: "external scalar".into(),
            index: 0,
            value,
        });
    }
    let mut total: Option<Scalar> = None;
    for (x, g) in inputs.into_iter().zip(gradients) {
        if x.shape() != g.dim() {
            return Err(NnError::shape(
                "external_scalar gradient",
                format!("{:?}", x.shape()),
                format!("{:?}", g.dim()),
            ));
        }
        let constant = Var::from_array(&x.device(), g)?;
        let term = x.mul(constant)?.sum()?;
        total = Some(match total {
            None => term,
            Some(t) => t.add(term)?,
        });
    }
    match total {
        None => Err(NnError::shape("external_scalar", "at least one input", 0)),
        Some(t) => {
            // Shift the linear part's value to the requested value.
            let current = t.value()?;
            t.add_scalar(value - current)
        }
    }
}
