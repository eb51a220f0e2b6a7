//! A CSR matrix stored uncompressed is read straight from the file (in
//! parallel, bypassing HDF5's copy); stored any other way it is read through
//! HDF5. Both ways must give the same table and the same errors: these tests
//! write one matrix, store its arrays gzip-compressed, contiguous or in small
//! chunks (values as `float32` or `float64`), and compare.

use std::path::{Path, PathBuf};

use patchbench::data::h5ad::{H5adSelection, read_h5ad, write_h5ad};
use patchbench::data::{DataError, LoadedTable, SparseTable};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

/// A random 300 x 70 CSR table, about a fifth non-zero, with fractional values.
fn random_table() -> SparseTable {
    let (cells, genes) = (300, 70);
    let mut rng = SmallRng::seed_from_u64(7);
    let mut dense = ndarray::Array2::<f64>::zeros((cells, genes));
    for v in dense.iter_mut() {
        if rng.random_bool(0.2) {
            // Exact in f32, so the file's values equal the table's.
            *v = f64::from(rng.random_range(1_u16..2000)) / 8.0;
        }
    }
    let table = patchbench::data::FeatureTable {
        cells: (0..cells).map(|i| format!("cell{i}")).collect(),
        features: (0..genes).map(|j| format!("gene{j}")).collect(),
        values: dense,
    };
    SparseTable::from_dense(&table)
}

/// How `X/data` and `X/indices` are stored in a rewritten copy.
#[derive(Clone, Copy, Debug)]
enum Storage {
    /// Chunks of 100 entries, gzip-compressed (the HDF5 path).
    Gzip,
    /// One contiguous block (read straight).
    Contiguous,
    /// Uncompressed chunks of 97 entries, the last one partial (read straight).
    SmallChunks,
}

/// Writes `table` to `dir/NAME.h5ad` and stores its `X/data` and `X/indices`
/// as `storage` says, after `edit` changed their values.
fn written(
    dir: &TempDir,
    name: &str,
    table: &SparseTable,
    storage: Storage,
    edit: impl Fn(&mut [f32], &mut [i32]),
) -> PathBuf {
    written_as(dir, name, table, storage, edit)
}

/// [`written`] with `X/data` stored as `T`.
fn written_as<T: hdf5::H5Type>(
    dir: &TempDir,
    name: &str,
    table: &SparseTable,
    storage: Storage,
    edit: impl Fn(&mut [T], &mut [i32]),
) -> PathBuf {
    let path = dir.path().join(format!("{name}.h5ad"));
    write_h5ad(&path, &LoadedTable::Sparse(table.clone()), &[]).unwrap();
    let file = hdf5::File::open_rw(&path).unwrap();
    let x = file.group("X").unwrap();
    let mut data: Vec<T> = x.dataset("data").unwrap().read_raw().unwrap();
    let mut indices: Vec<i32> = x.dataset("indices").unwrap().read_raw().unwrap();
    edit(&mut data, &mut indices);
    for part in ["data", "indices"] {
        x.unlink(part).unwrap();
    }
    let store = |builder: hdf5::DatasetBuilder| match storage {
        Storage::Gzip => builder.chunk(100).deflate(4),
        Storage::Contiguous => builder.no_chunk(),
        Storage::SmallChunks => builder.chunk(97),
    };
    store(x.new_dataset_builder())
        .with_data(&data)
        .create("data")
        .unwrap();
    store(x.new_dataset_builder())
        .with_data(&indices)
        .create("indices")
        .unwrap();
    file.close().unwrap();
    path
}

fn read(path: &Path) -> Result<SparseTable, DataError> {
    match read_h5ad(path, &H5adSelection::default())? {
        LoadedTable::Sparse(table) => Ok(table),
        LoadedTable::Dense(_) => panic!("a csr_matrix X should stay sparse"),
    }
}

const STORAGES: [Storage; 3] = [Storage::Gzip, Storage::Contiguous, Storage::SmallChunks];

#[test]
fn straight_and_hdf5_reads_give_the_same_table() {
    let dir = TempDir::new().unwrap();
    let table = random_table();
    // As `write_h5ad` wrote it: uncompressed chunks of 65,536 entries.
    let plain = dir.path().join("plain.h5ad");
    write_h5ad(&plain, &LoadedTable::Sparse(table.clone()), &[]).unwrap();
    assert_eq!(read(&plain).unwrap(), table);
    for storage in STORAGES {
        let path = written(&dir, &format!("{storage:?}"), &table, storage, |_, _| {});
        assert_eq!(read(&path).unwrap(), table, "{storage:?}");
    }
}

#[test]
fn unsorted_rows_are_sorted_either_way() {
    let dir = TempDir::new().unwrap();
    let table = random_table();
    // Reverse the first row's entries (indices and values together).
    let stored = table.values.indptr().raw_storage()[1];
    for storage in STORAGES {
        let path = written(&dir, "reversed", &table, storage, |data, indices| {
            data[..stored].reverse();
            indices[..stored].reverse();
        });
        assert_eq!(read(&path).unwrap(), table, "{storage:?}");
    }
}

/// A change to a copy's `data` and `indices`, given the first row's length.
type Edit = fn(&mut [f32], &mut [i32], usize);

#[test]
fn bad_values_and_indices_give_the_same_errors_either_way() {
    let dir = TempDir::new().unwrap();
    let table = random_table();
    let first_row = table.values.indptr().raw_storage()[1];
    let cases: [(&str, Edit, String); 3] = [
        (
            "nan",
            |data, _, k| data[k + 1] = f32::NAN,
            "/X: holds the non-finite value NaN at row 2, column".into(),
        ),
        (
            "large",
            |_, indices, _| indices[5] = 70,
            "/X/indices: holds the index 70; expected indices below 70".into(),
        ),
        (
            "negative",
            |_, indices, _| indices[5] = -3,
            "/X/indices: holds the index -3; expected a non-negative index".into(),
        ),
    ];
    for (name, edit, expected) in &cases {
        let mut messages = Vec::new();
        for storage in STORAGES {
            let path = written(&dir, name, &table, storage, |data, indices| {
                edit(data, indices, first_row);
            });
            let text = read(&path).unwrap_err().to_string();
            assert!(text.contains(expected.as_str()), "{storage:?}: {text}");
            messages.push(text);
        }
        assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
    }
}

#[test]
fn float64_values_are_rounded_to_f32_and_values_beyond_its_range_refused_either_way() {
    let dir = TempDir::new().unwrap();
    let table = random_table();
    let first_row = table.values.indptr().raw_storage()[1];
    let mut rounded = table.clone();
    rounded.values.data_mut()[first_row] = 0.1_f64 as f32;
    let mut messages = Vec::new();
    for storage in STORAGES {
        let path = written_as(&dir, "tenth", &table, storage, |data: &mut [f64], _| {
            data[first_row] = 0.1;
        });
        assert_eq!(read(&path).unwrap(), rounded, "{storage:?}");
        let path = written_as(&dir, "huge", &table, storage, |data: &mut [f64], _| {
            data[first_row] = 1e300;
        });
        let text = read(&path).unwrap_err().to_string();
        assert!(
            text.contains("/X/data: holds the value 1e300, beyond the range of single-precision"),
            "{storage:?}: {text}"
        );
        messages.push(text);
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
}

#[test]
fn a_truncated_file_is_an_error_naming_the_file_and_object() {
    let dir = TempDir::new().unwrap();
    let table = random_table();
    for storage in STORAGES {
        let path = written(&dir, "whole", &table, storage, |_, _| {});
        let bytes = std::fs::read(&path).unwrap();
        for keep in [bytes.len() / 2, bytes.len() - 8] {
            let cut = dir.path().join(format!("cut{keep}.h5ad"));
            std::fs::write(&cut, &bytes[..keep]).unwrap();
            let error = read(&cut).unwrap_err();
            let DataError::Object { path, object, .. } = &error else {
                panic!("{storage:?}, {keep} bytes: {error}");
            };
            assert_eq!(path, &cut);
            assert!(!object.is_empty(), "{error}");
        }
    }
}
