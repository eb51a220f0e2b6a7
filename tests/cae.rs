//! Coupled autoencoders on synthetic two-modality data with known types: the
//! paper's pathologies (Propositions 1 and 2) and their cure, each measured by
//! a number; partial pairing; cross-modal prediction; the coupling op's
//! gradient on the tape.

use ndarray::Array2;
use patchbench::models::cae::{
    Activation, ArmConfig, CaeConfig, CouplingKind, MultiModal, Trained, max_abs_correlation,
    train, train_on,
};
use patchbench::nn::dense::Engine;
use patchbench::progress::{Event, Quiet, Recorder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// `cells` cells of 4 types; each type has a centre in a 3-D state space,
/// cells scatter around it. T (20 features) and E (8 features) are different
/// non-linear read-outs of the state plus noise.
fn synthetic(cells: usize, seed: u64) -> (MultiModal, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = [
        [2.0, 0.0, 0.0],
        [0.0, 2.0, 0.0],
        [0.0, 0.0, 2.0],
        [-1.5, -1.5, -1.5],
    ];
    let wt = Array2::from_shape_simple_fn((3, 20), || rng.sample::<f64, _>(StandardNormal));
    let we = Array2::from_shape_simple_fn((3, 8), || rng.sample::<f64, _>(StandardNormal));
    let mut types = Vec::with_capacity(cells);
    let mut state = Array2::<f64>::zeros((cells, 3));
    for c in 0..cells {
        let t = c % 4;
        types.push(t);
        for m in 0..3 {
            state[[c, m]] = centres[t][m] + 0.5 * rng.sample::<f64, _>(StandardNormal);
        }
    }
    let noisy = |m: Array2<f64>, rng: &mut ChaCha8Rng| {
        m.mapv(|v| (v + 0.1 * rng.sample::<f64, _>(StandardNormal)) as f32)
    };
    let t = noisy(state.dot(&wt).mapv(|v| v.tanh()), &mut rng);
    let e = noisy(state.dot(&we) / 2.0, &mut rng);
    let cells_rows = (0..cells).map(|c| vec![Some(c), Some(c)]).collect();
    (
        MultiModal {
            matrices: vec![t, e],
            cells: cells_rows,
        },
        types,
    )
}

/// The coupling weight of the pathology tests: strong, so that each
/// coupling's optimum shows within a few hundred steps.
const LAMBDA: f64 = 100.0;

fn small_config(coupling: CouplingKind, lambda: f64, steps: usize) -> CaeConfig {
    let arm = |dropout: f32| ArmConfig {
        hidden: vec![32, 32],
        activation: Activation::Elu,
        output: Activation::Linear,
        input_dropout: dropout,
        input_noise: 0.0,
        weight: 1.0,
        conv: None,
    };
    CaeConfig {
        latent_dims: 3,
        coupling,
        lambda,
        arms: vec![arm(0.1), arm(0.0)],
        steps,
        batch_size: 64,
        paired_per_batch: 64,
        learning_rate: 3e-3,
        seed: 3,
        log_every: 10,
        ..CaeConfig::default()
    }
}

fn fit(coupling: CouplingKind, lambda: f64, steps: usize) -> (Trained, MultiModal) {
    let (data, _) = synthetic(300, 1);
    let cells: Vec<usize> = (0..300).collect();
    let trained = train(
        &small_config(coupling, lambda, steps),
        &data,
        &cells,
        "test",
        &mut Quiet,
    )
    .unwrap();
    (trained, data)
}

/// Largest absolute correlation between two latent dimensions of `z`.
fn largest_correlation(z: &Array2<f32>) -> f64 {
    max_abs_correlation(z.mapv(f64::from).view())
}

/// Inference-mode codes of every cell in modality `i`.
fn codes(trained: &mut Trained, data: &MultiModal, i: usize) -> Array2<f32> {
    trained.model.encode(i, &data.matrices[i]).unwrap()
}

#[test]
fn plain_coupling_shrinks_the_latent_norms() {
    let (trained, _) = fit(CouplingKind::SquaredDistance, LAMBDA, 800);
    let first = &trained.history[0].latent_rms;
    let last = &trained.history.last().unwrap().latent_rms;
    eprintln!("plain coupling: latent rms {first:?} -> {last:?}");
    for i in 0..2 {
        assert!(
            last[i] < 0.25 * first[i],
            "modality {i}: rms {} -> {}",
            first[i],
            last[i]
        );
    }
}

#[test]
fn batch_norm_coupling_collapses_onto_a_line() {
    let (mut trained, data) = fit(CouplingKind::BatchNorm, LAMBDA, 800);
    let corr = largest_correlation(&codes(&mut trained, &data, 0));
    let curve = &trained.history.last().unwrap().latent_abs_corr;
    eprintln!("batch-norm coupling: largest |correlation| {corr}, in training {curve:?}");
    assert!(
        corr > 0.95,
        "largest |correlation| between latent dimensions: {corr}"
    );
    // The training record sees the same collapse in its mini-batches.
    assert!(curve.iter().all(|&c| c > 0.9), "{curve:?}");
}

#[test]
fn msv_and_full_covariance_couplings_neither_shrink_nor_collapse() {
    for coupling in [CouplingKind::MinSingularValue, CouplingKind::FullCovariance] {
        let (mut trained, data) = fit(coupling, LAMBDA, 800);
        let last = trained.history.last().unwrap().latent_rms.clone();
        assert!(last.iter().all(|&r| r > 0.8), "{coupling:?}: rms {last:?}");
        for i in 0..2 {
            let corr = largest_correlation(&codes(&mut trained, &data, i));
            eprintln!("{coupling:?} modality {i}: rms {last:?}, largest |correlation| {corr}");
            assert!(
                corr < 0.8,
                "{coupling:?} modality {i}: |correlation| {corr}"
            );
        }
        // The coupling did its job: paired codes are close.
        let (zt, ze) = (codes(&mut trained, &data, 0), codes(&mut trained, &data, 1));
        let gap = (&zt - &ze).mapv(|v| f64::from(v * v)).mean().unwrap();
        eprintln!("{coupling:?}: mean squared distance of paired codes {gap}");
        assert!(gap < 0.2, "{coupling:?}: mean squared distance {gap}");
    }
}

#[test]
fn coupling_enables_cross_modal_prediction_and_partial_pairing() {
    let (data, _) = synthetic(300, 2);
    // Half the cells are paired; the others appear in one modality only.
    let mut t_rows = Vec::new();
    let mut e_rows = Vec::new();
    let mut cells = Vec::new();
    for c in 0..300 {
        match c % 4 {
            0 => {
                t_rows.push(c);
                cells.push(vec![Some(t_rows.len() - 1), None]);
            }
            1 => {
                e_rows.push(c);
                cells.push(vec![None, Some(e_rows.len() - 1)]);
            }
            _ => {
                t_rows.push(c);
                e_rows.push(c);
                cells.push(vec![Some(t_rows.len() - 1), Some(e_rows.len() - 1)]);
            }
        }
    }
    let partial = MultiModal {
        matrices: vec![data.select(0, &t_rows), data.select(1, &e_rows)],
        cells,
    };
    let all: Vec<usize> = (0..300).collect();
    let mut config = small_config(CouplingKind::MinSingularValue, 1.0, 600);
    config.paired_per_batch = 48;
    let mut recorder = Recorder::default();
    let mut coupled = train(&config, &partial, &all, "coupled", &mut recorder).unwrap();
    config.lambda = 0.0;
    let mut uncoupled = train(&config, &partial, &all, "uncoupled", &mut Quiet).unwrap();
    // Live metrics were streamed.
    assert!(
        recorder
            .events
            .iter()
            .any(|e| matches!(e, Event::Metric { name, .. } if name == "loss"))
    );
    // E predicted from T on the paired cells: far better with the coupling.
    let paired: Vec<usize> = (0..300).filter(|c| c % 4 >= 2).collect();
    let x_t = data.select(0, &paired);
    let x_e = data.select(1, &paired);
    let err = |m: &mut Trained| {
        let pred = m.model.predict(0, 1, &x_t, 8).unwrap();
        (&pred - &x_e).mapv(|v| f64::from(v * v)).sum() / x_e.mapv(|v| f64::from(v * v)).sum()
    };
    let (with, without) = (err(&mut coupled), err(&mut uncoupled));
    eprintln!("cross-modal E-from-T error: coupled {with}, uncoupled {without}");
    assert!(
        with < 0.5 && with < 0.6 * without,
        "cross-modal error {with} vs uncoupled {without}"
    );
}

#[test]
fn bad_settings_and_data_are_reported() {
    let (data, _) = synthetic(40, 3);
    let mut config = small_config(CouplingKind::MinSingularValue, 1.0, 5);
    config.batch_size = 1;
    let err = train(&config, &data, &[0, 1, 2], "x", &mut Quiet).unwrap_err();
    assert!(err.to_string().contains("batch_size"), "{err}");
    let mut broken = data.clone();
    broken.matrices[1][[3, 2]] = f32::NAN;
    let err = train(
        &small_config(CouplingKind::MinSingularValue, 1.0, 5),
        &broken,
        &[0, 1],
        "x",
        &mut Quiet,
    )
    .unwrap_err();
    assert!(err.to_string().contains("modality 1"), "{err}");
}

/// The k-CAE on a paired set read from one sparse `.h5ad` (genes as CSR `X`,
/// the simulated electrophysiology as `obsm["ephys"]`): it trains on views
/// of the prepared tables, scores a held-out fold and encodes all 600 paired
/// cells in two chunks of rows gathered from them.
#[test]
fn a_session_trains_on_a_sparse_h5ad_with_a_paired_obsm_modality() {
    use patchbench::data::simulate::{SparseCountsConfig, write_sparse_counts_h5ad};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SparseCountsConfig {
        cells: 600,
        genes: 300,
        density: 0.1,
        types: 3,
        seed: 2,
        ephys_features: 5,
    };
    write_sparse_counts_h5ad(&dir.path().join("counts.h5ad"), &config).expect("written");
    let text = r#"(
  version: 1,
  datasets: [(
    name: "sim",
    modalities: [
      (name: "counts", path: "counts.h5ad", orientation: CellsByFeatures,
       recipe: (steps: [LibrarySizeNormalise, Log1p, SelectGenes(n: 50, method: Seurat())], standardise: AllCells)),
      (name: "ephys", path: "counts.h5ad", orientation: CellsByFeatures, obsm: "ephys",
       recipe: (steps: [], standardise: AllCells)),
    ],
    metadata: (path: "counts.h5ad", id_column: "obs_names"),
  )],
  experiments: [(
    name: "cae",
    dataset: "sim",
    modalities: ["counts", "ephys"],
    model: Cae(model: (steps: 60, batch_size: 32, paired_per_batch: 24, log_every: 20),
               analysis: (levels: [("type", "type")], gmm_components: [3], gmm: (inits: 1))),
    protocol: (folds: 3, seed: 42, scored_folds: Some(1)),
  )],
)"#;
    let session =
        patchbench::session::parse(text, std::path::Path::new("s.ron")).expect("valid session");
    let prepared =
        patchbench::runner::load_dataset(&session.datasets[0], dir.path()).expect("loads");
    let counts = &prepared.data.modality("counts").expect("counts").table;
    assert_eq!(counts.shape(), (600, 50));
    let mut recorder = Recorder::default();
    let result =
        patchbench::runner::run_experiment(&session.experiments[0], &prepared, &mut recorder)
            .expect("runs");
    assert_eq!(result.metrics["paired_cells"], 600.0);
    assert_eq!(result.metrics["folds"], 1.0);
    for key in [
        "qda_acc_t_type",
        "qda_acc_e_type",
        "recon_t",
        "cross_e_from_t",
        "ami_gmm",
    ] {
        assert!(result.metrics[key].is_finite(), "{key}");
    }
    assert!(result.metrics["seconds_per_1000_steps"] > 0.0);
    // One held-out fold of three: 200 test cells, 5 E features each.
    let cross = result.cross_modal.as_ref().expect("cross-modal prediction");
    assert_eq!(cross.cells.len(), 200);
    assert_eq!(cross.observed.len(), 200 * 5);
    assert!(
        cross
            .observed
            .iter()
            .chain(&cross.predicted)
            .all(|v| v.is_finite())
    );
    // The model on all cells encodes every paired cell (600 > one chunk of 512).
    let in_sample = result
        .latents
        .iter()
        .find(|l| l.name.starts_with("z_T ("))
        .expect("in-sample z_T");
    assert_eq!(in_sample.latent.cells.len(), 600);
    assert_eq!(in_sample.latent.values.len(), 600 * 3);
    assert!(in_sample.latent.values.iter().all(|v| v.is_finite()));
    // Progress: both fits report their steps.
    let steps = recorder
        .events
        .iter()
        .filter(|e| matches!(e, Event::Step { .. }))
        .count();
    assert!(steps >= 2 * 3, "{steps} step events");
}

/// The GPU backend's code (the tensor backend, here on dfdx's CPU device)
/// trains the k-CAE's arms like the dense engine: the same losses at every
/// logged step and the same codes afterwards, within 1e-4 relative.
#[test]
fn the_tensor_backend_trains_the_arms_like_the_dense_engine() {
    let (data, _) = synthetic(200, 6);
    let cells: Vec<usize> = (0..200).collect();
    for coupling in [CouplingKind::MinSingularValue, CouplingKind::FullCovariance] {
        let config = small_config(coupling, 1.0, 60);
        let dense = train_on(&config, &data, &cells, "dense", Engine::Dense, &mut Quiet).unwrap();
        let tensor = train_on(
            &config,
            &data,
            &cells,
            "tensor",
            Engine::TensorCpu,
            &mut Quiet,
        )
        .unwrap();
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1e-2),
                "{coupling:?} {what}: dense {a}, tensor {b}"
            );
        };
        assert_eq!(dense.history.len(), 6);
        assert_eq!(dense.history.len(), tensor.history.len());
        for (a, b) in dense.history.iter().zip(&tensor.history) {
            let step = a.step;
            close(a.total, b.total, &format!("total at {step}"));
            close(a.coupling, b.coupling, &format!("coupling at {step}"));
            for (i, (x, y)) in a.recon.iter().zip(&b.recon).enumerate() {
                close(*x, *y, &format!("recon {i} at {step}"));
            }
        }
        // Not the same path: the dense engine's results are not bit for bit the tensor backend's.
        assert_ne!(dense.history, tensor.history);
        let (mut dense_model, mut tensor_model) = (dense.model, tensor.model);
        for i in 0..2 {
            let x = data.matrices[i].clone();
            let a = dense_model.encode(i, &x).unwrap();
            let b = tensor_model.encode(i, &x).unwrap();
            for (x, y) in a.iter().zip(&b) {
                close(
                    f64::from(*x),
                    f64::from(*y),
                    &format!("code of modality {i}"),
                );
            }
        }
    }
}
