//! Writing `.h5ad` files: what patchbench writes it reads back, and Python's
//! anndata opens it with the same numbers (skipped, with a message, where
//! Python or anndata is absent).

use std::path::Path;
use std::process::Command;

use ndarray::array;
use patchbench::data::h5ad::{H5adLatents, H5adSelection, read_h5ad, write_latents_h5ad};
use patchbench::data::simulate::{EPHYS_NOISE, SparseCountsConfig, write_sparse_counts_h5ad};
use patchbench::data::{LoadedTable, read_metadata};
use tempfile::TempDir;

/// Runs `script` with Python's anndata on `path`; `None` (after saying why) where anndata is absent.
///
/// The tests run in parallel: patchbench marks the HDF5 library's descriptors
/// close-on-exec, so the Python child of one test does not inherit the other
/// test's open file and its lock.
fn with_anndata(script: &str, path: &Path) -> Option<String> {
    let probe = Command::new("python3")
        .args(["-c", "import anndata"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipped: python3 with anndata is not installed (scripts/install-deps.sh installs it)"
        );
        return None;
    }
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "anndata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[test]
fn latents_and_labels_round_trip_through_anndata() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("latents.h5ad");
    let cells: Vec<String> = ["c1", "c2", "c3"].iter().map(|c| (*c).to_owned()).collect();
    let latents = array![[0.5, -1.0], [1.5, 2.0], [-0.25, 0.125]];
    let obsm = vec![("X_mixvae".to_owned(), latents.clone())];
    let obs = vec![
        (
            "assigned".to_owned(),
            vec![
                Some("Vip".to_owned()),
                Some("Sst".to_owned()),
                Some("Vip".to_owned()),
            ],
        ),
        (
            "known".to_owned(),
            vec![Some("Vip".to_owned()), None, Some("Pvalb".to_owned())],
        ),
    ];
    write_latents_h5ad(
        &path,
        &H5adLatents {
            cells: &cells,
            obsm: &obsm,
            obs: &obs,
        },
    )
    .unwrap();
    // patchbench reads it back: the latents as an obsm modality, the labels as metadata.
    let selection = H5adSelection {
        obsm: Some("X_mixvae".into()),
        ..H5adSelection::default()
    };
    let table = read_h5ad(&path, &selection).unwrap().into_dense();
    assert_eq!(table.cells, cells);
    assert_eq!(table.values, latents);
    let metadata = read_metadata(&path, "obs_names").unwrap();
    assert_eq!(metadata.label("assigned", "c2"), Some("Sst"));
    assert_eq!(metadata.label("known", "c2"), None);
    let script = "import sys, anndata\n\
                  a = anndata.read_h5ad(sys.argv[1])\n\
                  z = a.obsm['X_mixvae']\n\
                  print(a.n_obs, list(a.obs_names), z.shape, float(z.sum()), \
                  list(a.obs['assigned']), a.obs['known'].isna().tolist())";
    if let Some(printed) = with_anndata(script, &path) {
        assert_eq!(
            printed,
            "3 ['c1', 'c2', 'c3'] (3, 2) 2.875 ['Vip', 'Sst', 'Vip'] [False, True, False]"
        );
    }
}

#[test]
fn streamed_sparse_counts_read_back_and_open_in_anndata() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("counts.h5ad");
    let config = SparseCountsConfig {
        cells: 5000,
        genes: 120,
        density: 0.05,
        types: 4,
        seed: 3,
        ephys_features: 6,
    };
    let stored = write_sparse_counts_h5ad(&path, &config).unwrap();
    // 5000 x 120 x 5% = 30,000 expected; binomial SD about 170.
    assert!((29_000..31_000).contains(&stored), "{stored}");
    let LoadedTable::Sparse(table) = read_h5ad(&path, &H5adSelection::default()).unwrap() else {
        panic!("X should read as CSR");
    };
    assert_eq!(table.values.shape(), (5000, 120));
    assert_eq!(table.values.nnz(), stored);
    assert!(
        table
            .values
            .data()
            .iter()
            .all(|&v| v >= 1.0 && v.fract() == 0.0)
    );
    assert_eq!(table.cells[4096], "cell0004096");
    let metadata = read_metadata(&path, "obs_names").unwrap();
    assert_eq!(metadata.label("type", "cell0000006"), Some("type2"));
    // The paired modality: one row per cell, each feature spread by
    // EPHYS_NOISE around its type's mean, the means differing between types.
    let ephys = H5adSelection {
        obsm: Some("ephys".into()),
        ..H5adSelection::default()
    };
    let LoadedTable::Dense(e) = read_h5ad(&path, &ephys).unwrap() else {
        panic!("obsm['ephys'] should read as a dense matrix");
    };
    assert_eq!(e.values.dim(), (5000, 6));
    assert_eq!(e.cells, table.cells);
    for f in 0..6 {
        let mut type_means = Vec::new();
        for t in 0..4 {
            let values: Vec<f64> = (t..5000).step_by(4).map(|i| e.values[[i, f]]).collect();
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert!(
                (sd - EPHYS_NOISE).abs() < 0.05,
                "feature {f}, type {t}: SD {sd}"
            );
            type_means.push(mean);
        }
        let spread = type_means.iter().cloned().fold(f64::MIN, f64::max)
            - type_means.iter().cloned().fold(f64::MAX, f64::min);
        assert!(spread > 0.1, "feature {f}: type means {type_means:?}");
    }
    // The same config writes the same counts, with or without the ephys.
    let again = dir.path().join("again.h5ad");
    let without_ephys = SparseCountsConfig {
        ephys_features: 0,
        ..config.clone()
    };
    write_sparse_counts_h5ad(&again, &without_ephys).unwrap();
    assert!(read_h5ad(&again, &ephys).is_err());
    let LoadedTable::Sparse(second) = read_h5ad(&again, &H5adSelection::default()).unwrap() else {
        panic!("X should read as CSR");
    };
    assert_eq!(second.values, table.values);
    let total: f64 = table.values.data().iter().map(|&v| f64::from(v)).sum();
    let script = "import sys, anndata\n\
                  a = anndata.read_h5ad(sys.argv[1])\n\
                  print(type(a.X).__name__, a.shape, a.X.nnz, float(a.X.sum()), a.obsm['ephys'].shape)";
    if let Some(printed) = with_anndata(script, &path) {
        assert_eq!(
            printed,
            format!("csr_matrix (5000, 120) {stored} {total:?} (5000, 6)")
        );
    }
}
