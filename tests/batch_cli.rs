//! `patchbench --batch` end to end on small simulated data.

mod common;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

fn patchbench(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("patchbench").expect("binary built");
    command.current_dir(dir);
    command
}

/// Runs patchbench with `args` in `dir`, fails the test with its stderr
/// unless it succeeds, and returns its stdout.
fn run_ok(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = patchbench(dir).args(args).output().expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn batch_runs_unfinished_experiments_writes_results_and_prints_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 3);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2))
        .expect("write session");

    let stdout =
        String::from_utf8(run_ok(dir.path(), &["--batch", "s.ron", "--json"])).expect("utf8");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(line["experiment"], "rrr");
    assert_eq!(line["model"], "srrr");
    let r2 = line["metrics"]["cv_r2_mean"].as_f64().expect("cv_r2_mean");
    assert!(
        r2 > 0.2 && r2 < 1.0,
        "simulated ephys depends on type, so R² must be clearly positive: {r2}"
    );
    assert!(line["metrics"]["cv_r2_sd"].as_f64().is_some());
    let genes = line["metrics"]["genes"].as_array().expect("genes");
    let n_genes = line["metrics"]["n_genes"].as_f64().expect("n_genes");
    assert_eq!(genes.len() as f64, n_genes);

    let saved = patchbench::session::load(&dir.path().join("s.ron")).expect("session still valid");
    let result = saved.experiments[0]
        .result
        .as_ref()
        .expect("result stored in the session");
    assert_eq!(result.per_fold.len(), 5);
    assert_eq!(result.latent.as_ref().expect("latent").dims, 2);

    // A second batch has nothing left to do and leaves the result as it was.
    let stdout = run_ok(dir.path(), &["--batch", "s.ron", "--json"]);
    assert!(stdout.is_empty(), "nothing should run again");
    let again = patchbench::session::load(&dir.path().join("s.ron")).expect("valid");
    assert_eq!(again, saved);

    // --rerun runs it again; the fixed seeds give the same numbers.
    let stdout = run_ok(dir.path(), &["--batch", "s.ron", "--json", "--rerun"]);
    let rerun: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&stdout).trim()).expect("json");
    assert_eq!(
        rerun["metrics"]["cv_r2_mean"],
        line["metrics"]["cv_r2_mean"]
    );
}

#[test]
fn scored_folds_trains_and_scores_only_the_first_folds() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 3);
    let session = common::srrr_session("rrr", 2).replace(
        "scheme: Shuffled)",
        "scheme: Shuffled, scored_folds: Some(2))",
    );
    std::fs::write(dir.path().join("s.ron"), session).expect("write session");
    run_ok(dir.path(), &["--batch", "s.ron"]);
    let saved = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let result = saved.experiments[0].result.as_ref().expect("result");
    assert_eq!(result.per_fold.len(), 2);
}

#[test]
fn out_leaves_the_input_untouched_and_rewrites_data_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 4);
    let text = common::srrr_session("rrr", 2);
    std::fs::write(dir.path().join("s.ron"), &text).expect("write session");
    std::fs::create_dir(dir.path().join("results")).expect("mkdir");

    patchbench(dir.path())
        .args(["--batch", "s.ron", "--out", "results/done.ron"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.ron")).expect("read"),
        text
    );
    let out =
        patchbench::session::load(&dir.path().join("results/done.ron")).expect("output session");
    assert!(out.experiments[0].result.is_some());
    assert_eq!(
        out.datasets[0].modalities[0].path,
        Path::new("../data/gene_counts.csv")
    );
    assert!(
        dir.path()
            .join("results")
            .join(&out.datasets[0].modalities[0].path)
            .is_file()
    );
}

#[test]
fn only_runs_the_named_experiment_and_rejects_unknown_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 5);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2))
        .expect("write session");
    patchbench(dir.path())
        .args(["--batch", "s.ron", "--only", "nope"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("no such experiment").and(predicate::str::contains("rrr")),
        );
    patchbench(dir.path())
        .args(["--batch", "s.ron", "--only", "rrr"])
        .assert()
        .success();
}

#[test]
fn missing_data_names_the_files_and_how_to_get_them_and_keeps_the_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = common::srrr_session("rrr", 2);
    std::fs::write(dir.path().join("s.ron"), &text).expect("write session");
    patchbench(dir.path())
        .args(["--batch", "s.ron"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("gene_counts.csv")
                .and(predicate::str::contains("run patchbench simulate")),
        );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.ron")).expect("read"),
        text
    );
}

#[test]
fn a_malformed_data_file_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::small_dataset(dir.path(), 6);
    let ephys = data.join("ephys_values.csv");
    let mut lines: Vec<String> = std::fs::read_to_string(&ephys)
        .expect("read")
        .lines()
        .map(String::from)
        .collect();
    lines[3].push_str(",1.0");
    std::fs::write(&ephys, lines.join("\n")).expect("write");
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2))
        .expect("write session");
    patchbench(dir.path())
        .args(["--batch", "s.ron"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("ephys_values.csv:4"));
}

#[test]
fn a_malformed_session_is_reported_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("s.ron"),
        "(\n  version: 1,\n  datasets: [ oops ],\n)\n",
    )
    .expect("write");
    patchbench(dir.path())
        .args(["--batch", "s.ron"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("s.ron:3:"));
}

/// A k-CAE and the PC-CCA baseline on the same folds, with every latent metric.
#[test]
fn batch_runs_cae_and_pc_cca_and_reports_latent_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 4);
    let session = common::session_with_model(
        "rrr",
        "Cae(model: (steps: 60, batch_size: 32, paired_per_batch: 24, \
         arms: [(hidden: [16]), (hidden: [16])]), analysis: (gmm_components: [3]))",
        3,
    );
    let pc_cca = "    (\n      name: \"cca\",\n      dataset: \"sim\",\n      modalities: [\"T\", \"E\"],\n      \
                  model: PcCca(model: (pcs_a: 5, pcs_b: 5, components: 2), analysis: (gmm_components: [3])),\n      \
                  protocol: (folds: 3, seed: 1, scheme: Shuffled),\n    ),\n  ],\n)\n";
    let session = session.replace("  ],\n)\n", "") + pc_cca;
    std::fs::write(dir.path().join("s.ron"), session).expect("write session");
    let stdout =
        String::from_utf8(run_ok(dir.path(), &["--batch", "s.ron", "--json"])).expect("utf8");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["model"], "cae");
    assert_eq!(lines[1]["model"], "pc_cca");
    for line in &lines {
        for metric in [
            "qda_acc_t_family",
            "qda_acc_e_family",
            "qda_acc_t_type",
            "qda_acc_e_type",
            "ami_gmm",
            "recon_t",
            "recon_e",
            "cross_t_from_e",
            "cross_e_from_t",
            "seconds",
        ] {
            assert!(
                line["metrics"][metric].as_f64().is_some(),
                "{metric} in {line}"
            );
        }
    }
    let saved = patchbench::session::load(&dir.path().join("s.ron")).expect("session still valid");
    let result = saved.experiments[0].result.as_ref().expect("cae result");
    assert_eq!(result.per_fold.len(), 3);
    let z_t = result.latent.as_ref().expect("z_T");
    assert_eq!(z_t.dims, 3);
    let z_e = &result.latents.first().expect("z_E beside z_T").latent;
    assert_eq!(result.latents[0].name, "z_E");
    assert_eq!((z_e.dims, &z_e.cells), (3, &z_t.cells));
    let curve = |name: &str| {
        result
            .curves
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("curve {name}"))
    };
    let steps = curve("loss").values.len();
    assert!(steps > 0);
    // The collapse diagnostics of Gala et al.'s Fig. 1B, per modality, over training.
    for name in ["T", "E"] {
        let rms = &curve(&format!("latent_rms_{name}")).values;
        let corr = &curve(&format!("latent_abs_corr_{name}")).values;
        assert_eq!((rms.len(), corr.len()), (steps, steps));
        assert!(rms.iter().all(|&r| r > 0.0 && r.is_finite()), "{rms:?}");
        assert!(corr.iter().all(|&c| (0.0..=1.0).contains(&c)), "{corr:?}");
    }
    let last_corr = lines[0]["metrics"]["latent_abs_corr_last"]
        .as_f64()
        .expect("latent_abs_corr_last");
    assert!((0.0..=1.0).contains(&last_corr), "{last_corr}");
    // The same on the held-out cells' codes in inference mode (Fig. 1B's view).
    let held_out_corr = lines[0]["metrics"]["latent_abs_corr_held_out"]
        .as_f64()
        .expect("latent_abs_corr_held_out");
    assert!((0.0..=1.0).contains(&held_out_corr), "{held_out_corr}");
    let ratio = lines[0]["metrics"]["latent_rms_ratio"]
        .as_f64()
        .expect("latent_rms_ratio");
    assert!(ratio > 0.0 && ratio.is_finite(), "{ratio}");
    assert!(
        result
            .confusions
            .iter()
            .any(|c| c.name.contains("z_E -> family"))
    );
    cae_cross_modal_and_weights_reproduce_the_run(dir.path(), &saved);
}

/// The k-CAE result holds E observed and decoded from z_T for every tested
/// cell, and its per-fold weight files give back the out-of-fold z_T.
fn cae_cross_modal_and_weights_reproduce_the_run(dir: &Path, saved: &patchbench::session::Session) {
    use patchbench::models::cae::CoupledAutoencoder;
    use patchbench::session::ModelSpec;
    let experiment = &saved.experiments[0];
    let result = experiment.result.as_ref().expect("cae result");
    let z_t = result.latent.as_ref().expect("z_T");
    let cross = result
        .cross_modal
        .as_ref()
        .expect("cross-modal predictions");
    assert_eq!((cross.source.as_str(), cross.target.as_str()), ("T", "E"));
    assert_eq!(
        cross.cells, z_t.cells,
        "every tested paired cell, in z_T order"
    );
    let features = cross.features.len();
    assert!(features > 1, "{:?}", cross.features);
    assert_eq!(cross.observed.len(), cross.cells.len() * features);
    assert_eq!(cross.predicted.len(), cross.observed.len());
    assert!(cross.predicted.iter().all(|v| v.is_finite()));
    assert!(cross.predicted != cross.observed);

    assert_eq!(
        result.weights,
        [
            "s.weights/rrr/fold1.safetensors",
            "s.weights/rrr/fold2.safetensors",
            "s.weights/rrr/fold3.safetensors",
            "s.weights/rrr/final.safetensors"
        ]
    );
    let ModelSpec::Cae { model: config, .. } = &experiment.model else {
        panic!("a cae experiment")
    };
    let dataset = patchbench::runner::load_dataset(&saved.datasets[0], dir).expect("data load");
    let table = |name: &str| {
        dataset
            .data
            .modality(name)
            .expect("modality")
            .table
            .dense()
            .expect("a dense table")
    };
    let (t, e) = (table("T"), table("E"));
    let rows: Vec<usize> = z_t
        .cells
        .iter()
        .map(|c| t.cells.iter().position(|x| x == c).expect("cell in T"))
        .collect();
    let x_t = t.values.select(ndarray::Axis(0), &rows).mapv(|v| v as f32);
    let mut best = vec![f32::INFINITY; z_t.cells.len()];
    for file in &result.weights {
        let mut model =
            CoupledAutoencoder::new(config, &[t.features.len(), e.features.len()]).expect("model");
        model.load_weights(&dir.join(file)).expect("weights load");
        let codes = model.encode(0, &x_t).expect("encode");
        for (cell, row) in codes.rows().into_iter().enumerate() {
            let stored = &z_t.values[cell * z_t.dims..(cell + 1) * z_t.dims];
            let gap = row
                .iter()
                .zip(stored)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            best[cell] = best[cell].min(gap);
        }
    }
    let worst = best.iter().copied().fold(0.0f32, f32::max);
    assert!(
        worst < 1e-4,
        "a saved fold model gives every stored z_T ({worst})"
    );
}

#[test]
fn batch_saves_the_sbnn_beside_the_session_and_the_file_predicts_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 5);
    let session = common::session_with_model(
        "net",
        "Sbnn(encoder: [16], decoder: [16], clusters: 4, kmeans_restarts: 2, \
         pretrain_epochs: 2, frozen_epochs: 2, unfrozen_epochs: 2, genes: 8, pruned_epochs: 3, \
         pretrain_lr: 1e-3, frozen_lr: 1e-3, unfrozen_lr: 1e-3, pruned_lr: 1e-3, grid: 5)",
        2,
    );
    std::fs::write(dir.path().join("s.ron"), session).expect("write session");
    std::fs::create_dir_all(dir.path().join("runs")).expect("output folder");
    patchbench(dir.path())
        .args(["--batch", "s.ron", "--out", "runs/out.ron"])
        .assert()
        .success();
    let saved = patchbench::session::load(&dir.path().join("runs/out.ron")).expect("session");
    let result = saved.experiments[0].result.as_ref().expect("sbnn result");
    assert_eq!(result.weights, ["out.weights/net/final.safetensors"]);
    let file = dir.path().join("runs").join(&result.weights[0]);
    let (net, info) = patchbench::nn::dense::DenseNet::load(&file).expect("weights load");
    let genes: Vec<&str> = info["inputs"].split(',').collect();
    let names: Vec<&str> = result.genes.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(genes.len(), 8);
    assert_eq!(net.inputs_of(0), 8);
    let mut sorted = (genes.clone(), names.clone());
    sorted.0.sort_unstable();
    sorted.1.sort_unstable();
    assert_eq!(sorted.0, sorted.1, "the inputs are the selected genes");
    let patchbench::session::ResultDetail::Sbnn { grid, outputs, .. } = &result.detail else {
        panic!("an sbnn result")
    };
    assert_eq!(info["outputs"], outputs.join(","));
    let grid = grid.as_ref().expect("2-D latent grid");
    let code_layers: usize = info["code_layers"].parse().expect("a count");
    let mut codes = Vec::new();
    for &a in &grid.x {
        for &b in &grid.y {
            codes.extend([a, b]);
        }
    }
    let points = grid.x.len() * grid.y.len();
    let predicted = net
        .forward_range(&codes, points, code_layers, net.layers.len())
        .expect("decode");
    assert_eq!(
        predicted, grid.values,
        "the loaded decoder predicts the stored grid"
    );
}
