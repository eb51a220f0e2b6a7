//! Preprocessing on CSR equals preprocessing on the dense copy (property
//! tests on random sparse matrices), and the `Seurat` and `SeuratV3` gene
//! selections equal scanpy's `highly_variable_genes(flavor="seurat")` and
//! `(flavor="seurat_v3")` on a fixture whose golden output scanpy wrote
//! (`scripts/make-fixtures.py`).

use std::collections::BTreeSet;
use std::path::Path;

use ndarray::Array2;
use patchbench::data::h5ad::{H5adSelection, read_h5ad};
use patchbench::data::{FeatureTable, LoadedTable, SparseTable};
use patchbench::models::cae::data::Rows;
use patchbench::prep::{GeneSelection, Prepared, Recipe, Standardise, Step, StepDetail};
use proptest::prelude::*;

/// A cells x genes matrix with about `density` of its entries non-zero, each
/// an `f32` value (what a CSR table stores), so that the dense and the CSR
/// recipe start from the same numbers.
fn sparse_matrix(integers: bool) -> impl Strategy<Value = FeatureTable> {
    (3_usize..25, 4_usize..20, 0.1_f64..0.6).prop_flat_map(move |(cells, genes, density)| {
        let value = if integers {
            (1_u32..60).prop_map(f64::from).boxed()
        } else {
            (0.01_f32..80.0).prop_map(f64::from).boxed()
        };
        proptest::collection::vec((proptest::bool::weighted(density), value), cells * genes)
            .prop_map(move |entries| FeatureTable {
                cells: (0..cells).map(|i| format!("c{i}")).collect(),
                features: (0..genes).map(|j| format!("g{j}")).collect(),
                values: Array2::from_shape_vec(
                    (cells, genes),
                    entries
                        .into_iter()
                        .map(|(present, v)| if present { v } else { 0.0 })
                        .collect(),
                )
                .unwrap_or_default(),
            })
    })
}

fn run(
    recipe: &Recipe,
    table: &FeatureTable,
) -> (Result<Prepared, String>, Result<Prepared, String>) {
    let dense = recipe.apply(table.clone()).map_err(|e| e.to_string());
    let sparse = recipe
        .apply_loaded(LoadedTable::Sparse(SparseTable::from_dense(table)))
        .map_err(|e| e.to_string());
    (dense, sparse)
}

/// How far a CSR result may be from the dense one, relative to the value
/// (or 1). The dense recipe keeps `f64` throughout; the CSR one computes each
/// value in `f64` but stores it as `f32` (a relative rounding of at most
/// 2^-24, about 6e-8) after the normalisation and again after the log, and
/// z-scoring divides those errors by a gene's standard deviation. With `f64`
/// storage this was 1e-9, the order of floating-point sums.
const TOLERANCE: f64 = 1e-5;

fn assert_equal(dense: &Result<Prepared, String>, sparse: &Result<Prepared, String>) {
    match (dense, sparse) {
        (Ok(d), Ok(s)) => {
            assert_eq!(d.table.cells(), s.table.cells());
            assert_eq!(d.table.features(), s.table.features());
            for (a, b) in d
                .table
                .dense()
                .unwrap()
                .values
                .iter()
                .zip(&s.table.dense().unwrap().values)
            {
                assert!((a - b).abs() <= TOLERANCE * a.abs().max(1.0), "{a} vs {b}");
            }
            assert_eq!(d.report.steps.len(), s.report.steps.len());
            for (a, b) in d.report.steps.iter().zip(&s.report.steps) {
                assert_eq!(a.dropped_cells, b.dropped_cells);
                assert_eq!(a.dropped_features, b.dropped_features);
                assert_eq!(
                    (a.cells_after, a.features_after),
                    (b.cells_after, b.features_after)
                );
            }
        }
        (Err(d), Err(s)) => {
            // The same failure; figures in the text may differ in the last digits.
            let head = |text: &str| text.split(':').next().unwrap_or_default().to_owned();
            assert_eq!(head(d), head(s), "{d} / {s}");
        }
        (d, s) => panic!(
            "dense and sparse disagree: {:?} / {:?}",
            d.as_ref().map(|p| p.table.features()),
            s.as_ref().map(|p| p.table.features())
        ),
    }
}

/// The features a recipe kept, as a set.
fn feature_set(prepared: &Prepared) -> BTreeSet<&str> {
    prepared
        .table
        .features()
        .iter()
        .map(String::as_str)
        .collect()
}

fn recipe(steps: Vec<Step>, standardise: Standardise) -> Recipe {
    Recipe {
        steps,
        standardise,
        keep_sparse: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// `keep_sparse` hands the model the CSR table with its z-scoring; each
    /// row it gathers is the densified table's row as `f32`, bit for bit,
    /// and a recipe that fails fails the same way.
    #[test]
    fn rows_of_a_table_kept_sparse_are_the_dense_rows(table in sparse_matrix(false)) {
        let steps = vec![Step::DropZeroLibrary, Step::LibrarySizeNormalise, Step::Log1p];
        let mut kept = recipe(steps, Standardise::AllCells);
        kept.keep_sparse = true;
        let dense = recipe(kept.steps.clone(), Standardise::AllCells);
        let loaded = || LoadedTable::Sparse(SparseTable::from_dense(&table));
        match (kept.apply_loaded(loaded()), dense.apply_loaded(loaded())) {
            (Ok(k), Ok(d)) => {
                prop_assert!(k.table.is_sparse());
                let d = d.table.dense().unwrap();
                prop_assert_eq!(k.table.shape(), d.values.dim());
                let mut row = Vec::new();
                for (i, want) in d.values.rows().into_iter().enumerate() {
                    row.clear();
                    k.table.push_row(i, &mut row);
                    let want: Vec<u32> = want.iter().map(|&v| (v as f32).to_bits()).collect();
                    let got: Vec<u32> = row.iter().map(|v| v.to_bits()).collect();
                    prop_assert_eq!(got, want, "row {}", i);
                }
            }
            (Err(k), Err(d)) => prop_assert_eq!(k.to_string(), d.to_string()),
            (k, d) => panic!("kept and dense disagree: {:?} / {:?}", k.map(|_| ()), d.map(|_| ())),
        }
    }

    #[test]
    fn normalise_log_and_z_score_agree(table in sparse_matrix(false)) {
        let recipe = recipe(
            vec![Step::DropZeroLibrary, Step::LibrarySizeNormalise, Step::Log2p1],
            Standardise::AllCells,
        );
        let (dense, sparse) = run(&recipe, &table);
        assert_equal(&dense, &sparse);
    }

    #[test]
    fn exclusion_variance_selection_and_log1p_agree(table in sparse_matrix(false), n in 1_usize..4) {
        let recipe = recipe(
            vec![
                Step::ExcludeFeatures { pattern: "^g1$".into() },
                Step::SelectGenes { n, method: GeneSelection::Variance },
                Step::DropZeroLibrary,
                Step::LibrarySizeNormalise,
                Step::Log1p,
            ],
            Standardise::None,
        );
        let (dense, sparse) = run(&recipe, &table);
        assert_equal(&dense, &sparse);
    }

    #[test]
    fn mean_dropout_selection_agrees(table in sparse_matrix(true), n in 1_usize..4) {
        let method = GeneSelection::MeanDropout {
            threshold: 0.0,
            at_least: 1,
            decay: 1.5,
            y_offset: 0.02,
        };
        let recipe = recipe(
            vec![Step::SelectGenes { n, method }, Step::DropZeroLibrary],
            Standardise::TrainingFold,
        );
        let (dense, sparse) = run(&recipe, &table);
        assert_equal(&dense, &sparse);
    }

    #[test]
    fn seurat_selection_and_restriction_agree(table in sparse_matrix(false), n in 1_usize..6) {
        // When every cell stores one value, normalising makes each stored value the
        // median library size: genes stored in as many cells tie exactly, their bin's
        // SD is zero but for the last bit of the bin's mean, and rounding decides
        // whether all of them are selected or none (in scanpy too).
        prop_assume!(
            table
                .values
                .rows()
                .into_iter()
                .any(|row| row.iter().filter(|&&v| v != 0.0).count() > 1)
        );
        let recipe = recipe(
            vec![
                Step::DropZeroLibrary,
                Step::LibrarySizeNormalise,
                Step::Log1p,
                // One bin: with a few genes per bin, genes tie at the cut-off by
                // construction (two genes in a bin score exactly -1/√2 and 1/√2) and
                // the last bits of the normalisation decide; one bin has no such ties.
                Step::SelectGenes { n, method: GeneSelection::Seurat { n_bins: 1 } },
            ],
            Standardise::None,
        );
        let (dense, sparse) = run(&recipe, &table);
        assert_equal(&dense, &sparse);
        let restrict = self::recipe(
            vec![Step::RestrictToFeatures { features: vec!["g3".into(), "g0".into()] }],
            Standardise::None,
        );
        let (dense, sparse) = run(&restrict, &table);
        assert_equal(&dense, &sparse);
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hvg")
        .join(name)
}

/// scanpy's golden output: gene -> (dispersions_norm, highly_variable).
fn scanpy_seurat() -> Vec<(String, f64, bool)> {
    let text = std::fs::read_to_string(fixture("seurat.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let norm = header
        .iter()
        .position(|h| *h == "dispersions_norm")
        .unwrap();
    let hv = header.iter().position(|h| *h == "highly_variable").unwrap();
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (
                fields[0].to_owned(),
                fields[norm].parse().unwrap_or(f64::NAN),
                fields[hv] == "True",
            )
        })
        .collect()
}

#[test]
fn seurat_selection_equals_scanpys_on_the_fixture() {
    let counts = read_h5ad(&fixture("counts.h5ad"), &H5adSelection::default()).unwrap();
    assert!(matches!(counts, LoadedTable::Sparse(_)));
    let recipe = recipe(
        vec![
            Step::LibrarySizeNormalise,
            Step::Log1p,
            Step::SelectGenes {
                n: 50,
                method: GeneSelection::Seurat { n_bins: 20 },
            },
        ],
        Standardise::None,
    );
    let prepared = recipe.apply_loaded(counts.clone()).unwrap();
    let golden = scanpy_seurat();
    let expected: BTreeSet<&str> = golden
        .iter()
        .filter(|(_, _, hv)| *hv)
        .map(|(g, _, _)| g.as_str())
        .collect();
    let selected = feature_set(&prepared);
    assert_eq!(selected, expected);
    let StepDetail::Seurat { cut_off, selected } = prepared.report.steps[2].detail else {
        panic!("{:?}", prepared.report.steps[2].detail);
    };
    assert_eq!(selected, 50);
    let mut norms: Vec<f64> = golden.iter().map(|g| g.1).filter(|v| !v.is_nan()).collect();
    norms.sort_by(|a, b| b.total_cmp(a));
    assert!(
        (cut_off - norms[49]).abs() < 1e-5,
        "{cut_off} vs {}",
        norms[49]
    );
    // The dense copy selects the same genes.
    let dense = recipe
        .apply_loaded(LoadedTable::Dense(counts.into_dense()))
        .unwrap();
    assert_eq!(dense.table.features(), prepared.table.features());
}

#[test]
fn seurat_v3_selection_equals_scanpys_on_the_fixture() {
    let counts = read_h5ad(&fixture("counts.h5ad"), &H5adSelection::default()).unwrap();
    let recipe = recipe(
        vec![Step::SelectGenes {
            n: 50,
            method: GeneSelection::SeuratV3 { span: 0.3 },
        }],
        Standardise::None,
    );
    let prepared = recipe.apply_loaded(counts.clone()).unwrap();
    let text = std::fs::read_to_string(fixture("seurat_v3.csv")).unwrap();
    let expected: BTreeSet<&str> = text
        .lines()
        .skip(1)
        .filter(|line| line.ends_with(",True"))
        .map(|line| line.split(',').next().unwrap())
        .collect();
    assert_eq!(expected.len(), 50);
    let selected = feature_set(&prepared);
    assert_eq!(selected, expected);
    assert!(matches!(
        prepared.report.steps[0].detail,
        StepDetail::SeuratV3 { .. }
    ));
    let dense = recipe
        .apply_loaded(LoadedTable::Dense(counts.into_dense()))
        .unwrap();
    assert_eq!(dense.table.features(), prepared.table.features());
}

/// A sparse table of `cells` x `features` with no stored values: tiny as CSR,
/// terabytes dense.
fn empty_sparse(cells: usize, features: usize) -> LoadedTable {
    LoadedTable::Sparse(SparseTable {
        cells: (0..cells).map(|i| format!("c{i}")).collect(),
        features: (0..features).map(|j| format!("g{j}")).collect(),
        values: patchbench::data::Csr::new((cells, features), vec![0; cells + 1], vec![], vec![]),
    })
}

/// Densifying 10^6 x 10^6 (8 TB of `f64`) is refused with a message that
/// names where and how much, instead of aborting on the allocation; the
/// check reads the kernel's `MemAvailable`, so it runs where there is one.
#[cfg(target_os = "linux")]
#[test]
fn densifying_more_than_the_memory_fails_with_the_size_and_the_place() {
    let huge = || empty_sparse(1_000_000, 1_000_000);
    let err = recipe(vec![Step::Log1p], Standardise::None)
        .apply_loaded(huge())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the end of the recipe needs the table dense: 1000000 cells x 1000000 features, 8000.0 GB as f64"),
        "{err}"
    );
    let err = recipe(vec![Step::Scale { factor: 2.0 }], Standardise::None)
        .apply_loaded(huge())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("steps[0] (Scale), which has no sparse form, needs the table dense"),
        "{err}"
    );
    let keep: Vec<String> = (0..1_000_000).map(|j| format!("g{j}")).collect();
    let err = recipe(
        vec![Step::RestrictToFeatures { features: keep }],
        Standardise::None,
    )
    .apply_loaded(huge())
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("steps[0] (RestrictToFeatures) needs the table dense"),
        "{err}"
    );
}

/// Selecting genes while the table is sparse keeps the dense table small:
/// the same huge table, restricted to two features, densifies fine.
#[test]
fn a_selection_while_sparse_leaves_a_table_that_fits() {
    let prepared = recipe(
        vec![Step::RestrictToFeatures {
            features: vec!["g7".into(), "g3".into()],
        }],
        Standardise::None,
    )
    .apply_loaded(empty_sparse(1_000_000, 1_000_000))
    .unwrap();
    assert_eq!(prepared.table.dense().unwrap().values.dim(), (1_000_000, 2));
    assert_eq!(prepared.table.features(), ["g7", "g3"]);
}

/// A recipe that keeps the table sparse never makes it dense: the same huge
/// table comes out of `Log1p` as CSR, and the refusal names the way out.
#[cfg(target_os = "linux")]
#[test]
fn a_table_kept_sparse_is_never_made_dense() {
    let mut kept = recipe(vec![Step::Log1p], Standardise::None);
    let err = kept
        .apply_loaded(empty_sparse(1_000_000, 1_000_000))
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("`keep_sparse: true` hands the mixture VAE or the k-CAE the table sparse"),
        "{err}"
    );
    kept.keep_sparse = true;
    let prepared = kept
        .apply_loaded(empty_sparse(1_000_000, 1_000_000))
        .unwrap();
    assert!(prepared.table.is_sparse());
    assert_eq!(prepared.table.shape(), (1_000_000, 1_000_000));
}
