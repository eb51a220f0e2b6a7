use std::io::Write;
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::DataError;

/// How a matrix file is laid out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Orientation {
    /// One row per cell, one column per feature (e.g. `ephys_values.csv`).
    CellsByFeatures,
    /// One row per feature, one column per cell (e.g. `gene_counts.csv`).
    FeaturesByCells,
}

/// A numeric table of cells by features, whatever its orientation on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureTable {
    /// Cell ids, one per row of `values`.
    pub cells: Vec<String>,
    /// Feature names (genes, ephys features), one per column of `values`.
    pub features: Vec<String>,
    /// Cells x features; `NaN` marks a missing value.
    pub values: Array2<f64>,
}

/// Writes `table` as CSV in the given orientation, with a header row and the
/// ids in the first column. Missing values are written as empty fields. A path
/// ending in `.gz` is gzip-compressed; one ending in `.tsv` is tab-separated.
pub fn write_table(
    table: &FeatureTable,
    path: &Path,
    orientation: Orientation,
) -> Result<(), DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io_err)?;
    let name = path.to_string_lossy();
    let plain = name.strip_suffix(".gz").unwrap_or(&name);
    let delimiter = if plain.ends_with(".tsv") || plain.ends_with(".txt") {
        b'\t'
    } else {
        b','
    };
    let sink: Box<dyn Write> = if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        ))
    } else {
        Box::new(file)
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(sink);
    let csv_err = |e: csv::Error| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("cannot write: {e}"),
    };
    let format = |v: f64| {
        if v.is_nan() {
            String::new()
        } else {
            v.to_string()
        }
    };
    match orientation {
        Orientation::CellsByFeatures => {
            writer
                .write_record(std::iter::once("").chain(table.features.iter().map(String::as_str)))
                .map_err(csv_err)?;
            for (cell, row) in table.cells.iter().zip(table.values.rows()) {
                writer
                    .write_record(
                        std::iter::once(cell.clone()).chain(row.iter().map(|&v| format(v))),
                    )
                    .map_err(csv_err)?;
            }
        }
        Orientation::FeaturesByCells => {
            writer
                .write_record(std::iter::once("gene").chain(table.cells.iter().map(String::as_str)))
                .map_err(csv_err)?;
            for (feature, column) in table.features.iter().zip(table.values.columns()) {
                writer
                    .write_record(
                        std::iter::once(feature.clone()).chain(column.iter().map(|&v| format(v))),
                    )
                    .map_err(csv_err)?;
            }
        }
    }
    writer.flush().map_err(io_err)?;
    Ok(())
}
