//! Seconds per training epoch of the coupled mixture VAE on the M1
//! transcriptomes (1213 cells x 1000 genes, 2 agents, batch 256, K = 77, the
//! MMIDAS network: 4 hidden layers of 100). The reference PyTorch code takes
//! 0.11 s per epoch on the same 2 cores.
//!
//! Run: `cargo bench --bench mixvae` (reads `data/m1_patchseq/gene_counts.csv`,
//! linked by `scripts/link-shared-data.sh`; without it, random data of the same shape).

use std::path::Path;

use ndarray::Array2;
use patchbench::data::{Orientation, read_table};
use patchbench::models::mixvae::{Augmentation, MixVaeConfig, fit};
use patchbench::progress::Quiet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EPOCHS: usize = 20;

/// Library-size-normalised, log2(x + 1) expression, cells x genes.
fn m1_expression() -> Array2<f32> {
    let path = Path::new("data/m1_patchseq/gene_counts.csv");
    match read_table(path, Orientation::FeaturesByCells) {
        Ok(table) => {
            let counts = table.values;
            let sums: Vec<f64> = counts.rows().into_iter().map(|r| r.sum()).collect();
            let mut sorted = sums.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            Array2::from_shape_fn(counts.dim(), |(i, g)| {
                ((counts[[i, g]] / sums[i] * median) + 1.0).log2() as f32
            })
        }
        Err(e) => {
            eprintln!("{e}; timing on random data of the same shape instead");
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            Array2::from_shape_simple_fn((1213, 1000), || rng.random_range(0.0..8.0))
        }
    }
}

fn main() {
    let x = m1_expression();
    let config = MixVaeConfig {
        agents: 2,
        categories: 77,
        batch_size: 256,
        epochs: EPOCHS,
        augmentation: Augmentation::Noise { std: 0.5 },
        ..MixVaeConfig::default()
    };
    let fitted = match fit(x.view(), &config, &mut Quiet) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mixVAE bench failed: {e}");
            std::process::exit(1);
        }
    };
    // Drop the first epoch (allocator warm-up), report the median of the rest.
    let mut seconds: Vec<f64> = fitted.epoch_seconds[1..].to_vec();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    println!(
        "mixvae M1 {} cells x {} genes, 2 agents, batch 256, K 77: median {:.4} s/epoch, mean {:.4}, min {:.4}, max {:.4} over {} epochs (PyTorch reference: 0.11 s/epoch)",
        x.nrows(),
        x.ncols(),
        median,
        mean,
        seconds[0],
        seconds[seconds.len() - 1],
        seconds.len()
    );
}
