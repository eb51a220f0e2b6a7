//! The covariance form sRRR's solvers work on.
//!
//! With more cells than genes, every step of the algorithm only needs
//! `G = XᵀX/n` (p×p), `C = XᵀY/n` (p×q) and `YᵀY/n` (q×q): the group-lasso
//! W-step, the Procrustes V-step, the loss and the ridge refit. Computing them
//! once per fold turns each coordinate update into O(p·r) work independent of n.
//! All matrices are stored row-major in plain vectors.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};
use ndarray::ArrayView2;

use super::SrrrError;

/// Second moments of centred data `X` (n×p) and `Y` (n×q).
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    /// Number of cells n.
    pub n: usize,
    /// Number of predictors p (genes).
    pub p: usize,
    /// Number of responses q.
    pub q: usize,
    /// `XᵀX/n`, p×p, row-major.
    pub gram: Vec<f64>,
    /// `XᵀY/n`, p×q, row-major.
    pub cross: Vec<f64>,
    /// `YᵀY/n`, q×q, row-major.
    pub yty: Vec<f64>,
}

/// Checks shapes and finiteness of an (X, Y) pair.
pub fn check_inputs(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<(), SrrrError> {
    if x.nrows() != y.nrows() || x.nrows() == 0 || x.ncols() == 0 || y.ncols() == 0 {
        return Err(SrrrError::ShapeMismatch {
            x_rows: x.nrows(),
            x_cols: x.ncols(),
            y_rows: y.nrows(),
            y_cols: y.ncols(),
        });
    }
    for (matrix, values) in [("X", x), ("Y", y)] {
        if let Some(((row, column), _)) = values.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(SrrrError::NonFiniteInput {
                matrix,
                row,
                column,
            });
        }
    }
    Ok(())
}

/// `AᵀB / n` for row-major `a` (n×k) and `b` (n×m), as a row-major k×m vector.
fn scaled_cross_product(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
    let a = MatRef::from_row_major_slice(a, n, k);
    let b = MatRef::from_row_major_slice(b, n, m);
    let mut product = Mat::<f64>::zeros(k, m);
    matmul(
        product.as_mut(),
        Accum::Replace,
        a.transpose(),
        b,
        1.0 / n as f64,
        Par::Seq,
    );
    let mut out = Vec::with_capacity(k * m);
    for i in 0..k {
        out.extend((0..m).map(|j| product[(i, j)]));
    }
    out
}

impl Moments {
    /// Computes the moments of already centred `x` (n×p) and `y` (n×q).
    pub fn from_data(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<Self, SrrrError> {
        check_inputs(x, y)?;
        let (n, p, q) = (x.nrows(), x.ncols(), y.ncols());
        let x = x.as_standard_layout();
        let y = y.as_standard_layout();
        let (Some(xs), Some(ys)) = (x.as_slice(), y.as_slice()) else {
            return Err(SrrrError::Decomposition {
                step: "moment computation",
                reason: "matrix is not contiguous".into(),
            });
        };
        Ok(Self {
            n,
            p,
            q,
            gram: scaled_cross_product(xs, xs, n, p, p),
            cross: scaled_cross_product(xs, ys, n, p, q),
            yty: scaled_cross_product(ys, ys, n, q, q),
        })
    }

    /// The moments of the predictors `genes` only (for the relaxed refit).
    pub fn subset(&self, genes: &[usize]) -> Self {
        let gram = genes
            .iter()
            .flat_map(|&a| genes.iter().map(move |&b| (a, b)))
            .map(|(a, b)| self.gram[a * self.p + b])
            .collect();
        let cross = genes
            .iter()
            .flat_map(|&a| self.cross[a * self.q..(a + 1) * self.q].iter().copied())
            .collect();
        Self {
            n: self.n,
            p: genes.len(),
            q: self.q,
            gram,
            cross,
            yty: self.yty.clone(),
        }
    }

    /// `tr(YᵀY)/n`, the total response variance per cell.
    pub fn total_variance(&self) -> f64 {
        (0..self.q).map(|j| self.yty[j * self.q + j]).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn moments_match_hand_computed_products() {
        let x = array![[1.0, 0.0], [0.0, 2.0], [-1.0, -2.0]];
        let y = array![[3.0], [0.0], [-3.0]];
        let m = Moments::from_data(x.view(), y.view()).unwrap();
        assert_eq!(m.gram, vec![2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 8.0 / 3.0]);
        assert_eq!(m.cross, vec![2.0, 2.0]);
        assert_eq!(m.yty, vec![6.0]);
        assert_eq!(m.total_variance(), 6.0);
        let sub = m.subset(&[1]);
        assert_eq!(
            (sub.p, sub.gram.clone(), sub.cross.clone()),
            (1, vec![8.0 / 3.0], vec![2.0])
        );
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let x = array![[1.0, f64::INFINITY]];
        let y = array![[1.0]];
        assert_eq!(
            Moments::from_data(x.view(), y.view()),
            Err(SrrrError::NonFiniteInput {
                matrix: "X",
                row: 0,
                column: 1
            })
        );
        let y2 = array![[1.0], [2.0]];
        assert!(matches!(
            Moments::from_data(x.view(), y2.view()),
            Err(SrrrError::ShapeMismatch { .. })
        ));
    }
}
