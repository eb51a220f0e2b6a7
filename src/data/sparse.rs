//! A cells-by-features table held as compressed sparse rows (CSR), for count
//! matrices that are mostly zeros (10^5 cells x 3·10^4 genes at 5% non-zero
//! is 1.8 GB as CSR and 24 GB dense), and [`LoadedTable`], what a reader
//! returns: dense or sparse, whichever the file held.
//!
//! The CSR matrix is [`sprs`]'s with `u32` column indices, `usize` row
//! pointers and `f32` values, as anndata and scanpy hold counts (`float32`
//! data): half the memory of `f64`, and what the models train on anyway.
//! Whatever reads or changes the values computes in `f64` (statistics are
//! accumulated in `f64`) and only stores them as `f32`; the dense
//! [`FeatureTable`] a model sees is `f64`, the stored values widened exactly.

use ndarray::Array2;
use rayon::prelude::*;

use super::FeatureTable;

/// Cells x features values in compressed sparse row form, stored as `f32`.
pub type Csr = sprs::CsMatI<f32, u32, usize>;

/// A numeric table of cells by features whose values are stored sparse.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseTable {
    /// Cell ids, one per row.
    pub cells: Vec<String>,
    /// Feature names, one per column.
    pub features: Vec<String>,
    /// Cells x features, CSR; absent entries are zeros.
    pub values: Csr,
}

impl SparseTable {
    /// The dense copy of the whole table (rows filled in parallel).
    pub fn to_dense(&self) -> FeatureTable {
        let columns = self.features.len();
        let mut values = Array2::zeros((self.cells.len(), columns));
        let indptr = self.values.indptr();
        let indptr = indptr.raw_storage();
        let (indices, data) = (self.values.indices(), self.values.data());
        // A fresh array of zeros is contiguous and row-major.
        if let Some(flat) = values.as_slice_mut() {
            flat.par_chunks_mut(columns.max(1))
                .zip(indptr.par_windows(2))
                .for_each(|(row, span)| {
                    for k in span[0]..span[1] {
                        row[indices[k] as usize] = f64::from(data[k]);
                    }
                });
        }
        FeatureTable {
            cells: self.cells.clone(),
            features: self.features.clone(),
            values,
        }
    }

    /// The sparse copy of a dense table (zeros are left out; `NaN` is kept;
    /// values are rounded to the nearest `f32`, see [`csr_from_dense`]).
    pub fn from_dense(table: &FeatureTable) -> Self {
        Self {
            cells: table.cells.clone(),
            features: table.features.clone(),
            values: csr_from_dense(&table.values),
        }
    }

    /// The dense table of the given columns only, in the given order, without
    /// densifying the others; `None` if an index is out of range.
    pub fn dense_columns(&self, columns: &[usize]) -> Option<FeatureTable> {
        let mut position = vec![usize::MAX; self.features.len()];
        for (k, &j) in columns.iter().enumerate() {
            *position.get_mut(j)? = k;
        }
        let mut values = Array2::zeros((self.cells.len(), columns.len()));
        for (mut target, row) in values
            .rows_mut()
            .into_iter()
            .zip(self.values.outer_iterator())
        {
            for (j, &v) in row.iter() {
                if let Some(&k) = position.get(j)
                    && let Some(slot) = target.get_mut(k)
                {
                    *slot = f64::from(v);
                }
            }
        }
        let features = columns
            .iter()
            .map(|&j| self.features.get(j).cloned())
            .collect::<Option<Vec<_>>>()?;
        Some(FeatureTable {
            cells: self.cells.clone(),
            features,
            values,
        })
    }

    /// The table restricted to the columns where `keep` is true, in their
    /// current order, still sparse.
    pub fn keep_columns(self, keep: &[bool]) -> Self {
        let mut new_index = vec![u32::MAX; keep.len()];
        let mut next = 0_u32;
        for (slot, &k) in new_index.iter_mut().zip(keep) {
            if k {
                *slot = next;
                next += 1;
            }
        }
        let features = self
            .features
            .into_iter()
            .zip(keep)
            .filter(|&(_, &k)| k)
            .map(|(f, _)| f)
            .collect::<Vec<_>>();
        let rows = self.cells.len();
        // Compacted in place: an entry only ever moves towards the front.
        let (mut indptr, mut indices, mut data) = self.values.into_raw_storage();
        let mut kept = 0;
        let mut start = 0;
        for i in 0..rows {
            let end = indptr[i + 1];
            for k in start..end {
                let mapped = new_index[indices[k] as usize];
                if mapped != u32::MAX {
                    indices[kept] = mapped;
                    data[kept] = data[k];
                    kept += 1;
                }
            }
            start = end;
            indptr[i + 1] = kept;
        }
        indices.truncate(kept);
        data.truncate(kept);
        indices.shrink_to_fit();
        data.shrink_to_fit();
        let values = Csr::new((rows, features.len()), indptr, indices, data);
        Self {
            cells: self.cells,
            features,
            values,
        }
    }
}

impl SparseTable {
    /// The table restricted to the given rows (cells), in the given order;
    /// indices out of range are left out.
    pub fn keep_rows(self, rows: &[usize]) -> Self {
        let rows: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&i| i < self.cells.len())
            .collect();
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        let mut indices = Vec::new();
        let mut data = Vec::new();
        indptr.push(0);
        for &i in &rows {
            if let Some(row) = self.values.outer_view(i) {
                indices.extend(row.indices());
                data.extend(row.data());
            }
            indptr.push(indices.len());
        }
        let cells: Vec<String> = rows
            .iter()
            .filter_map(|&i| self.cells.get(i).cloned())
            .collect();
        let values = Csr::new((cells.len(), self.features.len()), indptr, indices, data);
        Self {
            cells,
            features: self.features,
            values,
        }
    }
}

/// Stored values scanned per parallel task by [`first_stored_where`].
const SCAN_BLOCK: usize = 1 << 16;

/// The first stored entry (row, column, value) of `csr`, in storage order,
/// for which `bad` holds (given the value widened to `f64`); blocks of values
/// are scanned in parallel.
pub fn first_stored_where(
    csr: &Csr,
    bad: impl Fn(f64) -> bool + Sync,
) -> Option<(usize, usize, f64)> {
    let data = csr.data();
    let k = data
        .par_chunks(SCAN_BLOCK)
        .enumerate()
        .find_map_first(|(b, block)| {
            block
                .iter()
                .position(|&v| bad(f64::from(v)))
                .map(|k| b * SCAN_BLOCK + k)
        })?;
    let row = csr.indptr().raw_storage().partition_point(|&p| p <= k);
    Some((
        row.saturating_sub(1),
        csr.indices()[k] as usize,
        f64::from(data[k]),
    ))
}

/// A dense matrix as CSR, each value rounded to the nearest `f32` (one beyond
/// the `f32` range becomes an infinity) and left out if that is zero.
pub fn csr_from_dense(values: &Array2<f64>) -> Csr {
    let mut indptr = Vec::with_capacity(values.nrows() + 1);
    let mut indices = Vec::new();
    let mut data = Vec::new();
    indptr.push(0);
    for row in values.rows() {
        for (j, &v) in row.iter().enumerate() {
            let v = v as f32;
            if v != 0.0 {
                indices.push(u32::try_from(j).unwrap_or(u32::MAX));
                data.push(v);
            }
        }
        indptr.push(indices.len());
    }
    Csr::new(values.dim(), indptr, indices, data)
}

/// A table as a reader found it: dense or sparse.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadedTable {
    /// A dense matrix (CSV/TSV, a dense `.h5ad` array).
    Dense(FeatureTable),
    /// A sparse matrix (CSR/CSC in an `.h5ad`, Matrix Market).
    Sparse(SparseTable),
}

impl LoadedTable {
    /// Cell ids, one per row.
    pub fn cells(&self) -> &[String] {
        match self {
            Self::Dense(t) => &t.cells,
            Self::Sparse(t) => &t.cells,
        }
    }

    /// Feature names, one per column.
    pub fn features(&self) -> &[String] {
        match self {
            Self::Dense(t) => &t.features,
            Self::Sparse(t) => &t.features,
        }
    }

    /// The dense table (the sparse one densified whole).
    pub fn into_dense(self) -> FeatureTable {
        match self {
            Self::Dense(t) => t,
            Self::Sparse(t) => t.to_dense(),
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn example() -> FeatureTable {
        FeatureTable {
            cells: vec!["a".into(), "b".into(), "c".into()],
            features: vec!["f0".into(), "f1".into(), "f2".into(), "f3".into()],
            values: array![
                [0.0, 1.0, 0.0, 2.0],
                [0.0, 0.0, 0.0, 0.0],
                [3.0, 0.0, 4.0, 5.0]
            ],
        }
    }

    #[test]
    fn dense_to_sparse_and_back_is_exact() {
        let sparse = SparseTable::from_dense(&example());
        assert_eq!(sparse.values.nnz(), 5);
        assert_eq!(sparse.to_dense(), example());
        assert_eq!(LoadedTable::Sparse(sparse).into_dense(), example());
    }

    #[test]
    fn dense_columns_follow_the_requested_order() {
        let sparse = SparseTable::from_dense(&example());
        let picked = sparse.dense_columns(&[3, 0]).unwrap();
        assert_eq!(picked.features, ["f3", "f0"]);
        assert_eq!(picked.values, array![[2.0, 0.0], [0.0, 0.0], [5.0, 3.0]]);
        assert!(sparse.dense_columns(&[4]).is_none());
    }

    #[test]
    fn keep_columns_renumbers_the_kept_ones() {
        let kept = SparseTable::from_dense(&example()).keep_columns(&[true, false, true, true]);
        assert_eq!(kept.features, ["f0", "f2", "f3"]);
        assert_eq!(
            kept.to_dense().values,
            array![[0.0, 0.0, 2.0], [0.0, 0.0, 0.0], [3.0, 4.0, 5.0]]
        );
    }
}
