//! End-to-end sRRR protocol on synthetic data with a known low-rank truth.

use ndarray::{Array2, Axis};
use patchbench::analysis::cv::{FoldScheme, k_fold};
use patchbench::analysis::scaling::{FoldScaling, ScalingError};
use patchbench::models::srrr::{SrrrConfig, SrrrError, cross_validate};
use patchbench::progress::{Event, Recorder, Sink};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const RELEVANT: usize = 5;
const NOISE_SD: f64 = 0.5;

/// X (n×p) standard normal; Y = X[:, ..5] A Bᵀ + noise with rank-2 A Bᵀ.
/// Returns (x, y, share of Y's variance that is signal).
fn synthetic(n: usize, p: usize, q: usize, seed: u64) -> (Array2<f64>, Array2<f64>, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = || -> f64 { rng.sample(StandardNormal) };
    let x = Array2::from_shape_fn((n, p), |_| normal());
    let a = Array2::from_shape_fn((RELEVANT, 2), |_| normal());
    let b = Array2::from_shape_fn((q, 2), |_| normal());
    let relevant: Vec<usize> = (0..RELEVANT).collect();
    let signal = x.select(Axis(1), &relevant).dot(&a).dot(&b.t());
    let noise = Array2::from_shape_fn((n, q), |_| NOISE_SD * normal());
    let signal_power = signal.mapv(|v| v * v).sum();
    let y = &signal + &noise;
    let share = signal_power / (signal_power + noise.mapv(|v| v * v).sum());
    (x, y, share)
}

fn config() -> SrrrConfig {
    SrrrConfig {
        rank: 2,
        lambdas: (1..=30).map(|i| f64::from(i) * 0.05).collect(),
        target_genes: RELEVANT,
        tolerance: 0.5,
        ..SrrrConfig::default()
    }
}

#[test]
fn protocol_recovers_relevant_genes_and_reaches_the_noise_ceiling() {
    let (x, y, ceiling) = synthetic(300, 40, 6, 7);
    let folds = k_fold(300, 5, 1, FoldScheme::Shuffled, None).unwrap();
    let mut recorder = Recorder::default();
    let result = cross_validate(
        x.view(),
        y.view(),
        &folds,
        FoldScaling::CentreOnly,
        &config(),
        &mut recorder,
    )
    .unwrap();

    // Gene counts fall as λ grows, and the chosen λ is the first one on target.
    assert_eq!(result.lambdas.len(), 30);
    let first = &result.lambdas[0];
    let last = &result.lambdas[29];
    assert!(first.mean_genes > last.mean_genes);
    let selection = result.selection.as_ref().expect("a lambda hits 5 genes");
    let chosen = result
        .lambdas
        .iter()
        .position(|r| r.lambda == selection.lambda)
        .unwrap();
    assert!((result.lambdas[chosen].mean_genes - 5.0).abs() <= 0.5);
    assert!(
        result.lambdas[..chosen]
            .iter()
            .all(|r| (r.mean_genes - 5.0).abs() > 0.5)
    );

    // The final model keeps exactly the relevant genes.
    let mut genes: Vec<usize> = selection.final_fit.genes.iter().map(|g| g.gene).collect();
    genes.sort_unstable();
    assert_eq!(genes, (0..RELEVANT).collect::<Vec<_>>());
    assert_eq!(selection.final_fit.latent.len(), 300);
    assert!(selection.final_fit.latent.iter().all(|row| row.len() == 2));
    assert_eq!(selection.final_fit.loadings.len(), 6);

    // Relaxed test R² is close to the share of variance that is signal.
    assert!(selection.relaxed);
    assert!(
        selection.r2.mean > ceiling - 0.03,
        "R² {} vs ceiling {ceiling}",
        selection.r2.mean
    );
    assert!(selection.r2.mean < ceiling + 0.03);
    assert_eq!(selection.r2_per_fold.len(), 5);
    assert_eq!(selection.r2_per_feature.len(), 6);
    let relaxed = result.lambdas[chosen].r2_relaxed.unwrap();
    assert_eq!(relaxed, selection.r2);
    assert!(result.lambdas[chosen].r2.is_some());

    // Progress: one stage, one step per fold-λ, counted up to the total.
    assert!(matches!(
        &recorder.events[0],
        Event::Stage { total: 150, .. }
    ));
    let steps: Vec<u64> = recorder
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Step { done } => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(steps, (1..=150).collect::<Vec<_>>());

    // The result stores as RON and reads back.
    let text = ron::to_string(&result).unwrap();
    let back: patchbench::models::srrr::SrrrCvResult = ron::from_str(&text).unwrap();
    assert_eq!(back.selection.map(|s| s.lambda), Some(selection.lambda));
}

#[test]
fn results_do_not_depend_on_threading_or_repetition() {
    let (x, y, _) = synthetic(120, 20, 4, 9);
    let folds = k_fold(120, 4, 3, FoldScheme::Shuffled, None).unwrap();
    let mut config = config();
    config.target_genes = 6;
    config.tolerance = 3.0;
    let run = || {
        cross_validate(
            x.view(),
            y.view(),
            &folds,
            FoldScaling::ZScore,
            &config,
            &mut Recorder::default(),
        )
        .unwrap()
    };
    assert_eq!(run(), run());
}

struct CancelNow;

impl Sink for CancelNow {
    fn event(&mut self, _event: Event) {}
    fn cancelled(&self) -> bool {
        true
    }
}

#[test]
fn cancellation_and_bad_input_stop_the_run() {
    let (x, mut y, _) = synthetic(100, 10, 3, 5);
    let folds = k_fold(100, 3, 0, FoldScheme::Shuffled, None).unwrap();
    assert_eq!(
        cross_validate(
            x.view(),
            y.view(),
            &folds,
            FoldScaling::CentreOnly,
            &config(),
            &mut CancelNow
        ),
        Err(SrrrError::Cancelled)
    );
    let mut too_high = config();
    too_high.rank = 4;
    assert_eq!(
        cross_validate(
            x.view(),
            y.view(),
            &folds,
            FoldScaling::CentreOnly,
            &too_high,
            &mut Recorder::default()
        ),
        Err(SrrrError::RankExceedsResponses {
            rank: 4,
            responses: 3
        })
    );
    let mut constant = x.clone();
    constant.column_mut(4).fill(1.5);
    let error = cross_validate(
        constant.view(),
        y.view(),
        &folds,
        FoldScaling::ZScore,
        &config(),
        &mut Recorder::default(),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        SrrrError::Scaling {
            fold: Some(_),
            source: ScalingError::ZeroVariance { column: 4 }
        }
    ));
    assert!(format!("{:#}", anyhow::Error::new(error)).contains("column 4"));
    y[[7, 2]] = f64::INFINITY;
    assert_eq!(
        cross_validate(
            x.view(),
            y.view(),
            &folds,
            FoldScaling::CentreOnly,
            &config(),
            &mut Recorder::default()
        ),
        Err(SrrrError::NonFiniteInput {
            matrix: "Y",
            row: 7,
            column: 2
        })
    );
}

#[test]
fn no_lambda_on_target_gives_a_table_without_selection() {
    let (x, y, _) = synthetic(100, 10, 3, 6);
    let folds = k_fold(100, 3, 0, FoldScheme::Shuffled, None).unwrap();
    let mut config = config();
    config.target_genes = 50;
    let result = cross_validate(
        x.view(),
        y.view(),
        &folds,
        FoldScaling::CentreOnly,
        &config,
        &mut Recorder::default(),
    )
    .unwrap();
    assert!(result.selection.is_none());
    assert_eq!(result.lambdas.len(), 30);
}
