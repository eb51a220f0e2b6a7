//! Partially paired mini-batches (supplement §6.1).
//!
//! Each step draws `paired` cells measured in at least two modalities, without
//! replacement; their codes are coupled. Each modality's batch is then filled
//! up to `batch_size` rows with rows drawn without replacement from all of
//! that modality's training rows; those rows are only reconstructed (they may
//! happen to be paired cells, as in the reference code).

use rand::Rng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use super::data::{MultiModal, Rows};

/// One modality's rows in a mini-batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmBatch {
    /// Rows of the modality's matrix, paired rows first.
    pub rows: Vec<usize>,
    /// For each coupled cell measured here: (its slot in `paired_cells`, its position in `rows`).
    pub paired: Vec<(usize, usize)>,
}

/// Draws the training mini-batches.
#[derive(Debug, Clone)]
pub struct BatchSampler {
    paired_cells: Vec<usize>,
    modality_rows: Vec<Vec<usize>>,
    batch_size: usize,
    paired: usize,
}

impl BatchSampler {
    /// A sampler over the training cells `cells` of `data`.
    pub fn new<M: Rows>(
        data: &MultiModal<M>,
        cells: &[usize],
        batch_size: usize,
        paired: usize,
    ) -> Self {
        let paired_cells = cells
            .iter()
            .copied()
            .filter(|&c| data.cells[c].iter().filter(|r| r.is_some()).count() >= 2)
            .collect();
        let modality_rows = (0..data.modalities())
            .map(|i| data.rows_of(i, cells).0)
            .collect();
        BatchSampler {
            paired_cells,
            modality_rows,
            batch_size,
            paired,
        }
    }

    /// One mini-batch per modality.
    pub fn draw<M: Rows>(&self, data: &MultiModal<M>, rng: &mut ChaCha8Rng) -> Vec<ArmBatch> {
        let n_paired = self.paired.min(self.paired_cells.len());
        let chosen: Vec<usize> = sample(rng, self.paired_cells.len(), n_paired)
            .into_iter()
            .map(|p| self.paired_cells[p])
            .collect();
        self.modality_rows
            .iter()
            .enumerate()
            .map(|(i, all_rows)| {
                let mut rows = Vec::with_capacity(self.batch_size);
                let mut paired = Vec::new();
                for (slot, &c) in chosen.iter().enumerate() {
                    if let Some(r) = data.cells[c][i] {
                        paired.push((slot, rows.len()));
                        rows.push(r);
                    }
                }
                let fill = self
                    .batch_size
                    .saturating_sub(rows.len())
                    .min(all_rows.len());
                if fill > 0 {
                    rows.extend(
                        sample(rng, all_rows.len(), fill)
                            .into_iter()
                            .map(|p| all_rows[p]),
                    );
                }
                if rows.len() < 2 && !all_rows.is_empty() {
                    rows.push(all_rows[rng.random_range(0..all_rows.len())]);
                }
                ArmBatch { rows, paired }
            })
            .collect()
    }
}

/// Row pairs `(row in a's batch, row in b's batch)` of cells coupled in both.
pub fn shared_pairs(a: &ArmBatch, b: &ArmBatch) -> Vec<(usize, usize)> {
    a.paired
        .iter()
        .filter_map(|&(slot, pos_a)| {
            b.paired
                .iter()
                .find(|&&(s, _)| s == slot)
                .map(|&(_, pos_b)| (pos_a, pos_b))
        })
        .collect()
}
