//! anndata data frames (`/obs`, `/var`, `/raw/var`, data frames in `/obsm`):
//! the index, and columns as text for metadata or as numbers for a matrix.

use hdf5::Group;
use ndarray::Array2;

use super::element::{
    Context, Element, Matrix, element, encoding, numbers, signed_integers, string_attr, strings,
};
use crate::data::DataError;
use crate::data::table::format_value;

/// The index (`obs_names` / `var_names`) of the data frame at `name`.
pub(super) fn index(ctx: &Context, root: &Group, name: &str) -> Result<Vec<String>, DataError> {
    let group = frame_group(ctx, root, name)?;
    let index_name = index_name(ctx, &group, name)?;
    let member = format!("{name}/{index_name}");
    column_text(ctx, root, &member)
}

/// The column `column` of the data frame at `name` as text (strings or categories).
pub(super) fn string_column(
    ctx: &Context,
    root: &Group,
    name: &str,
    column: &str,
) -> Result<Vec<String>, DataError> {
    let group = frame_group(ctx, root, name)?;
    let columns = column_order(&group);
    if !columns.iter().any(|c| c == column) {
        return Err(ctx.error(
            name,
            &format!(
                "has no column '{column}'; its columns are: [{}]",
                columns.join(", ")
            ),
        ));
    }
    column_text(ctx, root, &format!("{name}/{column}"))
}

/// A data frame's index name and columns, every value as text ("" when missing).
pub(super) struct Frame {
    index_name: String,
    index: Vec<String>,
    columns: Vec<String>,
    values: Vec<Vec<String>>,
}

/// Reads every column of the data frame at `name` as text.
pub(super) fn read_frame(ctx: &Context, root: &Group, name: &str) -> Result<Frame, DataError> {
    let group = frame_group(ctx, root, name)?;
    let index_name = index_name(ctx, &group, name)?;
    let index = column_text(ctx, root, &format!("{name}/{index_name}"))?;
    let columns = column_order(&group);
    let values = columns
        .iter()
        .map(|c| column_text(ctx, root, &format!("{name}/{c}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Frame {
        index_name,
        index,
        columns,
        values,
    })
}

impl Frame {
    /// Cell ids, the other column names, and one row of texts per cell.
    /// `id_column` is `obs_names`, the index's own name, or a column.
    #[allow(clippy::type_complexity)]
    pub(super) fn into_metadata(
        self,
        ctx: &Context,
        id_column: &str,
    ) -> Result<(Vec<String>, Vec<String>, Vec<Vec<String>>), DataError> {
        let Frame {
            index_name,
            index,
            mut columns,
            mut values,
        } = self;
        let cells = if id_column == "obs_names" || id_column == index_name {
            index
        } else if let Some(position) = columns.iter().position(|c| c == id_column) {
            columns.remove(position);
            let ids = values.remove(position);
            if let Some(row) = ids.iter().position(String::is_empty) {
                return Err(ctx.error(
                    &format!("/obs/{id_column}"),
                    &format!("cell {} has no id; every cell needs one", row + 1),
                ));
            }
            ids
        } else {
            return Err(ctx.error(
                "/obs",
                &format!(
                    "no column named '{id_column}'; use obs_names (the index '{index_name}') or one of: [{}]",
                    columns.join(", ")
                ),
            ));
        };
        let rows = (0..cells.len())
            .map(|i| {
                values
                    .iter()
                    .map(|column| column.get(i).cloned().unwrap_or_default())
                    .collect()
            })
            .collect();
        Ok((cells, columns, rows))
    }
}

/// The numeric columns of the data frame at `name` as a matrix (an obsm data frame).
pub(super) fn numeric_frame(ctx: &Context, root: &Group, name: &str) -> Result<Matrix, DataError> {
    let group = frame_group(ctx, root, name)?;
    let columns = column_order(&group);
    let mut data = Vec::with_capacity(columns.len());
    for column in &columns {
        let member = format!("{name}/{column}");
        match element(ctx, root, &member)? {
            Element::Dataset(dataset) => data.push(numbers(ctx, &dataset, &member)?),
            Element::Group(_) => {
                return Err(ctx.error(
                    &member,
                    "is not a numeric column; an obsm data frame used as a modality must hold numbers only",
                ));
            }
        }
    }
    let rows = data.first().map_or(0, Vec::len);
    if let Some((column, values)) = columns.iter().zip(&data).find(|(_, d)| d.len() != rows) {
        return Err(ctx.error(
            &format!("{name}/{column}"),
            &format!("has {} values; expected {rows}", values.len()),
        ));
    }
    let values = Array2::from_shape_fn((rows, columns.len()), |(i, j)| data[j][i]);
    Ok(Matrix::Dense {
        values,
        column_names: Some(columns),
    })
}

fn frame_group(ctx: &Context, root: &Group, name: &str) -> Result<Group, DataError> {
    match element(ctx, root, name)? {
        Element::Group(group) => Ok(group),
        Element::Dataset(_) => Err(ctx.error(
            name,
            "is an array; expected a data frame (a group), as anndata 0.7 and later write it",
        )),
    }
}

fn index_name(ctx: &Context, group: &Group, name: &str) -> Result<String, DataError> {
    string_attr(group, "_index").ok_or_else(|| {
        ctx.error(
            name,
            "has no `_index` attribute; expected an anndata data frame naming its index column",
        )
    })
}

/// The `column-order` attribute (an empty list when absent or empty).
fn column_order(group: &Group) -> Vec<String> {
    let Ok(attr) = group.attr("column-order") else {
        return Vec::new();
    };
    if let Ok(names) = attr.read_raw::<hdf5::types::VarLenUnicode>() {
        return names.iter().map(|s| s.as_str().to_owned()).collect();
    }
    attr.read_raw::<hdf5::types::VarLenAscii>()
        .map(|names| names.iter().map(|s| s.as_str().to_owned()).collect())
        .unwrap_or_default()
}

/// One column (or index) as text: strings as they are, numbers in their
/// shortest exact form, booleans as `true`/`false`, categories by code, and
/// missing values (NaN, code -1, masked) as "".
fn column_text(ctx: &Context, root: &Group, name: &str) -> Result<Vec<String>, DataError> {
    match element(ctx, root, name)? {
        Element::Dataset(dataset) => plain_text(ctx, &dataset, name),
        Element::Group(group) => match encoding(&group).as_deref() {
            Some("categorical") => {
                let codes_name = format!("{name}/codes");
                let codes = group
                    .dataset("codes")
                    .map_err(|e| ctx.error(&codes_name, &format!("missing: {e}")))?;
                let codes = signed_integers(ctx, &codes, &codes_name)?;
                let categories_name = format!("{name}/categories");
                let categories = column_text(ctx, root, &categories_name)?;
                codes
                    .iter()
                    .map(|&code| match usize::try_from(code) {
                        Ok(k) => categories.get(k).cloned().ok_or_else(|| {
                            ctx.error(
                                &codes_name,
                                &format!(
                                    "holds the code {code}; expected -1 (missing) or 0 to {}",
                                    categories.len().saturating_sub(1)
                                ),
                            )
                        }),
                        Err(_) => Ok(String::new()),
                    })
                    .collect()
            }
            Some(kind @ ("nullable-integer" | "nullable-boolean" | "nullable-string-array")) => {
                let values_name = format!("{name}/values");
                let values = group
                    .dataset("values")
                    .map_err(|e| ctx.error(&values_name, &format!("missing: {e}")))?;
                let mut texts = plain_text(ctx, &values, &values_name)?;
                let mask_name = format!("{name}/mask");
                let mask = group
                    .dataset("mask")
                    .and_then(|m| m.read_raw::<bool>())
                    .map_err(|e| ctx.error(&mask_name, &format!("missing or not boolean ({kind}): {e}")))?;
                for (text, &masked) in texts.iter_mut().zip(&mask) {
                    if masked {
                        text.clear();
                    }
                }
                Ok(texts)
            }
            Some(other) => Err(ctx.error(
                name,
                &format!(
                    "unsupported encoding '{other}'; expected a numeric, boolean or string array, a categorical or a nullable column"
                ),
            )),
            None => Err(ctx.error(
                name,
                "is a group without an encoding-type attribute; expected a column",
            )),
        },
    }
}

fn plain_text(
    ctx: &Context,
    dataset: &hdf5::Dataset,
    name: &str,
) -> Result<Vec<String>, DataError> {
    use hdf5::types::TypeDescriptor;
    match dataset.dtype().and_then(|t| t.to_descriptor()) {
        Ok(TypeDescriptor::Boolean) => dataset
            .read_raw::<bool>()
            .map(|v| v.iter().map(|b| b.to_string()).collect())
            .map_err(|e| ctx.hdf5(name, &e)),
        Ok(TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => {
            Ok(signed_integers(ctx, dataset, name)?
                .iter()
                .map(i64::to_string)
                .collect())
        }
        Ok(TypeDescriptor::Float(_)) => Ok(numbers(ctx, dataset, name)?
            .into_iter()
            .map(|v| {
                let mut text = String::new();
                format_value(&mut text, v);
                text
            })
            .collect()),
        Ok(_) => strings(ctx, dataset, name),
        Err(e) => Err(ctx.hdf5(name, &e)),
    }
}
