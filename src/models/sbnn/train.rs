//! The published training schedule (sbnn.md §4) for one set of training cells:
//! k-means classification pre-training, a frozen phase, an unfrozen phase,
//! pruning of the first layer to the strongest genes, and a phase without the
//! group lasso. Each phase starts a fresh Adam state, as recompiling a Keras
//! model does.
//!
//! During the frozen phase the first layers' output is computed once for all
//! cells and cached, so the phase only trains the layers above it.

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::network::{build, replace_head};
use super::{PretrainWeights, SbnnConfig, SbnnError};
use crate::nn::AdamConfig;
use crate::nn::dense::{
    DenseNet, DensePenalties, Engine, NetTrainer, mse_with_grad, softmax_cross_entropy_with_grad,
};

/// A row-major `f32` matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// `rows × cols` values.
    pub values: Vec<f32>,
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
}

impl Rows {
    /// The matrix from row-major values; `None` when the length does not match.
    pub fn new(values: Vec<f32>, rows: usize, cols: usize) -> Option<Rows> {
        (values.len() == rows * cols).then_some(Rows { values, rows, cols })
    }

    /// The columns `keep`, in that order.
    pub fn select_columns(&self, keep: &[usize]) -> Rows {
        let mut values = Vec::with_capacity(self.rows * keep.len());
        for row in self.values.chunks_exact(self.cols.max(1)) {
            values.extend(keep.iter().map(|&c| row[c]));
        }
        Rows {
            values,
            rows: self.rows,
            cols: keep.len(),
        }
    }

    /// The rows `keep`, in that order.
    pub fn select_rows(&self, keep: &[usize]) -> Rows {
        let mut values = Vec::with_capacity(keep.len() * self.cols);
        for &r in keep {
            values.extend_from_slice(&self.values[r * self.cols..(r + 1) * self.cols]);
        }
        Rows {
            values,
            rows: keep.len(),
            cols: self.cols,
        }
    }

    fn squared_norm(&self) -> f64 {
        self.values.iter().map(|v| f64::from(*v).powi(2)).sum()
    }
}

/// What one training run gets.
#[derive(Debug, Clone, Copy)]
pub struct TrainInput<'a> {
    /// Training inputs, centred.
    pub x_train: &'a Rows,
    /// Training targets, centred.
    pub y_train: &'a Rows,
    /// Test inputs (centred with the training means), if the run is scored.
    pub x_test: Option<&'a Rows>,
    /// Test targets (centred with the training means).
    pub y_test: Option<&'a Rows>,
    /// Cluster label of every training cell, for pre-training.
    pub labels: Option<&'a [usize]>,
    /// The backend the network trains on (the dense engine on the CPU, or a GPU).
    pub engine: Engine,
}

/// Measurements of one regression epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochReport {
    /// Regression epoch, from 0.
    pub epoch: usize,
    /// Training R² of the epoch's mini-batch predictions (Keras' running metric).
    pub train_r2: f64,
    /// Test R² (Eq. 3) on the whole test fold after the epoch.
    pub test_r2: Option<f64>,
    /// Mean mini-batch loss including the penalties.
    pub loss: f64,
}

/// A trained, pruned sBNN and its history.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedSbnn {
    /// The pruned network (its first layer takes the selected genes).
    pub net: DenseNet,
    /// Selected genes (input columns), largest first-layer row norm first.
    pub genes: Vec<usize>,
    /// Their first-layer row norms at pruning.
    pub gene_norms: Vec<f32>,
    /// Every regression epoch.
    pub epochs: Vec<EpochReport>,
    /// Test predictions at the reported epoch (row-major), if scored.
    pub test_prediction: Option<Vec<f32>>,
    /// The epoch the test predictions come from (the last, unless the
    /// test-fold checkpoint leak is switched on).
    pub reported_epoch: usize,
    /// Pre-training validation cross-entropy per epoch (empty without pre-training).
    pub pretrain_validation: Vec<f64>,
}

/// The trainer and reusable buffers of the mini-batch loop.
#[derive(Debug)]
struct Loop {
    trainer: Box<dyn NetTrainer>,
    batch_x: Vec<f32>,
    batch_y: Vec<f32>,
    batch_labels: Vec<usize>,
    d_out: Vec<f32>,
    order: Vec<usize>,
}

/// What a batch is scored against.
enum Target<'a> {
    Values(&'a Rows),
    Labels(&'a [usize], usize),
}

impl Loop {
    fn new(trainer: Box<dyn NetTrainer>) -> Self {
        Loop {
            trainer,
            batch_x: Vec::new(),
            batch_y: Vec::new(),
            batch_labels: Vec::new(),
            d_out: Vec::new(),
            order: Vec::new(),
        }
    }

    /// One shuffled pass over `x` (the input of layer `from`) with the
    /// trainer's optimiser; returns the mean batch loss (with penalties) and
    /// the summed squared error. `net` holds the trained weights afterwards.
    #[allow(clippy::too_many_arguments)]
    fn epoch(
        &mut self,
        net: &mut DenseNet,
        from: usize,
        x: &Rows,
        target: &Target<'_>,
        penalties: DensePenalties,
        batch: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<(f64, f64), SbnnError> {
        self.order.clear();
        self.order.extend(0..x.rows);
        self.order.shuffle(rng);
        let order = std::mem::take(&mut self.order);
        let (mut loss_sum, mut sse, mut batches) = (0.0f64, 0.0f64, 0usize);
        for chunk in order.chunks(batch) {
            self.batch_x.clear();
            for &r in chunk {
                self.batch_x
                    .extend_from_slice(&x.values[r * x.cols..(r + 1) * x.cols]);
            }
            let out = self
                .trainer
                .forward(net, &self.batch_x, chunk.len(), from)?;
            let loss = match target {
                Target::Values(y) => {
                    self.batch_y.clear();
                    for &r in chunk {
                        self.batch_y
                            .extend_from_slice(&y.values[r * y.cols..(r + 1) * y.cols]);
                    }
                    let mse = mse_with_grad(out, &self.batch_y, &mut self.d_out);
                    sse += f64::from(mse) * out.len() as f64;
                    mse
                }
                Target::Labels(labels, classes) => {
                    self.batch_labels.clear();
                    self.batch_labels.extend(chunk.iter().map(|&r| labels[r]));
                    softmax_cross_entropy_with_grad(
                        out,
                        *classes,
                        &self.batch_labels,
                        &mut self.d_out,
                    )?
                }
            };
            let penalty = self.trainer.backward_step(
                net,
                &self.batch_x,
                chunk.len(),
                from,
                &self.d_out,
                penalties,
            )?;
            let total = f64::from(loss) + f64::from(penalty);
            if !total.is_finite() {
                return Err(SbnnError::NonFinite {
                    what: "training loss",
                });
            }
            loss_sum += total;
            batches += 1;
        }
        self.order = order;
        self.trainer.sync(net)?;
        Ok((loss_sum / batches.max(1) as f64, sse))
    }
}

/// `1 − SSE / ‖Y‖²` of a prediction against centred targets.
pub fn r2_of(prediction: &[f32], truth: &Rows) -> f64 {
    let sse: f64 = prediction
        .iter()
        .zip(&truth.values)
        .map(|(p, t)| f64::from(p - t).powi(2))
        .sum();
    1.0 - sse / truth.squared_norm()
}

/// Mean cross-entropy of `net` on `x` against `labels`.
fn cross_entropy(
    net: &DenseNet,
    x: &Rows,
    labels: &[usize],
    classes: usize,
) -> Result<f64, SbnnError> {
    let logits = net.forward_range(&x.values, x.rows, 0, net.layers.len())?;
    let mut scratch = Vec::new();
    Ok(f64::from(softmax_cross_entropy_with_grad(
        &logits,
        classes,
        labels,
        &mut scratch,
    )?))
}

/// The pre-training cells and their relabelled classes: clusters smaller
/// than `min_cluster_size` are left out and the rest renumbered `0..classes`.
fn pretraining_cells(labels: &[usize], min_size: usize) -> (Vec<usize>, Vec<usize>, usize) {
    let max = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut counts = vec![0usize; max];
    labels.iter().for_each(|&l| counts[l] += 1);
    let mut renumber = vec![usize::MAX; max];
    let mut classes = 0;
    for (label, &count) in counts.iter().enumerate() {
        if count >= min_size {
            renumber[label] = classes;
            classes += 1;
        }
    }
    let (cells, new): (Vec<usize>, Vec<usize>) = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| renumber[**l] != usize::MAX)
        .map(|(i, l)| (i, renumber[*l]))
        .unzip();
    (cells, new, classes)
}

/// Pre-trains `net`'s body as a classifier of the k-means labels; returns the
/// validation cross-entropy of every epoch.
fn pretrain(
    net: &mut DenseNet,
    input: &TrainInput<'_>,
    labels: &[usize],
    config: &SbnnConfig,
    rng: &mut ChaCha8Rng,
    lp: &mut Loop,
) -> Result<Vec<f64>, SbnnError> {
    let (cells, classes_of, classes) = pretraining_cells(labels, config.min_cluster_size);
    if classes < 2 {
        return Err(SbnnError::Pretraining(format!(
            "only {classes} k-means cluster(s) have at least {} cells",
            config.min_cluster_size
        )));
    }
    let split = ((cells.len() as f64) * (1.0 - config.validation_fraction)) as usize;
    if split < 1 || split >= cells.len() {
        return Err(SbnnError::Pretraining(format!(
            "{} pre-training cells cannot be split into training and validation",
            cells.len()
        )));
    }
    let x_fit = input.x_train.select_rows(&cells[..split]);
    let x_val = input.x_train.select_rows(&cells[split..]);
    let (labels_fit, labels_val) = classes_of.split_at(split);
    replace_head(net, classes, true, rng)?;
    lp.trainer.reset(AdamConfig::keras(config.pretrain_lr));
    let penalties = penalties(config, true);
    let keep_best = config.pretrain_weights == PretrainWeights::BestValidation;
    let mut best: Option<(f64, DenseNet)> = None;
    let mut history = Vec::with_capacity(config.pretrain_epochs);
    let batch = config.batch_size.min(split);
    for _ in 0..config.pretrain_epochs {
        lp.epoch(
            net,
            0,
            &x_fit,
            &Target::Labels(labels_fit, classes),
            penalties,
            batch,
            rng,
        )?;
        if keep_best {
            let ce = cross_entropy(net, &x_val, labels_val, classes)?;
            history.push(ce);
            if best.as_ref().is_none_or(|(b, _)| ce < *b) {
                best = Some((ce, net.clone()));
            }
        }
    }
    if let Some((_, best)) = best {
        *net = best;
    }
    Ok(history)
}

fn penalties(config: &SbnnConfig, lasso: bool) -> DensePenalties {
    DensePenalties {
        group_lasso: if lasso {
            config.group_lasso as f32
        } else {
            0.0
        },
        l2: config.l2 as f32,
        eps: 1e-12,
    }
}

/// One regression phase of `epochs` epochs, training
/// layers `from..` on `x` (the input of layer `from`).
struct Phase<'a> {
    from: usize,
    x: &'a Rows,
    x_test: Option<&'a Rows>,
    epochs: usize,
    lasso: bool,
}

/// Trains the sBNN with the full schedule. `observe` sees every regression
/// epoch and returns `false` to stop the run.
pub fn train(
    input: &TrainInput<'_>,
    config: &SbnnConfig,
    rng: &mut ChaCha8Rng,
    observe: &mut dyn FnMut(&EpochReport) -> bool,
) -> Result<TrainedSbnn, SbnnError> {
    let (x, y) = (input.x_train, input.y_train);
    config.validate_for(x.cols, x.rows)?;
    if y.rows != x.rows || x.rows == 0 || y.cols == 0 {
        return Err(SbnnError::Shape(format!(
            "X has {} rows, Y has {}x{}",
            x.rows, y.rows, y.cols
        )));
    }
    let mut net = build(config, x.cols, y.cols, rng)?;
    let mut lp = Loop::new(
        input
            .engine
            .trainer(AdamConfig::keras(config.pretrain_lr))?,
    );
    let mut pretrain_validation = Vec::new();
    if config.pretrain {
        let labels = input
            .labels
            .filter(|l| l.len() == x.rows)
            .ok_or_else(|| SbnnError::Pretraining("no cluster label for every cell".into()))?;
        pretrain_validation = pretrain(&mut net, input, labels, config, rng, &mut lp)?;
        replace_head(&mut net, y.cols, false, rng)?;
    }
    let frozen = if config.pretrain {
        config.encoder.len()
    } else {
        0
    };
    let mut epochs = Vec::with_capacity(config.regression_epochs());
    let mut run = Runner {
        config,
        y,
        y_test: input.y_test,
        lp,
        epochs: &mut epochs,
        observe,
        best: None,
    };

    // Frozen phase: the first layers' output is cached once for all cells.
    net.layers
        .iter_mut()
        .enumerate()
        .for_each(|(l, layer)| layer.trainable = l >= frozen);
    let (features, features_test) = if frozen > 0 {
        (
            Some(Rows {
                values: net.forward_range(&x.values, x.rows, 0, frozen)?,
                rows: x.rows,
                cols: net.inputs_of(frozen),
            }),
            match input.x_test {
                Some(t) => Some(Rows {
                    values: net.forward_range(&t.values, t.rows, 0, frozen)?,
                    rows: t.rows,
                    cols: net.inputs_of(frozen),
                }),
                None => None,
            },
        )
    } else {
        (None, None)
    };
    run.lp.trainer.reset(AdamConfig::keras(config.frozen_lr));
    run.phase(
        &mut net,
        Phase {
            from: frozen,
            x: features.as_ref().unwrap_or(x),
            x_test: features_test.as_ref().or(input.x_test),
            epochs: config.frozen_epochs,
            lasso: true,
        },
        rng,
    )?;

    // Unfrozen phase; without pre-training the same optimiser simply continues.
    net.layers.iter_mut().for_each(|l| l.trainable = true);
    if config.pretrain {
        run.lp.trainer.reset(AdamConfig::keras(config.unfrozen_lr));
    }
    run.phase(
        &mut net,
        Phase {
            from: 0,
            x,
            x_test: input.x_test,
            epochs: config.unfrozen_epochs,
            lasso: true,
        },
        rng,
    )?;

    // Prune to the genes with the largest first-layer row norms.
    let norms = net.layers[0].input_norms();
    let mut ranked: Vec<usize> = (0..norms.len()).collect();
    ranked.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]).then(a.cmp(&b)));
    ranked.truncate(config.genes);
    let gene_norms = ranked.iter().map(|&g| norms[g]).collect();
    net.layers[0].keep_inputs(&ranked)?;
    let x_kept = x.select_columns(&ranked);
    let x_test_kept = input.x_test.map(|t| t.select_columns(&ranked));
    run.lp.trainer.reset(AdamConfig::keras(config.pruned_lr));
    run.best = config
        .leak_checkpoint_on_test_fold
        .then_some((f64::NEG_INFINITY, 0, net.clone()));
    run.phase(
        &mut net,
        Phase {
            from: 0,
            x: &x_kept,
            x_test: x_test_kept.as_ref(),
            epochs: config.pruned_epochs,
            lasso: false,
        },
        rng,
    )?;
    let mut reported_epoch = config.regression_epochs() - 1;
    if let Some((_, epoch, best)) = run.best.take()
        && config.pruned_epochs > 0
    {
        net = best;
        reported_epoch = epoch;
    }
    let test_prediction = match &x_test_kept {
        Some(t) => Some(net.forward_range(&t.values, t.rows, 0, net.layers.len())?),
        None => None,
    };
    Ok(TrainedSbnn {
        net,
        genes: ranked,
        gene_norms,
        epochs,
        test_prediction,
        reported_epoch,
        pretrain_validation,
    })
}

/// Runs phases, records every epoch and keeps the test-fold checkpoint when asked.
struct Runner<'a, 'o> {
    config: &'a SbnnConfig,
    y: &'a Rows,
    y_test: Option<&'a Rows>,
    lp: Loop,
    epochs: &'a mut Vec<EpochReport>,
    observe: &'o mut dyn FnMut(&EpochReport) -> bool,
    /// (test R², epoch, network) of the best epoch so far, when the leak is on.
    best: Option<(f64, usize, DenseNet)>,
}

impl Runner<'_, '_> {
    fn phase(
        &mut self,
        net: &mut DenseNet,
        phase: Phase<'_>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), SbnnError> {
        let train_norm = self.y.squared_norm();
        let penalties = penalties(self.config, phase.lasso);
        for _ in 0..phase.epochs {
            let (loss, sse) = self.lp.epoch(
                net,
                phase.from,
                phase.x,
                &Target::Values(self.y),
                penalties,
                self.config.batch_size,
                rng,
            )?;
            let test_r2 = match (phase.x_test, self.y_test) {
                (Some(xt), Some(yt)) => {
                    let prediction =
                        net.forward_range(&xt.values, xt.rows, phase.from, net.layers.len())?;
                    Some(r2_of(&prediction, yt))
                }
                _ => None,
            };
            let report = EpochReport {
                epoch: self.epochs.len(),
                train_r2: 1.0 - sse / train_norm,
                test_r2,
                loss,
            };
            if let (Some((best, epoch, saved)), Some(r2)) = (self.best.as_mut(), test_r2)
                && r2 > *best
            {
                *best = r2;
                *epoch = report.epoch;
                saved.clone_from(net);
            }
            self.epochs.push(report);
            if !(self.observe)(&report) {
                return Err(SbnnError::Cancelled);
            }
        }
        Ok(())
    }
}
