//! The cells a coupled autoencoder trains on: one matrix per modality and,
//! for every cell, its row in each modality it was measured in.

use ndarray::Array2;

use super::CaeError;

/// Modalities measured on partly overlapping cells.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiModal {
    /// One `(rows, features)` matrix per modality.
    pub matrices: Vec<Array2<f32>>,
    /// For every cell, its row in each modality (`None` where unmeasured).
    pub cells: Vec<Vec<Option<usize>>>,
}

impl MultiModal {
    /// Checks that every cell lists one entry per modality, every row exists
    /// and every value is finite.
    pub fn validate(&self) -> Result<(), CaeError> {
        let k = self.matrices.len();
        for (c, rows) in self.cells.iter().enumerate() {
            if rows.len() != k {
                return Err(CaeError::Data(format!(
                    "cell {c} lists {} modalities, expected {k}",
                    rows.len()
                )));
            }
            for (i, row) in rows.iter().enumerate() {
                if let Some(r) = row
                    && *r >= self.matrices[i].nrows()
                {
                    return Err(CaeError::Data(format!(
                        "cell {c}: row {r} of modality {i} does not exist"
                    )));
                }
            }
        }
        for (i, m) in self.matrices.iter().enumerate() {
            if let Some(pos) = m.iter().position(|v| !v.is_finite()) {
                return Err(CaeError::Data(format!(
                    "modality {i} has a missing or infinite value at row {}, column {}",
                    pos / m.ncols().max(1),
                    pos % m.ncols().max(1)
                )));
            }
        }
        Ok(())
    }

    /// Number of modalities.
    pub fn modalities(&self) -> usize {
        self.matrices.len()
    }

    /// The rows of modality `i` measured in `cells` (in that order), with the
    /// positions in `cells` they came from.
    pub fn rows_of(&self, i: usize, cells: &[usize]) -> (Vec<usize>, Vec<usize>) {
        cells
            .iter()
            .enumerate()
            .filter_map(|(pos, &c)| self.cells[c][i].map(|r| (r, pos)))
            .unzip()
    }

    /// The rows `rows` of modality `i` as a matrix.
    pub fn select(&self, i: usize, rows: &[usize]) -> Array2<f32> {
        self.matrices[i].select(ndarray::Axis(0), rows)
    }
}
