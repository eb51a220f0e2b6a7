//! Judging a two-modality latent space on one cross-validation fold (Gala et
//! al. 2019, Fig. 3): QDA trained on `z_T` and on `z_E` at each label level,
//! applied within and across modalities; Gaussian mixtures fitted separately
//! to `z_T` and `z_E` and the adjusted mutual information between their
//! labelings of the test cells. Usable on any latent (k-CAE, PC-CCA, ...).

use std::collections::BTreeMap;

use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

use super::clustering::adjusted_mutual_information;
use super::gmm::{Gmm, GmmConfig};
use super::qda::{Qda, QdaConfig, score};

/// What to measure on a latent space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatentEvalConfig {
    /// Label levels to classify, as `(metric suffix, metadata column)`,
    /// e.g. `("family", "rna_family")`.
    pub levels: Vec<(String, String)>,
    /// The classifier.
    pub qda: QdaConfig,
    /// Component counts of the mixtures; `ami_gmm` reports the first.
    pub gmm_components: Vec<usize>,
    /// Mixture fitting.
    pub gmm: GmmConfig,
}

impl Default for LatentEvalConfig {
    fn default() -> Self {
        LatentEvalConfig {
            levels: vec![
                ("family".into(), "rna_family".into()),
                ("type".into(), "rna_type".into()),
            ],
            qda: QdaConfig::default(),
            gmm_components: vec![9, 20],
            gmm: GmmConfig::default(),
        }
    }
}

/// The latents and labels of one fold's paired cells.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldLatents {
    /// Training `z_T`, one row per paired training cell.
    pub train_t: Array2<f64>,
    /// Training `z_E`, rows aligned with `train_t`.
    pub train_e: Array2<f64>,
    /// Test `z_T`.
    pub test_t: Array2<f64>,
    /// Test `z_E`, rows aligned with `test_t`.
    pub test_e: Array2<f64>,
    /// Per level: class index of every training cell (`None` = unlabelled).
    pub train_labels: Vec<Vec<Option<usize>>>,
    /// Per level: class index of every test cell.
    pub test_labels: Vec<Vec<Option<usize>>>,
}

/// `(truth, prediction)` index pairs of one classifier or clustering, for a confusion matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tally {
    /// True class (or z_T cluster) of each scored cell.
    pub truth: Vec<usize>,
    /// Predicted class (or z_E cluster).
    pub predicted: Vec<usize>,
}

/// Metrics and tallies of one fold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FoldEvaluation {
    /// Metric name → value (NaN where nothing could be scored).
    pub metrics: BTreeMap<String, f64>,
    /// Tally name → pairs, e.g. `qda z_E -> family`.
    pub tallies: BTreeMap<String, Tally>,
}

fn labelled(labels: &[Option<usize>]) -> (Vec<usize>, Vec<usize>) {
    labels
        .iter()
        .enumerate()
        .filter_map(|(row, l)| l.map(|c| (row, c)))
        .unzip()
}

/// Evaluates one fold.
pub fn evaluate_fold(latents: &FoldLatents, config: &LatentEvalConfig) -> FoldEvaluation {
    let mut out = FoldEvaluation::default();
    for (level, (suffix, _)) in config.levels.iter().enumerate() {
        let (train_rows, train_y) = labelled(&latents.train_labels[level]);
        let (test_rows, test_y) = labelled(&latents.test_labels[level]);
        let pick = |m: &Array2<f64>, rows: &[usize]| m.select(Axis(0), rows);
        let cases = [
            ("t", &latents.train_t, &latents.test_t, "z_T", "z_T"),
            ("e", &latents.train_e, &latents.test_e, "z_E", "z_E"),
            ("cross", &latents.train_t, &latents.test_e, "z_T", "z_E"),
        ];
        for (key, train, test, from, to) in cases {
            let name = format!("qda_acc_{key}_{suffix}");
            let fitted = Qda::fit(pick(train, &train_rows).view(), &train_y, &config.qda);
            let (accuracy, pairs) = match fitted {
                Ok(qda) => score(&qda, pick(test, &test_rows).view(), &test_y),
                Err(_) => (None, Vec::new()),
            };
            out.metrics.insert(name, accuracy.unwrap_or(f64::NAN));
            let (truth, predicted) = pairs.into_iter().unzip();
            out.tallies.insert(
                format!("qda trained on {from}, applied to {to} -> {suffix}"),
                Tally { truth, predicted },
            );
        }
    }
    for (i, &k) in config.gmm_components.iter().enumerate() {
        let fit_t = Gmm::fit(latents.train_t.view(), k, &config.gmm);
        let fit_e = Gmm::fit(latents.train_e.view(), k, &config.gmm);
        let labels = match (fit_t, fit_e) {
            (Ok(gt), Ok(ge)) => match (
                gt.predict(latents.test_t.view()),
                ge.predict(latents.test_e.view()),
            ) {
                (Ok(a), Ok(b)) => Some((a, b)),
                _ => None,
            },
            _ => None,
        };
        let ami = labels
            .as_ref()
            .map_or(f64::NAN, |(a, b)| adjusted_mutual_information(a, b));
        out.metrics.insert(format!("ami_gmm_{k}"), ami);
        if i == 0 {
            out.metrics.insert("ami_gmm".into(), ami);
        }
        if let Some((a, b)) = labels {
            out.tallies.insert(
                format!("gmm {k}: z_T cluster vs z_E cluster"),
                Tally {
                    truth: a,
                    predicted: b,
                },
            );
        }
    }
    out
}
