//! Running a sparse reduced-rank regression experiment.

use std::collections::BTreeMap;

use super::experiment::{ModelOutcome, folds_for};
use super::{PreparedDataset, RunError};
use crate::analysis::scaling::FoldScaling;
use crate::models::srrr::{LambdaRow, SrrrConfig, cross_validate};
use crate::prep::Standardise;
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
    let unsuitable = |message: String| RunError::Unsuitable {
        experiment: experiment.name.clone(),
        message,
    };
    let [input, target] = experiment.modalities.as_slice() else {
        return Err(unsuitable(
            "sRRR needs exactly two modalities: predictors, then targets".into(),
        ));
    };
    let (x, y) = dataset.data.paired_matrices(input, target).ok_or_else(|| {
        unsuitable(format!(
            "dataset `{}` lacks modality `{input}` or `{target}`",
            dataset.name
        ))
    })?;
    if x.cells.is_empty() {
        return Err(unsuitable(format!(
            "no cell is measured in both `{input}` and `{target}`"
        )));
    }
    let folds = folds_for(experiment, dataset, &x.cells)?;
    let scaling = fold_scaling(dataset, &experiment.modalities);
    let srrr_err = |source| RunError::Srrr {
        experiment: experiment.name.clone(),
        source,
    };
    let result = cross_validate(
        x.values.view(),
        y.values.view(),
        &folds,
        scaling,
        config,
        sink,
    )
    .map_err(srrr_err)?;

    let mut metrics = BTreeMap::from([("paired_cells".to_string(), x.cells.len() as f64)]);
    // Without a λ meeting the gene target there is no model to report; the
    // λ path still shows the user how many genes each penalty kept.
    let Some(selection) = result.selection else {
        return Ok(ModelOutcome {
            metrics,
            per_fold: Vec::new(),
            per_feature: Vec::new(),
            genes: Vec::new(),
            latent: None,
            latents: Vec::new(),
            curves: Vec::new(),
            confusions: Vec::new(),
            detail: ResultDetail::Srrr {
                rank: result.rank,
                lambdas: result.lambdas,
                chosen_lambda: None,
                loadings: Vec::new(),
                unconverged_fits: result.unconverged_fits,
            },
        });
    };
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
        curves: lambda_curves(&result.lambdas),
        confusions: Vec::new(),
        detail: ResultDetail::Srrr {
            rank: result.rank,
            lambdas: result.lambdas,
            chosen_lambda: Some(selection.lambda),
            loadings: fit.loadings,
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

/// Per-fold scaling that matches the recipes: z-score with training-fold
/// statistics when a recipe defers standardisation to the fold, otherwise only
/// centre on the training means (the data were already standardised, as in the paper).
pub(super) fn fold_scaling(dataset: &PreparedDataset, modalities: &[String]) -> FoldScaling {
    let deferred = modalities.iter().any(|name| {
        dataset
            .reports
            .get(name)
            .is_some_and(|report| report.standardise == Standardise::TrainingFold)
    });
    if deferred {
        FoldScaling::ZScore
    } else {
        FoldScaling::CentreOnly
    }
}
