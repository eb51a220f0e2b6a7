//! The cells-by-features table shared by every modality, and writing it back to disk.
//!
//! A [`FeatureTable`] holds one row per cell and one column per feature
//! whatever the layout of the file it came from; [`Orientation`] says which
//! layout a file uses. [`write_table`] is the inverse of
//! [`read_table`](super::read_table): a table written in either orientation,
//! plain or gzip, reads back with the same ids and values (missing values
//! included).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use ndarray::{Array2, Axis};
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

impl Orientation {
    /// The other layout.
    pub fn flipped(self) -> Self {
        match self {
            Self::CellsByFeatures => Self::FeaturesByCells,
            Self::FeaturesByCells => Self::CellsByFeatures,
        }
    }
}

/// A numeric table of cells by features, whatever its orientation on disk.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeatureTable {
    /// Cell ids, one per row of `values`.
    pub cells: Vec<String>,
    /// Feature names (genes, ephys features), one per column of `values`.
    pub features: Vec<String>,
    /// Cells x features; `NaN` marks a missing value.
    pub values: Array2<f64>,
}

impl FeatureTable {
    /// Features with at least one missing value, with how many cells miss it, in feature order.
    pub fn missing_by_feature(&self) -> Vec<(String, usize)> {
        self.features
            .iter()
            .zip(self.values.columns())
            .filter_map(|(feature, column)| {
                let missing = column.iter().filter(|v| v.is_nan()).count();
                (missing > 0).then(|| (feature.clone(), missing))
            })
            .collect()
    }

    /// The table restricted to the given rows (cells), in the given order; `None` if an index is out of range.
    pub fn select_cells(&self, rows: &[usize]) -> Option<FeatureTable> {
        let cells = rows
            .iter()
            .map(|&row| self.cells.get(row).cloned())
            .collect::<Option<Vec<_>>>()?;
        if rows.iter().any(|&row| row >= self.values.nrows()) {
            return None;
        }
        Some(FeatureTable {
            cells,
            features: self.features.clone(),
            values: self.values.select(Axis(0), rows),
        })
    }

    /// The table restricted to the given columns (features), in the given order; `None` if an index is out of range.
    pub fn select_features(&self, columns: &[usize]) -> Option<FeatureTable> {
        let features = columns
            .iter()
            .map(|&column| self.features.get(column).cloned())
            .collect::<Option<Vec<_>>>()?;
        if columns.iter().any(|&column| column >= self.values.ncols()) {
            return None;
        }
        Some(FeatureTable {
            cells: self.cells.clone(),
            features,
            values: self.values.select(Axis(1), columns),
        })
    }
}

/// Writes `table` as CSV in the given orientation, with a header row and the
/// ids in the first column (`gene,<cell ids>` or `,<feature names>`). Missing
/// values are written as empty fields; infinite values are refused. A path
/// ending in `.gz` is gzip-compressed; one ending in `.tsv` or `.txt` (before
/// any `.gz`) is tab-separated.
pub fn write_table(
    table: &FeatureTable,
    path: &Path,
    orientation: Orientation,
) -> Result<(), DataError> {
    if table.values.dim() != (table.cells.len(), table.features.len()) {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "cannot write a table of {} cells and {} features whose matrix is {:?}",
                table.cells.len(),
                table.features.len(),
                table.values.dim()
            ),
        });
    }
    if let Some(((cell, feature), value)) =
        table.values.indexed_iter().find(|(_, v)| v.is_infinite())
    {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "cannot write the infinite value {value} of cell '{}', feature '{}'; expected finite values or NaN",
                table.cells.get(cell).map_or("", String::as_str),
                table.features.get(feature).map_or("", String::as_str)
            ),
        });
    }
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    let file = BufWriter::new(File::create(path).map_err(io_err)?);
    let name = path.to_string_lossy();
    let plain = name.strip_suffix(".gz").unwrap_or(&name);
    let delimiter = if plain.ends_with(".tsv") || plain.ends_with(".txt") {
        b'\t'
    } else {
        b','
    };
    let mut file = if name.ends_with(".gz") {
        let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        write_records(encoder, table, path, orientation, delimiter)?
            .finish()
            .map_err(io_err)?
    } else {
        write_records(file, table, path, orientation, delimiter)?
    };
    file.flush().map_err(io_err)
}

/// Writes the header and rows to `sink` and hands it back, flushed, for finishing.
fn write_records<W: Write>(
    sink: W,
    table: &FeatureTable,
    path: &Path,
    orientation: Orientation,
    delimiter: u8,
) -> Result<W, DataError> {
    let csv_err = |e: csv::Error| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("cannot write: {e}"),
    };
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(sink);
    let (corner, column_ids, row_ids, lines) = match orientation {
        Orientation::CellsByFeatures => ("", &table.features, &table.cells, table.values.rows()),
        Orientation::FeaturesByCells => (
            "gene",
            &table.cells,
            &table.features,
            table.values.columns(),
        ),
    };
    writer
        .write_record(std::iter::once(corner).chain(column_ids.iter().map(String::as_str)))
        .map_err(csv_err)?;
    let mut text = String::new();
    for (id, line) in row_ids.iter().zip(lines) {
        writer.write_field(id).map_err(csv_err)?;
        for &value in line {
            text.clear();
            format_value(&mut text, value);
            writer.write_field(&text).map_err(csv_err)?;
        }
        writer.write_record(None::<&[u8]>).map_err(csv_err)?;
    }
    writer.into_inner().map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        cause: e.into_error(),
    })
}

/// Shortest text that reads back as exactly `value`; empty for `NaN`.
pub(super) fn format_value(text: &mut String, value: f64) {
    let magnitude = value.abs();
    // Writing to a String cannot fail.
    let exact_integer =
        value.fract() == 0.0 && magnitude < 1e15 && !(value == 0.0 && value.is_sign_negative());
    let _ = if value.is_nan() {
        Ok(())
    } else if exact_integer {
        // Below 1e15 and integral: exact in i64.
        write!(text, "{}", value as i64)
    } else if value == 0.0 || (1e-5..1e16).contains(&magnitude) {
        write!(text, "{value}")
    } else {
        write!(text, "{value:e}")
    };
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn example() -> FeatureTable {
        FeatureTable {
            cells: vec!["c1".into(), "c2".into(), "c3".into()],
            features: vec!["a".into(), "b".into(), "c".into()],
            values: array![
                [1.0, f64::NAN, 3.0],
                [4.0, f64::NAN, f64::NAN],
                [7.0, 8.0, 9.0]
            ],
        }
    }

    #[test]
    fn missing_values_are_counted_per_feature() {
        assert_eq!(
            example().missing_by_feature(),
            vec![("b".to_owned(), 2), ("c".to_owned(), 1)]
        );
    }

    #[test]
    fn selecting_cells_keeps_ids_and_rows_together() {
        let selected = example().select_cells(&[2, 0]).unwrap();
        assert_eq!(selected.cells, vec!["c3", "c1"]);
        assert_eq!(selected.features, vec!["a", "b", "c"]);
        assert_eq!(selected.values.row(0).to_vec(), vec![7.0, 8.0, 9.0]);
        assert_eq!(selected.values[[1, 0]], 1.0);
        assert!(example().select_cells(&[0, 3]).is_none());
    }

    #[test]
    fn selecting_features_keeps_names_and_columns_together() {
        let selected = example().select_features(&[2]).unwrap();
        assert_eq!(selected.features, vec!["c"]);
        assert_eq!(selected.cells.len(), 3);
        assert_eq!(selected.values.column(0).to_vec()[2], 9.0);
        assert!(example().select_features(&[5]).is_none());
    }

    #[test]
    fn values_are_written_in_their_shortest_exact_form() {
        let format = |value: f64| {
            let mut text = String::new();
            format_value(&mut text, value);
            text
        };
        assert_eq!(format(647_018.0), "647018");
        assert_eq!(format(-3.0), "-3");
        assert_eq!(format(-0.0), "-0");
        assert_eq!(format(0.1), "0.1");
        assert_eq!(format(1e-9), "1e-9");
        assert_eq!(format(1.25e20), "1.25e20");
        assert_eq!(format(f64::NAN), "");
        assert_eq!(
            Orientation::CellsByFeatures.flipped(),
            Orientation::FeaturesByCells
        );
    }
}
