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

/// `factor·AᵀB` for row-major `a` (n×k) and `b` (n×m), as a row-major k×m vector.
fn scaled_cross_product(
    a: &[f64],
    b: &[f64],
    n: usize,
    k: usize,
    m: usize,
    factor: f64,
) -> Vec<f64> {
    let a = MatRef::from_row_major_slice(a, n, k);
    let b = MatRef::from_row_major_slice(b, n, m);
    let mut product = Mat::<f64>::zeros(k, m);
    matmul(
        product.as_mut(),
        Accum::Replace,
        a.transpose(),
        b,
        factor,
        Par::Seq,
    );
    let mut out = Vec::with_capacity(k * m);
    for i in 0..k {
        out.extend((0..m).map(|j| product[(i, j)]));
    }
    out
}

/// Uncentred sums over all cells. A fold whose training cells are all the
/// cells but its test cells gets its centred training moments by subtracting
/// the (small) test block, instead of recomputing `XᵀX` over the training cells.
#[derive(Debug, Clone, PartialEq)]
pub struct MomentSums {
    n: usize,
    p: usize,
    q: usize,
    xtx: Vec<f64>,
    xty: Vec<f64>,
    yty: Vec<f64>,
    x_sum: Vec<f64>,
    y_sum: Vec<f64>,
}

/// Row-major contiguous copy of the rows `rows` of `data` (all rows if None).
fn rows_of(data: ArrayView2<'_, f64>, rows: Option<&[usize]>) -> Vec<f64> {
    match rows {
        Some(rows) => rows.iter().flat_map(|&i| data.row(i).to_vec()).collect(),
        None => data.iter().copied().collect(),
    }
}

fn column_sums(data: &[f64], columns: usize) -> Vec<f64> {
    let mut sums = vec![0.0; columns];
    for row in data.chunks_exact(columns) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    sums
}

impl MomentSums {
    /// Sums of `x` (n×p) and `y` (n×q) over all cells.
    pub fn from_data(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<Self, SrrrError> {
        check_inputs(x, y)?;
        let (n, p, q) = (x.nrows(), x.ncols(), y.ncols());
        let (xs, ys) = (rows_of(x, None), rows_of(y, None));
        Ok(Self {
            n,
            p,
            q,
            xtx: scaled_cross_product(&xs, &xs, n, p, p, 1.0),
            xty: scaled_cross_product(&xs, &ys, n, p, q, 1.0),
            yty: scaled_cross_product(&ys, &ys, n, q, q, 1.0),
            x_sum: column_sums(&xs, p),
            y_sum: column_sums(&ys, q),
        })
    }

    /// The moments of the training cells centred by their own means, where the
    /// training cells are all cells except `test` (distinct, in-range rows of
    /// the same `x` and `y` the sums were built from). `None` if no cell is left.
    pub fn centred_without(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        test: &[usize],
    ) -> Option<Moments> {
        let (p, q) = (self.p, self.q);
        let n_train = self.n.checked_sub(test.len()).filter(|&k| k > 0)?;
        let (xs, ys) = (rows_of(x, Some(test)), rows_of(y, Some(test)));
        let k = test.len();
        let block =
            |a: &[f64], b: &[f64], m: usize, l: usize| scaled_cross_product(a, b, k, m, l, 1.0);
        let scale = 1.0 / n_train as f64;
        let mean = |total: &[f64], removed: Vec<f64>| -> Vec<f64> {
            total
                .iter()
                .zip(removed)
                .map(|(t, r)| (t - r) * scale)
                .collect()
        };
        let x_mean = mean(&self.x_sum, column_sums(&xs, p));
        let y_mean = mean(&self.y_sum, column_sums(&ys, q));
        let centre = |total: &[f64], removed: Vec<f64>, left: &[f64], right: &[f64]| -> Vec<f64> {
            let width = right.len();
            total
                .iter()
                .zip(removed)
                .enumerate()
                .map(|(index, (t, r))| (t - r) * scale - left[index / width] * right[index % width])
                .collect()
        };
        Some(Moments {
            n: n_train,
            p,
            q,
            gram: centre(&self.xtx, block(&xs, &xs, p, p), &x_mean, &x_mean),
            cross: centre(&self.xty, block(&xs, &ys, p, q), &x_mean, &y_mean),
            yty: centre(&self.yty, block(&ys, &ys, q, q), &y_mean, &y_mean),
        })
    }
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
            gram: scaled_cross_product(xs, xs, n, p, p, 1.0 / n as f64),
            cross: scaled_cross_product(xs, ys, n, p, q, 1.0 / n as f64),
            yty: scaled_cross_product(ys, ys, n, q, q, 1.0 / n as f64),
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
    use ndarray::{Array2, Axis, array};

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
    fn downdated_fold_moments_equal_direct_ones() {
        let x = Array2::from_shape_fn((9, 3), |(i, j)| {
            ((i * 7 + j * 3) % 5) as f64 + 0.1 * j as f64
        });
        let y = Array2::from_shape_fn((9, 2), |(i, j)| ((i * 5 + j) % 4) as f64);
        let sums = MomentSums::from_data(x.view(), y.view()).unwrap();
        let test = [2, 5, 6];
        let train: Vec<usize> = (0..9).filter(|i| !test.contains(i)).collect();
        let centred = |m: Array2<f64>| {
            let mean = m.mean_axis(Axis(0)).unwrap();
            &m - &mean
        };
        let xt = centred(x.select(Axis(0), &train));
        let yt = centred(y.select(Axis(0), &train));
        let direct = Moments::from_data(xt.view(), yt.view()).unwrap();
        let downdated = sums.centred_without(x.view(), y.view(), &test).unwrap();
        assert_eq!(downdated.n, 6);
        for (a, b) in [
            (&direct.gram, &downdated.gram),
            (&direct.cross, &downdated.cross),
            (&direct.yty, &downdated.yty),
        ] {
            assert_eq!(a.len(), b.len());
            assert!(a.iter().zip(b).all(|(u, v)| (u - v).abs() < 1e-12));
        }
        let all: Vec<usize> = (0..9).collect();
        assert_eq!(sums.centred_without(x.view(), y.view(), &all), None);
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
