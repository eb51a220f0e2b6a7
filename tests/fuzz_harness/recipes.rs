//! The dataset target: a session whose dataset is loaded from disk and put
//! through its preprocessing recipes, as a run does before fitting.
//!
//! The data are small tables written once per target, normal ones and
//! degenerate ones (all zero, one cell, one gene, constant features, missing
//! values, values near the limits of `f64`); the seeds pair each with three
//! recipes that use every step. Mutations change the recipes' steps and
//! parameters (and, rarely, the paths). A prepared table must be non-empty
//! and finite, as [`Recipe::apply`](patchbench::prep::Recipe::apply) promises;
//! an error must name the session file, the dataset or the data file.

use std::borrow::Cow;
use std::path::Path;

use ndarray::{Array2, Axis};
use patchbench::data::{FeatureTable, Orientation, PreparedTable, write_table};
use patchbench::runner::{RunError, load_dataset};
use patchbench::session;

use super::targets::{Encoding, Mutations, Outcome, Target, kind_of, rejected, table_problem};

/// The data sets: a name and the expression (cells x genes) and ephys (cells x features) values.
type Variant = (&'static str, Array2<f64>, Array2<f64>);

/// The recipes of the expression (`T`) and ephys (`E`) modalities, as RON.
const RECIPES: [(&str, &str); 3] = [
    (
        r#"(steps: [ExcludeFeatures(pattern: "^ERCC-"), LibrarySizeNormalise, Log2p1, SelectGenes(n: 3, method: Variance)], standardise: AllCells)"#,
        r#"(steps: [LnFeatures(features: ["R_input", "Tau"])], standardise: AllCells)"#,
    ),
    (
        "(steps: [DropConstantFeatures, SelectGenes(n: 1, method: MeanDropout(threshold: 0, at_least: 1)), DropZeroLibrary, LibrarySizeNormalise, Log2p1], standardise: TrainingFold)",
        "(steps: [DropCellsWithMissing, DropFeaturesWithMissing, DropConstantFeatures], standardise: AllCells)",
    ),
    (
        r#"(steps: [DropCells(cells: ["c1"]), RestrictToFeatures(features: ["g2", "g1"]), Log2p1], standardise: None)"#,
        "(steps: [DropFeaturesWithMissing], standardise: None)",
    ),
];

/// The dataset target; its data live in a folder that lives as long as the target.
pub fn target() -> Target {
    let folder = super::scratch_folder()
        .unwrap_or_else(|e| panic!("a folder for the dataset target's data: {e}"));
    let mut seeds = Vec::new();
    let mut degenerate_seeds = Vec::new();
    for (name, expression, ephys) in variants() {
        let data = folder.path().join(name);
        write_variant(&data, &expression, &ephys);
        for (t_recipe, e_recipe) in RECIPES {
            let text = session_text(&data, t_recipe, e_recipe).into_bytes();
            if name == "normal" {
                seeds.push(text);
            } else {
                degenerate_seeds.push(text);
            }
        }
    }
    Target {
        name: "dataset_recipes",
        file_name: "session.ron",
        seeds,
        degenerate_seeds,
        error_names: &["dataset `"],
        mutations: Mutations::Values,
        encoding: Encoding::Plain,
        load: Box::new(move |path| {
            // The closure owns the data folder, so the files stay while the target lives.
            let _data = &folder;
            load_and_prepare(path)
        }),
    }
}

fn variants() -> Vec<Variant> {
    let counts = Array2::from_shape_fn((5, 6), |(i, j)| ((i * 7 + j * 3) % 11 + j) as f64);
    let ephys = Array2::from_shape_fn((5, 3), |(i, j)| 1.0 + (i * 5 + j * 2) as f64 / 3.0);
    let mut missing_counts = counts.clone();
    missing_counts[(1, 2)] = f64::NAN;
    let mut missing_ephys = ephys.clone();
    missing_ephys.column_mut(1).fill(f64::NAN);
    missing_ephys[(3, 0)] = f64::NAN;
    let extreme_counts = counts.mapv(|v| if v > 5.0 { 1e300 } else { v * 1e-300 });
    let extreme_ephys = ephys.mapv(|v| if v > 3.0 { -1e300 } else { 1e300 });
    vec![
        ("normal", counts.clone(), ephys.clone()),
        ("all_zero", Array2::zeros((5, 6)), Array2::zeros((5, 3))),
        (
            "one_cell",
            counts.select(Axis(0), &[0]),
            ephys.select(Axis(0), &[0]),
        ),
        (
            "one_gene",
            counts.select(Axis(1), &[0]),
            ephys.select(Axis(1), &[0]),
        ),
        (
            "constant",
            Array2::from_elem((5, 6), 5.0),
            Array2::from_elem((5, 3), 2.0),
        ),
        ("missing", missing_counts, missing_ephys),
        ("extreme", extreme_counts, extreme_ephys),
    ]
}

fn ids(prefix: &str, count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("{prefix}{i}")).collect()
}

/// Writes `T.csv` (genes by cells), `E.csv` (cells by features) and `meta.csv` into `data`.
fn write_variant(data: &Path, expression: &Array2<f64>, ephys: &Array2<f64>) {
    std::fs::create_dir_all(data).unwrap_or_else(|e| panic!("{}: {e}", data.display()));
    let cells = ids("c", expression.nrows());
    let mut genes = ids("g", expression.ncols());
    if let Some(last) = genes.last_mut().filter(|_| expression.ncols() > 1) {
        *last = "ERCC-1".into();
    }
    let features: Vec<String> = ["R_input", "Tau", "AP amp"]
        .iter()
        .take(ephys.ncols())
        .map(|name| (*name).to_owned())
        .collect();
    let tables = [
        ("T.csv", genes, expression, Orientation::FeaturesByCells),
        ("E.csv", features, ephys, Orientation::CellsByFeatures),
    ];
    for (file, features, values, orientation) in tables {
        let table = FeatureTable {
            cells: cells.clone(),
            features,
            values: values.clone(),
        };
        write_table(&table, &data.join(file), orientation)
            .unwrap_or_else(|e| panic!("writing the dataset target's data: {e}"));
    }
    let metadata: String = std::iter::once("cell_id,family\n".to_owned())
        .chain(
            cells
                .iter()
                .enumerate()
                .map(|(i, cell)| format!("{cell},f{}\n", i % 2)),
        )
        .collect();
    let path = data.join("meta.csv");
    std::fs::write(&path, metadata).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn session_text(data: &Path, t_recipe: &str, e_recipe: &str) -> String {
    let data = data.display();
    format!(
        r#"(
  version: 1,
  datasets: [
    (
      name: "d",
      modalities: [
        (name: "T", path: "{data}/T.csv", orientation: FeaturesByCells, recipe: {t_recipe}),
        (name: "E", path: "{data}/E.csv", orientation: CellsByFeatures, recipe: {e_recipe}),
      ],
      metadata: (path: "{data}/meta.csv", id_column: "cell_id"),
    ),
  ],
  experiments: [],
)
"#
    )
}

/// A refusal counted by the run error's kind and the data or recipe error inside it.
fn rejected_run(error: &RunError) -> Outcome {
    let inner = match error {
        RunError::Data { source, .. } => kind_of(source),
        RunError::Prep { source, .. } => kind_of(source),
        _ => String::new(),
    };
    Outcome::Rejected {
        kind: format!("{}/{inner}", kind_of(error)),
        message: error.to_string(),
    }
}

/// Loads the session and prepares every dataset in it.
fn load_and_prepare(path: &Path) -> Outcome {
    let loaded = match session::load(path) {
        Ok(loaded) => loaded,
        Err(error) => return rejected(&error),
    };
    let base = path.parent().unwrap_or(Path::new("."));
    for spec in &loaded.datasets {
        let prepared = match load_dataset(spec, base) {
            Ok(prepared) => prepared,
            Err(error) => return rejected_run(&error),
        };
        for modality in &prepared.data.modalities {
            let dense = match &modality.table {
                PreparedTable::Dense(t) => Cow::Borrowed(t),
                PreparedTable::Sparse(s) => Cow::Owned(s.table.to_dense()),
            };
            if let Some(problem) = table_problem(&dense) {
                return Outcome::Violated(format!(
                    "dataset `{}`, modality `{}` prepared: {problem}",
                    spec.name, modality.name
                ));
            }
            if modality
                .table
                .dense()
                .unwrap()
                .values
                .iter()
                .any(|v| !v.is_finite())
            {
                return Outcome::Violated(format!(
                    "dataset `{}`, modality `{}` prepared with values that are not finite",
                    spec.name, modality.name
                ));
            }
        }
    }
    Outcome::Accepted
}
