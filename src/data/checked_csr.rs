//! Building a [`Csr`] from its three arrays with the structure check done in
//! parallel. `sprs`'s own check (`CsMat::try_new`) walks every index on one
//! thread; on an atlas-sized `.h5ad` (150 million stored values) that single
//! pass is a noticeable part of the load. [`csr_from_parts`] checks the same
//! properties over blocks of rows in parallel and then hands the arrays to
//! `sprs` without its second check.

#![allow(unsafe_code)]

use rayon::prelude::*;

use super::Csr;

/// Rows checked per parallel task.
const ROWS_PER_TASK: usize = 1024;

/// The CSR matrix of `shape` (rows, columns) from `indptr`, `indices` and
/// `data`, after checking everything `sprs` requires of one: `indptr` has
/// `rows + 1` non-decreasing entries from 0 to the number of stored values,
/// `indices` and `data` have that many entries, the column indices of each
/// row are strictly increasing and below `columns`, and `columns` fits the
/// `u32` index type. The arrays come back when a check fails (the caller
/// then sorts the rows, or has `sprs` say what is wrong).
pub(crate) fn csr_from_parts(
    shape: (usize, usize),
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f32>,
) -> Result<Csr, Parts> {
    if valid(shape, &indptr, &indices, &data) {
        // SAFETY: `valid` established every property of
        // `sprs::CsMatBase::check_compressed_structure` (the invariants the
        // matrix's methods rely on, e.g. for unchecked indexing) for CSR
        // storage of this shape.
        Ok(unsafe {
            Csr::new_unchecked(sprs::CompressedStorage::CSR, shape, indptr, indices, data)
        })
    } else {
        Err((indptr, indices, data))
    }
}

/// The three arrays of a compressed sparse matrix: `indptr`, `indices`, `data`.
pub(crate) type Parts = (Vec<usize>, Vec<u32>, Vec<f32>);

/// Whether the parts make a CSR matrix of `shape` (rows, columns).
fn valid((rows, columns): (usize, usize), indptr: &[usize], indices: &[u32], data: &[f32]) -> bool {
    let Ok(bound) = u32::try_from(columns) else {
        return false;
    };
    indptr.len() == rows + 1
        && indices.len() == data.len()
        && indptr.first() == Some(&0)
        && indptr.last() == Some(&indices.len())
        && !indptr.par_windows(2).any(|w| w[0] > w[1])
        && !(0..rows)
            .into_par_iter()
            .with_min_len(ROWS_PER_TASK)
            .any(|r| {
                let row = &indices[indptr[r]..indptr[r + 1]];
                row.windows(2).any(|pair| pair[0] >= pair[1])
                    || row.last().is_some_and(|&last| last >= bound)
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_parts_give_the_matrix_sprs_builds() {
        let shape = (3, 4);
        let (indptr, indices, data) = (
            vec![0, 2, 2, 5],
            vec![0, 3, 0, 1, 3],
            vec![1.0, 2.0, 3.0, 4.0, 5.0],
        );
        let ours = csr_from_parts(shape, indptr.clone(), indices.clone(), data.clone()).unwrap();
        let theirs = Csr::try_new(shape, indptr, indices, data).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn every_broken_structure_is_refused() {
        let ok = || (vec![0usize, 2, 3], vec![1u32, 2, 0], vec![1.0, 2.0, 3.0]);
        let refused = |shape: (usize, usize), parts: Parts| {
            let (indptr, indices, data) = parts;
            let sprs = Csr::try_new(shape, indptr.clone(), indices.clone(), data.clone());
            assert!(sprs.is_err(), "sprs accepts {shape:?}");
            csr_from_parts(shape, indptr, indices, data).is_err()
        };
        let (indptr, indices, data) = ok();
        assert!(csr_from_parts((2, 3), indptr, indices, data).is_ok());
        // An index out of bounds, unsorted or repeated indices in a row.
        assert!(refused((2, 2), ok()));
        assert!(refused((2, 3), (ok().0, vec![2, 1, 0], ok().2)));
        assert!(refused((2, 3), (ok().0, vec![1, 1, 0], ok().2)));
        // indptr: wrong length, not from 0, not to nnz, decreasing.
        assert!(refused((2, 3), (vec![0, 3], ok().1, ok().2)));
        assert!(refused((2, 3), (vec![1, 2, 3], ok().1, ok().2)));
        assert!(refused((2, 3), (vec![0, 2, 2], ok().1, ok().2)));
        assert!(refused((3, 3), (vec![0, 3, 2, 3], ok().1, ok().2)));
        // Fewer values than indices.
        assert!(refused((2, 3), (ok().0, ok().1, vec![1.0, 2.0])));
    }
}
