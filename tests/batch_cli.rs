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

#[test]
fn batch_runs_unfinished_experiments_writes_results_and_prints_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 3);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2))
        .expect("write session");

    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--json"])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf8");
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
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--json"])
        .output()
        .expect("run");
    assert!(output.status.success());
    assert!(output.stdout.is_empty(), "nothing should run again");
    let again = patchbench::session::load(&dir.path().join("s.ron")).expect("valid");
    assert_eq!(again, saved);

    // --rerun runs it again; the fixed seeds give the same numbers.
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--json", "--rerun"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let rerun: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).expect("json");
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
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron"])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
    let session = common::srrr_session("rrr", 2)
        .replace(
            "model: Srrr(rank: 2, target_genes: 10, lambdas: [0.05, 0.1, 0.2, 0.3, 0.5, 0.8]),",
            "model: Cae(model: (steps: 60, batch_size: 32, paired_per_batch: 24, \
             arms: [(hidden: [16]), (hidden: [16])]), analysis: (gmm_components: [3])),",
        )
        .replace("protocol: (folds: 5", "protocol: (folds: 3");
    let pc_cca = "    (\n      name: \"cca\",\n      dataset: \"sim\",\n      modalities: [\"T\", \"E\"],\n      \
                  model: PcCca(model: (pcs_a: 5, pcs_b: 5, components: 2), analysis: (gmm_components: [3])),\n      \
                  protocol: (folds: 3, seed: 1, scheme: Shuffled),\n    ),\n  ],\n)\n";
    let session = session.replace("  ],\n)\n", "") + pc_cca;
    std::fs::write(dir.path().join("s.ron"), session).expect("write session");
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--json"])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf8");
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
    assert!(
        result
            .curves
            .iter()
            .any(|c| c.name == "loss" && !c.values.is_empty())
    );
    assert!(
        result
            .confusions
            .iter()
            .any(|c| c.name.contains("z_E -> family"))
    );
}
