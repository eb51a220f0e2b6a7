//! Losses of the dense engine with their gradients, written into reusable buffers.

use super::kernels;
use crate::nn::NnError;

/// Mean squared error over all entries and its gradient, written into `grad`.
pub fn mse_with_grad(prediction: &[f32], target: &[f32], grad: &mut Vec<f32>) -> f32 {
    weighted_mse_with_grad(prediction, target, 1.0, grad)
}

/// Mean squared error over all entries, and the gradient of `weight` times
/// it, written into `grad`.
pub fn weighted_mse_with_grad(
    prediction: &[f32],
    target: &[f32],
    weight: f32,
    grad: &mut Vec<f32>,
) -> f32 {
    let n = prediction.len().min(target.len());
    grad.resize(n, 0.0);
    let scale = 2.0 * weight / n.max(1) as f32;
    let sum = kernels::squared_error(&prediction[..n], &target[..n], scale, grad);
    (sum / n.max(1) as f64) as f32
}

/// Mean softmax cross-entropy of `logits` (`rows × classes`) against integer
/// `labels`, and its gradient with respect to the logits, written into `grad`.
pub fn softmax_cross_entropy_with_grad(
    logits: &[f32],
    classes: usize,
    labels: &[usize],
    grad: &mut Vec<f32>,
) -> Result<f32, NnError> {
    let rows = labels.len();
    if logits.len() != rows * classes || rows == 0 {
        return Err(NnError::shape(
            "cross entropy",
            format!("{rows}x{classes} logits"),
            logits.len(),
        ));
    }
    grad.clear();
    grad.extend_from_slice(logits);
    let mut total = 0.0f64;
    for (row, &label) in grad.chunks_exact_mut(classes).zip(labels) {
        if label >= classes {
            return Err(NnError::invalid(
                "label",
                format!("{label} is not below the {classes} classes"),
            ));
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        row.iter_mut().for_each(|v| {
            *v = (*v - max).exp();
            sum += *v;
        });
        total -= f64::from((row[label] / sum).ln());
        row.iter_mut().for_each(|v| *v /= sum * rows as f32);
        row[label] -= 1.0 / rows as f32;
    }
    Ok((total / rows as f64) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let logits = vec![0.3f32, -1.0, 2.0, 0.5, 0.5, -0.2];
        let labels = [2usize, 0];
        let mut g = Vec::new();
        softmax_cross_entropy_with_grad(&logits, 3, &labels, &mut g).unwrap();
        let h = 1e-3f32;
        for i in 0..logits.len() {
            let (mut p, mut m) = (logits.clone(), logits.clone());
            p[i] += h;
            m[i] -= h;
            let mut scratch = Vec::new();
            let lp = softmax_cross_entropy_with_grad(&p, 3, &labels, &mut scratch).unwrap();
            let lm = softmax_cross_entropy_with_grad(&m, 3, &labels, &mut scratch).unwrap();
            assert!(((lp - lm) / (2.0 * h) - g[i]).abs() < 1e-3);
        }
        assert!(softmax_cross_entropy_with_grad(&logits, 3, &[3, 0], &mut g).is_err());
    }
}
