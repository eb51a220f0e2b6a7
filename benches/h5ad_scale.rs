//! Loading and preprocessing atlas-sized sparse data, patchbench and scanpy
//! side by side in one run: simulated counts (30,000 genes, 5% non-zero;
//! 10,000 and 100,000 cells by default) written as `.h5ad` by
//! `write_sparse_counts_h5ad`, then for each tool the seconds to load the
//! file, the seconds to preprocess it to 2,000 genes and the peak resident
//! memory of a process that does only that, for two recipes: library size,
//! log1p, `Seurat` highly variable genes, keep those (scanpy's
//! `flavor="seurat"`); and `SeuratV3` on the counts, keep those, library size,
//! log1p (scanpy's `flavor="seurat_v3"`). Before each tool's run the whole
//! file is read once, untimed, so that both tools load it from the page cache
//! (otherwise whichever tool ran first on a file paid for the disk).
//!
//! Run: `cargo bench --bench h5ad_scale` (needs scanpy for its side, and
//! scikit-misc for its `seurat_v3`: `pip install scanpy scikit-misc`; without
//! them that side is skipped with a message).
//! `PATCHBENCH_SCALE_CELLS=10000,100000` picks the sizes and
//! `PATCHBENCH_SCALE_DIR` where the files go (default `target/h5ad-scale`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use patchbench::data::h5ad::{H5adSelection, read_h5ad};
use patchbench::data::simulate::{SparseCountsConfig, write_sparse_counts_h5ad};
use patchbench::prep::{GeneSelection, Recipe, Standardise, Step};

const GENES: usize = 30_000;
const DENSITY: f64 = 0.05;
const SELECTED: usize = 2_000;

/// The two recipes measured, by the name of scanpy's `flavor`.
const FLAVORS: [&str; 2] = ["seurat", "seurat_v3"];

/// The recipe that does what scanpy's script does for `flavor`.
fn recipe(flavor: &str) -> Recipe {
    let steps = if flavor == "seurat_v3" {
        vec![
            Step::SelectGenes {
                n: SELECTED,
                method: GeneSelection::SeuratV3 { span: 0.3 },
            },
            Step::LibrarySizeNormalise,
            Step::Log1p,
        ]
    } else {
        vec![
            Step::LibrarySizeNormalise,
            Step::Log1p,
            Step::SelectGenes {
                n: SELECTED,
                method: GeneSelection::Seurat { n_bins: 20 },
            },
        ]
    };
    Recipe {
        steps,
        standardise: Standardise::None,
        keep_sparse: false,
    }
}

/// Loads and preprocesses `path` with `flavor`'s recipe in this process;
/// prints one JSON line.
fn measure(path: &Path, flavor: &str) {
    let start = Instant::now();
    let table = read_h5ad(path, &H5adSelection::default()).expect("read the .h5ad");
    let loaded = start.elapsed().as_secs_f64();
    let recipe = recipe(flavor);
    let prepared = recipe.apply_loaded(table).expect("preprocess");
    let prep = start.elapsed().as_secs_f64() - loaded;
    println!(
        "{{\"load_s\": {loaded}, \"prep_s\": {prep}, \"peak_mb\": {}, \"genes\": {}}}",
        peak_mb(),
        prepared.table.features().len()
    );
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Runs `program args` and returns its last stdout line (a JSON object), or why not.
fn child(program: &Path, args: &[&str]) -> Result<serde_json::Value, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))
}

fn data_file(dir: &Path, cells: usize) -> PathBuf {
    let path = dir.join(format!("counts_{cells}x{GENES}.h5ad"));
    if !path.exists() {
        let start = Instant::now();
        let config = SparseCountsConfig {
            cells,
            genes: GENES,
            density: DENSITY,
            types: 10,
            seed: 1,
            ephys_features: 0,
        };
        let stored = write_sparse_counts_h5ad(&path, &config).expect("write the .h5ad");
        eprintln!(
            "wrote {} ({stored} stored counts) in {:.1} s",
            path.display(),
            start.elapsed().as_secs_f64()
        );
    }
    path
}

/// Reads the whole of `path` once, so the next reader finds it in the page
/// cache.
fn warm_page_cache(path: &Path) {
    let mut file = std::fs::File::open(path).expect("open the data file");
    std::io::copy(&mut file, &mut std::io::sink()).expect("read the data file");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|a| a == "--measure") {
        let flavor = args.get(position + 2).map_or("seurat", String::as_str);
        measure(Path::new(&args[position + 1]), flavor);
        return;
    }
    let sizes: Vec<usize> = std::env::var("PATCHBENCH_SCALE_CELLS")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dir = PathBuf::from(
        std::env::var("PATCHBENCH_SCALE_DIR").unwrap_or_else(|_| "target/h5ad-scale".into()),
    );
    std::fs::create_dir_all(&dir).expect("create the data folder");
    let me = std::env::current_exe().expect("the benchmark's own path");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/h5ad_scale.py");
    println!(
        "| cells | recipe | tool | load (s) | preprocess to {SELECTED} genes (s) | peak memory (MB) | genes kept |"
    );
    println!("|---|---|---|---|---|---|---|");
    for cells in sizes {
        let path = data_file(&dir, cells);
        let file = path.to_string_lossy().into_owned();
        for flavor in FLAVORS {
            let runs = [
                ("patchbench", {
                    warm_page_cache(&path);
                    child(&me, &["--measure", &file, flavor])
                }),
                ("scanpy", {
                    warm_page_cache(&path);
                    child(
                        Path::new("python3"),
                        &[&script.to_string_lossy(), &file, flavor],
                    )
                }),
            ];
            for (tool, result) in runs {
                match result {
                    Ok(v) => println!(
                        "| {cells} | {flavor} | {tool} | {:.2} | {:.2} | {:.0} | {} |",
                        v["load_s"].as_f64().unwrap_or(f64::NAN),
                        v["prep_s"].as_f64().unwrap_or(f64::NAN),
                        v["peak_mb"].as_f64().unwrap_or(f64::NAN),
                        v["genes"]
                    ),
                    Err(why) => {
                        println!(
                            "| {cells} | {flavor} | {tool} | skipped: {} | | | |",
                            why.trim()
                        )
                    }
                }
            }
        }
    }
}
