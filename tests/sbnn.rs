//! The sBNN end to end on small synthetic data: it learns, prunes to the
//! requested genes, is reproducible, and rejects bad settings before training.

use ndarray::{Array2, Axis};
use patchbench::analysis::cv::{FoldScheme, k_fold};
use patchbench::analysis::scaling::FoldScaling;
use patchbench::models::sbnn::{SbnnConfig, SbnnError, cross_validate};
use patchbench::nn::dense::Engine;
use patchbench::progress::{Event, Recorder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const RELEVANT: usize = 4;

/// X (n×p) standard normal; Y a smooth non-linear function of a 2-D code of
/// the first four genes, plus noise.
fn synthetic(n: usize, p: usize, q: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut normal = || -> f64 { rng.sample(StandardNormal) };
    let x = Array2::from_shape_fn((n, p), |_| normal());
    let a = Array2::from_shape_fn((RELEVANT, 2), |_| normal());
    let b = Array2::from_shape_fn((2, q), |_| normal());
    let relevant: Vec<usize> = (0..RELEVANT).collect();
    let code = x.select(Axis(1), &relevant).dot(&a).mapv(|v| v.tanh());
    let noise = Array2::from_shape_fn((n, q), |_| 0.3 * normal());
    (x, code.dot(&b) + noise)
}

/// [`small_config`] with three epochs in each of the four phases.
fn three_epochs_a_phase() -> SbnnConfig {
    SbnnConfig {
        pretrain_epochs: 3,
        frozen_epochs: 3,
        unfrozen_epochs: 3,
        pruned_epochs: 3,
        ..small_config()
    }
}

fn small_config() -> SbnnConfig {
    SbnnConfig {
        encoder: vec![32, 16],
        decoder: vec![16, 32],
        group_lasso: 0.01,
        clusters: 4,
        kmeans_restarts: 3,
        min_cluster_size: 5,
        pretrain_epochs: 10,
        pretrain_lr: 1e-3,
        frozen_epochs: 10,
        frozen_lr: 1e-3,
        unfrozen_epochs: 15,
        unfrozen_lr: 1e-3,
        genes: 6,
        pruned_epochs: 15,
        pruned_lr: 1e-3,
        grid: 5,
        seed: 3,
        ..SbnnConfig::default()
    }
}

fn run(
    config: &SbnnConfig,
    recorder: &mut Recorder,
) -> Result<patchbench::models::sbnn::SbnnCvResult, SbnnError> {
    let (x, y) = synthetic(240, 30, 5, 11);
    let folds = k_fold(240, 3, 1, FoldScheme::Shuffled, None).unwrap();
    cross_validate(
        x.view(),
        y.view(),
        &folds,
        FoldScaling::CentreOnly,
        config,
        Engine::Dense,
        recorder,
    )
}

#[test]
fn training_learns_prunes_and_reports_everything() {
    let config = small_config();
    let mut recorder = Recorder::default();
    let result = run(&config, &mut recorder).unwrap();
    let epochs = config.regression_epochs();

    assert!(result.r2.mean > 0.3, "CV R² {:?}", result.r2);
    assert_eq!(result.r2_per_fold.len(), 3);
    assert_eq!(result.r2_per_feature.len(), 5);
    assert_eq!(result.train_curve.len(), epochs);
    assert_eq!(result.test_curve.len(), epochs);
    assert!(result.loss_curve[epochs - 1] < result.loss_curve[0]);
    assert!(result.train_curve[epochs - 1] > result.train_curve[0]);

    // Pruning keeps exactly the requested genes, and they include the informative ones.
    let trained = &result.final_model.trained;
    assert_eq!(trained.genes.len(), config.genes);
    assert_eq!(trained.net.layers[0].inputs, config.genes);
    assert!(trained.gene_norms.windows(2).all(|w| w[0] >= w[1]));
    let informative = trained.genes.iter().filter(|&&g| g < RELEVANT).count();
    assert!(informative >= 3, "selected {:?}", trained.genes);
    assert!(result.fold_genes.iter().all(|g| g.len() == config.genes));

    // Latent code of every cell and the decoder over a 5×5 grid.
    assert_eq!(result.final_model.latent.len(), 240 * 2);
    let grid = result.final_model.grid.as_ref().unwrap();
    assert_eq!((grid.x.len(), grid.y.len(), grid.outputs), (5, 5, 5));
    assert_eq!(grid.values.len(), 5 * 5 * 5);

    // Every epoch of every fold was streamed to the sink.
    let tests = recorder
        .events
        .iter()
        .filter(|e| matches!(e, Event::Metric { fold: Some(_), name, .. } if name == "test_r2"))
        .count();
    assert_eq!(tests, 3 * epochs);
}

#[test]
fn the_same_seed_gives_bit_identical_results() {
    let config = three_epochs_a_phase();
    let a = run(&config, &mut Recorder::default()).unwrap();
    let b = run(&config, &mut Recorder::default()).unwrap();
    assert_eq!(a, b);
    let other = run(
        &SbnnConfig {
            seed: 4,
            ..config.clone()
        },
        &mut Recorder::default(),
    )
    .unwrap();
    assert_ne!(a.r2_per_fold, other.r2_per_fold);
}

#[test]
fn without_pretraining_the_schedule_still_runs() {
    let config = SbnnConfig {
        pretrain: false,
        frozen_epochs: 5,
        unfrozen_epochs: 5,
        pruned_epochs: 5,
        ..small_config()
    };
    let result = run(&config, &mut Recorder::default()).unwrap();
    assert!(result.r2.mean.is_finite());
    assert_eq!(result.final_model.trained.pretrain_validation.len(), 0);
}

#[test]
fn bad_settings_are_rejected_before_any_training() {
    type Change<'a> = &'a dyn Fn(&mut SbnnConfig);
    let cases: [(Change<'_>, &str); 5] = [
        (&|c| c.genes = 0, "genes"),
        (&|c| c.genes = 31, "only 30 input genes"),
        (&|c| c.frozen_lr = -1e-4, "frozen_lr"),
        (&|c| c.pruned_lr = 0.0, "pruned_lr"),
        (
            &|c| c.batch_size = 500,
            "larger than the 160 training cells",
        ),
    ];
    for (change, message) in cases {
        let mut config = small_config();
        change(&mut config);
        let mut recorder = Recorder::default();
        let err = run(&config, &mut recorder).unwrap_err().to_string();
        assert!(err.contains(message), "{err}");
        assert!(recorder.events.is_empty(), "training started for {message}");
    }
}

/// The GPU backend's code (the tensor backend, here on dfdx's CPU device)
/// trains the sBNN through the whole schedule like the dense engine: the same
/// epoch losses and R² within 1e-4 relative, the same genes.
#[test]
fn the_tensor_backend_trains_the_sbnn_like_the_dense_engine() {
    let config = three_epochs_a_phase();
    let (x, y) = synthetic(120, 30, 5, 4);
    let folds = k_fold(120, 2, 1, FoldScheme::Shuffled, None).unwrap();
    let fit = |engine| {
        cross_validate(
            x.view(),
            y.view(),
            &folds,
            FoldScaling::CentreOnly,
            &config,
            engine,
            &mut Recorder::default(),
        )
        .unwrap()
    };
    let (dense, tensor) = (fit(Engine::Dense), fit(Engine::TensorCpu));
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1e-3),
            "{what}: dense {a}, tensor {b}"
        );
    };
    assert_eq!(dense.loss_curve.len(), config.regression_epochs());
    for (name, a, b) in [
        ("loss", &dense.loss_curve, &tensor.loss_curve),
        ("train R²", &dense.train_curve, &tensor.train_curve),
        ("test R²", &dense.test_curve, &tensor.test_curve),
        ("fold R²", &dense.r2_per_fold, &tensor.r2_per_fold),
    ] {
        assert_eq!(a.len(), b.len(), "{name}");
        for (epoch, (a, b)) in a.iter().zip(b).enumerate() {
            close(*a, *b, &format!("{name} {epoch}"));
        }
    }
    assert_eq!(dense.fold_genes, tensor.fold_genes);
    assert_eq!(
        dense.final_model.trained.genes,
        tensor.final_model.trained.genes
    );
    // Not the same path: the dense engine's results are not bit for bit the tensor backend's.
    assert_ne!(dense.loss_curve, tensor.loss_curve);
}

#[cfg(not(feature = "cuda"))]
#[test]
fn the_sbnn_on_a_gpu_without_the_cuda_feature_is_an_error() {
    let (x, y) = synthetic(120, 30, 5, 4);
    let folds = k_fold(120, 2, 1, FoldScheme::Shuffled, None).unwrap();
    let failure = cross_validate(
        x.view(),
        y.view(),
        &folds,
        FoldScaling::CentreOnly,
        &small_config(),
        Engine::Cuda(0),
        &mut Recorder::default(),
    )
    .unwrap_err();
    // The whole chain, as the command line prints it.
    let mut error = failure.to_string();
    let mut source = std::error::Error::source(&failure);
    while let Some(cause) = source {
        error.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(error.contains("cuda:0"), "{error}");
    assert!(error.contains("`cuda` feature"), "{error}");
}
