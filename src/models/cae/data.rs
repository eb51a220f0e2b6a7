//! The cells a coupled autoencoder trains on: one matrix per modality and,
//! for every cell, its row in each modality it was measured in.
//!
//! A modality's matrix is anything that hands out rows as `f32` ([`Rows`]):
//! an owned `f32` array, a borrowed view of a prepared `f64` table, or a
//! prepared table kept sparse (each row made dense as it is gathered), so a
//! run on 100,000 cells gathers its mini-batches and evaluation chunks from
//! the dataset's table without a second, converted copy of it.

use ndarray::{ArrayBase, Data, Ix2};

use super::CaeError;
use crate::data::{PreparedTable, first_stored_where};

/// A cells x features matrix whose rows can be gathered as `f32`.
pub trait Rows: Sync {
    /// Number of rows.
    fn nrows(&self) -> usize;
    /// Number of columns.
    fn ncols(&self) -> usize;
    /// Appends row `r` to `out` as `f32`.
    fn push_row(&self, r: usize, out: &mut Vec<f32>);
    /// The first missing or infinite value, as `(row, column)`.
    fn first_non_finite(&self) -> Option<(usize, usize)>;
}

/// An element type a matrix of [`Rows`] may hold.
pub trait Element: Copy + Sync {
    /// The value as the networks use it.
    fn to_f32(self) -> f32;
    /// Whether the value is neither NaN nor infinite.
    fn finite(self) -> bool;
}

impl Element for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
}

impl Element for f64 {
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn finite(self) -> bool {
        self.is_finite()
    }
}

impl<S, A> Rows for ArrayBase<S, Ix2>
where
    S: Data<Elem = A> + Sync,
    A: Element,
{
    fn nrows(&self) -> usize {
        self.dim().0
    }

    fn ncols(&self) -> usize {
        self.dim().1
    }

    fn push_row(&self, r: usize, out: &mut Vec<f32>) {
        let row = self.row(r);
        match row.as_slice() {
            Some(values) => out.extend(values.iter().map(|v| v.to_f32())),
            None => out.extend(row.iter().map(|v| v.to_f32())),
        }
    }

    fn first_non_finite(&self) -> Option<(usize, usize)> {
        self.indexed_iter()
            .find(|(_, v)| !v.finite())
            .map(|(at, _)| at)
    }
}

impl Rows for PreparedTable {
    fn nrows(&self) -> usize {
        self.shape().0
    }

    fn ncols(&self) -> usize {
        self.shape().1
    }

    fn push_row(&self, r: usize, out: &mut Vec<f32>) {
        match self {
            PreparedTable::Dense(t) => t.values.push_row(r, out),
            PreparedTable::Sparse(s) => s.push_row(r, out),
        }
    }

    fn first_non_finite(&self) -> Option<(usize, usize)> {
        match self {
            PreparedTable::Dense(t) => t.values.first_non_finite(),
            PreparedTable::Sparse(s) => {
                first_stored_where(&s.table.values, |v| !v.is_finite()).map(|(r, c, _)| (r, c))
            }
        }
    }
}

impl<T: Rows + ?Sized> Rows for &T {
    fn nrows(&self) -> usize {
        (**self).nrows()
    }

    fn ncols(&self) -> usize {
        (**self).ncols()
    }

    fn push_row(&self, r: usize, out: &mut Vec<f32>) {
        (**self).push_row(r, out);
    }

    fn first_non_finite(&self) -> Option<(usize, usize)> {
        (**self).first_non_finite()
    }
}

/// Modalities measured on partly overlapping cells.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiModal<M = ndarray::Array2<f32>> {
    /// One `(rows, features)` matrix per modality.
    pub matrices: Vec<M>,
    /// For every cell, its row in each modality (`None` where unmeasured).
    pub cells: Vec<Vec<Option<usize>>>,
}

impl<M: Rows> MultiModal<M> {
    /// Checks that every cell lists one entry per modality, every row exists
    /// and every value is finite.
    pub fn validate(&self) -> Result<(), CaeError> {
        let k = self.matrices.len();
        for (c, rows) in self.cells.iter().enumerate() {
            if rows.len() != k {
                return Err(CaeError::Data(format!(
                    "cell {c} lists {} modalities, expected {k}",
                    rows.len()
                )));
            }
            for (i, row) in rows.iter().enumerate() {
                if let Some(r) = row
                    && *r >= self.matrices[i].nrows()
                {
                    return Err(CaeError::Data(format!(
                        "cell {c}: row {r} of modality {i} does not exist"
                    )));
                }
            }
        }
        for (i, m) in self.matrices.iter().enumerate() {
            if let Some((row, column)) = m.first_non_finite() {
                return Err(CaeError::Data(format!(
                    "modality {i} has a missing or infinite value at row {row}, column {column}"
                )));
            }
        }
        Ok(())
    }

    /// Number of modalities.
    pub fn modalities(&self) -> usize {
        self.matrices.len()
    }

    /// The rows of modality `i` measured in `cells` (in that order), with the
    /// positions in `cells` they came from.
    pub fn rows_of(&self, i: usize, cells: &[usize]) -> (Vec<usize>, Vec<usize>) {
        cells
            .iter()
            .enumerate()
            .filter_map(|(pos, &c)| self.cells[c][i].map(|r| (r, pos)))
            .unzip()
    }

    /// The rows `rows` of modality `i` as an `f32` matrix.
    pub fn select(&self, i: usize, rows: &[usize]) -> ndarray::Array2<f32> {
        gather(&self.matrices[i], rows)
    }
}

/// The rows `rows` of `matrix` as an `f32` matrix.
pub fn gather<M: Rows + ?Sized>(matrix: &M, rows: &[usize]) -> ndarray::Array2<f32> {
    let mut out = ndarray::Array2::<f32>::zeros((rows.len(), matrix.ncols()));
    let mut row = Vec::with_capacity(matrix.ncols());
    for (mut target, &r) in out.rows_mut().into_iter().zip(rows) {
        row.clear();
        matrix.push_row(r, &mut row);
        target.iter_mut().zip(&row).for_each(|(t, v)| *t = *v);
    }
    out
}
