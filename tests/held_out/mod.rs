//! Held-out cells written as new data sets, for the tests that apply a
//! trained model to cells it has not seen.

use std::path::Path;

use patchbench::data::{Orientation, read_table, write_table};

/// Cells held out of training: the last 40 ids of the simulated `data`
/// measured in both modalities.
pub fn cells(data: &Path) -> Vec<String> {
    let t =
        read_table(&data.join("gene_counts.csv"), Orientation::FeaturesByCells).expect("counts");
    let e =
        read_table(&data.join("ephys_values.csv"), Orientation::CellsByFeatures).expect("ephys");
    let both: Vec<String> = t
        .cells
        .iter()
        .filter(|c| e.cells.contains(c))
        .cloned()
        .collect();
    both[both.len() - 40..].to_vec()
}

/// Writes the cells `keep` of the simulated `data` (its counts and ephys) to
/// `new`, each ephys feature moved by `ephys_shift` of its SD there.
pub fn write_cells(data: &Path, keep: &[String], new: &Path, ephys_shift: f64) {
    std::fs::create_dir_all(new).expect("folder");
    for (file, orientation) in [
        ("gene_counts.csv", Orientation::FeaturesByCells),
        ("ephys_values.csv", Orientation::CellsByFeatures),
    ] {
        let table = read_table(&data.join(file), orientation).expect("table");
        let rows: Vec<usize> = (0..table.cells.len())
            .filter(|&i| keep.contains(&table.cells[i]))
            .collect();
        let mut subset = table.select_cells(&rows).expect("rows");
        if orientation == Orientation::CellsByFeatures {
            for mut column in subset.values.columns_mut() {
                let sd = column.std(0.0);
                column.mapv_inplace(|v| v + ephys_shift * sd);
            }
        }
        write_table(&subset, &new.join(file), orientation).expect("write");
    }
}
