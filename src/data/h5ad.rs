//! AnnData `.h5ad` files, read and written through the HDF5 C library
//! (the `hdf5-metno` binding).
//!
//! An `.h5ad` is an HDF5 file laid out by anndata's on-disk specification:
//! `/X` (cells x features: a dense array, or a group encoded as `csr_matrix`
//! or `csc_matrix` with `data`, `indices`, `indptr` and a `shape` attribute),
//! `/layers/NAME` (same encodings), `/raw/X` with its own `/raw/var`,
//! `/obsm/KEY` (per-cell matrices such as embeddings), and the `/obs` and
//! `/var` data frames (a group with an `_index` attribute naming its index
//! column, a `column-order` attribute, and one element per column: a numeric
//! or boolean array, a `string-array`, or a `categorical` group of `codes` and
//! `categories`, or a `nullable-*` group of `values` and `mask`). Every error
//! names the file and the element (`/layers/counts`).

mod descriptor;
mod direct;
mod element;
mod frame;
mod write;

use std::path::Path;

use hdf5::File;

use super::{DataError, FeatureTable, LoadedTable, Metadata, SparseTable};
pub use write::{
    CsrWriter, H5adLatents, atomically, dict, write_dense, write_frame, write_h5ad,
    write_latents_h5ad,
};

/// Which matrix of an `.h5ad` file a modality reads, and how its features are named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct H5adSelection {
    /// `/layers/NAME` instead of `/X`.
    pub layer: Option<String>,
    /// `/raw/X` (with `/raw/var`) instead of `/X`.
    pub use_raw: bool,
    /// `/obsm/KEY` (a per-cell matrix; features are named `KEY_1`, `KEY_2`, ...
    /// unless it is a data frame, whose column names are used).
    pub obsm: Option<String>,
    /// A column of `var` to name the features by (e.g. gene symbols) instead of `var_names`.
    pub var_column: Option<String>,
}

/// The 8 bytes every HDF5 file (without a user block) starts with.
pub(super) const HDF5_MAGIC: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];

/// Opens `path` as HDF5, naming the file in the error.
/// The descriptor is marked close-on-exec (see [`descriptor`]).
fn open(path: &Path) -> Result<File, DataError> {
    let error = |message: String| DataError::Object {
        path: path.to_path_buf(),
        object: "/".into(),
        message,
    };
    let file = without_locks().open(path).map_err(|e| {
        error(format!(
            "cannot open as an HDF5 (.h5ad) file (corrupt or truncated?): {e}"
        ))
    })?;
    descriptor::close_on_exec(&file).map_err(error)?;
    Ok(file)
}

/// Files opened or created without the library's advisory locks. Every
/// write goes to a private temporary file renamed into place ([`atomically`]),
/// so no reader can see a file being written; the locks only made opens fail
/// ("unable to lock file") when a child process started in the instant
/// between the library opening a file and [`descriptor::close_on_exec`]
/// inherited the descriptor, and held its lock while the child ran.
fn without_locks() -> hdf5::FileBuilder {
    let mut builder = File::with_options();
    builder.with_fapl(|fapl| fapl.file_locking(false));
    builder
}

/// Reads the matrix `selection` names from the `.h5ad` at `path` as cells x features.
pub fn read_h5ad(path: &Path, selection: &H5adSelection) -> Result<LoadedTable, DataError> {
    let file = open(path)?;
    let ctx = element::Context::new(path);
    if selection.obsm.is_some() && (selection.layer.is_some() || selection.use_raw) {
        return Err(ctx.error(
            "/",
            "choose one of `obsm`, `layer` and `use_raw`; they name different matrices",
        ));
    }
    if selection.layer.is_some() && selection.use_raw {
        return Err(ctx.error(
            "/",
            "choose one of `layer` and `use_raw`; they name different matrices",
        ));
    }
    let cells = frame::index(&ctx, &file, "/obs")?;
    let (matrix_name, var_name) = match (&selection.layer, &selection.obsm) {
        (Some(layer), _) => (format!("/layers/{layer}"), "/var"),
        (None, Some(key)) => (format!("/obsm/{key}"), ""),
        (None, None) if selection.use_raw => ("/raw/X".to_owned(), "/raw/var"),
        (None, None) => ("/X".to_owned(), "/var"),
    };
    let matrix = element::read_matrix(&ctx, &file, &matrix_name)?;
    let (rows, columns) = matrix.shape();
    let features = match (&selection.obsm, &selection.var_column) {
        (Some(_), Some(_)) => {
            return Err(ctx.error(
                &matrix_name,
                "`var_column` names features of X or a layer; an obsm matrix has no var",
            ));
        }
        (Some(key), None) => match matrix.column_names() {
            Some(names) => names.to_vec(),
            None => (1..=columns).map(|j| format!("{key}_{j}")).collect(),
        },
        (None, Some(column)) => frame::string_column(&ctx, &file, var_name, column)?,
        (None, None) => frame::index(&ctx, &file, var_name)?,
    };
    if rows != cells.len() {
        return Err(ctx.error(
            &matrix_name,
            &format!(
                "has {rows} rows but /obs has {} cells; expected one row per cell",
                cells.len()
            ),
        ));
    }
    if columns != features.len() {
        return Err(ctx.error(
            &matrix_name,
            &format!(
                "has {columns} columns but there are {} feature names; expected one column per feature",
                features.len()
            ),
        ));
    }
    element::check_unique(&ctx, "/obs", "cell id", &cells)?;
    element::check_unique(&ctx, var_name, "feature name", &features)?;
    Ok(match matrix {
        element::Matrix::Dense { values, .. } => LoadedTable::Dense(FeatureTable {
            cells,
            features,
            values,
        }),
        element::Matrix::Sparse(values) => LoadedTable::Sparse(SparseTable {
            cells,
            features,
            values,
        }),
    })
}

/// Reads `/obs` of the `.h5ad` at `path` as metadata. `id_column` names the
/// cell ids: the index (`obs_names`, or the index's own name) or an obs column.
pub fn read_h5ad_obs(path: &Path, id_column: &str) -> Result<Metadata, DataError> {
    let file = open(path)?;
    let ctx = element::Context::new(path);
    let obs = frame::read_frame(&ctx, &file, "/obs")?;
    let (cells, columns, rows) = obs.into_metadata(&ctx, id_column)?;
    element::check_unique(&ctx, "/obs", "cell id", &cells)?;
    Ok(Metadata {
        path: path.to_path_buf(),
        cells,
        columns,
        rows,
    })
}
