//! Canonical correlation analysis and the PC-CCA baseline of Gala et al.
//! (2019, §7.3 of the reference): PCA of each modality, CCA between the
//! principal components of the paired training cells, the top d canonical
//! components, whitened.
//!
//! [`Cca`] is classical CCA: with `Kx = Sxx^{-1/2}` and `Ky = Syy^{-1/2}`, the
//! SVD `Kx Sxy Ky = U S Vᵀ` gives weights `Kx U` and `Ky V` and the canonical
//! correlations `S`. Its training projections are already white (unit
//! variance, uncorrelated); [`PcCca`] therefore whitens with the training
//! statistics, so test cells are mapped with the training fit only (the 2019
//! notebook whitened each set with its own statistics).

use faer::{Mat, Side};
use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use serde::{Deserialize, Serialize};

/// Why a CCA could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CcaError {
    /// The inputs do not fit together.
    #[error("cca: {0}")]
    Shape(String),
    /// A decomposition failed.
    #[error("cca: {0} failed")]
    Decomposition(&'static str),
}

fn centre(x: ArrayView2<'_, f64>) -> (Array1<f64>, Array2<f64>) {
    let mean = x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(x.ncols()));
    let centred = &x - &mean.view().insert_axis(Axis(0));
    (mean, centred)
}

fn to_faer(a: &Array2<f64>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

/// `S^{-1/2}` of a symmetric positive semi-definite matrix; eigenvalues below
/// `floor` times the largest are treated as that floor.
pub fn inverse_sqrt(a: &Array2<f64>) -> Result<Array2<f64>, CcaError> {
    let d = a.nrows();
    let eigen = to_faer(a)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| CcaError::Decomposition("eigendecomposition"))?;
    let (u, s) = (eigen.U(), eigen.S());
    let largest = (0..d).map(|i| s[i]).fold(0.0f64, f64::max);
    let floor = (largest * 1e-10).max(1e-300);
    let mut out = Array2::zeros((d, d));
    for k in 0..d {
        let w = 1.0 / s[k].max(floor).sqrt();
        for i in 0..d {
            for j in 0..d {
                out[[i, j]] += w * u[(i, k)] * u[(j, k)];
            }
        }
    }
    Ok(out)
}

/// A fitted CCA.
#[derive(Debug, Clone, PartialEq)]
pub struct Cca {
    /// Column means of X.
    pub mean_x: Array1<f64>,
    /// Column means of Y.
    pub mean_y: Array1<f64>,
    /// X weights, `p × d`.
    pub weights_x: Array2<f64>,
    /// Y weights, `q × d`.
    pub weights_y: Array2<f64>,
    /// Canonical correlations, largest first.
    pub correlations: Vec<f64>,
}

impl Cca {
    /// Fits `components` canonical pairs between the rows of `x` and `y` (same cells).
    pub fn fit(
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        components: usize,
    ) -> Result<Cca, CcaError> {
        let n = x.nrows();
        if y.nrows() != n || n < 2 {
            return Err(CcaError::Shape(format!("{} and {} rows", n, y.nrows())));
        }
        if components == 0 || components > x.ncols().min(y.ncols()) {
            return Err(CcaError::Shape(format!(
                "{components} components from {} and {} features",
                x.ncols(),
                y.ncols()
            )));
        }
        let (mean_x, cx) = centre(x);
        let (mean_y, cy) = centre(y);
        let bessel = (n - 1) as f64;
        let kx = inverse_sqrt(&(cx.t().dot(&cx) / bessel))?;
        let ky = inverse_sqrt(&(cy.t().dot(&cy) / bessel))?;
        let sxy = cx.t().dot(&cy) / bessel;
        let m = kx.dot(&sxy).dot(&ky);
        let svd = to_faer(&m)
            .thin_svd()
            .map_err(|_| CcaError::Decomposition("SVD"))?;
        let (u, sv, v) = (svd.U(), svd.S(), svd.V());
        let u = Array2::from_shape_fn((m.nrows(), components), |(i, j)| u[(i, j)]);
        let v = Array2::from_shape_fn((m.ncols(), components), |(i, j)| v[(i, j)]);
        Ok(Cca {
            mean_x,
            mean_y,
            weights_x: kx.dot(&u),
            weights_y: ky.dot(&v),
            correlations: (0..components).map(|k| sv[k]).collect(),
        })
    }

    /// Canonical scores of X rows.
    pub fn transform_x(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        (&x - &self.mean_x.view().insert_axis(Axis(0))).dot(&self.weights_x)
    }

    /// Canonical scores of Y rows.
    pub fn transform_y(&self, y: ArrayView2<'_, f64>) -> Array2<f64> {
        (&y - &self.mean_y.view().insert_axis(Axis(0))).dot(&self.weights_y)
    }
}

/// A PCA projection onto the top components.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Column means.
    pub mean: Array1<f64>,
    /// Loadings, `features × components`.
    pub loadings: Array2<f64>,
}

impl Pca {
    /// The top `components` principal axes of the rows of `x`.
    pub fn fit(x: ArrayView2<'_, f64>, components: usize) -> Result<Pca, CcaError> {
        let k = components.min(x.ncols()).min(x.nrows());
        if k == 0 {
            return Err(CcaError::Shape("PCA needs at least one component".into()));
        }
        let (mean, centred) = centre(x);
        let svd = to_faer(&centred)
            .thin_svd()
            .map_err(|_| CcaError::Decomposition("PCA SVD"))?;
        let v = svd.V();
        Ok(Pca {
            mean,
            loadings: Array2::from_shape_fn((x.ncols(), k), |(i, j)| v[(i, j)]),
        })
    }

    /// Principal component scores.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        (&x - &self.mean.view().insert_axis(Axis(0))).dot(&self.loadings)
    }
}

/// PC-CCA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcCcaConfig {
    /// Principal components kept of the first modality.
    pub pcs_a: usize,
    /// Principal components kept of the second modality.
    pub pcs_b: usize,
    /// Canonical components kept (the latent dimension).
    pub components: usize,
}

impl Default for PcCcaConfig {
    fn default() -> Self {
        PcCcaConfig {
            pcs_a: 10,
            pcs_b: 10,
            components: 3,
        }
    }
}

/// A fitted PC-CCA: both modalities mapped into a shared whitened space.
#[derive(Debug, Clone, PartialEq)]
pub struct PcCca {
    pca_a: Pca,
    pca_b: Pca,
    cca: Cca,
    whiten_a: (Array1<f64>, Array2<f64>),
    whiten_b: (Array1<f64>, Array2<f64>),
}

fn whitener(z: &Array2<f64>) -> Result<(Array1<f64>, Array2<f64>), CcaError> {
    let (mean, c) = centre(z.view());
    let cov = c.t().dot(&c) / (z.nrows().max(2) - 1) as f64;
    Ok((mean, inverse_sqrt(&cov)?))
}

impl PcCca {
    /// Fits on paired rows of `a` and `b`.
    pub fn fit(
        a: ArrayView2<'_, f64>,
        b: ArrayView2<'_, f64>,
        config: &PcCcaConfig,
    ) -> Result<PcCca, CcaError> {
        let pca_a = Pca::fit(a, config.pcs_a)?;
        let pca_b = Pca::fit(b, config.pcs_b)?;
        let (pa, pb) = (pca_a.transform(a), pca_b.transform(b));
        let cca = Cca::fit(pa.view(), pb.view(), config.components)?;
        let whiten_a = whitener(&cca.transform_x(pa.view()))?;
        let whiten_b = whitener(&cca.transform_y(pb.view()))?;
        Ok(PcCca {
            pca_a,
            pca_b,
            cca,
            whiten_a,
            whiten_b,
        })
    }

    /// The canonical correlations.
    pub fn correlations(&self) -> &[f64] {
        &self.cca.correlations
    }

    /// Latent codes of rows of the first modality.
    pub fn transform_a(&self, a: ArrayView2<'_, f64>) -> Array2<f64> {
        let z = self.cca.transform_x(self.pca_a.transform(a).view());
        (&z - &self.whiten_a.0.view().insert_axis(Axis(0))).dot(&self.whiten_a.1)
    }

    /// Latent codes of rows of the second modality.
    pub fn transform_b(&self, b: ArrayView2<'_, f64>) -> Array2<f64> {
        let z = self.cca.transform_y(self.pca_b.transform(b).view());
        (&z - &self.whiten_b.0.view().insert_axis(Axis(0))).dot(&self.whiten_b.1)
    }
}

/// A least-squares linear decoder `x ≈ [z, 1] W`, used to reconstruct or
/// cross-predict a modality from linear latent codes.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearDecoder {
    coefficients: Array2<f64>,
}

impl LinearDecoder {
    /// Fits `x` from `z` (same rows) with a tiny ridge for stability.
    pub fn fit(z: ArrayView2<'_, f64>, x: ArrayView2<'_, f64>) -> Result<LinearDecoder, CcaError> {
        let (n, d) = z.dim();
        let design =
            Array2::from_shape_fn((n, d + 1), |(i, j)| if j < d { z[[i, j]] } else { 1.0 });
        let mut gram = design.t().dot(&design);
        for i in 0..d + 1 {
            gram[[i, i]] += 1e-8 * n as f64;
        }
        let rhs = design.t().dot(&x);
        let llt = to_faer(&gram)
            .llt(Side::Lower)
            .map_err(|_| CcaError::Decomposition("decoder Cholesky"))?;
        use faer::prelude::Solve;
        let solved = llt.solve(to_faer(&rhs));
        Ok(LinearDecoder {
            coefficients: Array2::from_shape_fn((d + 1, x.ncols()), |(i, j)| solved[(i, j)]),
        })
    }

    /// Decoded rows.
    pub fn predict(&self, z: ArrayView2<'_, f64>) -> Array2<f64> {
        let d = z.ncols();
        z.dot(&self.coefficients.slice_axis(Axis(0), Slice::from(..d))) + self.coefficients.row(d)
    }
}
