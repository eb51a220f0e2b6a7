//! One entry point for every matrix format, chosen by the file's content:
//! a folder is a 10x folder, a file starting with the HDF5 magic bytes is an
//! `.h5ad`, one starting with `%%MatrixMarket` (after gzip decompression) is
//! a Matrix Market matrix, anything else is CSV/TSV. Options that belong to
//! another format than the one found are an error, not ignored.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::h5ad::{H5adSelection, HDF5_MAGIC, read_h5ad};
use super::mtx::{MtxFiles, read_mtx};
use super::source::{open_decompressed, read_error};
use super::{DataError, LoadedTable, Orientation, read_table};

/// Where a modality's matrix is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixSource {
    /// The file (CSV/TSV, `.h5ad`, `.mtx`) or 10x folder.
    pub path: PathBuf,
    /// The layout on disk: `.h5ad` is always `CellsByFeatures`, a 10x folder `FeaturesByCells`.
    pub orientation: Orientation,
    /// Which matrix of an `.h5ad` (layer, raw, obsm) and which `var` column names the features.
    pub h5ad: H5adSelection,
    /// A bare `.mtx`'s feature ids, one per line (first tab-separated field).
    pub features_file: Option<PathBuf>,
    /// A bare `.mtx`'s cell ids (barcodes), one per line.
    pub cells_file: Option<PathBuf>,
}

impl MatrixSource {
    /// A source with only a path and orientation (no format-specific options).
    pub fn new(path: impl Into<PathBuf>, orientation: Orientation) -> Self {
        Self {
            path: path.into(),
            orientation,
            h5ad: H5adSelection::default(),
            features_file: None,
            cells_file: None,
        }
    }
}

/// The formats [`read_matrix`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatrixFormat {
    /// Comma- or tab-separated text, plain or gzip.
    Delimited,
    /// An AnnData HDF5 file.
    H5ad,
    /// A Matrix Market file, plain or gzip.
    MatrixMarket,
    /// A 10x Genomics folder.
    TenxFolder,
}

/// Which format `path` holds, from its content.
pub fn detect_format(path: &Path) -> Result<MatrixFormat, DataError> {
    if path.is_dir() {
        return Ok(MatrixFormat::TenxFolder);
    }
    let mut start = [0_u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut f| read_up_to(&mut f, &mut start))
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            cause: source,
        })?;
    if start[..read] == HDF5_MAGIC[..] {
        return Ok(MatrixFormat::H5ad);
    }
    let (mut text, gzip) = open_decompressed(path)?;
    let mut head = [0_u8; 14];
    let read = read_up_to(&mut text, &mut head).map_err(|e| read_error(path, gzip, e))?;
    Ok(if head[..read].eq_ignore_ascii_case(b"%%MatrixMarket") {
        MatrixFormat::MatrixMarket
    } else {
        MatrixFormat::Delimited
    })
}

fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads the matrix `source` describes, in whatever format its content shows.
pub fn read_matrix(source: &MatrixSource) -> Result<LoadedTable, DataError> {
    let path = &source.path;
    let format = detect_format(path)?;
    let misplaced = |option: &str, belongs: &str| DataError::Invalid {
        path: path.clone(),
        message: format!(
            "`{option}` applies to {belongs}; this is {}",
            describe(format)
        ),
    };
    let h5ad = &source.h5ad;
    if format != MatrixFormat::H5ad {
        if h5ad.layer.is_some() {
            return Err(misplaced("layer", ".h5ad files"));
        }
        if h5ad.use_raw {
            return Err(misplaced("use_raw", ".h5ad files"));
        }
        if h5ad.obsm.is_some() {
            return Err(misplaced("obsm", ".h5ad files"));
        }
        if format == MatrixFormat::Delimited && h5ad.var_column.is_some() {
            return Err(misplaced("var_column", ".h5ad files and 10x folders"));
        }
    }
    if format != MatrixFormat::MatrixMarket
        && (source.features_file.is_some() || source.cells_file.is_some())
    {
        return Err(misplaced("features_file / cells_file", "a bare .mtx file"));
    }
    let wrong_orientation = |expected: Orientation| DataError::Invalid {
        path: path.clone(),
        message: format!(
            "{} is laid out {expected:?}; the session says orientation {:?}",
            describe(format),
            source.orientation
        ),
    };
    match format {
        MatrixFormat::Delimited => read_table(path, source.orientation).map(LoadedTable::Dense),
        MatrixFormat::H5ad => {
            if source.orientation != Orientation::CellsByFeatures {
                return Err(wrong_orientation(Orientation::CellsByFeatures));
            }
            read_h5ad(path, h5ad)
        }
        MatrixFormat::TenxFolder => {
            if source.orientation != Orientation::FeaturesByCells {
                return Err(wrong_orientation(Orientation::FeaturesByCells));
            }
            let field = tenx_feature_field(path, h5ad.var_column.as_deref())?;
            read_mtx(&MtxFiles::tenx(path)?, source.orientation, field).map(LoadedTable::Sparse)
        }
        MatrixFormat::MatrixMarket => {
            let (Some(features), Some(cells)) = (&source.features_file, &source.cells_file) else {
                return Err(DataError::Invalid {
                    path: path.clone(),
                    message: "a bare .mtx needs `features_file` and `cells_file` naming its ids (or put it in a 10x folder with features.tsv and barcodes.tsv)".into(),
                });
            };
            let field = tenx_feature_field(path, h5ad.var_column.as_deref())?;
            let files = MtxFiles {
                matrix: path.clone(),
                features: features.clone(),
                cells: cells.clone(),
            };
            read_mtx(&files, source.orientation, field).map(LoadedTable::Sparse)
        }
    }
}

/// The field of a 10x features file that `var_column` names: `gene_ids` (the
/// default, field 1) or `gene_symbols` (field 2), as scanpy's `read_10x_mtx` calls them.
fn tenx_feature_field(path: &Path, var_column: Option<&str>) -> Result<usize, DataError> {
    match var_column {
        None | Some("gene_ids") => Ok(0),
        Some("gene_symbols") => Ok(1),
        Some(other) => Err(DataError::Invalid {
            path: path.to_path_buf(),
            message: format!(
                "var_column '{other}' is not a 10x features column; expected gene_ids or gene_symbols"
            ),
        }),
    }
}

fn describe(format: MatrixFormat) -> &'static str {
    match format {
        MatrixFormat::Delimited => "a CSV/TSV table",
        MatrixFormat::H5ad => "an .h5ad (HDF5) file",
        MatrixFormat::MatrixMarket => "a Matrix Market file",
        MatrixFormat::TenxFolder => "a 10x folder",
    }
}
