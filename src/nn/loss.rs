//! Losses. Each takes the model's output [`Var`] and returns a [`Scalar`] that
//! is averaged over the batch (rows), matching Keras: mean squared error
//! averages over outputs too, the others sum over a row's classes or latent
//! dimensions. Log-variances parameterise Gaussians.

use ndarray::Array2;

use super::NnError;
use super::var::{Scalar, Var};

fn same_shape(a: &Var, b: &Var, op: &str) -> Result<(), NnError> {
    if a.shape() != b.shape() {
        return Err(NnError::shape(
            op,
            format!("{:?}", a.shape()),
            format!("{:?}", b.shape()),
        ));
    }
    if a.shape().0 == 0 {
        return Err(NnError::shape(op, "a non-empty batch", "0 rows"));
    }
    Ok(())
}

/// Mean squared error over all elements (Keras `mse`).
pub fn mse(prediction: Var, target: Var) -> Result<Scalar, NnError> {
    same_shape(&prediction, &target, "mse")?;
    prediction.sub(target)?.square()?.mean()
}

/// Cross-entropy of row-wise softmax(`logits`) against target probabilities
/// (one-hot or soft), averaged over rows.
pub fn cross_entropy(logits: Var, target: Var) -> Result<Scalar, NnError> {
    same_shape(&logits, &target, "cross_entropy")?;
    let rows = logits.shape().0;
    logits
        .log_softmax()?
        .mul(target)?
        .sum()?
        .scale(-1.0 / rows as f32)
}

/// Cross-entropy of row-wise softmax(`logits`) against integer class labels.
pub fn cross_entropy_labels(logits: Var, labels: &[usize]) -> Result<Scalar, NnError> {
    let (rows, classes) = logits.shape();
    if labels.len() != rows {
        return Err(NnError::shape(
            "cross_entropy_labels",
            format!("{rows} labels"),
            labels.len(),
        ));
    }
    let mut onehot = Array2::<f32>::zeros((rows, classes));
    for (i, &label) in labels.iter().enumerate() {
        if label >= classes {
            return Err(NnError::invalid(
                "labels",
                format!("label {label} at row {i} is not below {classes}"),
            ));
        }
        onehot[[i, label]] = 1.0;
    }
    let target = Var::from_array(&logits.device(), &onehot)?;
    cross_entropy(logits, target)
}

/// `KL(N(mu, exp(logvar)) ‖ N(0, 1))`, summed over dimensions, averaged over rows.
pub fn kl_std_normal(mu: Var, logvar: Var) -> Result<Scalar, NnError> {
    same_shape(&mu, &logvar, "kl_std_normal")?;
    let (rows, cols) = mu.shape();
    let (lv1, lv2) = logvar.fork();
    let inner = lv1.exp()?.add(mu.square()?)?.sub(lv2)?;
    inner
        .sum()?
        .add_scalar(-((rows * cols) as f32))?
        .scale(0.5 / rows as f32)
}

/// `KL(N(mu, exp(logvar)) ‖ N(prior_mu, exp(prior_logvar)))`, summed over
/// dimensions, averaged over rows. Gradients reach the prior too.
pub fn kl_normal(
    mu: Var,
    logvar: Var,
    prior_mu: Var,
    prior_logvar: Var,
) -> Result<Scalar, NnError> {
    same_shape(&mu, &logvar, "kl_normal")?;
    same_shape(&mu, &prior_mu, "kl_normal")?;
    same_shape(&mu, &prior_logvar, "kl_normal")?;
    let (rows, cols) = mu.shape();
    let (lv1, lv2) = logvar.fork();
    let (p1, rest) = prior_logvar.fork();
    let (p2, p3) = rest.fork();
    let variance_ratio = lv1.sub(p1)?.exp()?;
    let mean_term = mu.sub(prior_mu)?.square()?.mul(p2.scale(-1.0)?.exp()?)?;
    let log_term = p3.sub(lv2)?;
    let total = variance_ratio.add(mean_term)?.add(log_term)?.sum()?;
    total
        .add_scalar(-((rows * cols) as f32))?
        .scale(0.5 / rows as f32)
}

/// `KL(softmax(logits) ‖ uniform)` = `Σ_k p_k (ln p_k + ln K)`, averaged over rows.
pub fn kl_categorical_uniform(logits: Var) -> Result<Scalar, NnError> {
    let (rows, classes) = logits.shape();
    if rows == 0 || classes == 0 {
        return Err(NnError::shape(
            "kl_categorical_uniform",
            "a non-empty matrix",
            format!("({rows}, {classes})"),
        ));
    }
    let (l1, l2) = logits.log_softmax()?.fork();
    l1.exp()?
        .mul(l2.add_scalar((classes as f32).ln())?)?
        .sum()?
        .scale(1.0 / rows as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Device, DeviceChoice};

    fn var(r: usize, c: usize, v: &[f32]) -> Var {
        Var::from_vec(&Device::open(DeviceChoice::Cpu).unwrap(), r, c, v.to_vec()).unwrap()
    }

    fn close(a: f32, b: f64) {
        assert!((a as f64 - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }

    #[test]
    fn mse_matches_definition() {
        close(
            mse(
                var(2, 2, &[1.0, 2.0, 3.0, 4.0]),
                var(2, 2, &[0.0, 2.0, 5.0, 4.0]),
            )
            .unwrap()
            .value()
            .unwrap(),
            1.25,
        );
        assert!(mse(var(1, 2, &[0.0; 2]), var(2, 1, &[0.0; 2])).is_err());
    }

    #[test]
    fn cross_entropy_matches_definition() {
        let logits = [0.0f64, 1.0, 2.0];
        let lse = logits.iter().map(|v| v.exp()).sum::<f64>().ln();
        let v = cross_entropy_labels(var(2, 3, &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]), &[2, 0])
            .unwrap()
            .value()
            .unwrap();
        close(v, ((lse - 2.0) + lse) / 2.0);
        let soft = cross_entropy(var(1, 3, &[0.0, 1.0, 2.0]), var(1, 3, &[0.5, 0.5, 0.0]))
            .unwrap()
            .value()
            .unwrap();
        close(soft, 0.5 * lse + 0.5 * (lse - 1.0));
        assert!(cross_entropy_labels(var(1, 3, &[0.0; 3]), &[3]).is_err());
        assert!(cross_entropy_labels(var(1, 3, &[0.0; 3]), &[0, 1]).is_err());
    }

    #[test]
    fn kl_terms_match_closed_forms() {
        // One row, two dims: mu = (1, 0), var = (1, e).
        let v = kl_std_normal(var(1, 2, &[1.0, 0.0]), var(1, 2, &[0.0, 1.0]))
            .unwrap()
            .value()
            .unwrap();
        close(
            v,
            0.5 * ((1.0 + 1.0 - 1.0 - 0.0) + (1f64.exp() - 1.0 - 1.0)),
        );
        // Against N(1, e^2): 0.5 * (ln(e^2/1) + (1 + 0)/e^2 - 1) for mu = 1, var = 1.
        let g = kl_normal(
            var(1, 1, &[1.0]),
            var(1, 1, &[0.0]),
            var(1, 1, &[1.0]),
            var(1, 1, &[2.0]),
        )
        .unwrap();
        close(g.value().unwrap(), 0.5 * (2.0 + (-2f64).exp() - 1.0));
        // The same distributions give zero.
        let z = kl_normal(
            var(1, 2, &[0.3, -1.0]),
            var(1, 2, &[0.5, 0.1]),
            var(1, 2, &[0.3, -1.0]),
            var(1, 2, &[0.5, 0.1]),
        );
        assert!(z.unwrap().value().unwrap().abs() < 1e-6);
        let u = kl_categorical_uniform(var(1, 2, &[0.0, 3f32.ln()]))
            .unwrap()
            .value()
            .unwrap();
        close(u, 0.25 * (0.25f64 * 2.0).ln() + 0.75 * (0.75f64 * 2.0).ln());
        assert!(
            kl_categorical_uniform(var(1, 3, &[2.0; 3]))
                .unwrap()
                .value()
                .unwrap()
                .abs()
                < 1e-6
        );
    }
}
