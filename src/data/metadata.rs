//! Reading per-cell text annotations (cell-type labels and the like).
//!
//! A metadata file is a UTF-8 text table (CSV or TSV, plain or gzip) with a
//! header row; one named column holds the cell ids, which must be unique. All
//! other columns are kept as text; an empty field is a missing label.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use super::h5ad::read_h5ad_obs;
use super::source::{TextSource, column_number, line_of};
use super::{DataError, MatrixFormat, detect_format};

/// Per-cell text annotations (labels such as `rna_family`), keyed by cell id.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// The file the metadata came from.
    pub path: PathBuf,
    /// Cell ids, in file order.
    pub cells: Vec<String>,
    /// Column names other than the id column.
    pub columns: Vec<String>,
    /// `rows[i][j]` is column `j` of cell `i`; an empty string when missing.
    pub rows: Vec<Vec<String>>,
}

impl Metadata {
    /// The values of column `name` in cell order (`None` for a missing label), or `None` if there is no such column.
    pub fn column(&self, name: &str) -> Option<Vec<Option<&str>>> {
        let index = self.column_index(name)?;
        Some(
            self.rows
                .iter()
                .map(|row| non_empty(row.get(index)))
                .collect(),
        )
    }

    /// The label in `column` of the cell `cell_id`; `None` if the column or cell is unknown or the label is empty.
    pub fn label(&self, column: &str, cell_id: &str) -> Option<&str> {
        let index = self.column_index(column)?;
        let row = self.cells.iter().position(|cell| cell == cell_id)?;
        non_empty(self.rows.get(row)?.get(index))
    }

    /// Labels in `column` for each of `cells` (`None` where unknown or empty), or `None` if there is no such column.
    pub fn labels(&self, column: &str, cells: &[String]) -> Option<Vec<Option<String>>> {
        let index = self.column_index(column)?;
        let rows: HashMap<&str, &Vec<String>> = self
            .cells
            .iter()
            .map(String::as_str)
            .zip(&self.rows)
            .collect();
        Some(
            cells
                .iter()
                .map(|cell| {
                    non_empty(rows.get(cell.as_str()).and_then(|row| row.get(index)))
                        .map(str::to_owned)
                })
                .collect(),
        )
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == name)
    }
}

fn non_empty(value: Option<&String>) -> Option<&str> {
    value.map(String::as_str).filter(|text| !text.is_empty())
}

/// Reads a metadata table (CSV or TSV, plain or gzip) whose `id_column` holds
/// cell ids, or the `obs` data frame of an `.h5ad` (told apart by content;
/// `id_column` is then `obs_names`, the index's name, or an obs column).
pub fn read_metadata(path: &Path, id_column: &str) -> Result<Metadata, DataError> {
    if detect_format(path)? == MatrixFormat::H5ad {
        return read_h5ad_obs(path, id_column);
    }
    let mut source = TextSource::open(path)?;
    let Some((header, header_line)) = source.header()? else {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "the file is empty; expected a header line naming the columns, among them '{id_column}'"
            ),
        });
    };
    check_unique_columns(path, &header, header_line)?;
    let Some(id_index) = header.iter().position(|name| name == id_column) else {
        return Err(DataError::MissingColumn {
            path: path.to_path_buf(),
            column: id_column.to_owned(),
            available: header,
        });
    };
    let columns: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(index, _)| index != id_index)
        .map(|(_, name)| name.clone())
        .collect();
    let mut cells = Vec::new();
    let mut rows = Vec::new();
    let mut cell_lines: HashMap<String, u64> = HashMap::new();
    let mut record = ByteRecord::new();
    while source.next_record(&mut record)? {
        let line = line_of(&record);
        if record.len() != header.len() {
            return Err(DataError::FieldCount {
                path: path.to_path_buf(),
                line,
                expected: header.len(),
                found: record.len(),
            });
        }
        let mut id = String::new();
        let mut row = Vec::with_capacity(columns.len());
        for (index, field) in record.iter().enumerate() {
            let text = source.text(field, line, index)?;
            if index == id_index {
                id = text.to_owned();
            } else {
                row.push(text.to_owned());
            }
        }
        if id.is_empty() {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                column: column_number(id_index),
                message: format!("empty cell id in column '{id_column}'"),
            });
        }
        if let Some(&first_line) = cell_lines.get(&id) {
            let column = column_number(id_index);
            return Err(DataError::Duplicate {
                path: path.to_path_buf(),
                what: "cell id",
                name: id,
                first_line,
                first_column: column,
                second_line: line,
                second_column: column,
            });
        }
        cell_lines.insert(id.clone(), line);
        cells.push(id);
        rows.push(row);
    }
    if cells.is_empty() {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: "the file has a header line but no data rows; expected one row per cell"
                .into(),
        });
    }
    Ok(Metadata {
        path: path.to_path_buf(),
        cells,
        columns,
        rows,
    })
}

fn check_unique_columns(path: &Path, header: &[String], header_line: u64) -> Result<(), DataError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, name) in header.iter().enumerate() {
        if let Some(&first) = seen.get(name.as_str()) {
            return Err(DataError::Duplicate {
                path: path.to_path_buf(),
                what: "column name",
                name: name.clone(),
                first_line: header_line,
                first_column: column_number(first),
                second_line: header_line,
                second_column: column_number(index),
            });
        }
        seen.insert(name, index);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Metadata {
        Metadata {
            path: PathBuf::from("meta.csv"),
            cells: vec!["c1".into(), "c2".into(), "c3".into()],
            columns: vec!["family".into(), "layer".into()],
            rows: vec![
                vec!["Vip".into(), "2/3".into()],
                vec![String::new(), "5".into()],
                vec!["Pvalb".into(), String::new()],
            ],
        }
    }

    #[test]
    fn column_gives_labels_in_cell_order_with_empty_as_missing() {
        let metadata = example();
        assert_eq!(
            metadata.column("family"),
            Some(vec![Some("Vip"), None, Some("Pvalb")])
        );
        assert_eq!(
            metadata.column("layer"),
            Some(vec![Some("2/3"), Some("5"), None])
        );
        assert_eq!(metadata.column("colour"), None);
    }

    #[test]
    fn label_looks_up_by_cell_id() {
        let metadata = example();
        assert_eq!(metadata.label("family", "c3"), Some("Pvalb"));
        assert_eq!(metadata.label("family", "c2"), None);
        assert_eq!(metadata.label("family", "c9"), None);
        assert_eq!(metadata.label("colour", "c1"), None);
    }

    #[test]
    fn labels_follow_the_requested_cells() {
        let metadata = example();
        let cells = vec!["c3".to_owned(), "c9".to_owned(), "c1".to_owned()];
        assert_eq!(
            metadata.labels("layer", &cells),
            Some(vec![None, None, Some("2/3".to_owned())])
        );
        assert_eq!(metadata.labels("colour", &cells), None);
    }
}
