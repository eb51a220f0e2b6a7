//! Quadratic discriminant analysis with a covariance regulariser, as
//! scikit-learn's `QuadraticDiscriminantAnalysis(reg_param)` (version 1.9):
//! each class gets its mean and the regularised maximum-likelihood covariance
//! `(1 − r) S + r I` (`S` divides by the class size); a cell
//! goes to the class of largest `log prior − ½ (log det S + Mahalanobis²)`.
//!
//! Classes with fewer than `min_class_size` training cells are left out
//! (Gala et al. keep types with more than 6 cells); test cells of a left-out
//! class are not scored.

use faer::{Mat, Side};
use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::confusion::Confusion;
use super::cv::Fold;

/// Class prior probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prior {
    /// Training class frequencies (scikit-learn's default).
    Empirical,
    /// Equal for every class (the 2019 paper's custom classifier).
    Flat,
}

/// QDA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdaConfig {
    /// Shrinkage `r` of each class covariance towards the identity.
    pub reg: f64,
    /// Classes with fewer training cells are left out.
    pub min_class_size: usize,
    /// Class priors.
    pub prior: Prior,
}

impl Default for QdaConfig {
    fn default() -> Self {
        QdaConfig {
            reg: 1e-2,
            min_class_size: 7,
            prior: Prior::Empirical,
        }
    }
}

/// Why a classifier could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QdaError {
    /// Points and labels differ in number.
    #[error("qda: {points} points but {labels} labels")]
    Mismatch {
        /// Number of points.
        points: usize,
        /// Number of labels.
        labels: usize,
    },
    /// No class has enough cells.
    #[error("qda: no class has at least {min} training cells")]
    NoClass {
        /// The minimum class size.
        min: usize,
    },
    /// A covariance could not be decomposed.
    #[error("qda: eigendecomposition of class {class} failed")]
    Decomposition {
        /// The class.
        class: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct ClassModel {
    label: usize,
    mean: Array1<f64>,
    /// Eigenvectors (columns) of the regularised covariance.
    rotation: Array2<f64>,
    /// Its eigenvalues.
    scalings: Array1<f64>,
    log_prior: f64,
}

/// A fitted quadratic discriminant. It serialises as its classes' labels,
/// means, eigenvectors (row-major), eigenvalues and log priors, so a model
/// artifact can carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StoredQda", try_from = "StoredQda")]
pub struct Qda {
    classes: Vec<ClassModel>,
}

/// One class of a [`Qda`] as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredClass {
    label: usize,
    mean: Vec<f64>,
    rotation: Vec<f64>,
    scalings: Vec<f64>,
    log_prior: f64,
}

/// A [`Qda`] as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredQda {
    classes: Vec<StoredClass>,
}

impl From<Qda> for StoredQda {
    fn from(qda: Qda) -> Self {
        StoredQda {
            classes: qda
                .classes
                .into_iter()
                .map(|c| StoredClass {
                    label: c.label,
                    mean: c.mean.to_vec(),
                    rotation: c.rotation.iter().copied().collect(),
                    scalings: c.scalings.to_vec(),
                    log_prior: c.log_prior,
                })
                .collect(),
        }
    }
}

impl TryFrom<StoredQda> for Qda {
    type Error = String;

    fn try_from(stored: StoredQda) -> Result<Self, String> {
        let classes = stored
            .classes
            .into_iter()
            .map(|c| {
                let d = c.mean.len();
                if c.scalings.len() != d || c.rotation.len() != d * d {
                    return Err(format!(
                        "qda class {}: a {d}-dimensional mean needs {d} eigenvalues and {} rotation entries, got {} and {}",
                        c.label,
                        d * d,
                        c.scalings.len(),
                        c.rotation.len()
                    ));
                }
                let rotation = Array2::from_shape_vec((d, d), c.rotation)
                    .map_err(|e| format!("qda class {}: {e}", c.label))?;
                Ok(ClassModel {
                    label: c.label,
                    mean: Array1::from(c.mean),
                    rotation,
                    scalings: Array1::from(c.scalings),
                    log_prior: c.log_prior,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if classes.is_empty() {
            return Err("qda: no class".into());
        }
        Ok(Qda { classes })
    }
}

impl Qda {
    /// Fits on points `x` (rows) with class labels `y`.
    pub fn fit(x: ArrayView2<'_, f64>, y: &[usize], config: &QdaConfig) -> Result<Qda, QdaError> {
        if x.nrows() != y.len() {
            return Err(QdaError::Mismatch {
                points: x.nrows(),
                labels: y.len(),
            });
        }
        let n_labels = y.iter().max().map_or(0, |m| m + 1);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_labels];
        for (row, &label) in y.iter().enumerate() {
            members[label].push(row);
        }
        let kept: Vec<(usize, &Vec<usize>)> = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.len() >= config.min_class_size.max(2))
            .collect();
        if kept.is_empty() {
            return Err(QdaError::NoClass {
                min: config.min_class_size.max(2),
            });
        }
        let total: usize = kept.iter().map(|(_, m)| m.len()).sum();
        let d = x.ncols();
        let mut classes = Vec::with_capacity(kept.len());
        for (label, rows) in kept {
            let points = x.select(ndarray::Axis(0), rows);
            let mean = points
                .mean_axis(ndarray::Axis(0))
                .unwrap_or_else(|| Array1::zeros(d));
            let centred = &points - &mean.view().insert_axis(ndarray::Axis(0));
            let cov = centred.t().dot(&centred) / rows.len() as f64;
            let reg = Mat::<f64>::from_fn(d, d, |i, j| {
                (1.0 - config.reg) * cov[[i, j]] + if i == j { config.reg } else { 0.0 }
            });
            let eigen = reg
                .self_adjoint_eigen(Side::Lower)
                .map_err(|_| QdaError::Decomposition { class: label })?;
            let u = eigen.U();
            let s = eigen.S();
            let rotation = Array2::from_shape_fn((d, d), |(i, j)| u[(i, j)]);
            let scalings = Array1::from_shape_fn(d, |j| s[j].max(1e-300));
            let log_prior = match config.prior {
                Prior::Empirical => (rows.len() as f64 / total as f64).ln(),
                Prior::Flat => 0.0,
            };
            classes.push(ClassModel {
                label,
                mean,
                rotation,
                scalings,
                log_prior,
            });
        }
        Ok(Qda { classes })
    }

    /// The labels of the classes the model kept.
    pub fn classes(&self) -> Vec<usize> {
        self.classes.iter().map(|c| c.label).collect()
    }

    /// Whether `label` is one of the kept classes.
    pub fn knows(&self, label: usize) -> bool {
        self.classes.iter().any(|c| c.label == label)
    }

    /// Log posterior (up to a per-row constant) of every kept class, one column per class.
    pub fn decision(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut out = Array2::zeros((x.nrows(), self.classes.len()));
        for (k, c) in self.classes.iter().enumerate() {
            let log_det: f64 = c.scalings.iter().map(|s| s.ln()).sum();
            for (r, row) in x.rows().into_iter().enumerate() {
                let diff = &row - &c.mean;
                let projected = diff.dot(&c.rotation);
                let maha: f64 = projected
                    .iter()
                    .zip(c.scalings.iter())
                    .map(|(p, s)| p * p / s)
                    .sum();
                out[[r, k]] = c.log_prior - 0.5 * (log_det + maha);
            }
        }
        out
    }

    /// The predicted class label of every row.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Vec<usize> {
        self.decision(x)
            .rows()
            .into_iter()
            .map(|row| {
                let best = (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap_or(0);
                self.classes.get(best).map_or(0, |c| c.label)
            })
            .collect()
    }
}

/// Accuracy on the test cells whose true class the model knows, and the
/// `(truth, prediction)` pairs it was computed from. `None` if no test cell
/// has a known class.
pub fn score(qda: &Qda, x: ArrayView2<'_, f64>, y: &[usize]) -> (Option<f64>, Vec<(usize, usize)>) {
    let predicted = qda.predict(x);
    let pairs: Vec<(usize, usize)> = y
        .iter()
        .zip(predicted)
        .filter(|(t, _)| qda.knows(**t))
        .map(|(&t, p)| (t, p))
        .collect();
    if pairs.is_empty() {
        return (None, pairs);
    }
    let correct = pairs.iter().filter(|(t, p)| t == p).count();
    (Some(correct as f64 / pairs.len() as f64), pairs)
}

/// Cross-validated accuracy: fit on each fold's training rows, score its test
/// rows; returns the mean over folds that could be scored and the pooled
/// confusion matrix named `name`.
pub fn cross_validated_accuracy(
    x: ArrayView2<'_, f64>,
    y: &[usize],
    class_names: &[String],
    folds: &[Fold],
    config: &QdaConfig,
    name: &str,
) -> Result<(f64, Confusion), QdaError> {
    let mut accuracies = Vec::new();
    let mut truth = Vec::new();
    let mut predicted = Vec::new();
    for fold in folds {
        let xt = x.select(ndarray::Axis(0), &fold.train);
        let yt: Vec<usize> = fold.train.iter().map(|&i| y[i]).collect();
        let qda = Qda::fit(xt.view(), &yt, config)?;
        let xs = x.select(ndarray::Axis(0), &fold.test);
        let ys: Vec<usize> = fold.test.iter().map(|&i| y[i]).collect();
        let (accuracy, pairs) = score(&qda, xs.view(), &ys);
        if let Some(a) = accuracy {
            accuracies.push(a);
        }
        for (t, p) in pairs {
            truth.push(t);
            predicted.push(p);
        }
    }
    let mean = if accuracies.is_empty() {
        f64::NAN
    } else {
        accuracies.iter().sum::<f64>() / accuracies.len() as f64
    };
    let confusion = Confusion::from_indices(name, &truth, class_names, &predicted, class_names)
        .unwrap_or(Confusion {
            name: name.to_string(),
            truth: Vec::new(),
            predicted: Vec::new(),
            counts: Vec::new(),
        });
    Ok((mean, confusion))
}
