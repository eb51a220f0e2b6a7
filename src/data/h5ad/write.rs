//! Writing `.h5ad` files that anndata and scanpy open: a matrix as `X`
//! (dense, or CSR with `float32` values), `obs` and `var` data frames of
//! string columns, and dense per-cell matrices in `obsm`. Files are written to
//! a temporary name beside the target and renamed into place.

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, Location};
use ndarray::Array2;

use super::super::{DataError, LoadedTable};

/// What a latent-space export holds: one row per cell.
#[derive(Debug, Clone, PartialEq)]
pub struct H5adLatents<'a> {
    /// Cell ids (`obs_names`).
    pub cells: &'a [String],
    /// `obsm` entries: a key (e.g. `X_<experiment>`) and a cells x dimensions matrix.
    pub obsm: &'a [(String, Array2<f64>)],
    /// `obs` columns (e.g. the assigned type, the known label); `None` is a missing value.
    pub obs: &'a [(String, Vec<Option<String>>)],
}

/// Writes a result's latents and labels as an `.h5ad`: an empty `X` of
/// `cells x 0`, each latent space in `obsm` under its key, the labels in `obs`.
pub fn write_latents_h5ad(path: &Path, latents: &H5adLatents<'_>) -> Result<(), DataError> {
    let rows = latents.cells.len();
    if let Some((key, matrix)) = latents.obsm.iter().find(|(_, m)| m.nrows() != rows) {
        return Err(invalid(
            path,
            format!(
                "obsm['{key}'] has {} rows for {rows} cells; expected one row per cell",
                matrix.nrows()
            ),
        ));
    }
    if let Some((name, column)) = latents.obs.iter().find(|(_, c)| c.len() != rows) {
        return Err(invalid(
            path,
            format!(
                "obs column '{name}' has {} values for {rows} cells",
                column.len()
            ),
        ));
    }
    atomically(path, |file| {
        write_dense(file, "X", &Array2::zeros((rows, 0)))?;
        write_frame(file, "obs", latents.cells, latents.obs)?;
        write_frame(file, "var", &[], &[])?;
        let obsm = dict(file, "obsm")?;
        for (key, matrix) in latents.obsm {
            write_dense(&obsm, key, matrix)?;
        }
        for name in ["layers", "obsp", "varm", "varp", "uns"] {
            dict(file, name)?;
        }
        Ok(())
    })
}

/// Writes `table` as `X` of an `.h5ad` (dense stays dense; sparse is written
/// as CSR with `float32` values), with `obs` columns from `obs` (one value per
/// cell, `None` missing).
pub fn write_h5ad(
    path: &Path,
    table: &LoadedTable,
    obs: &[(String, Vec<Option<String>>)],
) -> Result<(), DataError> {
    atomically(path, |file| {
        match table {
            LoadedTable::Dense(t) => write_dense(file, "X", &t.values)?,
            LoadedTable::Sparse(t) => {
                let (indptr, indices, data) = t.values.view().into_raw_storage();
                write_csr(file, "X", t.values.shape(), indptr, indices, data)?;
            }
        }
        write_frame(file, "obs", table.cells(), obs)?;
        write_frame(file, "var", table.features(), &[])?;
        for name in ["layers", "obsm", "obsp", "varm", "varp", "uns"] {
            dict(file, name)?;
        }
        Ok(())
    })
}

/// Writes a CSR matrix group `name` (anndata's `csr_matrix` encoding) in one go.
fn write_csr(
    parent: &Group,
    name: &str,
    shape: (usize, usize),
    indptr: &[usize],
    indices: &[u32],
    data: &[f32],
) -> hdf5::Result<()> {
    let mut writer = CsrWriter::new(parent, name, shape.1)?;
    writer.append(indptr, indices, data)?;
    writer.finish()
}

/// Rows per HDF5 chunk of a streamed CSR matrix's arrays.
const CHUNK: usize = 1 << 16;

/// A CSR matrix written block of rows by block of rows, so a matrix larger
/// than memory can be streamed into an `.h5ad` (extendible, chunked arrays).
pub struct CsrWriter {
    group: Group,
    columns: usize,
    rows: usize,
    stored: usize,
    data: hdf5::Dataset,
    indices: hdf5::Dataset,
    indptr: hdf5::Dataset,
}

impl CsrWriter {
    /// Starts the group `name` in `parent` for a matrix of `columns` columns.
    pub fn new(parent: &Group, name: &str, columns: usize) -> hdf5::Result<Self> {
        let group = parent.create_group(name)?;
        encode(&group, "csr_matrix", "0.1.0")?;
        let data = group
            .new_dataset::<f32>()
            .chunk(CHUNK)
            .shape(0..)
            .create("data")?;
        let indices = group
            .new_dataset::<i32>()
            .chunk(CHUNK)
            .shape(0..)
            .create("indices")?;
        let indptr = group
            .new_dataset::<i64>()
            .chunk(CHUNK)
            .shape(1..)
            .create("indptr")?;
        indptr.write_slice(&[0_i64], 0..1)?;
        Ok(Self {
            group,
            columns,
            rows: 0,
            stored: 0,
            data,
            indices,
            indptr,
        })
    }

    /// Appends rows given as a block-local CSR (`indptr` starts at 0 and has one entry per row plus one).
    pub fn append(&mut self, indptr: &[usize], indices: &[u32], data: &[f32]) -> hdf5::Result<()> {
        let rows = indptr.len().saturating_sub(1);
        let stored = self.stored + data.len();
        self.data.resize(stored)?;
        self.data.write_slice(data, self.stored..stored)?;
        let indices: Vec<i32> = indices.iter().map(|&i| i as i32).collect();
        self.indices.resize(stored)?;
        self.indices.write_slice(&indices, self.stored..stored)?;
        let pointers: Vec<i64> = indptr
            .iter()
            .skip(1)
            .map(|&p| (self.stored + p) as i64)
            .collect();
        self.indptr.resize(self.rows + rows + 1)?;
        self.indptr
            .write_slice(&pointers, self.rows + 1..self.rows + rows + 1)?;
        self.rows += rows;
        self.stored = stored;
        Ok(())
    }

    /// Writes the `shape` attribute; the matrix is complete.
    pub fn finish(self) -> hdf5::Result<()> {
        let shape = [self.rows as i64, self.columns as i64];
        self.group
            .new_attr_builder()
            .with_data(&shape)
            .create("shape")?;
        Ok(())
    }
}

/// Writes `file` at a temporary path beside `path` with `fill`, then renames it into place
/// (the descriptor marked close-on-exec, see `descriptor`).
pub fn atomically(
    path: &Path,
    fill: impl FnOnce(&File) -> hdf5::Result<()>,
) -> Result<(), DataError> {
    let tmp = temporary_path(path);
    let written = super::without_locks().create(&tmp).and_then(|file| {
        super::descriptor::close_on_exec(&file)?;
        encode(&file, "anndata", "0.1.0")?;
        fill(&file)?;
        file.close()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(invalid(path, format!("cannot write the .h5ad file: {e}")));
    }
    std::fs::rename(&tmp, path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        cause: source,
    })
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

fn invalid(path: &Path, message: String) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        message,
    }
}

fn text(value: &str) -> hdf5::Result<VarLenUnicode> {
    value
        .parse::<VarLenUnicode>()
        .map_err(|e| hdf5::Error::from(format!("'{value}' cannot be stored as a string: {e}")))
}

fn string_attr(location: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    location
        .new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&text(value)?)
}

fn encode(location: &Location, kind: &str, version: &str) -> hdf5::Result<()> {
    string_attr(location, "encoding-type", kind)?;
    string_attr(location, "encoding-version", version)
}

/// An empty `dict` element (anndata's mapping), e.g. `layers`.
pub fn dict(parent: &Group, name: &str) -> hdf5::Result<Group> {
    let group = parent.create_group(name)?;
    encode(&group, "dict", "0.1.0")?;
    Ok(group)
}

/// A dense matrix element `name` of `parent` (anndata's `array` encoding).
pub fn write_dense(parent: &Group, name: &str, values: &Array2<f64>) -> hdf5::Result<()> {
    let dataset = parent
        .new_dataset_builder()
        .with_data(values.view())
        .create(name)?;
    encode(&dataset, "array", "0.2.0")
}

fn write_strings(parent: &Group, name: &str, values: &[VarLenUnicode]) -> hdf5::Result<()> {
    let dataset = parent
        .new_dataset_builder()
        .with_data(values)
        .create(name)?;
    encode(&dataset, "string-array", "0.2.0")
}

/// A data frame of string columns; missing values become categorical code -1.
pub fn write_frame(
    parent: &Group,
    name: &str,
    index: &[String],
    columns: &[(String, Vec<Option<String>>)],
) -> hdf5::Result<()> {
    let group = parent.create_group(name)?;
    encode(&group, "dataframe", "0.2.0")?;
    string_attr(&group, "_index", "_index")?;
    let order = columns
        .iter()
        .map(|(c, _)| text(c))
        .collect::<hdf5::Result<Vec<_>>>()?;
    group
        .new_attr_builder()
        .with_data(&order)
        .create("column-order")?;
    let index = index
        .iter()
        .map(|s| text(s))
        .collect::<hdf5::Result<Vec<_>>>()?;
    write_strings(&group, "_index", &index)?;
    for (column, values) in columns {
        write_categorical(&group, column, values)?;
    }
    Ok(())
}

/// A column as anndata's `categorical` encoding (categories in first-seen order).
fn write_categorical(parent: &Group, name: &str, values: &[Option<String>]) -> hdf5::Result<()> {
    let mut categories: Vec<&str> = Vec::new();
    let mut lookup = std::collections::HashMap::new();
    let codes: Vec<i32> = values
        .iter()
        .map(|value| match value {
            Some(v) => *lookup.entry(v.as_str()).or_insert_with(|| {
                categories.push(v);
                categories.len() as i32 - 1
            }),
            None => -1,
        })
        .collect();
    let group = parent.create_group(name)?;
    encode(&group, "categorical", "0.2.0")?;
    group
        .new_attr::<bool>()
        .shape(())
        .create("ordered")?
        .write_scalar(&false)?;
    let categories = categories
        .iter()
        .map(|c| text(c))
        .collect::<hdf5::Result<Vec<_>>>()?;
    write_strings(&group, "categories", &categories)?;
    let codes = group
        .new_dataset_builder()
        .with_data(&codes)
        .create("codes")?;
    encode(&codes, "array", "0.2.0")
}
