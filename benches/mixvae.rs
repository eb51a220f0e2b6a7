//! Seconds per training epoch of the coupled mixture VAE on the M1
//! transcriptomes (1213 cells x 1000 genes, 2 agents, batch 256, K = 77, the
//! MMIDAS network: 4 hidden layers of 100), the GFLOP/s its layers reach and
//! their share of the machine's measured GEMM peak (one core per agent),
//! then MMIDAS' own network in PyTorch on the same matrix in the same run
//! (`benches/mixvae_mmidas.py`; needs torch and a checkout of
//! AllenInstitute/MMIDAS named by `PATCHBENCH_MMIDAS`, the interpreter by
//! `PATCHBENCH_PYTHON`, default `python3`; skipped with a message otherwise).
//!
//! Run: `cargo bench --bench mixvae` (reads `data/m1_patchseq/gene_counts.csv`,
//! linked by `scripts/link-shared-data.sh`; without it, random data of the same shape).

use std::path::Path;
use std::process::Command;

use ndarray::Array2;
use patchbench::data::{Orientation, read_table};
use patchbench::models::mixvae::{Augmentation, MixVaeConfig, fit};
use patchbench::progress::Quiet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::{cpu_seconds, load_average, single_core_peak, train_flops};

const EPOCHS: usize = 20;

/// FLOPs of one training row through one agent's layers: the encoder (no
/// input gradient at its lowest layer), the classifier, the state encoder
/// and prior heads, and the decoder.
fn agent_flops(config: &MixVaeConfig, genes: usize) -> f64 {
    let (h, l, k, s) = (
        config.hidden,
        config.low_dim,
        config.categories,
        config.state_dim,
    );
    let hidden = vec![h; config.hidden_layers];
    let encoder: Vec<usize> = [vec![genes], hidden.clone(), vec![l]].concat();
    let decoder: Vec<usize> = [vec![k + s, l], hidden, vec![genes]].concat();
    train_flops(&encoder, false)
        + train_flops(&[l, k], true)
        + 2.0 * train_flops(&[l + k, s], true)
        + 2.0 * train_flops(&[k, s], true)
        + train_flops(&decoder, true)
}

/// MMIDAS' median seconds per epoch on `x`, or why it did not run.
fn mmidas(x: &Array2<f32>) -> Result<f64, String> {
    let repo = std::env::var("PATCHBENCH_MMIDAS").map_err(|_| {
        "PATCHBENCH_MMIDAS (a checkout of AllenInstitute/MMIDAS) is not set".to_string()
    })?;
    let python = std::env::var("PATCHBENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let path = std::env::temp_dir().join(format!("patchbench-mixvae-{}.csv", std::process::id()));
    let text: Vec<String> = x
        .rows()
        .into_iter()
        .map(|r| r.iter().map(f32::to_string).collect::<Vec<_>>().join(","))
        .collect();
    std::fs::write(&path, text.join("\n")).map_err(|e| e.to_string())?;
    let output = Command::new(&python)
        .arg("benches/mixvae_mmidas.py")
        .arg(&repo)
        .arg(&path)
        .arg(EPOCHS.to_string())
        .output();
    let _ = std::fs::remove_file(&path);
    let output = output.map_err(|e| format!("cannot run {python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("mmidas median seconds per epoch: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no timing in its output".into())
}

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
    println!("load average before: {}", load_average());
    let config = MixVaeConfig {
        agents: 2,
        categories: 77,
        batch_size: 256,
        epochs: EPOCHS,
        augmentation: Augmentation::Noise { std: 0.5 },
        ..MixVaeConfig::default()
    };
    let cpu_start = cpu_seconds();
    let fitted = match fit(&x, &config, &mut Quiet) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mixVAE bench failed: {e}");
            std::process::exit(1);
        }
    };
    let cpu = cpu_seconds() - cpu_start;
    // Drop the first epoch (allocator warm-up), report the median of the rest.
    let mut seconds: Vec<f64> = fitted.epoch_seconds[1..].to_vec();
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let mean = seconds.iter().sum::<f64>() / seconds.len() as f64;
    println!(
        "mixvae M1 {} cells x {} genes, 2 agents, batch 256, K 77: median {:.4} s/epoch, mean {:.4}, min {:.4}, max {:.4} over {} epochs ({cpu:.2} CPU s for the whole fit)",
        x.nrows(),
        x.ncols(),
        median,
        mean,
        seconds[0],
        seconds[seconds.len() - 1],
        seconds.len()
    );
    let flops = x.nrows() as f64 * config.agents as f64 * agent_flops(&config, x.ncols());
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(config.agents);
    let peak = single_core_peak() * cores as f64;
    println!(
        "layers: {:.3} GFLOP per epoch, {:.1} GFLOP/s ({:.0}% of the {cores}-core f32 GEMM peak, measured {peak:.1} GFLOP/s); load average after: {}",
        flops / 1e9,
        flops / median / 1e9,
        100.0 * flops / median / 1e9 / peak,
        load_average()
    );
    match mmidas(&x) {
        Ok(theirs) => println!(
            "MMIDAS (PyTorch) {theirs:.4} s/epoch on the same matrix: patchbench is {:.2}x faster",
            theirs / median
        ),
        Err(why) => println!("MMIDAS comparison skipped: {why}"),
    }
}
