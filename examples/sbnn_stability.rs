//! Gene-selection stability of the sBNN (sbnn.md §5.4): fits the final model
//! on all cells with several seeds and reports, for every pair of runs, how
//! many of the selected genes they share, and which genes every run selected.
//!
//! ```text
//! cargo run --release --example sbnn_stability -- [SESSION] [EXPERIMENT] [RUNS]
//! ```
//! Defaults: `sessions/m1_sbnn.ron`, its first sBNN experiment, 10 runs
//! (seeds 0..RUNS). Runs go two at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use patchbench::analysis::scaling::FoldScaling;
use patchbench::models::sbnn::{SbnnConfig, fit_all_cells};
use patchbench::nn::dense::Engine;
use patchbench::runner::load_dataset;
use patchbench::session::{self, ModelSpec};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = PathBuf::from(args.first().map_or("sessions/m1_sbnn.ron", String::as_str));
    let session = session::load(&path)?;
    let experiment = session
        .experiments
        .iter()
        .find(|e| {
            matches!(e.model, ModelSpec::Sbnn(_)) && args.get(1).is_none_or(|name| &e.name == name)
        })
        .ok_or_else(|| anyhow!("no sBNN experiment in {}", path.display()))?;
    let runs: u64 = args.get(2).map_or(Ok(10), |r| r.parse())?;
    let ModelSpec::Sbnn(config) = &experiment.model else {
        unreachable!("filtered above")
    };
    let spec = session
        .datasets
        .iter()
        .find(|d| d.name == experiment.dataset)
        .context("experiment's dataset")?;
    let base = path.parent().unwrap_or(Path::new("."));
    let dataset = load_dataset(spec, base)?;
    let (x, y) = dataset
        .data
        .paired_matrices(&experiment.modalities[0], &experiment.modalities[1])
        .context("paired modalities")?;
    println!(
        "{} cells, {} genes -> {} features; {runs} runs of the full-data model",
        x.cells.len(),
        x.features.len(),
        y.features.len()
    );
    let start = Instant::now();
    let next = Mutex::new(0u64);
    let selections = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let seed = {
                        let mut n = next.lock().expect("counter");
                        *n += 1;
                        *n - 1
                    };
                    if seed >= runs {
                        break;
                    }
                    let run_config = SbnnConfig {
                        seed,
                        ..config.clone()
                    };
                    let model = fit_all_cells(
                        x.values.view(),
                        y.values.view(),
                        FoldScaling::CentreOnly,
                        &run_config,
                        None,
                        0,
                        Engine::Dense,
                        &mut |_| true,
                    )
                    .expect("sBNN fit");
                    let genes: Vec<String> = model
                        .trained
                        .genes
                        .iter()
                        .map(|&g| x.features[g].clone())
                        .collect();
                    println!("seed {seed}: {}", genes.join(" "));
                    selections.lock().expect("results").insert(seed, genes);
                }
            });
        }
    });
    let selections: Vec<Vec<String>> = selections.into_inner()?.into_values().collect();
    let mut shared = Vec::new();
    for (i, a) in selections.iter().enumerate() {
        for b in &selections[i + 1..] {
            shared.push(a.iter().filter(|g| b.contains(g)).count() as f64);
        }
    }
    let mean = shared.iter().sum::<f64>() / shared.len().max(1) as f64;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    selections
        .iter()
        .flatten()
        .for_each(|g| *counts.entry(g).or_default() += 1);
    let always: Vec<&str> = counts
        .iter()
        .filter(|(_, c)| **c == selections.len())
        .map(|(g, _)| *g)
        .collect();
    println!(
        "genes shared by two runs: {mean:.2} of {} on average ({} pairs)",
        config.genes,
        shared.len()
    );
    println!(
        "selected in all {} runs ({}): {}",
        selections.len(),
        always.len(),
        always.join(" ")
    );
    println!("seconds: {:.1}", start.elapsed().as_secs_f64());
    Ok(())
}
