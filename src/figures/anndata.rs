//! A result's latents and labels as an AnnData `.h5ad` file, so results go
//! back into scanpy: `obsm["X_<experiment>"]` holds the first latent space,
//! `obsm["X_<experiment>_<space>"]` every further space over the same cells
//! (e.g. `z_E` beside `z_T`), and `obs` the cells' label (the chosen metadata
//! column) and, for the mixture VAE, the consensus category each cell was
//! assigned (`category`, as text).

use std::path::Path;

use anyhow::{Context, Result};
use ndarray::Array2;

use super::ExportOptions;
use super::plot;
use crate::data::h5ad::{H5adLatents, write_latents_h5ad};
use crate::session::{ExperimentResult, ResultDetail};

/// Writes experiment `name`'s latents to `path`; `false` (nothing written)
/// when the result has no latent space.
pub fn write_latents(
    name: &str,
    result: &ExperimentResult,
    options: &ExportOptions,
    path: &Path,
) -> Result<bool> {
    let spaces = plot::latents(result);
    let Some((_, first)) = spaces.first() else {
        return Ok(false);
    };
    let obsm: Vec<(String, Array2<f64>)> = spaces
        .iter()
        .enumerate()
        .filter(|(_, (_, latent))| latent.cells == first.cells)
        .map(|(index, (space, latent))| {
            let key = if index == 0 {
                format!("X_{name}")
            } else {
                format!("X_{name}_{space}")
            };
            let values = Array2::from_shape_fn((latent.cells.len(), latent.dims), |(i, d)| {
                f64::from(latent.values[i * latent.dims + d])
            });
            (key, values)
        })
        .collect();
    let mut obs = Vec::new();
    if let (Some(dataset), Some(column)) = (options.dataset, options.label_column.as_deref())
        && let Some(labels) = dataset.data.labels(column, &first.cells)
    {
        obs.push((column.to_owned(), labels));
    }
    if let ResultDetail::MixVae { consensus, .. } = &result.detail
        && consensus.len() == first.cells.len()
    {
        let categories = consensus.iter().map(|c| Some(c.to_string())).collect();
        obs.push(("category".to_owned(), categories));
    }
    let latents = H5adLatents {
        cells: &first.cells,
        obsm: &obsm,
        obs: &obs,
    };
    write_latents_h5ad(path, &latents)
        .with_context(|| format!("cannot export {name}'s latents"))?;
    Ok(true)
}
