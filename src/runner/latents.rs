//! What the latent-space runners (k-CAE, PC-CCA) share: the cells of every
//! modality matched by id, labels at each level, per-fold reconstruction
//! errors, and pooling fold results into metrics, confusions and latents.

use std::collections::BTreeMap;

use ndarray::{Array2, ArrayView2};

use super::experiment::{ModelOutcome, folds_for};
use super::{PreparedDataset, RunError};
use crate::analysis::confusion::Confusion;
use crate::analysis::cv::Fold;
use crate::analysis::labels::{ClassOrder, encode_labels};
use crate::analysis::latent_eval::{FoldEvaluation, LatentEvalConfig, Tally};
use crate::data::{CellIndex, PreparedTable};
use crate::models::cae::MultiModal;
use crate::session::{Curve, Experiment, Latent, NamedLatent, ResultDetail};

/// The experiment's modalities matched by cell id, and the folds over the
/// cells measured in the first two.
pub(super) struct LatentData<'a> {
    /// Every cell's rows, plus the matrices: the dataset's prepared tables
    /// (dense or kept sparse), whose rows the networks gather as `f32` a
    /// batch at a time.
    pub data: MultiModal<&'a PreparedTable>,
    /// Cell ids, one per entry of `data.cells`.
    pub ids: Vec<String>,
    /// Cells (indices into `ids`) measured in the first two modalities; the folds index this list.
    pub paired: Vec<usize>,
    /// Cross-validation folds over `paired`.
    pub folds: Vec<Fold>,
    /// Per label level: class names, sorted.
    pub class_names: Vec<Vec<String>>,
    /// Per label level: the class of every paired cell.
    pub labels: Vec<Vec<Option<usize>>>,
}

/// Builds [`LatentData`] for `experiment`.
pub(super) fn prepare<'a>(
    experiment: &Experiment,
    analysis: &LatentEvalConfig,
    dataset: &'a PreparedDataset,
) -> Result<LatentData<'a>, RunError> {
    let unsuitable = |message: String| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    if experiment.modalities.len() < 2 {
        return Err(unsuitable("needs at least two modalities".into()));
    }
    let mut tables = Vec::with_capacity(experiment.modalities.len());
    for name in &experiment.modalities {
        let modality = dataset.data.modality(name).ok_or_else(|| {
            unsuitable(format!(
                "dataset `{}` has no modality `{name}`",
                dataset.name
            ))
        })?;
        tables.push(&modality.table);
    }
    let cells: Vec<&[String]> = tables.iter().map(|t| t.cells()).collect();
    let CellIndex { ids, rows: cells } = CellIndex::of(&cells);
    let matrices = tables;
    let data = MultiModal { matrices, cells };
    data.validate().map_err(|e| unsuitable(e.to_string()))?;
    let paired: Vec<usize> = (0..ids.len())
        .filter(|&c| data.cells[c][0].is_some() && data.cells[c][1].is_some())
        .collect();
    if paired.len() < experiment.protocol.folds.max(2) {
        return Err(unsuitable(format!(
            "only {} cells are measured in both `{}` and `{}`",
            paired.len(),
            experiment.modalities[0],
            experiment.modalities[1]
        )));
    }
    let paired_ids: Vec<String> = paired.iter().map(|&c| ids[c].clone()).collect();
    let folds = folds_for(experiment, dataset, &paired_ids)?;
    let mut class_names = Vec::new();
    let mut labels = Vec::new();
    for (_, column) in &analysis.levels {
        let raw = dataset
            .data
            .labels(column, &paired_ids)
            .ok_or_else(|| unsuitable(format!("the metadata has no label column `{column}`")))?;
        let classes = encode_labels(&raw, ClassOrder::Sorted);
        class_names.push(classes.names);
        labels.push(classes.codes);
    }
    Ok(LatentData {
        data,
        ids,
        paired,
        folds,
        class_names,
        labels,
    })
}

impl LatentData<'_> {
    /// Rows of modality `i` of the paired cells at positions `positions` of `paired`.
    pub fn paired_rows(&self, i: usize, positions: &[usize]) -> Array2<f32> {
        self.data.select(i, &self.paired_row_indices(i, positions))
    }

    /// Indices into modality `i`'s matrix of the paired cells at `positions` of `paired`.
    pub fn paired_row_indices(&self, i: usize, positions: &[usize]) -> Vec<usize> {
        positions
            .iter()
            .filter_map(|&p| self.data.cells[self.paired[p]][i])
            .collect()
    }

    /// Labels (per level) of the paired cells at `positions`.
    pub fn labels_of(&self, positions: &[usize]) -> Vec<Vec<Option<usize>>> {
        self.labels
            .iter()
            .map(|level| positions.iter().map(|&p| level[p]).collect())
            .collect()
    }

    /// Every cell except the paired cells at `positions` (a fold's training cells,
    /// unpaired cells included).
    pub fn cells_except(&self, positions: &[usize]) -> Vec<usize> {
        let mut held_out = vec![false; self.ids.len()];
        for &p in positions {
            held_out[self.paired[p]] = true;
        }
        (0..self.ids.len()).filter(|&c| !held_out[c]).collect()
    }
}

/// Normalised prediction error `mean ‖x − x̂‖² / mean ‖x‖²` (Gala et al. Fig. 4C).
pub(super) fn relative_error(x: ArrayView2<'_, f32>, predicted: ArrayView2<'_, f32>) -> f64 {
    let mut error = RelativeError::default();
    error.add(x, predicted);
    error.value()
}

/// [`relative_error`] summed over chunks of cells.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct RelativeError {
    err: f64,
    norm: f64,
}

impl RelativeError {
    /// Adds the cells of one chunk.
    pub fn add(&mut self, x: ArrayView2<'_, f32>, predicted: ArrayView2<'_, f32>) {
        for (a, b) in x.iter().zip(predicted.iter()) {
            self.err += f64::from(a - b).powi(2);
            self.norm += f64::from(*a).powi(2);
        }
    }

    /// The error of every cell added so far (NaN where all are zero).
    pub fn value(&self) -> f64 {
        if self.norm > 0.0 {
            self.err / self.norm
        } else {
            f64::NAN
        }
    }
}

/// Collects the folds' evaluations, out-of-fold latents and tallies.
pub(super) struct Pooled {
    fold_metrics: Vec<BTreeMap<String, f64>>,
    tallies: BTreeMap<String, Tally>,
    z_t: Vec<Option<Vec<f32>>>,
    z_e: Vec<Option<Vec<f32>>>,
    dims: usize,
}

impl Pooled {
    /// Room for `paired` cells with `dims`-dimensional codes.
    pub fn new(paired: usize, dims: usize) -> Self {
        Pooled {
            fold_metrics: Vec::new(),
            tallies: BTreeMap::new(),
            z_t: vec![None; paired],
            z_e: vec![None; paired],
            dims,
        }
    }

    /// Adds one fold: its evaluation, extra metrics and the test cells' codes.
    pub fn add(
        &mut self,
        evaluation: FoldEvaluation,
        extra: BTreeMap<String, f64>,
        test: &[usize],
        z_t: &Array2<f64>,
        z_e: &Array2<f64>,
    ) {
        let mut metrics = evaluation.metrics;
        metrics.extend(extra);
        self.fold_metrics.push(metrics);
        for (name, tally) in evaluation.tallies {
            let entry = self.tallies.entry(name).or_default();
            entry.truth.extend(tally.truth);
            entry.predicted.extend(tally.predicted);
        }
        for (row, &p) in test.iter().enumerate() {
            self.z_t[p] = Some(z_t.row(row).iter().map(|&v| v as f32).collect());
            self.z_e[p] = Some(z_e.row(row).iter().map(|&v| v as f32).collect());
        }
    }

    /// Fold-mean of every metric (NaN folds skipped), plus `{name}_sd`.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        let names: Vec<String> = self
            .fold_metrics
            .first()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for name in names {
            let values: Vec<f64> = self
                .fold_metrics
                .iter()
                .filter_map(|m| m.get(&name).copied())
                .filter(|v| v.is_finite())
                .collect();
            if values.is_empty() {
                out.insert(name, f64::NAN);
                continue;
            }
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let sd = if values.len() > 1 {
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                0.0
            };
            out.insert(format!("{name}_sd"), sd);
            out.insert(name, mean);
        }
        out
    }

    /// The per-fold values of `name`.
    pub fn per_fold(&self, name: &str) -> Vec<f64> {
        self.fold_metrics
            .iter()
            .map(|m| m.get(name).copied().unwrap_or(f64::NAN))
            .collect()
    }

    /// Confusion matrices pooled over folds; QDA tallies are named by the
    /// classes of their level (`suffix` → names), clusterings by cluster number.
    pub fn confusions(
        &self,
        levels: &[(String, String)],
        class_names: &[Vec<String>],
    ) -> Vec<Confusion> {
        self.tallies
            .iter()
            .filter_map(|(name, tally)| {
                let level = levels
                    .iter()
                    .position(|(suffix, _)| name.ends_with(&format!("-> {suffix}")));
                match level {
                    Some(l) => Confusion::from_indices(
                        name,
                        &tally.truth,
                        &class_names[l],
                        &tally.predicted,
                        &class_names[l],
                    ),
                    None => {
                        let clusters = tally
                            .truth
                            .iter()
                            .chain(&tally.predicted)
                            .max()
                            .map_or(0, |m| m + 1);
                        let names: Vec<String> =
                            (0..clusters).map(|c| format!("cluster {c}")).collect();
                        Confusion::from_indices(
                            name,
                            &tally.truth,
                            &names,
                            &tally.predicted,
                            &names,
                        )
                    }
                }
            })
            .collect()
    }

    /// The run's outcome: pooled metrics (plus paired-cell and fold counts),
    /// per-fold `z_E` family accuracy, out-of-fold `z_T` as the main latent
    /// and `z_E` beside it, pooled confusions, and the given curves.
    pub fn into_outcome(
        self,
        data: &LatentData<'_>,
        levels: &[(String, String)],
        curves: Vec<Curve>,
        coupling: String,
        lambda: f64,
    ) -> ModelOutcome {
        let mut metrics = self.metrics();
        metrics.insert("paired_cells".into(), data.paired.len() as f64);
        metrics.insert("folds".into(), data.folds.len() as f64);
        let (latent_t, latent_e) = self.latents(data);
        ModelOutcome {
            metrics,
            per_fold: self.per_fold("qda_acc_e_family"),
            per_feature: Vec::new(),
            genes: Vec::new(),
            latent: Some(latent_t),
            latents: vec![NamedLatent {
                name: "z_E".into(),
                latent: latent_e,
            }],
            cross_modal: None,
            curves,
            confusions: self.confusions(levels, &data.class_names),
            networks: Vec::new(),
            detail: ResultDetail::Latents {
                fold_metrics: self.fold_metrics,
                coupling,
                lambda,
            },
        }
    }

    /// Out-of-fold `z_T` and `z_E` of every paired cell that was tested.
    fn latents(&self, data: &LatentData<'_>) -> (Latent, Latent) {
        let build = |codes: &Vec<Option<Vec<f32>>>| {
            let mut cells = Vec::new();
            let mut values = Vec::new();
            for (p, code) in codes.iter().enumerate() {
                if let Some(code) = code {
                    cells.push(data.ids[data.paired[p]].clone());
                    values.extend_from_slice(code);
                }
            }
            Latent {
                dims: self.dims,
                cells,
                values,
            }
        };
        (build(&self.z_t), build(&self.z_e))
    }
}
