//! Training speed of the coupled autoencoder: seconds per 1000 training steps
//! at batch 200 on M1-sized data (1213 paired cells, 1000 genes, 16 ephys
//! features), the paper's T and E arms, C_MSV with λ = 1. The TF reference
//! implementation takes 6.4 s per 1000 steps on 2 cores
//! (`../shared/reference/peer-baselines.md` §3). Prints wall and CPU time,
//! the GFLOP/s the arms' layers reached and their share of the measured
//! GEMM peak of the cores the two arms train on (one core per arm, as the
//! training runs them side by side).
//!
//! Run: `cargo bench --bench cae` (optionally `-- <steps>`).

use std::time::Instant;

use ndarray::Array2;
use patchbench::models::cae::{CaeConfig, CouplingKind, MultiModal, train};
use patchbench::progress::Quiet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::{cpu_seconds, load_average, single_core_peak, train_flops};

/// FLOPs of one training row through an arm: the encoder to the code (no
/// input gradient at its lowest layer) and the decoder back (with one).
fn arm_flops(inputs: usize, hidden: &[usize], latent: usize) -> f64 {
    let encoder: Vec<usize> = std::iter::once(inputs)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(latent))
        .collect();
    let decoder: Vec<usize> = encoder.iter().rev().copied().collect();
    train_flops(&encoder, false) + train_flops(&decoder, true)
}

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
    println!("load average before: {}", load_average());
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    if let Err(e) = train(&config, &data, &all, "bench", &mut Quiet) {
        eprintln!("training failed: {e}");
        std::process::exit(1);
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let arms = config.arms_for(2);
    let flops = config.batch_size as f64
        * steps as f64
        * (arm_flops(1000, &arms[0].hidden, config.latent_dims)
            + arm_flops(16, &arms[1].hidden, config.latent_dims));
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    let peak = single_core_peak() * cores as f64;
    println!(
        "cae: {steps} steps at batch 200 (T 1000 genes, E 16 features, 4x60 / 4x50 ELU arms, C_MSV): {seconds:.2} s wall, {cpu:.2} s CPU, {:.2} s per 1000 steps (TF reference: 6.4-8.5 s)",
        seconds * 1000.0 / steps as f64
    );
    println!(
        "layers: {:.2} GFLOP per 1000 steps, {:.1} GFLOP/s of wall time ({:.0}% of the {cores}-core f32 GEMM peak, measured {peak:.1} GFLOP/s); load average after: {}",
        flops * 1000.0 / steps as f64 / 1e9,
        flops / seconds / 1e9,
        100.0 * flops / seconds / 1e9 / peak,
        load_average()
    );
}
