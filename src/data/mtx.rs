//! Matrix Market (`.mtx`, plain or gzip) count matrices with their id files:
//! a 10x Genomics folder (`matrix.mtx[.gz]`, `features.tsv[.gz]` or
//! `genes.tsv[.gz]`, `barcodes.tsv[.gz]`) or a bare `.mtx` with named files.
//!
//! Only the `coordinate` format (`real`, `integer` or `pattern`, `general`)
//! is read, entry by entry into triplets that [`sprs`] turns into CSR (repeated
//! entries are summed). Each value is parsed to the nearest `f32`, the type
//! the CSR matrix holds. Errors name the file and the line: a bad header, an
//! index outside the declared size, a non-finite value or one beyond the
//! `f32` range, fewer or more entries than declared, and id files whose
//! length disagrees with the matrix.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::source::{open_decompressed, read_error};
use super::{Csr, DataError, Orientation, SparseTable};

/// The files of a Matrix Market modality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtxFiles {
    /// The matrix.
    pub matrix: PathBuf,
    /// One feature per line; the first tab-separated field is its id.
    pub features: PathBuf,
    /// One cell (barcode) per line.
    pub cells: PathBuf,
}

impl MtxFiles {
    /// The files of the 10x folder `dir` (each plain or `.gz`; `features.tsv` or the older `genes.tsv`).
    pub fn tenx(dir: &Path) -> Result<Self, DataError> {
        let find = |names: &[&str]| {
            names
                .iter()
                .flat_map(|name| [dir.join(name), dir.join(format!("{name}.gz"))])
                .find(|p| p.is_file())
                .ok_or_else(|| DataError::Invalid {
                    path: dir.to_path_buf(),
                    message: format!(
                        "no {} (or .gz) in this folder; expected a 10x folder with matrix.mtx, features.tsv and barcodes.tsv",
                        names.join(" or ")
                    ),
                })
        };
        Ok(Self {
            matrix: find(&["matrix.mtx"])?,
            features: find(&["features.tsv", "genes.tsv"])?,
            cells: find(&["barcodes.tsv"])?,
        })
    }
}

/// Reads a Matrix Market matrix laid out as `orientation` (10x: features x
/// cells) with its ids; `feature_field` picks the tab-separated field of the
/// features file that names a feature (0: the id; 1: the 10x gene symbol).
pub fn read_mtx(
    files: &MtxFiles,
    orientation: Orientation,
    feature_field: usize,
) -> Result<SparseTable, DataError> {
    let features = read_ids(&files.features, feature_field, "feature")?;
    let cells = read_ids(&files.cells, 0, "cell")?;
    let (row_ids, column_ids) = match orientation {
        Orientation::FeaturesByCells => (&features, &cells),
        Orientation::CellsByFeatures => (&cells, &features),
    };
    let triplets = read_triplets(&files.matrix)?;
    let declared = (triplets.rows, triplets.columns);
    if declared != (row_ids.len(), column_ids.len()) {
        let (row_kind, column_kind) = match orientation {
            Orientation::FeaturesByCells => ("features", "cells"),
            Orientation::CellsByFeatures => ("cells", "features"),
        };
        return Err(DataError::Invalid {
            path: files.matrix.clone(),
            message: format!(
                "the matrix is {} x {} ({row_kind} x {column_kind}, orientation {orientation:?}) but {} lists {} features and {} lists {} cells",
                declared.0,
                declared.1,
                files.features.display(),
                features.len(),
                files.cells.display(),
                cells.len()
            ),
        });
    }
    let (cell_index, feature_index) = match orientation {
        Orientation::FeaturesByCells => (triplets.column_index, triplets.row_index),
        Orientation::CellsByFeatures => (triplets.row_index, triplets.column_index),
    };
    let shape = (cells.len(), features.len());
    let feature_index: Vec<u32> = feature_index
        .into_iter()
        .map(|j| u32::try_from(j).unwrap_or(u32::MAX))
        .collect();
    let cell_index: Vec<u32> = cell_index
        .into_iter()
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect();
    if shape.0 > u32::MAX as usize || shape.1 > u32::MAX as usize {
        return Err(DataError::Invalid {
            path: files.matrix.clone(),
            message: format!(
                "{} x {} is larger than supported (2^32 - 1 per side)",
                shape.0, shape.1
            ),
        });
    }
    let values: Csr =
        sprs::TriMatI::from_triplets(shape, cell_index, feature_index, triplets.values).to_csr();
    Ok(SparseTable {
        cells,
        features,
        values,
    })
}

/// The coordinate entries of a Matrix Market file, 0-based.
struct Triplets {
    rows: usize,
    columns: usize,
    row_index: Vec<usize>,
    column_index: Vec<usize>,
    values: Vec<f32>,
}

fn read_triplets(path: &Path) -> Result<Triplets, DataError> {
    let (mut text, gzip) = open_decompressed(path)?;
    let at = |line: usize, message: String| DataError::Object {
        path: path.to_path_buf(),
        object: format!("line {line}"),
        message,
    };
    let mut line = String::new();
    let mut number = 0;
    let mut next_line = |line: &mut String| -> Result<bool, DataError> {
        line.clear();
        number += 1;
        let read = text
            .read_line(line)
            .map_err(|source| read_error(path, gzip, source))?;
        Ok(read > 0)
    };
    next_line(&mut line)?;
    let header = line.trim().to_ascii_lowercase();
    let fields: Vec<&str> = header.split_whitespace().collect();
    let pattern = match fields[..] {
        ["%%matrixmarket", "matrix", "coordinate", field, "general"] => match field {
            "real" | "integer" | "double" => false,
            "pattern" => true,
            other => {
                return Err(at(
                    1,
                    format!("unsupported field '{other}'; expected real, integer or pattern"),
                ));
            }
        },
        _ => {
            return Err(at(
                1,
                format!(
                    "'{}' is not a supported Matrix Market header; expected `%%MatrixMarket matrix coordinate real|integer|pattern general`",
                    line.trim()
                ),
            ));
        }
    };
    let mut line_number = 1;
    let size = loop {
        if !next_line(&mut line)? {
            return Err(at(
                line_number + 1,
                "the file ends before the size line".into(),
            ));
        }
        line_number += 1;
        let trimmed = line.trim();
        if !(trimmed.is_empty() || trimmed.starts_with('%')) {
            break trimmed.to_owned();
        }
    };
    let numbers: Vec<usize> = size
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| {
            at(
                line_number,
                format!("'{size}' is not a size line; expected `rows columns entries`"),
            )
        })?;
    let [rows, columns, entries] = numbers[..] else {
        return Err(at(
            line_number,
            format!("'{size}' is not a size line; expected `rows columns entries`"),
        ));
    };
    let mut triplets = Triplets {
        rows,
        columns,
        row_index: Vec::with_capacity(entries),
        column_index: Vec::with_capacity(entries),
        values: Vec::with_capacity(entries),
    };
    while next_line(&mut line)? {
        line_number += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('%') {
            continue;
        }
        if triplets.values.len() == entries {
            return Err(at(
                line_number,
                format!("more entries than the {entries} the size line declares"),
            ));
        }
        let mut parts = trimmed.split_whitespace();
        let mut index = |what: &str, limit: usize| -> Result<usize, DataError> {
            let text = parts.next().unwrap_or_default();
            match text.parse::<usize>() {
                Ok(i) if (1..=limit).contains(&i) => Ok(i - 1),
                _ => Err(at(
                    line_number,
                    format!("{what} index '{text}' is not a whole number from 1 to {limit}"),
                )),
            }
        };
        let row = index("row", rows)?;
        let column = index("column", columns)?;
        let value = if pattern {
            1.0
        } else {
            let text = parts.next().unwrap_or_default();
            match text.parse::<f32>() {
                Ok(v) if v.is_finite() => v,
                // Finite as `f64` but not as `f32`.
                Ok(_) if text.parse::<f64>().is_ok_and(f64::is_finite) => {
                    return Err(at(
                        line_number,
                        format!(
                            "value '{text}' is beyond the range of single-precision (f32) numbers, ±{:e}",
                            f32::MAX
                        ),
                    ));
                }
                _ => {
                    return Err(at(
                        line_number,
                        format!("value '{text}' is not a finite number"),
                    ));
                }
            }
        };
        triplets.row_index.push(row);
        triplets.column_index.push(column);
        triplets.values.push(value);
    }
    if triplets.values.len() != entries {
        return Err(at(
            line_number,
            format!(
                "the file ends after {} entries; the size line declares {entries} (truncated?)",
                triplets.values.len()
            ),
        ));
    }
    Ok(triplets)
}

/// The ids in field `field` (tab-separated, 0-based) of every line; unique and non-empty.
fn read_ids(path: &Path, field: usize, what: &str) -> Result<Vec<String>, DataError> {
    let (text, gzip) = open_decompressed(path)?;
    let mut ids = Vec::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.map_err(|source| read_error(path, gzip, source))?;
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = |message: String| DataError::Object {
            path: path.to_path_buf(),
            object: format!("line {number}"),
            message,
        };
        let id = line
            .split('\t')
            .nth(field)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| at(format!("has no {what} id in field {}", field + 1)))?;
        if let Some(first) = first_line.insert(id.to_owned(), number) {
            return Err(at(format!(
                "the {what} id '{id}' was already on line {first}; each {what} id must be unique"
            )));
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}
