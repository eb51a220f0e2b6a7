//! `patchbench apply` end to end: a model trained in one session applied to
//! its own cells, to another simulated data set, to data lacking genes, and
//! to bad input.

// Not every shared helper is used here.
#[allow(dead_code)]
mod common;
mod held_out;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use patchbench::artifact::{ApplyInput, MissingPolicy, apply};
use patchbench::data::{Orientation, read_table, write_table};

const SBNN: &str = "Sbnn(encoder: [32], decoder: [32], clusters: 4, kmeans_restarts: 2, \
    pretrain_epochs: 20, frozen_epochs: 20, unfrozen_epochs: 20, genes: 10, pruned_epochs: 40, \
    pretrain_lr: 1e-3, frozen_lr: 1e-3, unfrozen_lr: 1e-3, pruned_lr: 1e-3, grid: 5)";

fn patchbench(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("patchbench").expect("binary built");
    command.current_dir(dir);
    command
}

/// Trains the sBNN on `dir/data` (seed 5) without the [`held_out::cells`] cells
/// (dropped first in both recipes) and returns the artifact folder.
fn trained(dir: &Path) -> PathBuf {
    let data = common::small_dataset(dir, 5);
    let ids: Vec<String> = held_out::cells(&data)
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    let drop = format!("DropCells(cells: [{}])", ids.join(", "));
    let session = common::session_with_model("net", SBNN, 2)
        .replace(
            "recipe: (steps: [Exclude",
            &format!("recipe: (steps: [{drop}, Exclude"),
        )
        .replace("recipe: (steps: []", &format!("recipe: (steps: [{drop}]"));
    std::fs::write(dir.join("s.ron"), session).expect("write session");
    patchbench(dir)
        .args(["--batch", "s.ron", "--export", "exported"])
        .assert()
        .success();
    let artifact = dir.join("s.weights/net");
    assert!(
        artifact.join("manifest.json").exists(),
        "the run wrote an artifact"
    );
    let copy = dir.join("exported/net.artifact");
    for file in ["manifest.json", "final.safetensors"] {
        assert_eq!(
            std::fs::read(artifact.join(file)).expect("artifact file"),
            std::fs::read(copy.join(file)).expect("--export copied it"),
        );
    }
    artifact
}

/// The held-out cells' counts and ephys, written to `dir/new`.
fn new_cells(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let keep = held_out::cells(&data);
    let new = dir.join("new");
    held_out::write_cells(&data, &keep, &new, 0.0);
    new
}

/// `patchbench apply ARTIFACT --data CELLS/gene_counts.csv --observed
/// CELLS/ephys_values.csv --json EXTRA...` run in `dir`: its JSON object.
fn apply_json(dir: &Path, artifact: &Path, cells: &Path, extra: &[&str]) -> serde_json::Value {
    let out = patchbench(dir)
        .arg("apply")
        .arg(artifact)
        .arg("--data")
        .arg(cells.join("gene_counts.csv"))
        .arg("--observed")
        .arg(cells.join("ephys_values.csv"))
        .arg("--json")
        .args(extra)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn input(data: PathBuf, observed: Option<PathBuf>, policy: MissingPolicy) -> ApplyInput {
    ApplyInput {
        data,
        observed,
        policy,
        ..ApplyInput::default()
    }
}

#[test]
fn applying_to_the_training_cells_reproduces_the_in_sample_latents_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let artifact = trained(dir.path());
    let data = dir.path().join("data");
    let applied = apply(
        &artifact,
        &input(
            data.join("gene_counts.csv"),
            Some(data.join("ephys_values.csv")),
            MissingPolicy::default(),
        ),
    )
    .expect("apply");
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let result = session.experiments[0].result.as_ref().expect("result");
    let latent = result.latent.as_ref().expect("latent");
    let dims = applied.latent.ncols();
    let mut compared = 0;
    for (i, cell) in latent.cells.iter().enumerate() {
        let row = applied
            .cells
            .iter()
            .position(|c| c == cell)
            .expect("every training cell is applied");
        let stored: Vec<f64> = latent.values[i * dims..(i + 1) * dims]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        assert_eq!(
            applied.latent.row(row).to_vec(),
            stored,
            "bit-identical latent code of {cell}"
        );
        compared += 1;
    }
    assert!(compared > 80, "{compared} training cells compared");
    assert!(applied.report.missing.is_empty() && applied.report.skipped.is_empty());
    let scores = applied.scores.expect("scores");
    assert!(scores.r2 > 0.3, "in-sample R² {}", scores.r2);
}

#[test]
fn a_model_predicts_held_out_cells_and_missing_genes_follow_the_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let artifact = trained(dir.path());
    let other = new_cells(dir.path());
    let counts = other.join("gene_counts.csv");
    let ephys = other.join("ephys_values.csv");
    let applied = apply(
        &artifact,
        &input(
            counts.clone(),
            Some(ephys.clone()),
            MissingPolicy::default(),
        ),
    )
    .expect("apply");
    let r2 = applied.scores.as_ref().expect("scores").r2;
    assert!(r2 > 0.2, "R² on cells the model never saw: {r2}");
    assert!(!applied.report.transposed);

    // Remove 10% of the genes, among them two of the model's.
    let manifest = patchbench::artifact::Manifest::read(&artifact).expect("manifest");
    let patchbench::artifact::ArtifactModel::Sbnn(part) = &manifest.model else {
        panic!("an sBNN artifact");
    };
    let table = read_table(&counts, Orientation::FeaturesByCells).expect("counts");
    let mut removed: Vec<String> = part.genes[..2].to_vec();
    for f in &table.features {
        if removed.len() * 10 >= table.features.len() {
            break;
        }
        if !removed.contains(f) && !part.genes.contains(f) {
            removed.push(f.clone());
        }
    }
    let keep: Vec<usize> = (0..table.features.len())
        .filter(|&j| !removed.contains(&table.features[j]))
        .collect();
    let reduced = table.select_features(&keep).expect("columns");
    let reduced_path = other.join("reduced.csv");
    write_table(&reduced, &reduced_path, Orientation::FeaturesByCells).expect("write");

    let err = apply(
        &artifact,
        &input(
            reduced_path.clone(),
            Some(ephys.clone()),
            MissingPolicy::default(),
        ),
    )
    .expect_err("2 of 10 genes missing is above 5%")
    .to_string();
    assert!(
        err.contains("2 of the model's 10 genes are missing")
            && err.contains(&part.genes[0])
            && err.contains(&part.genes[1]),
        "{err}"
    );
    for policy in [MissingPolicy::Zero, MissingPolicy::TrainingMean] {
        let applied = apply(
            &artifact,
            &input(reduced_path.clone(), Some(ephys.clone()), policy),
        )
        .expect("apply with a policy");
        assert_eq!(applied.report.missing, part.genes[..2]);
        assert_eq!(applied.report.policy, policy);
        assert_eq!(applied.report.recipe_missing, removed.len());
        assert!(applied.scores.expect("scores").r2.is_finite());
    }
}

#[test]
fn the_command_writes_csv_and_h5ad_predictions_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let artifact = trained(dir.path());
    let other = new_cells(dir.path());
    let json = apply_json(
        dir.path(),
        &artifact,
        &other,
        &["--out", "p.csv", "--calibrate", "10"],
    );
    assert!(json["metrics"]["r2"].as_f64().is_some(), "{json}");
    assert_eq!(json["alignment"]["missing"], serde_json::json!([]));
    assert_eq!(
        json["calibration"]["cells"].as_array().map(Vec::len),
        Some(10)
    );
    let csv = read_table(&dir.path().join("p.csv"), Orientation::CellsByFeatures).expect("csv");
    assert_eq!(csv.cells.len(), 40);
    assert!(csv.features.contains(&"latent_1".to_string()));

    patchbench(dir.path())
        .arg("apply")
        .arg(&artifact)
        .arg("--data")
        .arg(other.join("gene_counts.csv"))
        .args(["--out", "p.h5ad"])
        .assert()
        .success();
    let source = patchbench::data::MatrixSource::new(
        dir.path().join("p.h5ad"),
        Orientation::CellsByFeatures,
    );
    let h5ad = patchbench::data::read_matrix(&source)
        .expect("h5ad")
        .into_dense();
    assert_eq!(h5ad.cells, csv.cells);
    assert_eq!(h5ad.features, csv.features);
    for (a, b) in h5ad.values.iter().zip(&csv.values) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// The held-out data set the models are going to meet lives elsewhere: the
/// artifact folder alone, moved away from its session, training data and
/// weights (all deleted), applies with the same results.
#[test]
fn an_artifact_moved_away_from_everything_else_applies_the_same() {
    let home = tempfile::tempdir().expect("tempdir");
    let artifact = trained(home.path());
    let cells = new_cells(home.path());
    let at_home = apply_json(home.path(), &artifact, &cells, &[]);

    let away = tempfile::tempdir().expect("tempdir");
    let moved = away.path().join("model");
    let new = away.path().join("new");
    for (from, to) in [(&artifact, &moved), (&cells, &new)] {
        std::fs::create_dir(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("list") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
    drop(home);
    let moved_json = apply_json(away.path(), &moved, &new, &[]);
    assert_eq!(moved_json["metrics"], at_home["metrics"]);
    assert_eq!(moved_json["cells"], at_home["cells"]);
    assert!(
        moved_json["metrics"]["r2"].as_f64().is_some(),
        "{moved_json}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let artifact = trained(dir.path());
    let data = dir.path().join("data");
    let counts = data.join("gene_counts.csv");

    // A data set sharing no gene with the model.
    let text = std::fs::read_to_string(&counts).expect("counts");
    let renamed: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                format!("{l}\n")
            } else {
                format!("x{l}\n")
            }
        })
        .collect();
    let foreign = dir.path().join("foreign.csv");
    std::fs::write(&foreign, renamed).expect("write");
    let err = apply(&artifact, &input(foreign, None, MissingPolicy::Zero))
        .expect_err("no shared genes")
        .to_string();
    assert!(
        err.contains("foreign.csv") && err.contains("share none"),
        "{err}"
    );

    // A non-numeric value.
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<&str> = lines[3].split(',').collect();
    fields[2] = "lots";
    lines[3] = fields.join(",");
    let garbled = dir.path().join("garbled.csv");
    std::fs::write(&garbled, lines.join("\n") + "\n").expect("write");
    let err = apply(&artifact, &input(garbled, None, MissingPolicy::Zero))
        .expect_err("non-numeric")
        .to_string();
    assert!(err.contains("garbled.csv") && err.contains("lots"), "{err}");

    // A truncated weights file, then a manifest of another version.
    let weights = artifact.join("final.safetensors");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
    let err = apply(&artifact, &input(counts.clone(), None, MissingPolicy::Zero))
        .expect_err("truncated")
        .to_string();
    assert!(err.contains("final.safetensors"), "{err}");
    let manifest = artifact.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, text.replace("\"version\": 1", "\"version\": 99")).expect("write");
    let err = apply(&artifact, &input(counts.clone(), None, MissingPolicy::Zero))
        .expect_err("other version")
        .to_string();
    assert!(
        err.contains("version 99") && err.contains("reads version 1"),
        "{err}"
    );
    std::fs::write(&manifest, &text[..text.len() / 2]).expect("truncate");
    let err = apply(&artifact, &input(counts, None, MissingPolicy::Zero))
        .expect_err("truncated manifest")
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains("not a complete JSON"),
        "{err}"
    );
}

#[test]
fn an_srrr_artifact_reproduces_its_in_sample_latent_scores_and_predicts_ephys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::small_dataset(dir.path(), 5);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2))
        .expect("write session");
    patchbench(dir.path())
        .args(["--batch", "s.ron", "--export", "exported"])
        .assert()
        .success();
    let artifact = dir.path().join("exported/rrr.artifact");
    let manifest = patchbench::artifact::Manifest::read(&artifact).expect("manifest");
    let patchbench::artifact::ArtifactModel::Srrr(part) = &manifest.model else {
        panic!("an sRRR artifact, got {}", manifest.model.kind());
    };
    assert_eq!(part.w.len(), part.genes.len());
    let applied = apply(
        &artifact,
        &input(
            data.join("gene_counts.csv"),
            Some(data.join("ephys_values.csv")),
            MissingPolicy::default(),
        ),
    )
    .expect("apply");
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let result = session.experiments[0].result.as_ref().expect("result");
    let latent = result.latent.as_ref().expect("latent scores X W");
    assert_eq!(applied.latent.ncols(), latent.dims);
    for (i, cell) in latent.cells.iter().enumerate() {
        let row = applied
            .cells
            .iter()
            .position(|c| c == cell)
            .expect("every training cell is applied");
        for d in 0..latent.dims {
            let stored = f64::from(latent.values[i * latent.dims + d]);
            let got = applied.latent[[row, d]];
            // The result stores the scores as f32.
            assert!(
                (got - stored).abs() <= 1e-5 * stored.abs().max(1.0),
                "{cell} component {d}: applied {got}, stored {stored}"
            );
        }
    }
    let r2 = applied.scores.expect("scores").r2;
    assert!(r2 > 0.2, "in-sample R² {r2}");
}
