//! Running a sparse reduced-rank regression experiment.

use std::collections::BTreeMap;

use super::experiment::{ModelOutcome, PairedRegression, paired_regression};
use super::{PreparedDataset, RunError};
use crate::models::srrr::{LambdaRow, SrrrConfig, cross_validate};
use crate::progress::Sink;
use crate::session::{Curve, Experiment, FeatureScore, Latent, ResultDetail};

/// Cross-validates sRRR from the experiment's first modality to its second, on
/// the cells measured in both, and fits the final model on all of them.
pub(super) fn run(
    experiment: &Experiment,
    config: &SrrrConfig,
    dataset: &PreparedDataset,
    sink: &mut dyn Sink,
) -> Result<ModelOutcome, RunError> {
    let PairedRegression {
        x,
        y,
        folds,
        scaling,
    } = paired_regression(
        experiment,
        dataset,
        "sRRR needs exactly two modalities: predictors, then targets",
    )?;
    let srrr_err = |source| RunError::model(&experiment.name, source);
    let result = cross_validate(
        x.values.view(),
        y.values.view(),
        &folds,
        scaling,
        config,
        sink,
    )
    .map_err(srrr_err)?;

    // Without a λ meeting the gene target there is no model and no score:
    // the run fails and says which λ to add, rather than storing a result
    // without its headline metric.
    let Some(selection) = result.selection else {
        return Err(RunError::Unsuitable {
            experiment: experiment.name.clone(),
            message: no_lambda_on_target(&result.lambdas, config),
        });
    };
    let mut metrics = BTreeMap::from([("paired_cells".to_string(), x.cells.len() as f64)]);
    let fit = selection.final_fit;
    metrics.insert("cv_r2_mean".into(), selection.r2.mean);
    metrics.insert("cv_r2_sd".into(), selection.r2.sd);
    metrics.insert("lambda".into(), selection.lambda);
    metrics.insert("n_genes".into(), fit.genes.len() as f64);
    Ok(ModelOutcome {
        metrics,
        per_fold: selection.r2_per_fold,
        per_feature: y
            .features
            .iter()
            .zip(selection.r2_per_feature)
            .map(|(name, score)| FeatureScore {
                name: name.clone(),
                score,
            })
            .collect(),
        genes: fit
            .genes
            .iter()
            .map(|gene| FeatureScore {
                name: x.features.get(gene.gene).cloned().unwrap_or_default(),
                score: gene.row_norm,
            })
            .collect(),
        latent: Some(Latent {
            dims: result.rank,
            cells: x.cells.clone(),
            values: fit.latent.iter().flatten().map(|&v| v as f32).collect(),
        }),
        latents: Vec::new(),
        cross_modal: None,
        networks: Vec::new(),
        curves: lambda_curves(&result.lambdas),
        confusions: Vec::new(),
        detail: ResultDetail::Srrr {
            rank: result.rank,
            lambdas: result.lambdas,
            chosen_lambda: Some(selection.lambda),
            loadings: fit.loadings,
            weights: fit.genes.iter().map(|g| g.weights.clone()).collect(),
            unconverged_fits: result.unconverged_fits,
        },
    })
}

/// Cross-validated test R² along the λ path (ascending λ, one step per λ
/// that gave every fold a model), of the sparse fit and of the relaxed refit.
fn lambda_curves(lambdas: &[LambdaRow]) -> Vec<Curve> {
    let curve = |name: &str, pick: fn(&LambdaRow) -> Option<f64>| Curve {
        name: name.into(),
        values: lambdas.iter().filter_map(pick).collect(),
    };
    vec![
        curve("test_r2_by_lambda", |row| row.r2.as_ref().map(|r| r.mean)),
        curve("relaxed_r2_by_lambda", |row| {
            row.r2_relaxed.as_ref().map(|r| r.mean)
        }),
    ]
}

/// Why no λ of the path was chosen, with the gene counts it reached and
/// what to change.
fn no_lambda_on_target(rows: &[LambdaRow], config: &SrrrConfig) -> String {
    let (target, tolerance) = (config.target_genes as f64, config.tolerance);
    let most = rows.iter().map(|r| r.mean_genes).fold(f64::NAN, f64::max);
    let fewest = rows.iter().map(|r| r.mean_genes).fold(f64::NAN, f64::min);
    let hint = if fewest > target + tolerance {
        "add larger λ values to `lambdas`".to_string()
    } else if most < target - tolerance {
        "add smaller λ values to `lambdas`".to_string()
    } else {
        let below = rows
            .iter()
            .filter(|r| r.mean_genes > target)
            .map(|r| r.lambda)
            .fold(f64::NAN, f64::max);
        let above = rows
            .iter()
            .filter(|r| r.mean_genes < target)
            .map(|r| r.lambda)
            .fold(f64::NAN, f64::min);
        format!("add λ values between {below} and {above} to `lambdas`, or widen `tolerance`")
    };
    format!(
        "no λ gives {} ± {tolerance} genes on average (rank {}, alpha {}): the {} λ values keep {fewest:.1} to {most:.1} genes; {hint}",
        config.target_genes,
        config.rank,
        config.alpha,
        rows.len()
    )
}
