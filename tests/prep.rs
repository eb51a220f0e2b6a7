//! Property tests of preprocessing recipes on random synthetic tables.

use ndarray::Array2;
use patchbench::data::FeatureTable;
use patchbench::prep::{GeneSelection, PrepError, Recipe, Standardise, Step, StepDetail};
use proptest::prelude::*;

fn make_table(cells: usize, features: usize, values: Vec<f64>) -> FeatureTable {
    FeatureTable {
        cells: (0..cells).map(|i| format!("cell{i}")).collect(),
        features: (0..features).map(|j| format!("gene{j}")).collect(),
        values: Array2::from_shape_vec((cells, features), values).unwrap(),
    }
}

/// Tables of non-negative integer counts, 2-12 cells x 1-10 features.
fn counts() -> impl Strategy<Value = FeatureTable> {
    (2usize..12, 1usize..10).prop_flat_map(|(cells, features)| {
        prop::collection::vec((0u32..500).prop_map(f64::from), cells * features)
            .prop_map(move |values| make_table(cells, features, values))
    })
}

/// Tables of real values in a wide range of scales.
fn reals() -> impl Strategy<Value = FeatureTable> {
    (2usize..12, 1usize..8, -3i32..6).prop_flat_map(|(cells, features, scale)| {
        prop::collection::vec(-1.0f64..1.0, cells * features).prop_map(move |values| {
            make_table(
                cells,
                features,
                values.iter().map(|v| v * 10f64.powi(scale)).collect(),
            )
        })
    })
}

fn apply(
    steps: Vec<Step>,
    standardise: Standardise,
    table: FeatureTable,
) -> Result<FeatureTable, PrepError> {
    Recipe {
        steps,
        standardise,
        keep_sparse: false,
    }
    .apply(table)
    .map(|p| p.table.dense().cloned().expect("a dense table"))
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 _.-]{0,12}"
}

fn step() -> impl Strategy<Value = Step> {
    let method = prop_oneof![
        Just(GeneSelection::Variance),
        (0.0f64..100.0, 0usize..50, 0.1f64..5.0, -1.0f64..1.0).prop_map(
            |(threshold, at_least, decay, y_offset)| {
                GeneSelection::MeanDropout {
                    threshold,
                    at_least,
                    decay,
                    y_offset,
                }
            }
        ),
    ];
    prop_oneof![
        Just(Step::DropCellsWithMissing),
        Just(Step::DropFeaturesWithMissing),
        Just(Step::DropZeroLibrary),
        Just(Step::DropConstantFeatures),
        Just(Step::LibrarySizeNormalise),
        Just(Step::Log2p1),
        prop::collection::vec(name(), 0..4).prop_map(|cells| Step::DropCells { cells }),
        name().prop_map(|pattern| Step::ExcludeFeatures { pattern }),
        prop::collection::vec(name(), 0..4)
            .prop_map(|features| Step::RestrictToFeatures { features }),
        prop::collection::vec(name(), 0..4).prop_map(|features| Step::LnFeatures { features }),
        (0usize..5000, method).prop_map(|(n, method)| Step::SelectGenes { n, method }),
    ]
}

proptest! {
    #[test]
    fn all_cells_gives_mean_zero_and_sd_one(table in reals()) {
        let cells = table.cells.len() as f64;
        let prepared = apply(vec![Step::DropConstantFeatures], Standardise::AllCells, table);
        // A table whose every column is constant is emptied by the step: an error.
        prop_assume!(prepared.is_ok());
        let values = prepared.unwrap().values;
        for column in values.columns() {
            let mean = column.sum() / cells;
            let sd = (column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / cells).sqrt();
            prop_assert!(mean.abs() < 1e-9, "mean {}", mean);
            prop_assert!((sd - 1.0).abs() < 1e-9, "sd {}", sd);
        }
    }

    #[test]
    fn restrict_output_order_equals_the_list(
        (table, wanted) in counts().prop_flat_map(|table| {
            let features = table.features.len();
            let order = Just((0..features).collect::<Vec<usize>>()).prop_shuffle();
            (Just(table), order, 1..=features).prop_map(|(t, mut order, keep)| {
                order.truncate(keep);
                (t, order)
            })
        })
    ) {
        let names: Vec<String> = wanted.iter().map(|&j| table.features[j].clone()).collect();
        let step = Step::RestrictToFeatures { features: names.clone() };
        let out = apply(vec![step], Standardise::None, table.clone()).unwrap();
        prop_assert_eq!(&out.features, &names);
        for (k, &j) in wanted.iter().enumerate() {
            prop_assert_eq!(out.values.column(k), table.values.column(j));
        }
    }

    #[test]
    fn library_size_makes_every_cell_sum_to_the_median(table in counts()) {
        let recipe = Recipe { steps: vec![Step::DropZeroLibrary, Step::LibrarySizeNormalise], standardise: Standardise::None, keep_sparse: false };
        let prepared = recipe.apply(table);
        prop_assume!(prepared.is_ok());
        let prepared = prepared.unwrap();
        let StepDetail::LibrarySize { median, min, max } = prepared.report.steps[1].detail else {
            return Err(TestCaseError::fail("no library-size detail"));
        };
        prop_assert!(min <= median && median <= max);
        for row in prepared.table.dense().unwrap().values.rows() {
            prop_assert!((row.sum() - median).abs() <= 1e-9 * median, "{} vs {}", row.sum(), median);
        }
    }

    #[test]
    fn value_steps_keep_every_feature(table in counts(), which in 0usize..5) {
        let step = match which {
            0 => Step::Log2p1,
            1 => Step::DropCellsWithMissing,
            2 => Step::DropZeroLibrary,
            3 => Step::DropCells { cells: vec![table.cells[0].clone()] },
            _ => Step::LibrarySizeNormalise,
        };
        let features = table.features.clone();
        match apply(vec![step], Standardise::None, table) {
            Ok(out) => prop_assert_eq!(out.features, features),
            Err(e) => prop_assert!(matches!(e, PrepError::ZeroLibrary { .. } | PrepError::Empty { .. }), "{}", e),
        }
    }

    #[test]
    fn selection_keeps_exactly_n_or_says_why_not(table in counts(), n in 1usize..10, variance in any::<bool>()) {
        let method = if variance {
            GeneSelection::Variance
        } else {
            GeneSelection::MeanDropout { threshold: 250.0, at_least: 1, decay: 1.5, y_offset: 0.02 }
        };
        let available = table.features.len();
        let features = table.features.clone();
        match apply(vec![Step::SelectGenes { n, method }], Standardise::None, table) {
            Ok(out) => {
                prop_assert_eq!(out.features.len(), n);
                // Selection keeps the table's order.
                let positions: Vec<usize> = out.features.iter().map(|f| features.iter().position(|g| g == f).unwrap()).collect();
                prop_assert!(positions.windows(2).all(|w| w[0] < w[1]));
            }
            Err(PrepError::InvalidParameter { field: "n", .. }) => prop_assert!(n > available),
            Err(e) => prop_assert!(
                !variance && matches!(e, PrepError::SelectionUnreachable { .. } | PrepError::SelectionNotExact { .. }),
                "{}", e
            ),
        }
    }

    #[test]
    fn recipes_round_trip_through_ron(steps in prop::collection::vec(step(), 0..6), scope in 0usize..3) {
        let standardise = [Standardise::None, Standardise::AllCells, Standardise::TrainingFold][scope];
        let recipe = Recipe {
            steps,
            standardise,
            keep_sparse: false,
        };
        let text = ron::ser::to_string_pretty(&recipe, ron::ser::PrettyConfig::default()).unwrap();
        let back: Recipe = ron::from_str(&text).unwrap();
        prop_assert_eq!(back, recipe);
    }
}
