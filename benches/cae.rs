//! Training speed of the coupled autoencoder: seconds per 1000 training steps
//! at batch 200 on M1-sized data (1213 paired cells, 1000 genes, 16 ephys
//! features), the paper's T and E arms, C_MSV with λ = 1. The TF reference
//! implementation takes 6.4 s per 1000 steps on 2 cores.
//!
//! Run: `cargo bench --bench cae` (optionally `-- <steps>`).

use std::time::Instant;

use ndarray::Array2;
use patchbench::models::cae::{CaeConfig, CouplingKind, MultiModal, train};
use patchbench::progress::Quiet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let steps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let cells = 1213;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let t = Array2::from_shape_simple_fn((cells, 1000), || rng.random_range(-1.0f32..1.0));
    let e = Array2::from_shape_simple_fn((cells, 16), || rng.random_range(-1.0f32..1.0));
    let data = MultiModal {
        matrices: vec![t, e],
        cells: (0..cells).map(|c| vec![Some(c), Some(c)]).collect(),
    };
    let all: Vec<usize> = (0..cells).collect();
    let config = CaeConfig {
        coupling: CouplingKind::MinSingularValue,
        lambda: 1.0,
        steps,
        batch_size: 200,
        paired_per_batch: 150,
        log_every: steps,
        ..CaeConfig::default()
    };
    let start = Instant::now();
    if let Err(e) = train(&config, &data, &all, "bench", &mut Quiet) {
        eprintln!("training failed: {e}");
        std::process::exit(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "cae: {steps} steps at batch 200 (T 1000 genes, E 16 features, 4x60 / 4x50 ELU arms, C_MSV): {seconds:.2} s, {:.2} s per 1000 steps",
        seconds * 1000.0 / steps as f64
    );
}
