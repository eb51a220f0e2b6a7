//! Loading tables and metadata from files: layouts, compression, missing
//! values, every kind of bad input, and write/read round trips.

use std::io::Write;
use std::path::{Path, PathBuf};

use ndarray::array;
use patchbench::data::{
    DataError, Dataset, FeatureTable, Modality, Orientation, read_metadata, read_table,
    read_table_with_text_column, write_table,
};
use tempfile::TempDir;

fn write_file(dir: &TempDir, name: &str, content: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn write_gzip(path: &Path, content: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    encoder.write_all(content).unwrap();
    encoder.finish().unwrap();
}

const GENES_BY_CELLS: &str = "gene,c1,c2,c3\nGad1,0,5,12\nVip,3,,NA\n";

fn assert_genes_by_cells(table: &FeatureTable) {
    assert_eq!(table.cells, vec!["c1", "c2", "c3"]);
    assert_eq!(table.features, vec!["Gad1", "Vip"]);
    assert_eq!(table.values.dim(), (3, 2));
    assert_eq!(table.values[[0, 0]], 0.0);
    assert_eq!(table.values[[1, 0]], 5.0);
    assert_eq!(table.values[[2, 0]], 12.0);
    assert_eq!(table.values[[0, 1]], 3.0);
    assert!(table.values[[1, 1]].is_nan());
    assert!(table.values[[2, 1]].is_nan());
    assert!(table.values.is_standard_layout());
}

#[test]
fn features_by_cells_csv_is_transposed_to_cells_by_features() {
    let dir = TempDir::new().unwrap();
    let path = write_file(&dir, "counts.csv", GENES_BY_CELLS);
    assert_genes_by_cells(&read_table(&path, Orientation::FeaturesByCells).unwrap());
}

#[test]
fn cells_by_features_tsv_with_empty_corner_and_missing_markers() {
    let dir = TempDir::new().unwrap();
    let path = write_file(
        &dir,
        "ephys.tsv",
        "\tAP amp\tAHP\tTau\nc1\t75.5\t-9.9\tNaN\nc2\t-1.5e2\tnan\t17\n",
    );
    let table = read_table(&path, Orientation::CellsByFeatures).unwrap();
    assert_eq!(table.cells, vec!["c1", "c2"]);
    assert_eq!(table.features, vec!["AP amp", "AHP", "Tau"]);
    assert_eq!(table.values[[0, 0]], 75.5);
    assert_eq!(table.values[[0, 1]], -9.9);
    assert_eq!(table.values[[1, 0]], -150.0);
    assert_eq!(table.values[[1, 2]], 17.0);
    assert!(table.values[[0, 2]].is_nan() && table.values[[1, 1]].is_nan());
    assert_eq!(
        table.missing_by_feature(),
        vec![("AHP".to_owned(), 1), ("Tau".to_owned(), 1)]
    );
}

#[test]
fn gzip_is_detected_by_magic_bytes_not_name() {
    let dir = TempDir::new().unwrap();
    let named = dir.path().join("counts.csv.gz");
    write_gzip(&named, GENES_BY_CELLS.as_bytes());
    assert_genes_by_cells(&read_table(&named, Orientation::FeaturesByCells).unwrap());
    let unnamed = dir.path().join("counts.csv");
    write_gzip(&unnamed, GENES_BY_CELLS.as_bytes());
    assert_genes_by_cells(&read_table(&unnamed, Orientation::FeaturesByCells).unwrap());
}

#[test]
fn crlf_quotes_bom_and_r_style_header_are_accepted() {
    let dir = TempDir::new().unwrap();
    let path = write_file(
        &dir,
        "counts.csv",
        "\u{feff}\"gene\",c1,c2,c3\r\n\"Gad1\",0,5,12\r\nVip,3,,NA\r\n",
    );
    assert_genes_by_cells(&read_table(&path, Orientation::FeaturesByCells).unwrap());
    let r_style = write_file(
        &dir,
        "r_style.tsv",
        "c1\tc2\tc3\nGad1\t0\t5\t12\nVip\t3\t\tNA\n",
    );
    assert_genes_by_cells(&read_table(&r_style, Orientation::FeaturesByCells).unwrap());
}

fn error_of(content: &str, orientation: Orientation) -> DataError {
    let dir = TempDir::new().unwrap();
    let path = write_file(&dir, "bad.csv", content);
    let error = read_table(&path, orientation).unwrap_err();
    assert!(
        error.to_string().contains("bad.csv"),
        "error does not name the file: {error}"
    );
    error
}

#[test]
fn ragged_row_reports_line_and_field_counts() {
    let error = error_of(
        "gene,c1,c2\nGad1,1,2\nVip,1\n",
        Orientation::FeaturesByCells,
    );
    assert!(
        matches!(
            error,
            DataError::FieldCount {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ),
        "unexpected error: {error}"
    );
}

#[test]
fn non_numeric_value_reports_line_column_text_and_header_name() {
    let error = error_of(
        ",AP amp,AHP\nc1,1.5,2\nc2,oops,3\n",
        Orientation::CellsByFeatures,
    );
    match &error {
        DataError::Parse {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!((*line, *column), (3, 2));
            assert!(
                message.contains("'oops'") && message.contains("'AP amp'"),
                "{message}"
            );
        }
        other => panic!("expected a parse error, got {other}"),
    }
    assert!(error.to_string().contains("bad.csv:3:2"), "{error}");
}

#[test]
fn a_text_column_is_read_beside_the_numbers() {
    let dir = TempDir::new().unwrap();
    let path = write_file(
        &dir,
        "symbols.csv",
        "gene_id,c1,symbol,c2\nENSG1,1,Pvalb,2\nENSG2,3,,4\n",
    );
    let (table, symbols) =
        read_table_with_text_column(&path, Orientation::FeaturesByCells, "symbol").unwrap();
    assert_eq!(symbols, ["Pvalb", ""]);
    assert_eq!(table.features, ["ENSG1", "ENSG2"]);
    assert_eq!(table.cells, ["c1", "c2"]);
    assert_eq!(table.values, ndarray::array![[1.0, 3.0], [2.0, 4.0]]);
    // Errors name the numeric column after the text column correctly.
    let bad = write_file(&dir, "bad.csv", "gene_id,c1,symbol,c2\nENSG1,1,Pvalb,x\n");
    let error = read_table_with_text_column(&bad, Orientation::FeaturesByCells, "symbol")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("bad.csv:2:4") && error.contains("'c2'"),
        "{error}"
    );
    let error = read_table_with_text_column(&path, Orientation::FeaturesByCells, "name")
        .unwrap_err()
        .to_string();
    assert!(error.contains("no column `name` in the header"), "{error}");
    // Without the text column named, the same file is refused at the text.
    assert!(read_table(&path, Orientation::FeaturesByCells).is_err());
}

#[test]
fn infinite_value_is_an_error() {
    let error = error_of("gene,c1,c2\nGad1,1,inf\n", Orientation::FeaturesByCells);
    assert!(
        matches!(&error, DataError::Parse { line: 2, column: 3, message, .. } if message.contains("infinite")),
        "{error}"
    );
}

#[test]
fn duplicated_row_id_reports_both_lines() {
    let error = error_of(
        ",a,b\nc1,1,2\nc2,1,2\nc1,3,4\n",
        Orientation::CellsByFeatures,
    );
    match error {
        DataError::Duplicate {
            what,
            name,
            first_line,
            second_line,
            ..
        } => {
            assert_eq!(
                (what, name.as_str(), first_line, second_line),
                ("cell id", "c1", 2, 4)
            );
        }
        other => panic!("expected a duplicate error, got {other}"),
    }
    let error = error_of(
        "gene,c1,c2\nGad1,1,2\nVip,1,2\nGad1,3,4\n",
        Orientation::FeaturesByCells,
    );
    assert!(
        matches!(
            &error,
            DataError::Duplicate {
                what: "feature name",
                first_line: 2,
                second_line: 4,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn duplicated_header_id_reports_both_columns() {
    let error = error_of("gene,c1,c2,c1\nGad1,1,2,3\n", Orientation::FeaturesByCells);
    match error {
        DataError::Duplicate {
            what,
            name,
            first_line,
            first_column,
            second_line,
            second_column,
            ..
        } => {
            assert_eq!((what, name.as_str()), ("cell id", "c1"));
            assert_eq!(
                (first_line, first_column, second_line, second_column),
                (1, 2, 1, 4)
            );
        }
        other => panic!("expected a duplicate error, got {other}"),
    }
}

#[test]
fn empty_file_and_header_only_are_errors() {
    let empty = error_of("", Orientation::FeaturesByCells);
    assert!(
        matches!(&empty, DataError::Invalid { message, .. } if message.contains("empty")),
        "{empty}"
    );
    let header_only = error_of("gene,c1,c2\n", Orientation::FeaturesByCells);
    assert!(
        matches!(&header_only, DataError::Invalid { message, .. } if message.contains("no data rows")),
        "{header_only}"
    );
    let no_columns = error_of("gene\nGad1\n", Orientation::FeaturesByCells);
    assert!(
        matches!(&no_columns, DataError::Invalid { message, .. } if message.contains("names no cell id")),
        "{no_columns}"
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent.csv");
    let error = read_table(&path, Orientation::CellsByFeatures).unwrap_err();
    assert!(
        matches!(&error, DataError::Io { cause: source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{error}"
    );
    assert!(error.to_string().contains("absent.csv"), "{error}");
}

#[test]
fn unreadable_gzip_is_reported() {
    let dir = TempDir::new().unwrap();
    let truncated = dir.path().join("truncated.csv.gz");
    let mut compressed = Vec::new();
    {
        let mut encoder =
            flate2::write::GzEncoder::new(&mut compressed, flate2::Compression::default());
        encoder
            .write_all(GENES_BY_CELLS.repeat(50).as_bytes())
            .unwrap();
        encoder.finish().unwrap();
    }
    std::fs::write(&truncated, &compressed[..compressed.len() / 2]).unwrap();
    let error = read_table(&truncated, Orientation::FeaturesByCells).unwrap_err();
    assert!(matches!(error, DataError::Gzip { .. }), "{error}");
    assert!(error.to_string().contains("truncated.csv.gz"), "{error}");

    let garbage = write_file(&dir, "garbage.csv.gz", "gene,c1\nGad1,1\n");
    let error = read_table(&garbage, Orientation::FeaturesByCells).unwrap_err();
    assert!(matches!(error, DataError::Gzip { .. }), "{error}");

    let corrupt = dir.path().join("corrupt.csv");
    std::fs::write(
        &corrupt,
        [
            0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x42, 0x42,
        ],
    )
    .unwrap();
    let error = read_table(&corrupt, Orientation::FeaturesByCells).unwrap_err();
    assert!(matches!(error, DataError::Gzip { .. }), "{error}");
}

fn example_table() -> FeatureTable {
    FeatureTable {
        cells: vec!["c1".into(), "cell, two".into(), "c3".into(), "c4".into()],
        features: vec!["Gad1".into(), "AP amp".into()],
        values: array![
            [0.0, 75.569_041_073_322_3],
            [f64::NAN, -1e-9],
            [1.25e20, f64::NAN],
            [-0.0, 123_456_789_012.0]
        ],
    }
}

fn assert_same(read: &FeatureTable, written: &FeatureTable) {
    assert_eq!(read.cells, written.cells);
    assert_eq!(read.features, written.features);
    assert_eq!(read.values.dim(), written.values.dim());
    for (a, b) in read.values.iter().zip(written.values.iter()) {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
            "{a} != {b}"
        );
    }
}

#[test]
fn write_then_read_round_trips_in_both_orientations_plain_and_gzip() {
    let dir = TempDir::new().unwrap();
    let table = example_table();
    for name in ["t.csv", "t.csv.gz", "t.tsv", "t.tsv.gz"] {
        for orientation in [Orientation::CellsByFeatures, Orientation::FeaturesByCells] {
            let path = dir.path().join(name);
            write_table(&table, &path, orientation).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                bytes.starts_with(&[0x1f, 0x8b]),
                name.ends_with(".gz"),
                "{name}"
            );
            assert_same(&read_table(&path, orientation).unwrap(), &table);
        }
    }
}

#[test]
fn writing_an_infinite_value_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut table = example_table();
    table.values[[2, 1]] = f64::NEG_INFINITY;
    let error = write_table(
        &table,
        &dir.path().join("t.csv"),
        Orientation::CellsByFeatures,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("'c3'") && error.to_string().contains("'AP amp'"),
        "{error}"
    );
}

const METADATA: &str = "cell_id,rna_family,layer\nc1,Vip,2/3\nc2,,5\nc3,Pvalb,\n";

#[test]
fn metadata_reads_csv_tsv_and_gzip() {
    let dir = TempDir::new().unwrap();
    let csv = write_file(&dir, "meta.csv", METADATA);
    let tsv = write_file(&dir, "meta.tsv", &METADATA.replace(',', "\t"));
    let gz = dir.path().join("meta.csv.gz");
    write_gzip(&gz, METADATA.as_bytes());
    for path in [csv, tsv, gz] {
        let metadata = read_metadata(&path, "cell_id").unwrap();
        assert_eq!(metadata.cells, vec!["c1", "c2", "c3"]);
        assert_eq!(metadata.columns, vec!["rna_family", "layer"]);
        assert_eq!(
            metadata.column("rna_family"),
            Some(vec![Some("Vip"), None, Some("Pvalb")])
        );
        assert_eq!(metadata.label("layer", "c2"), Some("5"));
        assert_eq!(metadata.label("layer", "c3"), None);
    }
}

#[test]
fn metadata_id_column_may_be_anywhere_and_text_is_utf8() {
    let dir = TempDir::new().unwrap();
    let path = write_file(&dir, "meta.tsv", "Soma depth (µm)\tCell\n244.2\tc1\n\tc2\n");
    let metadata = read_metadata(&path, "Cell").unwrap();
    assert_eq!(metadata.columns, vec!["Soma depth (µm)"]);
    assert_eq!(metadata.label("Soma depth (µm)", "c1"), Some("244.2"));
}

#[test]
fn metadata_missing_id_column_lists_available_columns() {
    let dir = TempDir::new().unwrap();
    let path = write_file(&dir, "meta.csv", METADATA);
    let error = read_metadata(&path, "sample_id").unwrap_err();
    match &error {
        DataError::MissingColumn {
            column, available, ..
        } => {
            assert_eq!(column, "sample_id");
            assert_eq!(available, &vec!["cell_id", "rna_family", "layer"]);
        }
        other => panic!("expected a missing column error, got {other}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("meta.csv") && message.contains("cell_id, rna_family, layer"),
        "{message}"
    );
}

#[test]
fn metadata_errors_name_lines() {
    let dir = TempDir::new().unwrap();
    let duplicate = write_file(&dir, "dup.csv", "x,cell_id\na,c1\nb,c2\nc,c1\n");
    let error = read_metadata(&duplicate, "cell_id").unwrap_err();
    assert!(
        matches!(&error, DataError::Duplicate { name, first_line: 2, second_line: 4, first_column: 2, .. } if name == "c1"),
        "{error}"
    );
    let ragged = write_file(&dir, "ragged.csv", "cell_id,x\nc1,a\nc2\n");
    let error = read_metadata(&ragged, "cell_id").unwrap_err();
    assert!(
        matches!(
            error,
            DataError::FieldCount {
                line: 3,
                expected: 2,
                found: 1,
                ..
            }
        ),
        "{error}"
    );
    let invalid = dir.path().join("latin1.csv");
    std::fs::write(&invalid, b"cell_id,depth\nc1,10 \xb5m\n").unwrap();
    let error = read_metadata(&invalid, "cell_id").unwrap_err();
    assert!(
        matches!(
            error,
            DataError::Parse {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{error}"
    );
    let empty = write_file(&dir, "empty.csv", "");
    assert!(matches!(
        read_metadata(&empty, "cell_id"),
        Err(DataError::Invalid { .. })
    ));
}

#[test]
fn dataset_from_files_flags_a_file_read_with_the_wrong_orientation() {
    let dir = TempDir::new().unwrap();
    let counts = write_file(&dir, "counts.csv", GENES_BY_CELLS);
    let ephys = write_file(&dir, "ephys.csv", ",AP amp,AHP\nc1,1,2\nc3,3,4\n");
    let t = Modality::load("T", &counts, Orientation::CellsByFeatures).unwrap();
    let e = Modality::load("E", &ephys, Orientation::CellsByFeatures).unwrap();
    let error = Dataset::new(vec![t, e], None).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("counts.csv") && message.contains("FeaturesByCells"),
        "{message}"
    );

    let t = Modality::load("T", &counts, Orientation::FeaturesByCells).unwrap();
    let e = Modality::load("E", &ephys, Orientation::CellsByFeatures).unwrap();
    let dataset = Dataset::new(vec![t, e], None).unwrap();
    let counts = dataset.pairing("T", "E").unwrap().counts();
    assert_eq!((counts.paired, counts.only_a, counts.only_b), (2, 1, 0));
}
