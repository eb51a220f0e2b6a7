//! Logarithms, powers and reductions over rows or columns of a [`Var`]:
//! what mixture models need for entropies, mini-batch variances and per-row
//! distances (see the mixture VAE's Aitchison distance).

use dfdx::prelude::{
    Axis, BroadcastTo, MeanTo, PutTape, ReshapeTo, SplitTape, SumTo, TryConcatAlong, TryMul, TrySub,
};

use super::NnError;
use super::var::{Node, Var, binary, unary};

impl Var {
    /// Element-wise natural logarithm (values must be positive).
    pub fn ln(self) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_ln()),
        })
    }

    /// Element-wise power `x^p` (values must be positive unless `p` is an integer).
    pub fn powf(self, p: f32) -> Result<Var, NnError> {
        Ok(Var {
            node: unary!(self.node, |t| t.try_powf(p)),
        })
    }

    /// The sum of each row, as an `(rows, 1)` column.
    pub fn row_sums(self) -> Result<Var, NnError> {
        let (r, _) = self.shape();
        Ok(Var {
            node: unary!(self.node, |t| t
                .try_sum::<(usize,), Axis<1>>()?
                .try_reshape_like(&(r, 1usize))),
        })
    }

    /// The unbiased variance of each column over the rows (the mini-batch
    /// variance), as a `(1, cols)` row. Needs at least two rows.
    pub fn column_variance(self) -> Result<Var, NnError> {
        let (r, c) = self.shape();
        if r < 2 {
            return Err(NnError::shape(
                "column_variance",
                "at least two rows",
                format!("{r} rows"),
            ));
        }
        let (a, b) = self.node.fork();
        let mean = unary!(a, |t| t
            .try_mean::<(usize,), Axis<0>>()?
            .try_broadcast_like::<_, Axis<0>>(&(r, c)));
        let centred = binary!(b, mean, |x, m| x.try_sub(m));
        Ok(Var {
            node: unary!(centred, |t| t
                .try_square()?
                .try_sum::<(usize,), Axis<0>>()?
                .try_mul(1.0 / (r - 1) as f32)?
                .try_reshape_like(&(1usize, c))),
        })
    }

    /// Multiplies every row element-wise by the `(1, cols)` row `row`.
    pub fn mul_broadcast_row(self, row: Var) -> Result<Var, NnError> {
        let (r, c) = self.shape();
        if row.shape() != (1, c) {
            return Err(NnError::shape(
                "mul_broadcast_row",
                format!("(1, {c})"),
                format!("{:?}", row.shape()),
            ));
        }
        let wide = unary!(row.node, |t| t
            .try_reshape_like(&(c,))?
            .try_broadcast_like::<_, Axis<0>>(&(r, c)));
        Ok(Var {
            node: binary!(self.node, wide, |x, w| x.try_mul(w)),
        })
    }

    /// Rows of `self` followed by rows of `other` (same number of columns).
    pub fn concat_rows(self, other: Var) -> Result<Var, NnError> {
        let ((_, c1), (_, c2)) = (self.shape(), other.shape());
        if c1 != c2 {
            return Err(NnError::shape(
                "concat_rows",
                format!("{c1} columns"),
                format!("{c2} columns"),
            ));
        }
        Ok(Var {
            node: binary!(self.node, other.node, |a, b| (a, b)
                .try_concat_along(Axis::<0>)),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::nn::{Device, DeviceChoice, Var};

    fn var(r: usize, c: usize, v: &[f32]) -> Var {
        Var::from_vec(&Device::open(DeviceChoice::Cpu).unwrap(), r, c, v.to_vec()).unwrap()
    }

    #[test]
    fn reductions_compute_values() {
        let x = var(3, 2, &[1.0, 2.0, 3.0, 6.0, 5.0, 10.0]);
        let v = x.column_variance().unwrap().to_array().unwrap();
        assert_eq!(v.dim(), (1, 2));
        assert!((v[[0, 0]] - 4.0).abs() < 1e-5 && (v[[0, 1]] - 16.0).abs() < 1e-4);
        let s = var(2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
            .row_sums()
            .unwrap()
            .to_array()
            .unwrap();
        assert_eq!(s.into_raw_vec_and_offset().0, vec![6.0, 15.0]);
        let m = var(2, 2, &[1.0, 2.0, 3.0, 4.0])
            .mul_broadcast_row(var(1, 2, &[10.0, -1.0]))
            .unwrap()
            .to_array()
            .unwrap();
        assert_eq!(m.into_raw_vec_and_offset().0, vec![10.0, -2.0, 30.0, -4.0]);
        let c = var(1, 2, &[1.0, 2.0])
            .concat_rows(var(2, 2, &[3.0, 4.0, 5.0, 6.0]))
            .unwrap();
        assert_eq!(c.shape(), (3, 2));
        assert!(var(1, 2, &[1.0, 2.0]).column_variance().is_err());
        assert!(
            var(1, 2, &[1.0, 2.0])
                .concat_rows(var(1, 3, &[0.0; 3]))
                .is_err()
        );
        let l = var(1, 2, &[1.0, std::f32::consts::E]).ln().unwrap();
        let l = l.to_array().unwrap();
        assert!(l[[0, 0]].abs() < 1e-6 && (l[[0, 1]] - 1.0).abs() < 1e-6);
        let p = var(1, 1, &[4.0]).powf(-0.5).unwrap().to_array().unwrap();
        assert!((p[[0, 0]] - 0.5).abs() < 1e-6);
    }
}
