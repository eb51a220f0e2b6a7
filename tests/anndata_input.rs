//! Reading files written by Python's anndata and a 10x folder (the fixtures
//! of `scripts/make-fixtures.py`): every matrix reads to the numbers of the
//! CSV copy the same script wrote, and bad input is an error naming the file
//! and the element inside it.

use std::path::{Path, PathBuf};

use patchbench::data::h5ad::{H5adSelection, read_h5ad};
use patchbench::data::{
    DataError, FeatureTable, LoadedTable, MatrixFormat, MatrixSource, Orientation, detect_format,
    read_matrix, read_metadata, read_table,
};
use tempfile::TempDir;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn csv(name: &str) -> FeatureTable {
    read_table(&fixture(name), Orientation::CellsByFeatures).unwrap()
}

fn h5ad(name: &str, selection: H5adSelection) -> LoadedTable {
    read_h5ad(&fixture(name), &selection).unwrap()
}

fn assert_same(got: &FeatureTable, want: &FeatureTable) {
    assert_eq!(got.cells, want.cells);
    assert_eq!(got.features, want.features);
    assert_eq!(got.values.dim(), want.values.dim());
    for (g, w) in got.values.iter().zip(&want.values) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn dense_csr_and_csc_x_read_to_the_same_numbers() {
    let dense = h5ad("anndata/dense.h5ad", H5adSelection::default());
    assert!(matches!(dense, LoadedTable::Dense(_)));
    assert_same(&dense.into_dense(), &csv("anndata/X.csv"));
    let csr = h5ad("anndata/csr.h5ad", H5adSelection::default());
    let LoadedTable::Sparse(sparse) = &csr else {
        panic!("a csr_matrix X should stay sparse");
    };
    assert_eq!(sparse.values.nnz(), 23);
    assert_same(&csr.into_dense(), &csv("anndata/X.csv"));
    // The CSC file holds the int64 counts.
    assert_same(
        &h5ad("anndata/csc.h5ad", H5adSelection::default()).into_dense(),
        &csv("anndata/counts.csv"),
    );
}

#[test]
fn a_layer_raw_x_and_an_obsm_matrix_are_modalities() {
    let layer = H5adSelection {
        layer: Some("counts".into()),
        ..H5adSelection::default()
    };
    assert_same(
        &h5ad("anndata/dense.h5ad", layer).into_dense(),
        &csv("anndata/counts.csv"),
    );
    let raw = H5adSelection {
        use_raw: true,
        ..H5adSelection::default()
    };
    assert_same(
        &h5ad("anndata/dense.h5ad", raw).into_dense(),
        &csv("anndata/raw_X.csv"),
    );
    let obsm = H5adSelection {
        obsm: Some("ephys".into()),
        ..H5adSelection::default()
    };
    let ephys = h5ad("anndata/dense.h5ad", obsm).into_dense();
    assert_eq!(ephys.features, ["ephys_1", "ephys_2", "ephys_3"]);
    let mut expected = csv("anndata/ephys.csv");
    expected.features = ephys.features.clone();
    assert_same(&ephys, &expected);
}

#[test]
fn a_var_column_names_the_features() {
    let symbols = H5adSelection {
        var_column: Some("symbol".into()),
        ..H5adSelection::default()
    };
    let table = h5ad("anndata/csr.h5ad", symbols).into_dense();
    assert_eq!(table.features, ["Gad1", "Vip", "Sst", "Pvalb", "Lamp5"]);
    let missing = H5adSelection {
        var_column: Some("gene_name".into()),
        ..H5adSelection::default()
    };
    let error = read_h5ad(&fixture("anndata/csr.h5ad"), &missing).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("csr.h5ad: /var: has no column 'gene_name'") && text.contains("symbol"),
        "{text}"
    );
}

#[test]
fn obs_columns_become_metadata_like_the_csv() {
    let from_h5ad = read_metadata(&fixture("anndata/dense.h5ad"), "obs_names").unwrap();
    let from_csv = read_metadata(&fixture("anndata/obs.csv"), "cell").unwrap();
    assert_eq!(from_h5ad.cells, from_csv.cells);
    assert_eq!(from_h5ad.columns, from_csv.columns);
    let depth = from_csv.columns.iter().position(|c| c == "depth").unwrap();
    for (got, want) in from_h5ad.rows.iter().zip(&from_csv.rows) {
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            if k == depth {
                assert_eq!(g.parse::<f64>().unwrap(), w.parse::<f64>().unwrap());
            } else {
                assert_eq!(g, w);
            }
        }
    }
    // The categorical's missing code -1 is a missing label.
    assert_eq!(from_h5ad.label("cell_type", "cell2"), None);
    assert_eq!(from_h5ad.label("cell_type", "cell3"), Some("Pvalb"));
    // The index's own name works too, and a unique column can hold the ids.
    assert_eq!(
        read_metadata(&fixture("anndata/dense.h5ad"), "cell")
            .unwrap()
            .cells,
        from_csv.cells
    );
    let by_sample = read_metadata(&fixture("anndata/dense.h5ad"), "sample").unwrap();
    assert_eq!(by_sample.cells[0], "s0");
    let error = read_metadata(&fixture("anndata/dense.h5ad"), "barcode").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("/obs: no column named 'barcode'"),
        "{error}"
    );
}

#[test]
fn a_tenx_folder_reads_like_the_counts() {
    let folder = fixture("tenx");
    assert_eq!(detect_format(&folder).unwrap(), MatrixFormat::TenxFolder);
    let table = read_matrix(&MatrixSource::new(&folder, Orientation::FeaturesByCells)).unwrap();
    assert!(matches!(table, LoadedTable::Sparse(_)));
    assert_same(&table.into_dense(), &csv("anndata/counts.csv"));
    let mut symbols = MatrixSource::new(&folder, Orientation::FeaturesByCells);
    symbols.h5ad.var_column = Some("gene_symbols".into());
    assert_eq!(
        read_matrix(&symbols).unwrap().features(),
        ["Gad1", "Vip", "Sst", "Pvalb", "Lamp5"]
    );
    let error = read_matrix(&MatrixSource::new(&folder, Orientation::CellsByFeatures)).unwrap_err();
    assert!(error.to_string().contains("FeaturesByCells"), "{error}");
}

/// A bare `.mtx` with its id files in `dir`.
fn bare_mtx(dir: &TempDir, matrix: &str, features: &str, cells: &str) -> MatrixSource {
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let mut source = MatrixSource::new(write("m.mtx", matrix), Orientation::FeaturesByCells);
    source.features_file = Some(write("genes.txt", features));
    source.cells_file = Some(write("cells.txt", cells));
    source
}

const HEADER: &str = "%%MatrixMarket matrix coordinate integer general\n% a comment\n";

#[test]
fn a_bare_mtx_with_id_files_reads_and_sums_repeated_entries() {
    let dir = TempDir::new().unwrap();
    let matrix = format!("{HEADER}2 3 4\n1 1 5\n2 3 1\n2 3 2\n1 2 7\n");
    let source = bare_mtx(&dir, &matrix, "g1\ng2\n", "c1\nc2\nc3\n");
    assert_eq!(
        detect_format(&source.path).unwrap(),
        MatrixFormat::MatrixMarket
    );
    let table = read_matrix(&source).unwrap().into_dense();
    assert_eq!(table.cells, ["c1", "c2", "c3"]);
    assert_eq!(table.features, ["g1", "g2"]);
    assert_eq!(
        table.values,
        ndarray::array![[5.0, 0.0], [7.0, 0.0], [0.0, 3.0]]
    );
}

fn mtx_error(matrix: &str, features: &str, cells: &str) -> String {
    let dir = TempDir::new().unwrap();
    read_matrix(&bare_mtx(&dir, matrix, features, cells))
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_mtx_input_names_the_file_and_line() {
    let ok = format!("{HEADER}2 3 1\n1 1 5\n");
    let text = mtx_error(&ok, "g1\n", "c1\nc2\nc3\n");
    assert!(
        text.contains("m.mtx: the matrix is 2 x 3") && text.contains("lists 1 features"),
        "{text}"
    );
    let text = mtx_error(&ok, "g1\ng1\n", "c1\nc2\nc3\n");
    assert!(
        text.contains("genes.txt: line 2: the feature id 'g1' was already on line 1"),
        "{text}"
    );
    let text = mtx_error(&format!("{HEADER}2 3 1\n3 1 5\n"), "g1\ng2\n", "a\nb\nc\n");
    assert!(text.contains("m.mtx: line 4: row index '3'"), "{text}");
    let text = mtx_error(
        "%%MatrixMarket matrix coordinate real general\n2 3 1\n1 1 inf\n",
        "g1\ng2\n",
        "a\nb\nc\n",
    );
    assert!(
        text.contains("line 3: value 'inf' is not a finite number"),
        "{text}"
    );
    // Finite, but beyond the f32 values a CSR table holds.
    let text = mtx_error(
        "%%MatrixMarket matrix coordinate real general\n2 3 1\n1 1 1e39\n",
        "g1\ng2\n",
        "a\nb\nc\n",
    );
    assert!(
        text.contains("line 3: value '1e39' is beyond the range of single-precision (f32) numbers"),
        "{text}"
    );
    let text = mtx_error(&format!("{HEADER}2 3 2\n1 1 5\n"), "g1\ng2\n", "a\nb\nc\n");
    assert!(text.contains("truncated"), "{text}");
    let text = mtx_error(
        "%%MatrixMarket matrix array real general\n2 3\n",
        "g1\ng2\n",
        "a\nb\nc\n",
    );
    assert!(text.contains("m.mtx: line 1:"), "{text}");
}

#[test]
fn missing_elements_and_unsupported_encodings_are_named() {
    let path = fixture("anndata/dense.h5ad");
    let layer = H5adSelection {
        layer: Some("spliced".into()),
        ..H5adSelection::default()
    };
    let text = read_h5ad(&path, &layer).unwrap_err().to_string();
    assert!(
        text.contains("dense.h5ad: /layers/spliced: no such element; /layers holds: [counts]"),
        "{text}"
    );
    let obsm = H5adSelection {
        obsm: Some("X_umap".into()),
        ..H5adSelection::default()
    };
    let text = read_h5ad(&path, &obsm).unwrap_err().to_string();
    assert!(text.contains("/obsm/X_umap: no such element"), "{text}");
    // obs is a data frame (a group), not a matrix.
    let wrong = H5adSelection {
        layer: Some("../obs".into()),
        ..H5adSelection::default()
    };
    let text = read_h5ad(&path, &wrong).unwrap_err().to_string();
    assert!(text.contains("dense.h5ad: /layers/../obs:"), "{text}");
    let mut csv_with_layer =
        MatrixSource::new(fixture("anndata/X.csv"), Orientation::CellsByFeatures);
    csv_with_layer.h5ad.layer = Some("counts".into());
    let text = read_matrix(&csv_with_layer).unwrap_err().to_string();
    assert!(text.contains("`layer` applies to .h5ad files"), "{text}");
}

#[test]
fn corrupt_or_truncated_files_are_errors_not_panics() {
    let dir = TempDir::new().unwrap();
    let bytes = std::fs::read(fixture("anndata/dense.h5ad")).unwrap();
    for keep in [16, 2000, bytes.len() / 2, bytes.len() - 100] {
        let path = dir.path().join(format!("cut{keep}.h5ad"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let source = MatrixSource::new(&path, Orientation::CellsByFeatures);
        let error = read_matrix(&source).unwrap_err();
        assert!(
            matches!(&error, DataError::Object { path: p, .. } if p == &path),
            "{keep}: {error}"
        );
    }
    let mut flipped = bytes.clone();
    for byte in flipped.iter_mut().skip(600).take(400) {
        *byte ^= 0x5a;
    }
    let path = dir.path().join("flipped.h5ad");
    std::fs::write(&path, &flipped).unwrap();
    let result = read_matrix(&MatrixSource::new(&path, Orientation::CellsByFeatures));
    assert!(result.is_err(), "corrupted metadata should not read");
}

/// A copy of `dense.h5ad` in `dir`, changed by `edit` through the HDF5 library.
fn edited_copy(dir: &TempDir, edit: impl FnOnce(&hdf5::File)) -> PathBuf {
    let path = dir.path().join("edited.h5ad");
    std::fs::copy(fixture("anndata/dense.h5ad"), &path).unwrap();
    let file = hdf5::File::open_rw(&path).unwrap();
    edit(&file);
    file.close().unwrap();
    path
}

fn error_of(path: &Path, selection: H5adSelection) -> String {
    read_h5ad(path, &selection).unwrap_err().to_string()
}

#[test]
fn unsupported_encodings_duplicates_and_non_finite_values_are_named() {
    let dir = TempDir::new().unwrap();
    let path = edited_copy(&dir, |file| {
        let layers = file.group("layers").unwrap();
        let odd = layers.create_group("ragged").unwrap();
        odd.new_attr::<hdf5::types::VarLenUnicode>()
            .shape(())
            .create("encoding-type")
            .unwrap()
            .write_scalar(
                &"awkward-array"
                    .parse::<hdf5::types::VarLenUnicode>()
                    .unwrap(),
            )
            .unwrap();
        let mut values = ndarray::Array2::<f64>::ones((6, 5));
        values[(3, 1)] = f64::NAN;
        layers
            .new_dataset_builder()
            .with_data(&values)
            .create("bad")
            .unwrap();
        let symbols = file.dataset("var/symbol").unwrap();
        let repeated: Vec<hdf5::types::VarLenUnicode> = ["Gad1", "Vip", "Gad1", "Pvalb", "Lamp5"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        symbols.write_raw(&repeated).unwrap();
    });
    let layer = |name: &str| H5adSelection {
        layer: Some(name.into()),
        ..H5adSelection::default()
    };
    let text = error_of(&path, layer("ragged"));
    assert!(
        text.contains("edited.h5ad: /layers/ragged: unsupported encoding 'awkward-array'"),
        "{text}"
    );
    let text = error_of(&path, layer("bad"));
    assert!(
        text.contains("/layers/bad: holds the non-finite value NaN at row 4, column 2"),
        "{text}"
    );
    let symbols = H5adSelection {
        var_column: Some("symbol".into()),
        ..H5adSelection::default()
    };
    let text = error_of(&path, symbols);
    assert!(
        text.contains("/var: the feature name 'Gad1' occurs twice (entries 1 and 3)"),
        "{text}"
    );
}
