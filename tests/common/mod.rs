//! Helpers shared by the integration tests: small generated datasets and sessions.

use std::path::{Path, PathBuf};

use patchbench::data::simulate::{SimulationConfig, simulate};

/// Writes a small simulated dataset into `dir/data` and returns that folder.
pub fn small_dataset(dir: &Path, seed: u64) -> PathBuf {
    let config = SimulationConfig {
        seed,
        cells: 160,
        genes: 120,
        ..SimulationConfig::default()
    };
    let data = simulate(&config).expect("simulation of a small valid config");
    let folder = dir.join("data");
    data.write(&folder).expect("writing the simulated files");
    folder
}

/// A session over `data/` (relative to the session file) with one sRRR experiment.
pub fn srrr_session(name: &str, rank: usize) -> String {
    session_with_model(
        name,
        &format!("Srrr(rank: {rank}, target_genes: 10, lambdas: [0.05, 0.1, 0.2, 0.3, 0.5, 0.8])"),
        5,
    )
}

/// A session over `data/` with one experiment `name` of `model` (RON text)
/// on T and E, evaluated with `folds` shuffled folds.
pub fn session_with_model(name: &str, model: &str, folds: usize) -> String {
    format!(
        r#"(
  version: 1,
  datasets: [
    (
      name: "sim",
      modalities: [
        (name: "T", path: "data/gene_counts.csv", orientation: FeaturesByCells,
         recipe: (steps: [ExcludeFeatures(pattern: "^ERCC-"), LibrarySizeNormalise, Log2p1], standardise: AllCells)),
        (name: "E", path: "data/ephys_values.csv", orientation: CellsByFeatures,
         recipe: (steps: [], standardise: AllCells)),
      ],
      metadata: (path: "data/metadata.csv", id_column: "cell_id"),
      fetch: "run patchbench simulate",
    ),
  ],
  experiments: [
    (
      name: "{name}",
      dataset: "sim",
      modalities: ["T", "E"],
      model: {model},
      protocol: (folds: {folds}, seed: 1, scheme: Shuffled),
    ),
  ],
)
"#
    )
}
