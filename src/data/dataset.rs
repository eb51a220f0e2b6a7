//! Modalities measured on overlapping cells, paired by cell id.
//!
//! [`Dataset::new`] checks that the sources fit together: modality names are
//! unique, each table's ids are unique and match its matrix, and, when there
//! is more than one source, every source shares at least one cell id with
//! another. Swapped ids (a file read with the wrong [`Orientation`]) show up as
//! a modality whose *feature names* are another source's cell ids; that is
//! reported with the orientation to use. Cells measured in one modality only
//! are kept: coupled models use them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::{DataError, FeatureTable, Metadata, Orientation, PreparedTable, read_table};

/// One measured modality (e.g. `T` for transcriptome, `E` for electrophysiology).
#[derive(Debug, Clone, PartialEq)]
pub struct Modality {
    /// Short name used in sessions and model configs.
    pub name: String,
    /// The file the table came from (a descriptive name for generated data).
    pub path: PathBuf,
    /// The layout the file was read with.
    pub orientation: Orientation,
    /// The cells x features values: dense, or kept sparse by the recipe.
    pub table: PreparedTable,
}

impl Modality {
    /// A modality from a table already in memory.
    pub fn new(
        name: impl Into<String>,
        path: impl Into<PathBuf>,
        orientation: Orientation,
        table: impl Into<PreparedTable>,
    ) -> Self {
        Self {
            name: name.into(),
            path: path.into(),
            orientation,
            table: table.into(),
        }
    }

    /// Reads the modality's table from `path` with [`read_table`].
    pub fn load(
        name: impl Into<String>,
        path: &Path,
        orientation: Orientation,
    ) -> Result<Self, DataError> {
        Ok(Self::new(
            name,
            path,
            orientation,
            read_table(path, orientation)?,
        ))
    }
}

/// Named modalities measured on overlapping sets of cells, plus per-cell labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The modalities, in the order the session lists them.
    pub modalities: Vec<Modality>,
    /// Per-cell labels, if the session names a metadata file.
    pub metadata: Option<Metadata>,
}

/// How the cells of two modalities match up by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pairing {
    /// Row indices `(in a, in b)` of cells present in both, in `a`'s order.
    pub paired: Vec<(usize, usize)>,
    /// Rows of `a` whose cell is absent from `b`.
    pub only_a: Vec<usize>,
    /// Rows of `b` whose cell is absent from `a`.
    pub only_b: Vec<usize>,
}

/// How many cells a [`Pairing`] puts in each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairCounts {
    /// Cells present in both modalities.
    pub paired: usize,
    /// Cells present in the first modality only.
    pub only_a: usize,
    /// Cells present in the second modality only.
    pub only_b: usize,
}

/// The cells of several tables matched by id: the one pairing routine.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CellIndex {
    /// Every cell once, in order of first appearance (the first table's
    /// cells in its order, then the cells new in the second, ...).
    pub ids: Vec<String>,
    /// `rows[cell][table]`: the cell's row in each table, `None` where absent.
    pub rows: Vec<Vec<Option<usize>>>,
}

impl CellIndex {
    /// Matches the rows of tables, given by their cell ids, by cell id.
    pub fn of(tables: &[&[String]]) -> Self {
        let mut index = CellIndex::default();
        let mut position: HashMap<&str, usize> = HashMap::new();
        for (t, cells) in tables.iter().enumerate() {
            for (row, cell) in cells.iter().enumerate() {
                let unit = *position.entry(cell.as_str()).or_insert_with(|| {
                    index.ids.push(cell.clone());
                    index.rows.push(vec![None; tables.len()]);
                    index.ids.len() - 1
                });
                index.rows[unit][t] = Some(row);
            }
        }
        index
    }
}

impl Pairing {
    /// Matches the rows of two tables, given by their cell ids, by cell id.
    pub fn between(a: &[String], b: &[String]) -> Self {
        let mut pairing = Pairing::default();
        for rows in CellIndex::of(&[a, b]).rows {
            match rows[..] {
                [Some(row_a), Some(row_b)] => pairing.paired.push((row_a, row_b)),
                [Some(row_a), None] => pairing.only_a.push(row_a),
                [None, Some(row_b)] => pairing.only_b.push(row_b),
                _ => {}
            }
        }
        pairing
    }

    /// The size of each group.
    pub fn counts(&self) -> PairCounts {
        PairCounts {
            paired: self.paired.len(),
            only_a: self.only_a.len(),
            only_b: self.only_b.len(),
        }
    }
}

impl Dataset {
    /// Checks that the modalities and metadata fit together (see the module docs) and bundles them.
    pub fn new(modalities: Vec<Modality>, metadata: Option<Metadata>) -> Result<Self, DataError> {
        for modality in &modalities {
            check_shape(modality)?;
        }
        let ids: Vec<ModalityIds<'_>> = modalities.iter().map(ModalityIds::of).collect();
        check_ids(&ids, metadata.as_ref())?;
        Ok(Self {
            modalities,
            metadata,
        })
    }

    /// The modality called `name`.
    pub fn modality(&self, name: &str) -> Option<&Modality> {
        self.modalities.iter().find(|m| m.name == name)
    }

    /// How the cells of modalities `a` and `b` match up; `None` if either is unknown.
    pub fn pairing(&self, a: &str, b: &str) -> Option<Pairing> {
        Some(Pairing::between(
            self.modality(a)?.table.cells(),
            self.modality(b)?.table.cells(),
        ))
    }

    /// The tables of `a` and `b` restricted to their shared cells, rows
    /// aligned in `a`'s order; `None` if either is unknown or kept sparse.
    pub fn paired_matrices(&self, a: &str, b: &str) -> Option<(FeatureTable, FeatureTable)> {
        let pairing = self.pairing(a, b)?;
        let (rows_a, rows_b): (Vec<usize>, Vec<usize>) = pairing.paired.into_iter().unzip();
        Some((
            self.modality(a)?.table.dense()?.select_cells(&rows_a)?,
            self.modality(b)?.table.dense()?.select_cells(&rows_b)?,
        ))
    }

    /// The metadata labels in `column` for `cells` (`None` per cell where unknown or empty);
    /// `None` if there is no metadata or no such column.
    pub fn labels(&self, column: &str, cells: &[String]) -> Option<Vec<Option<String>>> {
        self.metadata.as_ref()?.labels(column, cells)
    }
}

/// What [`check_ids`] needs of a modality: its name, file, layout and ids.
#[derive(Debug, Clone, Copy)]
pub struct ModalityIds<'a> {
    /// The modality's name.
    pub name: &'a str,
    /// Its file.
    pub path: &'a Path,
    /// The layout it was read with.
    pub orientation: Orientation,
    /// Its cell ids, one per row.
    pub cells: &'a [String],
    /// Its feature names, one per column.
    pub features: &'a [String],
}

impl<'a> ModalityIds<'a> {
    /// The ids of a loaded modality.
    pub fn of(modality: &'a Modality) -> Self {
        Self {
            name: &modality.name,
            path: &modality.path,
            orientation: modality.orientation,
            cells: modality.table.cells(),
            features: modality.table.features(),
        }
    }
}

/// Checks, on ids alone, that modalities and metadata fit together: unique
/// modality names, unique ids within each modality, no swapped orientation,
/// and every source sharing cells with another (see the module docs). It
/// runs before preprocessing, on tables however they are stored.
pub fn check_ids(
    modalities: &[ModalityIds<'_>],
    metadata: Option<&Metadata>,
) -> Result<(), DataError> {
    for (index, modality) in modalities.iter().enumerate() {
        check_unique_ids(modality)?;
        if let Some(earlier) = modalities
            .iter()
            .take(index)
            .find(|m| m.name == modality.name)
        {
            return Err(DataError::DuplicateModality {
                name: modality.name.to_owned(),
                first: earlier.path.to_path_buf(),
                second: modality.path.to_path_buf(),
            });
        }
    }
    let ids: Vec<IdSets<'_>> = modalities.iter().map(IdSets::of).collect();
    let metadata_cells: Option<HashSet<&str>> =
        metadata.map(|m| m.cells.iter().map(String::as_str).collect());
    check_orientations(modalities, &ids, metadata_cells.as_ref())?;
    check_shared_cells(modalities, &ids, metadata, metadata_cells.as_ref())
}

/// A modality's cell ids and feature names as sets.
struct IdSets<'a> {
    cells: HashSet<&'a str>,
    features: HashSet<&'a str>,
}

impl<'a> IdSets<'a> {
    fn of(modality: &ModalityIds<'a>) -> Self {
        Self {
            cells: modality.cells.iter().map(String::as_str).collect(),
            features: modality.features.iter().map(String::as_str).collect(),
        }
    }
}

fn check_shape(modality: &Modality) -> Result<(), DataError> {
    let table = &modality.table;
    if table.shape() != (table.cells().len(), table.features().len()) {
        return Err(DataError::Invalid {
            path: modality.path.clone(),
            message: format!(
                "modality '{}' has {} cell ids and {} feature names but a {:?} matrix",
                modality.name,
                table.cells().len(),
                table.features().len(),
                table.shape()
            ),
        });
    }
    Ok(())
}

fn check_unique_ids(modality: &ModalityIds<'_>) -> Result<(), DataError> {
    for (what, ids) in [
        ("cell id", modality.cells),
        ("feature name", modality.features),
    ] {
        let mut seen = HashSet::with_capacity(ids.len());
        if let Some(repeated) = ids.iter().find(|id| !seen.insert(id.as_str())) {
            return Err(DataError::Invalid {
                path: modality.path.to_path_buf(),
                message: format!(
                    "modality '{}' has the {what} '{repeated}' twice",
                    modality.name
                ),
            });
        }
    }
    Ok(())
}

fn check_orientations(
    modalities: &[ModalityIds<'_>],
    ids: &[IdSets<'_>],
    metadata_cells: Option<&HashSet<&str>>,
) -> Result<(), DataError> {
    let wrong = |modality: &ModalityIds<'_>, other: String| DataError::WrongOrientation {
        path: modality.path.to_path_buf(),
        modality: modality.name.to_owned(),
        other,
        used: modality.orientation,
        suggested: modality.orientation.flipped(),
    };
    for (i, (modality_i, ids_i)) in modalities.iter().zip(ids).enumerate() {
        for (modality_j, ids_j) in modalities.iter().zip(ids).skip(i + 1) {
            if ids_i.cells.is_disjoint(&ids_j.cells) {
                if !ids_i.features.is_disjoint(&ids_j.cells) {
                    return Err(wrong(modality_i, format!("modality '{}'", modality_j.name)));
                }
                if !ids_j.features.is_disjoint(&ids_i.cells) {
                    return Err(wrong(modality_j, format!("modality '{}'", modality_i.name)));
                }
            }
        }
        if let Some(metadata_cells) = metadata_cells
            && ids_i.cells.is_disjoint(metadata_cells)
            && !ids_i.features.is_disjoint(metadata_cells)
        {
            return Err(wrong(modality_i, "the metadata".to_owned()));
        }
    }
    Ok(())
}

fn check_shared_cells(
    modalities: &[ModalityIds<'_>],
    ids: &[IdSets<'_>],
    metadata: Option<&Metadata>,
    metadata_cells: Option<&HashSet<&str>>,
) -> Result<(), DataError> {
    if modalities.len() + usize::from(metadata.is_some()) < 2 {
        return Ok(());
    }
    for (i, (modality, ids_i)) in modalities.iter().zip(ids).enumerate() {
        let shares_with_modality = ids
            .iter()
            .enumerate()
            .any(|(j, ids_j)| j != i && !ids_i.cells.is_disjoint(&ids_j.cells));
        let shares_with_metadata =
            metadata_cells.is_some_and(|cells| !ids_i.cells.is_disjoint(cells));
        if !shares_with_modality && !shares_with_metadata {
            return Err(DataError::NoSharedCells {
                path: modality.path.to_path_buf(),
                source_name: format!("modality '{}'", modality.name),
            });
        }
    }
    if let (Some(metadata), Some(cells)) = (metadata, metadata_cells)
        && !ids.iter().any(|ids_i| !ids_i.cells.is_disjoint(cells))
    {
        return Err(DataError::NoSharedCells {
            path: metadata.path.clone(),
            source_name: "the metadata".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn dense(modality: &Modality) -> &FeatureTable {
        modality.table.dense().expect("a dense table")
    }

    fn dense_mut(modality: &mut Modality) -> &mut FeatureTable {
        match &mut modality.table {
            PreparedTable::Dense(table) => table,
            PreparedTable::Sparse(_) => panic!("a dense table"),
        }
    }

    fn table(cells: &[&str], features: &[&str]) -> FeatureTable {
        let values =
            Array2::from_shape_fn((cells.len(), features.len()), |(i, j)| (10 * i + j) as f64);
        FeatureTable {
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
            features: features.iter().map(|f| (*f).to_owned()).collect(),
            values,
        }
    }

    fn modality(name: &str, orientation: Orientation, table: FeatureTable) -> Modality {
        Modality::new(name, format!("{name}.csv"), orientation, table)
    }

    fn transposed(t: &FeatureTable) -> FeatureTable {
        FeatureTable {
            cells: t.features.clone(),
            features: t.cells.clone(),
            values: t.values.t().to_owned(),
        }
    }

    fn metadata(cells: &[&str]) -> Metadata {
        Metadata {
            path: PathBuf::from("meta.csv"),
            cells: cells.iter().map(|c| (*c).to_owned()).collect(),
            columns: vec!["family".into()],
            rows: cells.iter().map(|c| vec![format!("fam_{c}")]).collect(),
        }
    }

    fn t_and_e() -> (Modality, Modality) {
        (
            modality(
                "T",
                Orientation::FeaturesByCells,
                table(&["c1", "c2", "c3", "c4"], &["Gad1", "Vip", "Sst"]),
            ),
            modality(
                "E",
                Orientation::CellsByFeatures,
                table(&["c3", "c1", "c5"], &["AP amp", "AHP"]),
            ),
        )
    }

    #[test]
    fn pairing_follows_a_order_and_keeps_unpaired_cells() {
        let (t, e) = t_and_e();
        let dataset = Dataset::new(vec![t, e], None).unwrap();
        let pairing = dataset.pairing("T", "E").unwrap();
        assert_eq!(pairing.paired, vec![(0, 1), (2, 0)]);
        assert_eq!(pairing.only_a, vec![1, 3]);
        assert_eq!(pairing.only_b, vec![2]);
        assert_eq!(
            pairing.counts(),
            PairCounts {
                paired: 2,
                only_a: 2,
                only_b: 1
            }
        );
        assert_eq!(
            dataset.pairing("E", "T").unwrap().paired,
            vec![(0, 2), (1, 0)]
        );
        assert!(dataset.pairing("T", "X").is_none());
    }

    #[test]
    fn paired_matrices_align_rows_by_cell_id() {
        let (t, e) = t_and_e();
        let dataset = Dataset::new(vec![t, e], None).unwrap();
        let (t, e) = dataset.paired_matrices("T", "E").unwrap();
        assert_eq!(t.cells, vec!["c1", "c3"]);
        assert_eq!(e.cells, vec!["c1", "c3"]);
        // c1 is row 1 of E (values 10, 11), c3 is row 0 (0, 1); c3 is row 2 of T (20, 21, 22).
        assert_eq!(e.values.row(0).to_vec(), vec![10.0, 11.0]);
        assert_eq!(e.values.row(1).to_vec(), vec![0.0, 1.0]);
        assert_eq!(t.values.row(1).to_vec(), vec![20.0, 21.0, 22.0]);
        assert_eq!(t.features, vec!["Gad1", "Vip", "Sst"]);
        assert!(
            dataset
                .modality("T")
                .is_some_and(|m| m.table.cells().len() == 4)
        );
    }

    #[test]
    fn labels_come_from_the_metadata() {
        let (t, e) = t_and_e();
        let dataset = Dataset::new(vec![t, e], Some(metadata(&["c1", "c2", "c3"]))).unwrap();
        let cells = vec!["c3".to_owned(), "c5".to_owned()];
        assert_eq!(
            dataset.labels("family", &cells),
            Some(vec![Some("fam_c3".to_owned()), None])
        );
        assert_eq!(dataset.labels("colour", &cells), None);
        let without = Dataset::new(dataset.modalities.clone(), None).unwrap();
        assert_eq!(without.labels("family", &cells), None);
    }

    #[test]
    fn duplicate_modality_names_are_refused() {
        let (t, e) = t_and_e();
        let e_as_t = Modality {
            name: "T".into(),
            ..e
        };
        let error = Dataset::new(vec![t, e_as_t], None).unwrap_err();
        assert!(
            matches!(&error, DataError::DuplicateModality { name, .. } if name == "T"),
            "{error}"
        );
        assert!(
            error.to_string().contains("T.csv") && error.to_string().contains("E.csv"),
            "{error}"
        );
    }

    #[test]
    fn a_transposed_modality_is_reported_with_the_orientation_to_use() {
        let (t, e) = t_and_e();
        let swapped_t = Modality {
            orientation: Orientation::CellsByFeatures,
            table: transposed(dense(&t)).into(),
            ..t
        };
        let error = Dataset::new(vec![swapped_t, e], None).unwrap_err();
        match &error {
            DataError::WrongOrientation {
                path,
                modality,
                used,
                suggested,
                ..
            } => {
                assert_eq!(path, &PathBuf::from("T.csv"));
                assert_eq!(modality, "T");
                assert_eq!(*used, Orientation::CellsByFeatures);
                assert_eq!(*suggested, Orientation::FeaturesByCells);
            }
            other => panic!("expected WrongOrientation, got {other}"),
        }
        let message = error.to_string();
        assert!(
            message.contains("orientation") && message.contains("FeaturesByCells"),
            "{message}"
        );
    }

    #[test]
    fn the_second_modality_can_be_the_transposed_one() {
        let (t, e) = t_and_e();
        let swapped_e = Modality {
            orientation: Orientation::FeaturesByCells,
            table: transposed(dense(&e)).into(),
            ..e
        };
        let error = Dataset::new(vec![t, swapped_e], None).unwrap_err();
        assert!(
            matches!(&error, DataError::WrongOrientation { modality, .. } if modality == "E"),
            "{error}"
        );
    }

    #[test]
    fn a_single_transposed_modality_is_caught_against_the_metadata() {
        let (t, _) = t_and_e();
        let swapped_t = Modality {
            orientation: Orientation::CellsByFeatures,
            table: transposed(dense(&t)).into(),
            ..t
        };
        let error = Dataset::new(vec![swapped_t], Some(metadata(&["c1", "c2"]))).unwrap_err();
        match &error {
            DataError::WrongOrientation {
                other, suggested, ..
            } => {
                assert_eq!(other, "the metadata");
                assert_eq!(*suggested, Orientation::FeaturesByCells);
            }
            other => panic!("expected WrongOrientation, got {other}"),
        }
    }

    #[test]
    fn a_modality_sharing_no_cell_is_refused() {
        let (t, e) = t_and_e();
        let stranger = modality(
            "M",
            Orientation::CellsByFeatures,
            table(&["x1", "x2"], &["soma depth"]),
        );
        let error = Dataset::new(vec![t, e, stranger], None).unwrap_err();
        assert!(
            matches!(&error, DataError::NoSharedCells { path, .. } if path == &PathBuf::from("M.csv")),
            "{error}"
        );
    }

    #[test]
    fn metadata_sharing_no_cell_is_refused() {
        let (t, e) = t_and_e();
        let error = Dataset::new(vec![t, e], Some(metadata(&["x1", "x2"]))).unwrap_err();
        assert!(
            matches!(&error, DataError::NoSharedCells { source_name, .. } if source_name == "the metadata"),
            "{error}"
        );
    }

    #[test]
    fn a_single_modality_needs_no_partner() {
        let (t, _) = t_and_e();
        let dataset = Dataset::new(vec![t], None).unwrap();
        assert_eq!(dataset.modalities.len(), 1);
    }

    #[test]
    fn inconsistent_tables_are_refused() {
        let (t, e) = t_and_e();
        let mut short = t.clone();
        dense_mut(&mut short).cells.pop();
        assert!(matches!(
            Dataset::new(vec![short, e.clone()], None),
            Err(DataError::Invalid { .. })
        ));
        let mut repeated = t;
        dense_mut(&mut repeated).cells[1] = "c1".into();
        let error = Dataset::new(vec![repeated, e], None).unwrap_err();
        assert!(error.to_string().contains("'c1' twice"), "{error}");
    }
}
