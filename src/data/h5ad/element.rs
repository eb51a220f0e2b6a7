//! Reading one anndata element: a matrix (dense, `csr_matrix`, `csc_matrix`),
//! a numeric or string array, and the encoding attributes that say which.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, IntSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Conversion, Dataset, Group, LocationType};
use ndarray::Array2;

use super::super::checked_csr::csr_from_parts;
use super::super::{Csr, DataError, first_stored_where};
use super::direct::{self, Number, Stored};

/// The file being read, for error messages.
pub(super) struct Context {
    path: PathBuf,
}

impl Context {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// An error about `object` inside the file.
    pub(super) fn error(&self, object: &str, message: &str) -> DataError {
        DataError::Object {
            path: self.path.clone(),
            object: object.to_owned(),
            message: message.to_owned(),
        }
    }

    /// An HDF5 library error while reading `object`.
    pub(super) fn hdf5(&self, object: &str, error: &hdf5::Error) -> DataError {
        self.error(object, &format!("cannot read: {error}"))
    }
}

/// What an element is: an HDF5 group or dataset.
pub(super) enum Element {
    Group(Group),
    Dataset(Dataset),
}

/// The element at `name`, or an error saying it is missing and what is there instead.
pub(super) fn element(ctx: &Context, root: &Group, name: &str) -> Result<Element, DataError> {
    let kind = root.loc_type_by_name(name).map_err(|_| {
        let (parent, _) = name.rsplit_once('/').unwrap_or(("", name));
        let parent = if parent.is_empty() { "/" } else { parent };
        let available = root
            .group(parent)
            .and_then(|g| g.member_names())
            .map(|names| names.join(", "))
            .unwrap_or_default();
        ctx.error(
            name,
            &format!("no such element; {parent} holds: [{available}]"),
        )
    })?;
    match kind {
        LocationType::Group => root
            .group(name)
            .map(Element::Group)
            .map_err(|e| ctx.hdf5(name, &e)),
        LocationType::Dataset => root
            .dataset(name)
            .map(Element::Dataset)
            .map_err(|e| ctx.hdf5(name, &e)),
        other => Err(ctx.error(
            name,
            &format!("is a {other:?}; expected an array or a group"),
        )),
    }
}

/// The `encoding-type` attribute of an element, if it has one.
pub(super) fn encoding(location: &hdf5::Location) -> Option<String> {
    string_attr(location, "encoding-type")
        .or_else(|| string_attr(location, "h5sparse_format").map(|f| format!("{f}_matrix")))
}

/// A scalar string attribute, if present.
pub(super) fn string_attr(location: &hdf5::Location, name: &str) -> Option<String> {
    let attr = location.attr(name).ok()?;
    if let Ok(text) = attr.read_scalar::<VarLenUnicode>() {
        return Some(text.as_str().to_owned());
    }
    attr.read_scalar::<VarLenAscii>()
        .ok()
        .map(|text| text.as_str().to_owned())
}

/// A matrix element.
pub(super) enum Matrix {
    /// A dense array (or a data frame's numeric columns) with, for a data frame, its column names.
    Dense {
        values: Array2<f64>,
        column_names: Option<Vec<String>>,
    },
    /// A CSR or CSC matrix, as CSR.
    Sparse(Csr),
}

impl Matrix {
    pub(super) fn shape(&self) -> (usize, usize) {
        match self {
            Self::Dense { values, .. } => values.dim(),
            Self::Sparse(csr) => csr.shape(),
        }
    }

    pub(super) fn column_names(&self) -> Option<&[String]> {
        match self {
            Self::Dense { column_names, .. } => column_names.as_deref(),
            Self::Sparse(_) => None,
        }
    }
}

/// Reads the matrix element `name`: a dense 2-D array, a `csr_matrix` or
/// `csc_matrix` group, or (for obsm) a data frame of numeric columns.
/// Values must be finite.
pub(super) fn read_matrix(ctx: &Context, root: &Group, name: &str) -> Result<Matrix, DataError> {
    let matrix = match element(ctx, root, name)? {
        Element::Dataset(dataset) => {
            let shape = dataset.shape();
            let [rows, columns] = shape[..] else {
                return Err(ctx.error(
                    name,
                    &format!(
                        "is a {}-dimensional array; expected a 2-D matrix",
                        shape.len()
                    ),
                ));
            };
            let values = numbers(ctx, &dataset, name)?;
            let values = Array2::from_shape_vec((rows, columns), values)
                .map_err(|e| ctx.error(name, &format!("inconsistent shape: {e}")))?;
            Matrix::Dense {
                values,
                column_names: None,
            }
        }
        Element::Group(group) => match encoding(&group).as_deref() {
            // `sparse` checks that the values are finite.
            Some(kind @ ("csr_matrix" | "csc_matrix")) => {
                return Ok(Matrix::Sparse(sparse(
                    ctx,
                    &group,
                    name,
                    kind == "csc_matrix",
                )?));
            }
            Some("dataframe") => super::frame::numeric_frame(ctx, root, name)?,
            Some(other) => {
                return Err(ctx.error(
                    name,
                    &format!(
                        "unsupported encoding '{other}'; expected a dense array, csr_matrix or csc_matrix"
                    ),
                ));
            }
            None => {
                return Err(ctx.error(
                    name,
                    "is a group without an encoding-type attribute; expected a dense array, csr_matrix or csc_matrix",
                ));
            }
        },
    };
    if let Matrix::Dense { values, .. } = &matrix {
        let bad = values
            .indexed_iter()
            .find(|(_, v)| !v.is_finite())
            .map(|((i, j), &v)| (i, j, v));
        non_finite(ctx, name, bad)?;
    }
    Ok(matrix)
}

/// The error for the non-finite value `bad` (row, column, value), if there is one.
fn non_finite(
    ctx: &Context,
    name: &str,
    bad: Option<(usize, usize, f64)>,
) -> Result<(), DataError> {
    match bad {
        Some((i, j, v)) => Err(ctx.error(
            name,
            &format!(
                "holds the non-finite value {v} at row {}, column {}; expected finite numbers",
                i + 1,
                j + 1
            ),
        )),
        None => Ok(()),
    }
}

/// Reads a `csr_matrix` / `csc_matrix` group as CSR.
fn sparse(ctx: &Context, group: &Group, name: &str, csc: bool) -> Result<Csr, DataError> {
    let shape = group
        .attr("shape")
        .and_then(|a| a.as_reader().conversion(Conversion::Hard).read_raw::<u64>())
        .map_err(|e| {
            ctx.error(
                name,
                &format!("missing or unreadable `shape` attribute: {e}"),
            )
        })?;
    let [rows, columns] = shape[..] else {
        return Err(ctx.error(
            name,
            &format!(
                "the `shape` attribute has {} entries; expected 2",
                shape.len()
            ),
        ));
    };
    let (rows, columns) = (to_usize(rows), to_usize(columns));
    let (outer, inner) = if csc {
        (columns, rows)
    } else {
        (rows, columns)
    };
    let member = |part: &str| format!("{name}/{part}");
    let dataset = |part: &str| {
        group
            .dataset(part)
            .map_err(|e| ctx.error(&member(part), &format!("missing: {e}")))
    };
    let (data, finite) = values(ctx, &dataset("data")?, &member("data"))?;
    let indices_dataset = dataset("indices")?;
    let (indices, in_bounds) = match direct_indices(&indices_dataset, inner) {
        Some(indices) => (indices, true),
        None => (
            read_indices::<u32>(ctx, &indices_dataset, &member("indices"))?,
            false,
        ),
    };
    let indptr: Vec<u64> = read_indices(ctx, &dataset("indptr")?, &member("indptr"))?;
    if indptr.len() != outer + 1 {
        return Err(ctx.error(
            &member("indptr"),
            &format!(
                "has {} entries; expected {} (one more than the {} {})",
                indptr.len(),
                outer + 1,
                outer,
                if csc { "columns" } else { "rows" }
            ),
        ));
    }
    if indptr.first() != Some(&0)
        || indptr.windows(2).any(|w| w[0] > w[1])
        || indptr.last().copied().map(to_usize) != Some(data.len())
    {
        return Err(ctx.error(
            &member("indptr"),
            &format!(
                "is not a non-decreasing list from 0 to {} (the number of stored values)",
                data.len()
            ),
        ));
    }
    if indices.len() != data.len() {
        return Err(ctx.error(
            &member("indices"),
            &format!(
                "has {} entries but data has {}; expected one index per value",
                indices.len(),
                data.len()
            ),
        ));
    }
    if !in_bounds && let Some(&bad) = indices.iter().find(|&&i| i as usize >= inner) {
        return Err(ctx.error(
            &member("indices"),
            &format!("holds the index {bad}; expected indices below {inner}"),
        ));
    }
    let indptr: Vec<usize> = indptr.into_iter().map(to_usize).collect();
    let shape = (outer, inner);
    let invalid = |e: sprs::errors::StructureError| {
        ctx.error(
            name,
            &format!("is not a valid compressed sparse matrix: {e}"),
        )
    };
    // Rows whose indices are already increasing need no sorting: the
    // structure is checked in parallel and the arrays are taken as they are.
    let matrix = match csr_from_parts(shape, indptr, indices, data) {
        Ok(matrix) => matrix,
        // Unsorted rows are sorted; a broken structure is named by `sprs`.
        Err((indptr, indices, data)) => Csr::new_from_unsorted(shape, indptr, indices, data)
            .map_err(|(_, _, _, e)| invalid(e))?,
    };
    let matrix = if csc {
        // The CSR of `outer x inner` read is the transpose's; flip it into cells x features.
        matrix.transpose_into().to_other_storage()
    } else {
        matrix
    };
    if !finite {
        non_finite(ctx, name, first_stored_where(&matrix, |v| !v.is_finite()))?;
    }
    Ok(matrix)
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// A numeric dataset (any integer or float type) as `f64`.
pub(super) fn numbers(ctx: &Context, dataset: &Dataset, name: &str) -> Result<Vec<f64>, DataError> {
    match dataset.dtype().and_then(|t| t.to_descriptor()) {
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_)) => {
            dataset
                .as_reader()
                .conversion(Conversion::Hard)
                .read_raw::<f64>()
                .map_err(|e| ctx.hdf5(name, &e))
        }
        Ok(other) => Err(ctx.error(
            name,
            &format!("holds {other:?} values; expected integers or floating-point numbers"),
        )),
        Err(e) => Err(ctx.hdf5(name, &e)),
    }
}

/// Entries read at a time from a 1-D array (16 MiB of `f32`).
const BLOCK: usize = 1 << 22;

/// A 1-D dataset read block by block as `S` (the stored type, so HDF5 copies
/// without converting; any other type is converted by HDF5), each entry
/// turned into `T` by `convert` straight into the result.
fn read_1d<S: hdf5::H5Type + Copy, T>(
    ctx: &Context,
    dataset: &Dataset,
    name: &str,
    convert: impl Fn(S) -> Result<T, DataError>,
) -> Result<Vec<T>, DataError> {
    let total = dataset.size();
    let mut values = Vec::with_capacity(total);
    for start in (0..total).step_by(BLOCK) {
        let end = (start + BLOCK).min(total);
        let block = dataset
            .as_reader()
            .conversion(Conversion::Hard)
            .read_slice_1d::<S, _>(start..end)
            .map_err(|e| ctx.hdf5(name, &e))?;
        for &v in &block {
            values.push(convert(v)?);
        }
    }
    Ok(values)
}

/// The stored values of a sparse matrix (a 1-D array of any integer or float
/// type), each rounded to the nearest `f32` (the type a [`Csr`] holds; a
/// `float32` array is taken as it is), and whether they are known to be
/// finite: read straight from the file in parallel (and checked on the way)
/// when it stores them uncompressed in a little-endian type (see [`direct`]),
/// `float32` entries straight into the result; otherwise through HDF5 in their
/// stored type (`float32` straight into the result), a `float64` value beyond
/// the `f32` range refused.
fn values(ctx: &Context, dataset: &Dataset, name: &str) -> Result<(Vec<f32>, bool), DataError> {
    if let Some(located) = direct::locate(dataset) {
        let finite = |out: &[f32]| out.iter().fold(true, |finite, v| finite & v.is_finite());
        let values = if located.stored == Stored::F32 {
            direct::read_in_place(&located, finite)
        } else {
            // A `float64` value beyond the `f32` range becomes an infinity
            // and is refused here, then named by the read through HDF5.
            direct::read(&located, |stored, bytes, out| {
                direct::convert_each(stored, bytes, out, |n| match n {
                    Number::F32(v) => v,
                    Number::F64(v) => v as f32,
                    Number::I32(v) => v as f32,
                    Number::U32(v) => v as f32,
                    Number::I64(v) => v as f32,
                    Number::U64(v) => v as f32,
                }) && finite(out)
            })
        };
        if let Some(values) = values
            && direct::agrees(dataset, &values)
        {
            return Ok((values, true));
        }
    }
    let read = match dataset.dtype().and_then(|t| t.to_descriptor()) {
        // HDF5 fills the result itself.
        Ok(TypeDescriptor::Float(FloatSize::U4)) => dataset
            .as_reader()
            .conversion(Conversion::Hard)
            .read_raw::<f32>()
            .map_err(|e| ctx.hdf5(name, &e)),
        Ok(TypeDescriptor::Float(FloatSize::U8)) => read_1d(ctx, dataset, name, |v: f64| {
            let narrow = v as f32;
            if v.is_finite() && !narrow.is_finite() {
                Err(ctx.error(
                    name,
                    &format!(
                        "holds the value {v:e}, beyond the range of single-precision (float32) numbers (±{:e}) in which sparse values are held",
                        f32::MAX
                    ),
                ))
            } else {
                Ok(narrow)
            }
        }),
        Ok(TypeDescriptor::Integer(_)) => read_1d(ctx, dataset, name, |v: i64| Ok(v as f32)),
        Ok(TypeDescriptor::Unsigned(_)) => read_1d(ctx, dataset, name, |v: u64| Ok(v as f32)),
        Ok(other) => Err(ctx.error(
            name,
            &format!("holds {other:?} values; expected integers or floating-point numbers"),
        )),
        Err(e) => Err(ctx.hdf5(name, &e)),
    };
    read.map(|values| (values, false))
}

/// The column (or row) indices of a sparse matrix read straight from the
/// file (see [`direct`]; 32-bit integers straight into the result), if it
/// stores them so and all are below `bound`.
fn direct_indices(dataset: &Dataset, bound: usize) -> Option<Vec<u32>> {
    let bound = u32::try_from(bound).ok()?;
    let located = direct::locate(dataset)?;
    let below = |bound: u32| move |out: &[u32]| out.iter().fold(0, |max, &v| max.max(v)) < bound;
    let indices = match located.stored {
        Stored::U32 => direct::read_in_place(&located, below(bound))?,
        // A negative `int32` read as `u32` is at least 2^31, so refused too.
        Stored::I32 => direct::read_in_place(&located, below(bound.min(1 << 31)))?,
        // A value that does not fit `u32` (a negative one included) becomes
        // `u32::MAX`, which is refused with any bound that fits `u32`.
        _ => direct::read(&located, |stored, bytes, out| {
            direct::convert_each(stored, bytes, out, |n| match n {
                Number::I64(v) => u32::try_from(v).unwrap_or(u32::MAX),
                Number::U64(v) => u32::try_from(v).unwrap_or(u32::MAX),
                Number::I32(_) | Number::U32(_) | Number::F32(_) | Number::F64(_) => u32::MAX,
            }) && below(bound)(out)
        })?,
    };
    direct::agrees(dataset, &indices).then_some(indices)
}

/// A 1-D integer dataset of indices as `T` (`u32` or `u64`), read in its
/// stored type when that is a 32- or 64-bit integer; negative values and
/// values that do not fit `T` are refused.
fn read_indices<T: TryFrom<i64>>(
    ctx: &Context,
    dataset: &Dataset,
    name: &str,
) -> Result<Vec<T>, DataError> {
    let convert = |v: i64| {
        T::try_from(v).map_err(|_| {
            ctx.error(
                name,
                &format!("holds the index {v}; expected a non-negative index that fits the matrix"),
            )
        })
    };
    match dataset.dtype().and_then(|t| t.to_descriptor()) {
        Ok(TypeDescriptor::Integer(IntSize::U4)) => {
            read_1d(ctx, dataset, name, |v: i32| convert(i64::from(v)))
        }
        Ok(TypeDescriptor::Unsigned(IntSize::U4)) => {
            read_1d(ctx, dataset, name, |v: u32| convert(i64::from(v)))
        }
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => {
            read_1d(ctx, dataset, name, convert)
        }
        Ok(other) => Err(ctx.error(name, &format!("holds {other:?} values; expected integers"))),
        Err(e) => Err(ctx.hdf5(name, &e)),
    }
}

/// An integer dataset as `i64`.
pub(super) fn signed_integers(
    ctx: &Context,
    dataset: &Dataset,
    name: &str,
) -> Result<Vec<i64>, DataError> {
    match dataset.dtype().and_then(|t| t.to_descriptor()) {
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => dataset
            .as_reader()
            .conversion(Conversion::Hard)
            .read_raw::<i64>()
            .map_err(|e| ctx.hdf5(name, &e)),
        Ok(other) => Err(ctx.error(name, &format!("holds {other:?} values; expected integers"))),
        Err(e) => Err(ctx.hdf5(name, &e)),
    }
}

/// A string dataset (variable-length UTF-8 or ASCII, as anndata writes them).
pub(super) fn strings(
    ctx: &Context,
    dataset: &Dataset,
    name: &str,
) -> Result<Vec<String>, DataError> {
    let read = match dataset.dtype().and_then(|t| t.to_descriptor()) {
        Ok(TypeDescriptor::VarLenUnicode) => dataset
            .read_raw::<VarLenUnicode>()
            .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect()),
        Ok(TypeDescriptor::VarLenAscii) => dataset
            .read_raw::<VarLenAscii>()
            .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect()),
        Ok(other) => {
            return Err(ctx.error(
                name,
                &format!(
                    "holds {other:?} values; expected variable-length strings (a string-array)"
                ),
            ));
        }
        Err(e) => Err(e),
    };
    read.map_err(|e| ctx.hdf5(name, &e))
}

/// Fails naming `element` if an id occurs twice.
pub(super) fn check_unique(
    ctx: &Context,
    element: &str,
    what: &str,
    ids: &[String],
) -> Result<(), DataError> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (index, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id.as_str(), index) {
            return Err(ctx.error(
                element,
                &format!(
                    "the {what} '{id}' occurs twice (entries {} and {}); each {what} must be unique",
                    first + 1,
                    index + 1
                ),
            ));
        }
    }
    Ok(())
}
