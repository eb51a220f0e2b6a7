//! A model trained on one simulated data set, applied to a second one drawn
//! from the same generative types with another seed (`patchbench simulate
//! --cells-seed`), whole and with 10% of its genes removed.

// Not every shared helper is used here.
#[allow(dead_code)]
mod common;

use std::path::Path;

use assert_cmd::Command;
use patchbench::data::{Orientation, read_table, write_table};

const CAE: &str = "Cae(model: (steps: 300, batch_size: 32, paired_per_batch: 24, latent_dims: 3, \
    arms: [(hidden: [24]), (hidden: [24])]), analysis: (gmm_components: [3]))";

fn patchbench(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("patchbench").expect("binary built");
    command.current_dir(dir);
    command
}

fn simulate(dir: &Path, out: &str, extra: &[&str]) {
    let output = patchbench(dir)
        .args(["simulate", "--out", out, "--seed", "5", "--cells", "160"])
        .args(["--genes", "120"])
        .args(extra)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
}

/// `patchbench apply` of the k-CAE to `counts` with the new set's ephys and
/// metadata, `missing` as the policy; the JSON on success, stderr otherwise.
fn apply(dir: &Path, counts: &str, missing: &str) -> Result<serde_json::Value, String> {
    let output = patchbench(dir)
        .args(["apply", "s.weights/cae", "--data", counts])
        .args(["--observed", "new/ephys_values.csv"])
        .args([
            "--metadata",
            "new/metadata.csv",
            "--missing",
            missing,
            "--json",
        ])
        .output()
        .expect("runs");
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("JSON"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The accuracy of the families predicted from z_T.
fn family_accuracy(json: &serde_json::Value) -> f64 {
    json["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|c| c["level"] == "family" && c["from"] == "z_T")
        .and_then(|c| c["accuracy"].as_f64())
        .unwrap_or_else(|| panic!("family from z_T in {json}"))
}

#[test]
fn a_model_classifies_cells_of_a_second_simulated_data_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    simulate(dir.path(), "data", &[]);
    simulate(dir.path(), "new", &["--cells-seed", "99"]);
    let counts = |folder: &str| {
        read_table(
            &dir.path().join(folder).join("gene_counts.csv"),
            Orientation::FeaturesByCells,
        )
        .expect("counts")
    };
    let (trained_on, new) = (counts("data"), counts("new"));
    assert_eq!(trained_on.features, new.features, "the same genes");
    assert_ne!(trained_on.values, new.values, "other cells");

    let session = common::session_with_model("cae", CAE, 2);
    std::fs::write(dir.path().join("s.ron"), session).expect("session");
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");

    // Three families: chance is about 1/3.
    let whole = apply(dir.path(), "new/gene_counts.csv", "refuse").expect("applied");
    let accuracy = family_accuracy(&whole);
    assert!(
        accuracy > 0.6,
        "family from z_T on the new cells: {accuracy}"
    );
    assert_eq!(
        whole["alignment"]["missing"].as_array().map(Vec::len),
        Some(0)
    );

    // Remove every tenth gene: the default policy refuses and lists them, a
    // policy that fills them in runs and reports them.
    let keep: Vec<usize> = (0..new.features.len()).filter(|j| j % 10 != 3).collect();
    let removed: Vec<&String> = (0..new.features.len())
        .filter(|j| j % 10 == 3)
        .map(|j| &new.features[j])
        .collect();
    let reduced = new.select_features(&keep).expect("genes");
    write_table(
        &reduced,
        &dir.path().join("new/reduced.csv"),
        Orientation::FeaturesByCells,
    )
    .expect("write");
    let refused = apply(dir.path(), "new/reduced.csv", "refuse").expect_err("refused");
    assert!(refused.contains("genes are missing"), "{refused}");
    let filled = apply(dir.path(), "new/reduced.csv", "training-mean").expect("applied");
    let missing: Vec<&str> = filled["alignment"]["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .filter_map(|g| g.as_str())
        .collect();
    assert!(!missing.is_empty(), "{filled}");
    assert!(
        missing.iter().all(|g| removed.iter().any(|r| r == g)),
        "{missing:?} are among the removed genes {removed:?}"
    );
    assert!(
        missing.iter().all(|g| refused.contains(g)),
        "the refusal lists {missing:?}: {refused}"
    );
    assert_eq!(filled["alignment"]["policy"], "TrainingMean", "{filled}");
    let accuracy = family_accuracy(&filled);
    assert!(
        accuracy > 0.5,
        "family from z_T without 10% of genes: {accuracy}"
    );
}
