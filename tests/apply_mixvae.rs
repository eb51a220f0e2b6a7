//! `patchbench apply` on a mixture VAE artifact: applied to its own training
//! cells it gives every agent's in-sample categories, the consensus and the
//! latent exactly, and the training scores against the labels.

use std::path::Path;

use assert_cmd::Command;
use patchbench::artifact::{ApplyInput, ArtifactModel, Manifest, MissingPolicy, apply};
use patchbench::session::ResultDetail;

/// A session over `data/` with one two-agent mixture VAE on T, seeds 3 and 4.
const SESSION: &str = r#"(
  version: 1,
  datasets: [(
    name: "sim",
    modalities: [(name: "T", path: "data/gene_counts.csv", orientation: FeaturesByCells,
      recipe: (steps: [ExcludeFeatures(pattern: "^ERCC-"), LibrarySizeNormalise, Log2p1], standardise: AllCells))],
    metadata: (path: "data/metadata.csv", id_column: "cell_id"),
  )],
  experiments: [(
    name: "mix",
    dataset: "sim",
    modalities: ["T"],
    model: MixVae(labels: Some("rna_family"), seeds: [3, 4],
      model: (agents: 2, categories: 3, hidden: 16, hidden_layers: 1, epochs: 4, batch_size: 64)),
  )],
)"#;

fn patchbench(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("patchbench").expect("binary built");
    command.current_dir(dir);
    command
}

/// Simulates data in `dir/data` and trains the session's mixture VAE.
fn trained(dir: &Path) {
    let config = patchbench::data::simulate::SimulationConfig {
        seed: 6,
        cells: 160,
        genes: 120,
        ..Default::default()
    };
    patchbench::data::simulate::simulate(&config)
        .and_then(|d| d.write(&dir.join("data")))
        .expect("simulated files");
    std::fs::write(dir.join("s.ron"), SESSION).expect("write session");
    patchbench(dir)
        .args(["--batch", "s.ron"])
        .assert()
        .success();
}

#[test]
fn a_mixvae_applied_to_its_training_cells_gives_its_in_sample_categories_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    trained(dir.path());
    let artifact = dir.path().join("s.weights/mix");
    let manifest = Manifest::read(&artifact).expect("the run wrote an artifact");
    let ArtifactModel::MixVae(part) = &manifest.model else {
        panic!("a mixVAE artifact, got {}", manifest.model.kind());
    };
    assert_eq!(part.weights, ["agent0.safetensors", "agent1.safetensors"]);
    assert_eq!(part.config.seed, 3, "the first seed's fit is the artifact");
    let types = part.types.as_ref().expect("trained with labels");
    assert_eq!(types.column, "rna_family");
    assert_eq!(types.types.len(), 3);

    let data = dir.path().join("data");
    let input = ApplyInput {
        data: data.join("gene_counts.csv"),
        metadata: Some((data.join("metadata.csv"), "cell_id".into())),
        policy: MissingPolicy::default(),
        ..ApplyInput::default()
    };
    let applied = apply(&artifact, &input).expect("apply");
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let result = session.experiments[0].result.as_ref().expect("result");
    let ResultDetail::MixVae {
        consensus,
        assignments,
        ..
    } = &result.detail
    else {
        panic!("the mixVAE detail");
    };
    let latent = result.latent.as_ref().expect("the stored latent");
    assert_eq!(
        applied.cells, latent.cells,
        "the same cells in the same order"
    );

    let category = |c: usize| Some(format!("c{c}"));
    let applied_consensus = &applied.labels[0];
    assert_eq!(applied_consensus.level, "category");
    let expected: Vec<_> = consensus.iter().map(|&c| category(c)).collect();
    assert_eq!(
        applied_consensus.predicted, expected,
        "consensus categories"
    );
    let applied_types = &applied.labels[1];
    let expected: Vec<_> = consensus.iter().map(|&c| types.types[c].clone()).collect();
    assert_eq!(
        applied_types.predicted, expected,
        "the categories' known types"
    );
    let stored: Vec<f64> = latent.values.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(
        applied.latent.iter().copied().collect::<Vec<_>>(),
        stored,
        "agent 0's state means, bit for bit"
    );

    let summary = applied.categories.as_ref().expect("the category summary");
    assert_eq!(
        summary.agreement, result.metrics["agent_agreement_seed3"],
        "the agents' agreement"
    );
    let scores = summary.scores.as_ref().expect("labels given");
    assert_eq!(scores.accuracy, result.metrics["accuracy_seed3"]);
    assert_eq!(scores.ari, result.metrics["ari_seed3"]);
    // Per cell: the consensus confidence is a probability, and the
    // agreement is the share of agents whose own category is the consensus.
    assert_eq!(applied.outputs, ["confidence", "agreement"]);
    for (cell, row) in applied.predictions.rows().into_iter().enumerate() {
        assert!((0.0..=1.0).contains(&row[0]), "confidence {}", row[0]);
        let same = assignments
            .iter()
            .filter(|a| a.category[cell] == consensus[cell])
            .count();
        assert_eq!(row[1], same as f64 / assignments.len() as f64);
    }
}

#[test]
fn the_command_reports_categories_as_json_and_refuses_a_truncated_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    trained(dir.path());
    let out = patchbench(dir.path())
        .args(["apply", "s.weights/mix", "--data", "data/gene_counts.csv"])
        .args(["--metadata", "data/metadata.csv", "--id-column", "cell_id"])
        .args(["--json", "--out", "p.csv"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["model"], "mixVAE");
    let accuracy = json["categories"]["scores"]["accuracy"].as_f64();
    assert!(accuracy.is_some_and(|a| (0.0..=1.0).contains(&a)), "{json}");
    let csv = std::fs::read_to_string(dir.path().join("p.csv")).expect("csv written");
    let header = csv.lines().next().expect("a header");
    assert!(
        header.starts_with("cell,confidence,agreement,latent_1")
            && header.ends_with("category_from_consensus,type_from_consensus"),
        "{header}"
    );

    let weights = dir.path().join("s.weights/mix/agent1.safetensors");
    let bytes = std::fs::read(&weights).expect("weights");
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("truncate");
    let out = patchbench(dir.path())
        .args(["apply", "s.weights/mix", "--data", "data/gene_counts.csv"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("agent1.safetensors"), "{stderr}");
}
