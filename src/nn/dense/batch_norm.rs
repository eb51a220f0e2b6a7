//! Batch normalisation without scale or shift for the dense engine, with its
//! backward pass (the latent layer of the coupled autoencoder, the encoder
//! of the mixture VAE).
//!
//! Training mode normalises each column with the batch mean and (biased)
//! variance and moves the running statistics towards them, `running =
//! momentum · running + (1 − momentum) · batch`, with the unbiased batch
//! variance for the running variance (as [`crate::nn::BatchNorm`] does on the
//! tape). Evaluation mode uses the running statistics.

use super::kernels;
use crate::nn::NnError;

/// A batch normalisation of `running_mean.len()` columns.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseBatchNorm {
    /// Running mean per column.
    pub running_mean: Vec<f32>,
    /// Running variance per column.
    pub running_var: Vec<f32>,
    /// Weight of the old running statistics in each update (Keras convention).
    pub momentum: f32,
    /// Added to the variance before the square root.
    pub eps: f32,
}

/// What a training-mode forward pass keeps for its backward pass.
#[derive(Debug, Default, Clone)]
pub struct BatchNormCache {
    /// The normalised output, `rows × columns`.
    pub output: Vec<f32>,
    /// `1 / sqrt(var + eps)` per column.
    inv_std: Vec<f32>,
    /// Per-column scratch sums.
    sums: Vec<f32>,
    /// Per-column scratch sums of `dy ⊙ y`.
    sums_y: Vec<f32>,
}

impl DenseBatchNorm {
    /// Running statistics of a fresh layer (mean 0, variance 1).
    pub fn new(columns: usize, momentum: f32, eps: f32) -> Self {
        DenseBatchNorm {
            running_mean: vec![0.0; columns],
            running_var: vec![1.0; columns],
            momentum,
            eps,
        }
    }

    /// The number of columns normalised.
    pub fn columns(&self) -> usize {
        self.running_mean.len()
    }

    fn check(&self, x: &[f32], rows: usize) -> Result<usize, NnError> {
        let cols = self.columns();
        if rows == 0 || x.len() != rows * cols {
            return Err(NnError::shape(
                "batch norm",
                format!("a non-empty batch of {cols} columns"),
                format!("{} values in {rows} rows", x.len()),
            ));
        }
        Ok(cols)
    }

    /// Training mode: normalises `x` (`rows × columns`) with its own
    /// statistics into `cache.output` and updates the running statistics.
    pub fn forward_train(
        &mut self,
        x: &[f32],
        rows: usize,
        cache: &mut BatchNormCache,
    ) -> Result<(), NnError> {
        let cols = self.check(x, rows)?;
        let n = rows as f32;
        let mean = &mut cache.sums;
        mean.clear();
        mean.resize(cols, 0.0);
        kernels::add_rows(mean, x);
        mean.iter_mut().for_each(|m| *m /= n);
        let var = &mut cache.inv_std;
        var.clear();
        var.resize(cols, 0.0);
        kernels::add_squared_deviation_rows(var, x, mean);
        var.iter_mut().for_each(|s| *s /= n);
        let (m, bessel) = (self.momentum, if rows > 1 { n / (n - 1.0) } else { 1.0 });
        for (((rm, rv), bm), bv) in self
            .running_mean
            .iter_mut()
            .zip(&mut self.running_var)
            .zip(mean.iter())
            .zip(var.iter())
        {
            *rm = m * *rm + (1.0 - m) * bm;
            *rv = m * *rv + (1.0 - m) * bv * bessel;
        }
        var.iter_mut()
            .for_each(|v| *v = 1.0 / (*v + self.eps).sqrt());
        normalise(x, mean, var, &mut cache.output);
        Ok(())
    }

    /// Evaluation mode: normalises `x` with the running statistics into `out`.
    pub fn forward_eval(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) -> Result<(), NnError> {
        self.check(x, rows)?;
        let inv_std: Vec<f32> = self
            .running_var
            .iter()
            .map(|v| 1.0 / (v + self.eps).sqrt())
            .collect();
        normalise(x, &self.running_mean, &inv_std, out);
        Ok(())
    }

    /// `∂loss/∂x` into `d_input` from `∂loss/∂output` after [`DenseBatchNorm::forward_train`]:
    /// `σ⁻¹ (dy − mean(dy) − y · mean(dy ⊙ y))` per column.
    pub fn backward(
        &self,
        d_output: &[f32],
        rows: usize,
        cache: &mut BatchNormCache,
        d_input: &mut Vec<f32>,
    ) -> Result<(), NnError> {
        let cols = self.check(d_output, rows)?;
        if cache.output.len() != d_output.len() {
            return Err(NnError::shape(
                "batch norm backward",
                format!("{} values from the forward pass", d_output.len()),
                cache.output.len(),
            ));
        }
        let n = rows as f32;
        let (sums, sums_y) = (&mut cache.sums, &mut cache.sums_y);
        sums.clear();
        sums.resize(cols, 0.0);
        sums_y.clear();
        sums_y.resize(cols, 0.0);
        kernels::add_rows(sums, d_output);
        kernels::add_product_rows(sums_y, d_output, &cache.output);
        d_input.clear();
        d_input.resize(d_output.len(), 0.0);
        kernels::batch_norm_input_gradient(
            d_input,
            d_output,
            &cache.output,
            &cache.inv_std,
            sums,
            sums_y,
            n,
        );
        Ok(())
    }
}

/// `out = (x − mean) ⊙ inv_std`, row by row.
fn normalise(x: &[f32], mean: &[f32], inv_std: &[f32], out: &mut Vec<f32>) {
    out.clear();
    out.resize(x.len(), 0.0);
    kernels::normalise_rows(out, x, mean, inv_std);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<f32> {
        vec![1.0, 10.0, 2.0, 20.0, 3.0, 35.0, 4.0, 40.0]
    }

    #[test]
    fn normalises_and_tracks_running_statistics() {
        let mut bn = DenseBatchNorm::new(2, 0.99, 1e-3);
        let mut cache = BatchNormCache::default();
        bn.forward_train(&batch(), 4, &mut cache).unwrap();
        for c in 0..2 {
            let col: Vec<f32> = cache.output.iter().skip(c).step_by(2).copied().collect();
            let mean = col.iter().sum::<f32>() / 4.0;
            let var = col.iter().map(|v| v * v).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-5 && var > 0.9 && var < 1.0, "{mean} {var}");
        }
        assert!((bn.running_mean[0] - 0.01 * 2.5).abs() < 1e-6);
        assert!((bn.running_var[0] - (0.99 + 0.01 * 5.0 / 3.0)).abs() < 1e-5);
        let mut out = Vec::new();
        bn.forward_eval(&batch(), 4, &mut out).unwrap();
        let want = (1.0 - bn.running_mean[0]) / (bn.running_var[0] + 1e-3).sqrt();
        assert!((out[0] - want).abs() < 1e-5);
        assert!(bn.forward_eval(&batch(), 3, &mut out).is_err());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let x = batch();
        let weights: Vec<f32> = (0..8).map(|i| (i as f32 * 0.7).sin()).collect();
        // loss = Σ w ⊙ BN(x), so ∂loss/∂output = w.
        let loss = |x: &[f32]| -> f64 {
            let mut bn = DenseBatchNorm::new(2, 0.9, 1e-3);
            let mut cache = BatchNormCache::default();
            bn.forward_train(x, 4, &mut cache).unwrap();
            cache
                .output
                .iter()
                .zip(&weights)
                .map(|(y, w)| f64::from(y * w))
                .sum()
        };
        let mut bn = DenseBatchNorm::new(2, 0.9, 1e-3);
        let mut cache = BatchNormCache::default();
        bn.forward_train(&x, 4, &mut cache).unwrap();
        let mut d = Vec::new();
        bn.backward(&weights, 4, &mut cache, &mut d).unwrap();
        let h = 1e-2f32;
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(h));
            assert!(
                (numeric - f64::from(d[i])).abs() < 2e-3,
                "x{i}: {numeric} vs {}",
                d[i]
            );
        }
    }
}
