//! Reading a numeric cells-by-features table from CSV or TSV, plain or gzip.
//!
//! The header row names the columns and the first field of every row is its
//! id. In [`Orientation::FeaturesByCells`] rows are features and columns are
//! cells (`gene,<cell ids>`); in [`Orientation::CellsByFeatures`] rows are
//! cells and columns are features (`,<feature names>`). A header with one
//! field fewer than the rows (as R's `write.table` writes it) is accepted: all
//! its fields are then column ids. Whatever the layout on disk, the result is
//! cells x features in standard (row-major) layout.
//!
//! Values are parsed straight from the raw bytes of each record. An empty
//! field, `NaN`, `nan` or `NA` is a missing value (`f64::NAN`); infinities and
//! anything else that is not a number are errors naming the line, the column,
//! the text and the column's header name.

use std::collections::HashMap;
use std::path::Path;

use csv::ByteRecord;
use ndarray::Array2;

use super::source::{TextSource, column_number, line_of};
use super::{DataError, FeatureTable, Orientation};

/// Longest stretch of offending text quoted in an error message.
const QUOTE_LIMIT: usize = 60;

/// Reads a numeric matrix from CSV or TSV, plain or gzip-compressed, laid out as `orientation` says.
pub fn read_table(path: &Path, orientation: Orientation) -> Result<FeatureTable, DataError> {
    read_with_text_column(path, orientation, None).map(|(table, _)| table)
}

/// Reads a table like [`read_table`] whose column `column` (named in the
/// header) holds text, e.g. a gene symbol beside each gene id of a table
/// with one row per gene; returns the numeric table without that column and
/// the column's text, one entry per row in file order.
pub fn read_table_with_text_column(
    path: &Path,
    orientation: Orientation,
    column: &str,
) -> Result<(FeatureTable, Vec<String>), DataError> {
    read_with_text_column(path, orientation, Some(column))
}

fn read_with_text_column(
    path: &Path,
    orientation: Orientation,
    text_column: Option<&str>,
) -> Result<(FeatureTable, Vec<String>), DataError> {
    let mut source = TextSource::open(path)?;
    let Some((header, header_line)) = source.header()? else {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "the file is empty; expected a header line ({})",
                header_hint(orientation)
            ),
        });
    };
    let (row_kind, column_kind) = match orientation {
        Orientation::CellsByFeatures => ("cell id", "feature name"),
        Orientation::FeaturesByCells => ("feature name", "cell id"),
    };
    let mut layout: Option<Layout> = None;
    let mut row_ids: Vec<String> = Vec::new();
    let mut row_lines: HashMap<String, u64> = HashMap::new();
    let mut values: Vec<f64> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut record = ByteRecord::new();
    while source.next_record(&mut record)? {
        let line = line_of(&record);
        if layout.is_none() {
            layout = Some(Layout::from_header(
                &source,
                &header,
                header_line,
                record.len(),
                column_kind,
                text_column,
            )?);
        }
        let Some(layout) = layout.as_ref() else {
            continue;
        };
        let expected = layout.fields();
        if record.len() != expected {
            return Err(DataError::FieldCount {
                path: path.to_path_buf(),
                line,
                expected,
                found: record.len(),
            });
        }
        let id = source.text(record.get(0).unwrap_or_default(), line, 0)?;
        if id.is_empty() {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                column: 1,
                message: format!("empty {row_kind}; the first field of each row must name it"),
            });
        }
        if let Some(&first_line) = row_lines.get(id) {
            return Err(DataError::Duplicate {
                path: path.to_path_buf(),
                what: row_kind,
                name: id.to_owned(),
                first_line,
                first_column: 1,
                second_line: line,
                second_column: 1,
            });
        }
        for (index, field) in record.iter().enumerate().skip(1) {
            if Some(index) == layout.text_field {
                texts.push(source.text(field, line, index)?.to_owned());
                continue;
            }
            let value = parse_value(field).map_err(|problem| DataError::Parse {
                path: path.to_path_buf(),
                line,
                column: column_number(index),
                message: format!(
                    "'{}' in column '{}' (row '{id}') {}",
                    quote(field),
                    layout.name_of(index),
                    problem.describe()
                ),
            })?;
            values.push(value);
        }
        row_lines.insert(id.to_owned(), line);
        row_ids.push(id.to_owned());
    }
    let Some(layout) = layout else {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "the file has a header line but no data rows; expected one row per {row_kind}"
            ),
        });
    };
    let shape_error = |e: ndarray::ShapeError| DataError::Invalid {
        path: path.to_path_buf(),
        message: format!("internal error building the matrix: {e}"),
    };
    let (n_rows, n_columns) = (row_ids.len(), layout.names.len());
    let table = match orientation {
        Orientation::CellsByFeatures => FeatureTable {
            values: Array2::from_shape_vec((n_rows, n_columns), values).map_err(shape_error)?,
            cells: row_ids,
            features: layout.names,
        },
        Orientation::FeaturesByCells => FeatureTable {
            values: Array2::from_shape_vec(
                (n_columns, n_rows),
                transpose(&values, n_rows, n_columns),
            )
            .map_err(shape_error)?,
            cells: layout.names,
            features: row_ids,
        },
    };
    Ok((table, texts))
}

/// The column ids, settled when the first data row shows whether the header
/// has an id field, and which field (if any) is the text column.
struct Layout {
    /// The numeric columns' ids.
    names: Vec<String>,
    /// The record index of the text column.
    text_field: Option<usize>,
}

impl Layout {
    fn from_header(
        source: &TextSource,
        header: &[String],
        header_line: u64,
        first_row_len: usize,
        column_kind: &'static str,
        text_column: Option<&str>,
    ) -> Result<Self, DataError> {
        let header_names_first_column = header.first().is_some_and(|name| !name.is_empty());
        let skip = if header_names_first_column && first_row_len == header.len() + 1 {
            0
        } else {
            1
        };
        let mut names: Vec<String> = header.iter().skip(skip).cloned().collect();
        if names.is_empty() {
            return Err(DataError::Invalid {
                path: source.path().to_path_buf(),
                message: format!(
                    "the header line names no {column_kind}; expected the id column then one {column_kind} per column"
                ),
            });
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            let column = column_number(index + skip);
            if name.is_empty() {
                return Err(DataError::Parse {
                    path: source.path().to_path_buf(),
                    line: header_line,
                    column,
                    message: format!("empty {column_kind} in the header"),
                });
            }
            if let Some(&first) = seen.get(name.as_str()) {
                return Err(DataError::Duplicate {
                    path: source.path().to_path_buf(),
                    what: column_kind,
                    name: name.clone(),
                    first_line: header_line,
                    first_column: column_number(first + skip),
                    second_line: header_line,
                    second_column: column,
                });
            }
            seen.insert(name, index);
        }
        let text_field = match text_column {
            None => None,
            Some(wanted) => {
                let Some(at) = names.iter().position(|n| n == wanted) else {
                    return Err(DataError::Invalid {
                        path: source.path().to_path_buf(),
                        message: format!(
                            "no column `{wanted}` in the header; expected it to name a text \
                             column beside the numeric ones (a table with one row per gene)"
                        ),
                    });
                };
                names.remove(at);
                Some(at + 1)
            }
        };
        if names.is_empty() {
            return Err(DataError::Invalid {
                path: source.path().to_path_buf(),
                message: format!(
                    "the header line names no {column_kind} besides `{}`",
                    text_column.unwrap_or_default()
                ),
            });
        }
        Ok(Self { names, text_field })
    }

    /// How many fields each record has: the id, the numeric columns and the text column.
    fn fields(&self) -> usize {
        self.names.len() + 1 + usize::from(self.text_field.is_some())
    }

    /// The header name of the numeric field at record index `index` (≥ 1).
    fn name_of(&self, index: usize) -> &str {
        let after_text = self.text_field.is_some_and(|t| index > t);
        self.names
            .get(index - 1 - usize::from(after_text))
            .map_or("", String::as_str)
    }
}

/// Why a field is not a usable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueProblem {
    NotANumber,
    Infinite,
}

impl ValueProblem {
    fn describe(self) -> &'static str {
        match self {
            Self::NotANumber => {
                "is not a number; expected a number, or an empty field, NaN or NA for a missing value"
            }
            Self::Infinite => {
                "is infinite; expected a finite number, or an empty field, NaN or NA for a missing value"
            }
        }
    }
}

/// Parses one field: plain unsigned integers take a fast path, missing markers give `NaN`.
fn parse_value(field: &[u8]) -> Result<f64, ValueProblem> {
    let field = field.trim_ascii();
    if !field.is_empty() && field.len() <= 15 && field.iter().all(u8::is_ascii_digit) {
        let integer = field
            .iter()
            .fold(0_u64, |acc, &digit| acc * 10 + u64::from(digit - b'0'));
        // At most 15 digits: exact in f64.
        return Ok(integer as f64);
    }
    match field {
        b"" | b"NA" | b"NaN" | b"nan" => Ok(f64::NAN),
        _ => {
            let value = std::str::from_utf8(field)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .ok_or(ValueProblem::NotANumber)?;
            if value.is_infinite() {
                Err(ValueProblem::Infinite)
            } else {
                Ok(value)
            }
        }
    }
}

/// The offending text of a field, shortened for an error message.
fn quote(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let text = text.trim();
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

fn header_hint(orientation: Orientation) -> &'static str {
    match orientation {
        Orientation::CellsByFeatures => "`,<feature names>` then one row per cell",
        Orientation::FeaturesByCells => "`gene,<cell ids>` then one row per feature",
    }
}

/// Transposes a row-major `rows` x `columns` matrix, block by block to stay in cache.
fn transpose(source: &[f64], rows: usize, columns: usize) -> Vec<f64> {
    const BLOCK: usize = 32;
    let mut target = vec![0.0; source.len()];
    if source.len() != rows * columns {
        return target;
    }
    for row_start in (0..rows).step_by(BLOCK) {
        let row_end = (row_start + BLOCK).min(rows);
        for column_start in (0..columns).step_by(BLOCK) {
            let column_end = (column_start + BLOCK).min(columns);
            for row in row_start..row_end {
                for column in column_start..column_end {
                    target[column * rows + row] = source[row * columns + column];
                }
            }
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_decimals_and_exponents_parse() {
        assert_eq!(parse_value(b"0"), Ok(0.0));
        assert_eq!(parse_value(b"647018"), Ok(647_018.0));
        assert_eq!(parse_value(b" 12 "), Ok(12.0));
        assert_eq!(
            parse_value(b"-33.322207629680626"),
            Ok(-33.322_207_629_680_626)
        );
        assert_eq!(parse_value(b"1.5e-3"), Ok(0.0015));
        assert_eq!(
            parse_value(b"12345678901234567890"),
            Ok(12_345_678_901_234_567_890.0)
        );
    }

    #[test]
    fn missing_markers_become_nan() {
        for marker in [&b""[..], b"NA", b"NaN", b"nan", b"  "] {
            assert!(
                parse_value(marker).is_ok_and(f64::is_nan),
                "{:?}",
                String::from_utf8_lossy(marker)
            );
        }
    }

    #[test]
    fn text_and_infinities_are_rejected() {
        assert_eq!(parse_value(b"abc"), Err(ValueProblem::NotANumber));
        assert_eq!(parse_value(b"1,5"), Err(ValueProblem::NotANumber));
        assert_eq!(parse_value(b"inf"), Err(ValueProblem::Infinite));
        assert_eq!(parse_value(b"1e400"), Err(ValueProblem::Infinite));
        assert_eq!(parse_value(b"\xff"), Err(ValueProblem::NotANumber));
    }

    #[test]
    fn transpose_moves_every_entry() {
        let rows = 37;
        let columns = 70;
        let source: Vec<f64> = (0..rows * columns).map(|i| i as f64).collect();
        let target = transpose(&source, rows, columns);
        for row in 0..rows {
            for column in 0..columns {
                assert_eq!(target[column * rows + row], source[row * columns + column]);
            }
        }
    }

    #[test]
    fn long_offending_text_is_shortened() {
        let long = "x".repeat(200);
        let quoted = quote(long.as_bytes());
        assert_eq!(quoted.len(), QUOTE_LIMIT + 3);
        assert!(quoted.ends_with("..."));
    }
}
