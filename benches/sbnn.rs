//! sBNN training speed on M1-sized data, against PyTorch on the same machine.
//!
//! Trains one cross-validation fold with the paper's full schedule (50
//! pre-training epochs, 50 frozen, 50 unfrozen, prune to 25 genes, 100 more)
//! on the real M1 data when `data/m1_patchseq` exists (fold 0 of the paper's
//! folds), else on simulated data of the same shape (1213 × 1000 → 16). Reports
//! seconds per epoch of every phase, the FLOPs the architecture needs (counted
//! layer by layer below) and the GFLOP/s achieved, then runs
//! `benches/sbnn_torch.py` (the same architecture and schedule in PyTorch, on
//! the same data and labels) and prints the ratio. See benches/README.md.
//!
//! ```text
//! cargo bench --bench sbnn            # PATCHBENCH_TORCH_THREADS=1,2 by default
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;
use common::{cpu_seconds, load_average, macs, single_core_peak, train_flops};

use ndarray::Array2;
use patchbench::analysis::cv::{FoldScheme, k_fold};
use patchbench::analysis::kmeans::{KMeansConfig, kmeans};
use patchbench::analysis::scaling::{FoldScaling, scale_fold};
use patchbench::models::sbnn::{Rows, SbnnConfig, TrainInput, train};
use patchbench::nn::dense::Engine;
use patchbench::runner::load_dataset;
use patchbench::session;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// M1 if present, else simulated data of its shape; with a description.
fn data() -> (Array2<f64>, Array2<f64>, String) {
    let path = Path::new("sessions/m1_sbnn.ron");
    if Path::new("data/m1_patchseq/gene_counts.csv").is_file()
        && let Ok(session) = session::load(path)
        && let Some(spec) = session.datasets.first()
        && let Ok(dataset) = load_dataset(spec, Path::new("sessions"))
        && let Some((x, y)) = dataset.data.paired_matrices("T", "E")
    {
        return (x.values, y.values, "M1 (data/m1_patchseq)".into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut normal = || -> f64 { rng.sample(StandardNormal) };
    let x = Array2::from_shape_fn((1213, 1000), |_| normal());
    let a = Array2::from_shape_fn((1000, 2), |_| normal() / 30.0);
    let b = Array2::from_shape_fn((2, 16), |_| normal());
    let y = x.dot(&a).mapv(f64::tanh).dot(&b) + Array2::from_shape_fn((1213, 16), |_| normal());
    (x, y, "simulated, M1-shaped".into())
}

fn rows(a: &Array2<f64>) -> Rows {
    Rows {
        values: a.iter().map(|&v| v as f32).collect(),
        rows: a.nrows(),
        cols: a.ncols(),
    }
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("writing benchmark data");
}

fn main() {
    let (x, y, source) = data();
    let folds = k_fold(x.nrows(), 10, 42, FoldScheme::NumpyContiguous, None).expect("folds");
    let fold = &folds[0];
    let (x_train, x_test) = scale_fold(x.view(), fold, FoldScaling::CentreOnly).expect("scale");
    let (y_train, y_test) = scale_fold(y.view(), fold, FoldScaling::CentreOnly).expect("scale");
    let config = SbnnConfig::default();
    let labels = kmeans(
        y_train.view(),
        &KMeansConfig {
            k: config.clusters,
            restarts: config.kmeans_restarts,
            max_iter: 300,
            seed: config.kmeans_seed,
        },
    )
    .expect("k-means")
    .labels;
    let (xt, yt, xs, ys) = (rows(&x_train), rows(&y_train), rows(&x_test), rows(&y_test));
    let (n, n_test, p, q) = (xt.rows, xs.rows, xt.cols, yt.cols);
    println!(
        "sBNN benchmark: {source}, fold 0 of 10: {n} training and {n_test} test cells, {p} genes -> {q} features"
    );
    println!("load average before: {}", load_average());

    let input = TrainInput {
        x_train: &xt,
        y_train: &yt,
        x_test: Some(&xs),
        y_test: Some(&ys),
        labels: Some(&labels),
        engine: Engine::Dense,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let mut stamps = Vec::new();
    let trained = train(&input, &config, &mut rng, &mut |_| {
        stamps.push(start.elapsed().as_secs_f64());
        true
    })
    .expect("training");
    let total = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_start;
    let test_r2 = trained
        .epochs
        .last()
        .and_then(|e| e.test_r2)
        .unwrap_or(f64::NAN);

    // Phase boundaries in regression epochs, and their FLOPs.
    let (fe, ue, pe) = (
        config.frozen_epochs,
        config.unfrozen_epochs,
        config.pruned_epochs,
    );
    let first_regression = stamps[0] - (stamps[1] - stamps[0]);
    let pretrain_time = first_regression.max(0.0);
    let at = |e: usize| stamps[e - 1];
    let phases = [
        ("pre-training", config.pretrain_epochs, pretrain_time),
        ("frozen", fe, at(fe) - pretrain_time),
        ("unfrozen", ue, at(fe + ue) - at(fe)),
        ("pruned", pe, at(fe + ue + pe) - at(fe + ue)),
    ];
    let classes = 20;
    let full = [p, 512, 128, 2, 128, 512, q];
    let head = [p, 512, 128, 2, 128, 512, classes];
    let pruned = [config.genes, 512, 128, 2, 128, 512, q];
    let pre_cells = (n as f64 * 0.6).floor();
    let flops = [
        pre_cells * train_flops(&head, false),
        n as f64 * train_flops(&full[2..], false) + n_test as f64 * 2.0 * macs(&full[2..]),
        n as f64 * train_flops(&full, false) + n_test as f64 * 2.0 * macs(&full),
        n as f64 * train_flops(&pruned, false) + n_test as f64 * 2.0 * macs(&pruned),
    ];
    println!(
        "\n{:<14} {:>7} {:>10} {:>11} {:>12} {:>9}",
        "phase", "epochs", "seconds", "s/epoch", "GFLOP/epoch", "GFLOP/s"
    );
    let mut total_flops = 0.0;
    for ((name, epochs, seconds), per_epoch) in phases.iter().zip(flops) {
        total_flops += per_epoch * *epochs as f64;
        println!(
            "{name:<14} {epochs:>7} {seconds:>10.2} {:>11.4} {:>12.3} {:>9.1}",
            seconds / *epochs as f64,
            per_epoch / 1e9,
            per_epoch * *epochs as f64 / seconds / 1e9
        );
    }
    println!(
        "{:<14} {:>7} {total:>10.2} {:>11.4} {:>12} {:>9.1}",
        "total",
        config.pretrain_epochs + config.regression_epochs(),
        total / (config.pretrain_epochs + config.regression_epochs()) as f64,
        "",
        total_flops / total / 1e9
    );
    let peak = single_core_peak();
    println!(
        "single-core f32 peak, measured (faer GEMM 1024³): {peak:.1} GFLOP/s; training reached {:.0}% of it",
        100.0 * total_flops / total / 1e9 / peak
    );
    println!(
        "rust: test R² (Eq. 3) at the last epoch: {test_r2:.4}; one thread, {cpu:.2} CPU s; load average after: {}",
        load_average()
    );

    // PyTorch on the same data, labels and schedule.
    let dir = std::env::temp_dir().join(format!("patchbench-sbnn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    write_f32(&dir.join("x_train.f32"), &xt.values);
    write_f32(&dir.join("y_train.f32"), &yt.values);
    write_f32(&dir.join("x_test.f32"), &xs.values);
    write_f32(&dir.join("y_test.f32"), &ys.values);
    let label_text: Vec<String> = labels.iter().map(usize::to_string).collect();
    std::fs::write(dir.join("labels.txt"), label_text.join("\n")).expect("labels");
    let threads = std::env::var("PATCHBENCH_TORCH_THREADS").unwrap_or_else(|_| "1,2".into());
    for t in threads.split(',').filter(|t| !t.is_empty()) {
        let output = Command::new("python3")
            .arg("benches/sbnn_torch.py")
            .arg(&dir)
            .args([n, n_test, p, q].map(|v| v.to_string()))
            .arg(t)
            .output();
        match output {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                print!("{text}");
                if let Some(seconds) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("torch total seconds: "))
                    .and_then(|s| s.trim().parse::<f64>().ok())
                {
                    println!(
                        "ratio torch ({t} thread(s)) / rust (1 thread): {:.2}x",
                        seconds / total
                    );
                }
            }
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                if err.contains("No module named 'torch'") {
                    println!(
                        "\nPyTorch comparison skipped: torch is not installed (see benches/README.md)"
                    );
                    break;
                }
                println!("\nPyTorch comparison failed:\n{err}");
                break;
            }
            Err(e) => {
                println!("\nPyTorch comparison skipped: cannot run python3 ({e})");
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
