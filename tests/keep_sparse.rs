//! `keep_sparse: true` in a recipe: the CSR table of an `.h5ad` goes to the
//! model without a dense copy, and the mixture VAE and the k-CAE, gathering
//! their mini-batches from it, give the results of the same session with
//! the table made dense, metric for metric; models that need the whole
//! table dense refuse it by name.

use std::collections::BTreeMap;
use std::path::Path;

use patchbench::data::PreparedTable;
use patchbench::data::simulate::{SparseCountsConfig, write_sparse_counts_h5ad};
use patchbench::progress::Quiet;
use patchbench::runner::{PreparedDataset, load_dataset, run_experiment};
use patchbench::session::{Session, parse};

/// Two datasets over one simulated `.h5ad`, the same recipes except for
/// `keep_sparse` on the counts, and the same experiments on each.
fn session(genes_recipe: &str) -> Session {
    let dataset = |name: &str, keep: bool| {
        format!(
            r#"(
    name: "{name}",
    modalities: [
      (name: "counts", path: "counts.h5ad", orientation: CellsByFeatures,
       recipe: (steps: [{genes_recipe}], standardise: AllCells, keep_sparse: {keep})),
      (name: "ephys", path: "counts.h5ad", orientation: CellsByFeatures, obsm: "ephys",
       recipe: (steps: [], standardise: AllCells, keep_sparse: {keep})),
    ],
    metadata: (path: "counts.h5ad", id_column: "obs_names"),
  )"#
        )
    };
    let experiments = |dataset: &str| {
        format!(
            r#"(
    name: "cae_{dataset}",
    dataset: "{dataset}",
    modalities: ["counts", "ephys"],
    model: Cae(model: (steps: 60, batch_size: 32, paired_per_batch: 24, log_every: 20),
               analysis: (levels: [("type", "type")], gmm_components: [3], gmm: (inits: 1))),
    protocol: (folds: 3, seed: 42, scored_folds: Some(1)),
  ),
  (
    name: "mixvae_{dataset}",
    dataset: "{dataset}",
    modalities: ["counts"],
    model: MixVae(labels: Some("type"),
                  model: (agents: 2, categories: 3, epochs: 4, batch_size: 64, seed: 3)),
  ),
  (
    name: "srrr_{dataset}",
    dataset: "{dataset}",
    modalities: ["counts", "ephys"],
    model: Srrr(rank: 2, target_genes: 8),
  )"#
        )
    };
    let text = format!(
        "(\n  version: 1,\n  datasets: [{}, {}],\n  experiments: [{}, {}],\n)",
        dataset("dense", false),
        dataset("kept", true),
        experiments("dense"),
        experiments("kept")
    );
    parse(&text, Path::new("s.ron")).expect("valid session")
}

fn counts(data: &PreparedDataset) -> &PreparedTable {
    &data.data.modality("counts").expect("counts").table
}

fn simulated(dir: &Path) {
    let config = SparseCountsConfig {
        cells: 600,
        genes: 300,
        density: 0.1,
        types: 3,
        seed: 2,
        ephys_features: 5,
    };
    write_sparse_counts_h5ad(&dir.join("counts.h5ad"), &config).expect("written");
}

fn load(session: &Session, name: &str, dir: &Path) -> PreparedDataset {
    let spec = session
        .datasets
        .iter()
        .find(|d| d.name == name)
        .expect("dataset");
    load_dataset(spec, dir).expect("loads")
}

/// The experiment's metrics, less its timings.
fn metrics(session: &Session, name: &str, data: &PreparedDataset) -> BTreeMap<String, f64> {
    let experiment = session
        .experiments
        .iter()
        .find(|e| e.name == name)
        .expect("experiment");
    let result = run_experiment(experiment, data, &mut Quiet).expect("runs");
    result
        .metrics
        .into_iter()
        .filter(|(key, _)| !key.contains("seconds"))
        .collect()
}

fn assert_same_metrics(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (key, value) in a {
        assert_eq!(
            value.to_bits(),
            b[key].to_bits(),
            "{key}: {value} vs {}",
            b[key]
        );
    }
}

#[test]
fn models_on_a_table_kept_sparse_give_the_dense_tables_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    simulated(dir.path());
    let session = session("LibrarySizeNormalise, Log1p, SelectGenes(n: 50, method: Seurat())");
    let (dense, kept) = (
        load(&session, "dense", dir.path()),
        load(&session, "kept", dir.path()),
    );
    assert!(counts(&kept).is_sparse() && !counts(&dense).is_sparse());
    assert_eq!(counts(&kept).shape(), (600, 50));
    assert_eq!(counts(&kept).features(), counts(&dense).features());
    // The obsm matrix is dense in the file and stays dense.
    let ephys = &kept.data.modality("ephys").expect("ephys").table;
    assert!(matches!(ephys, PreparedTable::Dense(_)));
    // The same fitted recipe (z-scoring statistics included) for new cells.
    assert_eq!(kept.fitted, dense.fitted);
    for model in ["cae", "mixvae"] {
        let (d, k) = (
            metrics(&session, &format!("{model}_dense"), &dense),
            metrics(&session, &format!("{model}_kept"), &kept),
        );
        assert!(d.len() > 3, "{model}: {d:?}");
        assert_same_metrics(&d, &k);
    }
    let srrr = session
        .experiments
        .iter()
        .find(|e| e.name == "srrr_kept")
        .expect("experiment");
    let err = run_experiment(srrr, &kept, &mut Quiet).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("modality `counts` of dataset `kept` is kept sparse")
            && message.contains("drop `keep_sparse`"),
        "{message}"
    );
}

/// Without `SelectGenes` every gene goes to the model; the kept table is the
/// loaded CSR matrix, normalised and logged, and the mixture VAE trains on
/// all 300 genes from it.
#[test]
fn every_gene_trains_from_the_csr_matrix() {
    let dir = tempfile::tempdir().expect("tempdir");
    simulated(dir.path());
    let session = session("LibrarySizeNormalise, Log1p");
    let (dense, kept) = (
        load(&session, "dense", dir.path()),
        load(&session, "kept", dir.path()),
    );
    let table = &kept.data.modality("counts").expect("counts").table;
    let PreparedTable::Sparse(input) = table else {
        panic!("the counts were made dense")
    };
    assert_eq!(table.shape(), (600, 300));
    assert!(input.table.values.nnz() < 600 * 300 / 5);
    let scaling = input.scaling.as_ref().expect("z-scoring statistics");
    assert_eq!(scaling.means.len(), 300);
    assert_same_metrics(
        &metrics(&session, "mixvae_dense", &dense),
        &metrics(&session, "mixvae_kept", &kept),
    );
}
