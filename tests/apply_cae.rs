//! `patchbench apply` on a k-CAE artifact: the model on all cells applied to
//! its own training cells gives its in-sample latents exactly, and the
//! classes and cross-modal predictions come out scored.

// Not every shared helper is used here.
#[allow(dead_code)]
mod common;

use std::path::Path;

use assert_cmd::Command;
use patchbench::artifact::{ApplyInput, ArtifactModel, Manifest, MissingPolicy, apply};

const CAE: &str = "Cae(model: (steps: 300, batch_size: 32, paired_per_batch: 24, latent_dims: 3, \
    arms: [(hidden: [24]), (hidden: [24])]), analysis: (gmm_components: [3]))";

/// Trains the k-CAE on `dir/data` (2 folds and the model on all cells).
fn trained(dir: &Path) {
    common::small_dataset(dir, 5);
    let session = common::session_with_model("cae", CAE, 2);
    std::fs::write(dir.join("s.ron"), session).expect("write session");
    Command::cargo_bin("patchbench")
        .expect("binary built")
        .current_dir(dir)
        .args(["--batch", "s.ron", "--export", "exported"])
        .assert()
        .success();
}

/// Rows of a stored latent, by cell.
fn stored_rows(latent: &patchbench::session::Latent) -> Vec<(String, Vec<f64>)> {
    latent
        .cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let row = &latent.values[i * latent.dims..(i + 1) * latent.dims];
            (cell.clone(), row.iter().map(|&v| f64::from(v)).collect())
        })
        .collect()
}

#[test]
fn a_cae_applied_to_its_training_cells_gives_its_in_sample_latents_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    trained(dir.path());
    let artifact = dir.path().join("s.weights/cae");
    let manifest = Manifest::read(&artifact).expect("the run wrote an artifact");
    let ArtifactModel::Cae(part) = &manifest.model else {
        panic!("a k-CAE artifact, got {}", manifest.model.kind());
    };
    assert_eq!(part.levels.len(), 2, "family and type classifiers");
    assert!(
        part.levels
            .iter()
            .all(|l| l.from_t.is_some() && l.from_e.is_some())
    );
    assert!(
        dir.path()
            .join("exported/cae.artifact/final.safetensors")
            .exists(),
        "--export copied the artifact"
    );

    let data = dir.path().join("data");
    let input = ApplyInput {
        data: data.join("gene_counts.csv"),
        observed: Some(data.join("ephys_values.csv")),
        metadata: Some((data.join("metadata.csv"), "cell_id".into())),
        policy: MissingPolicy::default(),
        ..ApplyInput::default()
    };
    let applied = apply(&artifact, &input).expect("apply");
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let result = session.experiments[0].result.as_ref().expect("result");
    let latent = |name: &str| {
        result
            .latents
            .iter()
            .find(|l| l.name.starts_with(name) && l.name.contains("in-sample"))
            .map(|l| &l.latent)
            .unwrap_or_else(|| panic!("the result keeps the in-sample {name}"))
    };
    let latent_e = applied
        .latent_e
        .as_ref()
        .expect("z_E of the measured cells");
    for (name, applied_latent) in [("z_T", &applied.latent), ("z_E", latent_e)] {
        let stored = stored_rows(latent(name));
        assert!(stored.len() > 80, "{} paired training cells", stored.len());
        for (cell, row) in stored {
            let i = applied
                .cells
                .iter()
                .position(|c| *c == cell)
                .expect("every training cell is applied");
            assert_eq!(
                applied_latent.row(i).to_vec(),
                row,
                "bit-identical in-sample {name} of {cell}"
            );
        }
    }
    assert_eq!(applied.outputs, part.e_features, "E predicted from T");
    let scores = applied.scores.as_ref().expect("E-from-T scores");
    assert!(scores.r2 > 0.1, "in-sample E-from-T R² {}", scores.r2);
    let family = |source: &str| {
        applied
            .labels
            .iter()
            .find(|l| l.level == "family" && l.source == source)
            .unwrap_or_else(|| panic!("family from {source}"))
    };
    for source in ["z_T", "z_E"] {
        let labels = family(source);
        let accuracy = labels.accuracy.expect("scored against the metadata");
        let classes = part.levels[0].classes.len() as f64;
        assert!(
            accuracy > 1.5 / classes,
            "in-sample family accuracy from {source}: {accuracy} ({classes} classes)"
        );
        let confusion = labels.confusion.as_ref().expect("confusion");
        let total: u64 = confusion.counts.iter().flatten().sum();
        assert_eq!(total as usize, labels.scored);
    }
}

/// Each fold's model, applied with `fold`, gives the codes its cross-validation
/// stored for the cells it held out (bit for bit) and, from its own training
/// cells' QDA, the same family accuracy on them as the fold's evaluation.
#[test]
fn every_fold_applied_to_its_held_out_cells_gives_its_cross_validation_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    trained(dir.path());
    let artifact = dir.path().join("s.weights/cae");
    let manifest = Manifest::read(&artifact).expect("artifact");
    let ArtifactModel::Cae(part) = &manifest.model else {
        panic!("a k-CAE artifact, got {}", manifest.model.kind());
    };
    assert_eq!(part.folds.len(), 2, "both folds kept");
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let result = session.experiments[0].result.as_ref().expect("result");
    let held_out_codes: std::collections::HashMap<String, Vec<f64>> = stored_rows(
        &result
            .latents
            .iter()
            .find(|l| l.name == "z_E")
            .expect("the pooled held-out z_E")
            .latent,
    )
    .into_iter()
    .collect();
    let patchbench::session::ResultDetail::Latents { fold_metrics, .. } = &result.detail else {
        panic!("a latent-space result");
    };
    let data = dir.path().join("data");
    let metadata =
        patchbench::data::read_metadata(&data.join("metadata.csv"), "cell_id").expect("metadata");
    for (k, fold) in part.folds.iter().enumerate() {
        let input = ApplyInput {
            data: data.join("gene_counts.csv"),
            observed: Some(data.join("ephys_values.csv")),
            metadata: Some((data.join("metadata.csv"), "cell_id".into())),
            fold: Some(k + 1),
            ..ApplyInput::default()
        };
        let applied = apply(&artifact, &input).expect("apply a fold");
        assert_eq!(applied.model, format!("k-CAE (fold {})", k + 1));
        let latent_e = applied.latent_e.as_ref().expect("z_E");
        let truth = metadata
            .labels(&fold.levels[0].column, &fold.held_out)
            .expect("family labels");
        let predicted = &applied
            .labels
            .iter()
            .find(|l| l.level == "family" && l.source == "z_E")
            .expect("family from z_E")
            .predicted;
        let (mut right, mut scored) = (0, 0);
        for (cell, truth) in fold.held_out.iter().zip(&truth) {
            let i = applied
                .cells
                .iter()
                .position(|c| c == cell)
                .expect("applied");
            assert_eq!(
                latent_e.row(i).to_vec(),
                held_out_codes[cell],
                "fold {} code of held-out {cell}",
                k + 1
            );
            if let (Some(truth), Some(predicted)) = (truth, &predicted[i]) {
                scored += 1;
                right += usize::from(truth == predicted);
            }
        }
        let accuracy = right as f64 / scored as f64;
        let stored = fold_metrics[k]["qda_acc_e_family"];
        assert!(
            (accuracy - stored).abs() < 1e-12,
            "fold {}: {accuracy} applied, {stored} in cross-validation",
            k + 1
        );
    }
    let beyond = ApplyInput {
        data: data.join("gene_counts.csv"),
        fold: Some(3),
        ..ApplyInput::default()
    };
    let error = apply(&artifact, &beyond)
        .expect_err("no fold 3")
        .to_string();
    assert!(
        error.contains("no fold 3") && error.contains("holds 2 cross-validation folds"),
        "{error}"
    );
}

#[test]
fn apply_writes_per_cell_classes_and_reports_them_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    trained(dir.path());
    let output = Command::cargo_bin("patchbench")
        .expect("binary built")
        .current_dir(dir.path())
        .args([
            "apply",
            "exported/cae.artifact",
            "--data",
            "data/gene_counts.csv",
            "--metadata",
            "data/metadata.csv",
            "--id-column",
            "cell_id",
            "--out",
            "cells.csv",
            "--json",
        ])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(json["model"], "k-CAE");
    let classes = json["classes"].as_array().expect("classes");
    assert_eq!(classes.len(), 2, "family and type from z_T (no E given)");
    assert!(
        classes
            .iter()
            .all(|c| c["from"] == "z_T" && c["accuracy"].is_number())
    );
    let text = std::fs::read_to_string(dir.path().join("cells.csv")).expect("csv");
    let header = text.lines().next().expect("header");
    assert!(
        header.contains("latent_1") && header.ends_with("family_from_z_T,type_from_z_T"),
        "{header}"
    );
    let cells = json["cells"].as_u64().expect("cell count") as usize;
    assert!(cells > 100, "{cells} cells applied");
    assert_eq!(text.lines().count(), cells + 1, "a line per cell");
}
