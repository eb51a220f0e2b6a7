//! The `patchbench` command line. Everything it does lives in the library; this
//! file only parses arguments, calls one front end and turns errors into a
//! message and an exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use patchbench::batch::{self, BatchOptions};
use patchbench::cluster::shard::{ShardSpec, merge_shards};
use patchbench::cluster::slurm::SlurmOptions;
use patchbench::cluster::submit::launch;
use patchbench::data::simulate::{
    SimulationConfig, SparseCountsConfig, simulate, write_sparse_counts_h5ad,
};
use patchbench::nn::DeviceChoice;
use patchbench::session::SessionStore;

/// The demo session opened when no session is named.
const DEMO_SESSION: &str = "sessions/demo.ron";

/// A terminal workbench for multimodal single-cell (Patch-seq) analysis.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Session file to open (default: the demo session).
    session: Option<PathBuf>,
    /// Run the session headless: every experiment without a result, then exit.
    #[arg(long)]
    batch: bool,
    #[command(flatten)]
    batch_options: BatchFlags,
}

#[derive(Debug, Args)]
struct BatchFlags {
    /// With --batch: run every experiment again, even those with a result.
    #[arg(long, requires = "batch")]
    rerun: bool,
    /// With --batch: run only the experiment with this name.
    #[arg(long, value_name = "NAME", requires = "batch")]
    only: Option<String>,
    /// With --batch: write the resulting session to PATH; the input stays untouched.
    #[arg(long, value_name = "PATH", requires = "batch")]
    out: Option<PathBuf>,
    /// With --batch: print one JSON object per finished experiment on stdout.
    #[arg(long, requires = "batch")]
    json: bool,
    /// With --batch: train on this device (cpu, cuda or cuda:N) instead of
    /// each experiment's `protocol.device`.
    #[arg(long, value_name = "DEVICE", requires = "batch")]
    device: Option<DeviceChoice>,
    /// With --batch: write each finished experiment's metrics and latents
    /// (CSV) and figures (SVG, PNG) into DIR.
    #[arg(long, value_name = "DIR", requires = "batch")]
    export: Option<PathBuf>,
    /// With --batch: run only shard K of N of the unfinished experiments and
    /// write their results to SESSION.shard-K-of-N (see `merge`).
    #[arg(long, value_name = "K/N", requires = "batch")]
    shard: Option<ShardSpec>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a seeded synthetic Patch-seq dataset with known cell types.
    Simulate(SimulateArgs),
    /// Apply a trained model artifact to new cells.
    Apply(ApplyArgs),
    /// Fold the results of finished shard files into the session.
    Merge {
        /// The session file.
        session: PathBuf,
    },
    /// Add a sweep of experiment BASE: `rank 1,2,4`, `a=0,1 b=2..4 seed=1,2`
    /// or `random 20 a=log 0.001..1 b=2..8`.
    Sweep {
        /// The session file.
        session: PathBuf,
        /// The experiment to sweep.
        base: String,
        /// The sweep, as `:sweep` takes it.
        #[arg(num_args = 1.., required = true)]
        spec: Vec<String>,
    },
    /// Run the session's unfinished experiments as a Slurm array job.
    Slurm(SlurmArgs),
}

/// `patchbench apply`: see README, "Applying a trained model to new cells".
#[derive(Debug, Args)]
struct ApplyArgs {
    /// The artifact folder (`SESSION.weights/EXPERIMENT`, or one `--export` wrote).
    artifact: PathBuf,
    /// The new cells' input modality (any format patchbench reads).
    #[arg(long)]
    data: PathBuf,
    /// Measured targets of the new cells (e.g. electrophysiology), to score the predictions.
    #[arg(long)]
    observed: Option<PathBuf>,
    /// Metadata file (CSV/TSV or .h5ad obs) for --where.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// The metadata's cell id column.
    #[arg(long, default_value = "cell_id")]
    id_column: String,
    /// Keep only cells with COL=VALUE in the metadata (VALUE* matches a prefix).
    #[arg(long = "where", value_name = "COL=VALUE")]
    filter: Option<String>,
    /// Write per-cell predictions and latent codes (.csv or .h5ad).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print one JSON object with the metrics and the alignment report.
    #[arg(long)]
    json: bool,
    /// Missing genes: zero, training-mean, refuse or refuse:MAX (default refuse:0.05).
    #[arg(long, default_value = "refuse")]
    missing: patchbench::artifact::MissingPolicy,
    /// Fit a per-feature offset and scale on N random measured cells (or these
    /// comma-separated ids) and report it next to the uncalibrated numbers.
    #[arg(long, value_name = "N|IDS")]
    calibrate: Option<patchbench::artifact::calibrate::CalibrationCells>,
    /// Look genes not found by name up in this feature column (an .h5ad var
    /// column, gene_symbols of a 10x folder, or a text column of a CSV/TSV
    /// with one row per gene).
    #[arg(long, value_name = "COLUMN")]
    alias_column: Option<String>,
    /// Apply a k-CAE's cross-validation fold K (from 1; its held-out cells
    /// are listed in the artifact) instead of the model on all cells.
    #[arg(long, value_name = "K")]
    fold: Option<usize>,
}

#[derive(Debug, Args)]
struct SlurmArgs {
    /// The session file.
    session: PathBuf,
    /// Number of shards (array tasks); default: one per unfinished experiment.
    #[arg(long)]
    shards: Option<usize>,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Time limit per task (e.g. 4:00:00).
    #[arg(long)]
    time: Option<String>,
    /// CPUs per task.
    #[arg(long)]
    cpus: Option<u32>,
    /// GPUs per task.
    #[arg(long)]
    gpus: Option<u32>,
    /// At most this many tasks at once.
    #[arg(long, value_name = "M")]
    array_parallel: Option<u32>,
    /// Train on this device in every task (e.g. cuda:0 with --gpus).
    #[arg(long)]
    device: Option<DeviceChoice>,
    /// Print the script instead of writing and submitting it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Folder to write gene_counts.csv, ephys_values.csv and metadata.csv to.
    #[arg(long, default_value = "data/demo")]
    out: PathBuf,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Draw the cells from this seed instead, keeping the types' markers and
    /// electrophysiology of --seed: new cells of the same types (csv only).
    #[arg(long, value_name = "SEED")]
    cells_seed: Option<u64>,
    /// Number of cells.
    #[arg(long)]
    cells: Option<usize>,
    /// Number of genes.
    #[arg(long)]
    genes: Option<usize>,
    /// `csv`: the Patch-seq dataset (counts, ephys, metadata); `h5ad`: a sparse
    /// count matrix streamed into OUT/counts.h5ad (X as CSR, obs["type"],
    /// the paired modality as obsm["ephys"]).
    #[arg(long, value_enum, default_value_t = SimulateFormat::Csv)]
    format: SimulateFormat,
    /// With --format h5ad: the expected fraction of non-zero counts.
    #[arg(long, default_value_t = 0.05)]
    density: f64,
    /// With --format h5ad: features of the paired modality written as
    /// obsm["ephys"] (a per-type mean plus noise; 0 writes none).
    #[arg(long, default_value_t = 16)]
    ephys_features: usize,
}

/// What `simulate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SimulateFormat {
    /// The Patch-seq dataset as CSV files.
    Csv,
    /// A sparse count matrix as an AnnData file.
    H5ad,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Some(Command::Simulate(args)) => return run_simulate(&args),
        Some(Command::Apply(args)) => return run_apply(args),
        Some(Command::Merge { session }) => return run_merge(&session),
        Some(Command::Sweep {
            session,
            base,
            spec,
        }) => return run_sweep(&session, &base, &spec.join(" ")),
        Some(Command::Slurm(args)) => return run_slurm(args),
        None => {}
    }
    let session = cli.session.unwrap_or_else(|| PathBuf::from(DEMO_SESSION));
    if cli.batch {
        let flags = cli.batch_options;
        let options = BatchOptions {
            session,
            rerun: flags.rerun,
            only: flags.only,
            out: flags.out,
            json: flags.json,
            device: flags.device,
            export: flags.export,
            shard: flags.shard,
        };
        let outcome = batch::run(&options)?;
        return Ok(if outcome.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    patchbench::tui::run(&session)?;
    Ok(ExitCode::SUCCESS)
}

fn run_merge(session: &std::path::Path) -> Result<ExitCode> {
    let mut store = SessionStore::open(session)?;
    let report = merge_shards(&mut store)?;
    for refused in &report.refused {
        eprintln!("refused: {refused}");
    }
    println!(
        "{}: {} results merged, {} already there, {} refused",
        session.display(),
        report.merged.len(),
        report.unchanged.len(),
        report.refused.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_sweep(session: &std::path::Path, base: &str, spec: &str) -> Result<ExitCode> {
    let mut store = SessionStore::open(session)?;
    let mut updated = store.session().clone();
    let runs = updated
        .add_sweep(base, spec, session)
        .with_context(|| format!("{}: sweep of {base}", session.display()))?;
    let new = updated
        .experiments
        .iter()
        .filter(|e| !store.session().experiments.iter().any(|o| o.name == e.name))
        .cloned()
        .collect::<Vec<_>>();
    for experiment in new {
        store
            .change(patchbench::session::Change::Experiment(Box::new(
                experiment,
            )))
            .map_err(anyhow::Error::msg)?;
    }
    if let Some(sweep) = updated.sweeps.last() {
        store
            .change(patchbench::session::Change::Sweep(sweep.clone()))
            .map_err(anyhow::Error::msg)?;
    }
    store.save()?;
    println!(
        "{}: sweep of {base} with {} runs",
        session.display(),
        runs.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_slurm(args: SlurmArgs) -> Result<ExitCode> {
    let mut store = SessionStore::open(&args.session)?;
    let options = SlurmOptions {
        partition: args.partition,
        time: args.time,
        cpus: args.cpus,
        gpus: args.gpus,
        array_parallel: args.array_parallel,
        device: args.device,
    };
    let program = std::env::current_exe().context("cannot find the patchbench executable")?;
    let launched = launch(&mut store, &program, args.shards, options, args.dry_run)?;
    if args.dry_run {
        print!("{}", launched.script);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "submitted job {} ({} tasks, {} experiments); script {}; merge with: patchbench merge {}",
        launched.job.job_id.as_deref().unwrap_or("-"),
        launched.job.shards,
        launched.job.experiments.len(),
        launched
            .script_path
            .as_deref()
            .map_or_else(String::new, |p| p.display().to_string()),
        args.session.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_simulate(args: &SimulateArgs) -> Result<ExitCode> {
    let mut config = SimulationConfig::default();
    if args.format == SimulateFormat::H5ad {
        if args.cells_seed.is_some() {
            anyhow::bail!("--cells-seed applies to --format csv (the Patch-seq data set) only");
        }
        let sparse = SparseCountsConfig {
            cells: args.cells.unwrap_or(config.cells),
            genes: args.genes.unwrap_or(config.genes),
            density: args.density,
            types: 10,
            seed: args.seed.unwrap_or(config.seed),
            ephys_features: args.ephys_features,
        };
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating {}", args.out.display()))?;
        let path = args.out.join("counts.h5ad");
        let stored = write_sparse_counts_h5ad(&path, &sparse)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {} ({stored} stored counts)", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    config.cells_seed = args.cells_seed;
    if let Some(cells) = args.cells {
        config.cells = cells;
    }
    if let Some(genes) = args.genes {
        config.genes = genes;
    }
    let data = simulate(&config)?;
    let files = data
        .write(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    for file in files {
        println!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn run_apply(args: ApplyArgs) -> Result<ExitCode> {
    use patchbench::artifact::{ApplyInput, apply, output};
    let filter = match &args.filter {
        Some(text) => Some(
            text.split_once('=')
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .context("--where expects COL=VALUE")?,
        ),
        None => None,
    };
    let input = ApplyInput {
        data: args.data,
        observed: args.observed,
        metadata: args.metadata.map(|m| (m, args.id_column)),
        filter,
        policy: args.missing,
        calibrate: args.calibrate,
        alias_column: args.alias_column,
        fold: args.fold,
    };
    let application = apply(&args.artifact, &input)?;
    if let Some(out) = &args.out {
        output::write_predictions(&application, out)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        println!("{}", output::summary_json(&application));
    } else {
        for line in output::summary_lines(&application) {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
