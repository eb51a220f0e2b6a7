//! The `patchbench` command line. Everything it does lives in the library; this
//! file only parses arguments, calls one front end and turns errors into a
//! message and an exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use patchbench::batch::{self, BatchOptions};
use patchbench::data::simulate::{
    SimulationConfig, SparseCountsConfig, simulate, write_sparse_counts_h5ad,
};
use patchbench::nn::DeviceChoice;

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
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a seeded synthetic Patch-seq dataset with known cell types.
    Simulate(SimulateArgs),
    /// Apply a trained model artifact to new cells.
    Apply(ApplyArgs),
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
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Folder to write gene_counts.csv, ephys_values.csv and metadata.csv to.
    #[arg(long, default_value = "data/demo")]
    out: PathBuf,
    /// Random seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Number of cells.
    #[arg(long)]
    cells: Option<usize>,
    /// Number of genes.
    #[arg(long)]
    genes: Option<usize>,
    /// `csv`: the Patch-seq dataset (counts, ephys, metadata); `h5ad`: a sparse
    /// count matrix streamed into OUT/counts.h5ad (X as CSR, obs["type"]).
    #[arg(long, value_enum, default_value_t = SimulateFormat::Csv)]
    format: SimulateFormat,
    /// With --format h5ad: the expected fraction of non-zero counts.
    #[arg(long, default_value_t = 0.05)]
    density: f64,
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

fn run_simulate(args: &SimulateArgs) -> Result<ExitCode> {
    let mut config = SimulationConfig::default();
    if args.format == SimulateFormat::H5ad {
        let sparse = SparseCountsConfig {
            cells: args.cells.unwrap_or(config.cells),
            genes: args.genes.unwrap_or(config.genes),
            density: args.density,
            types: 10,
            seed: args.seed.unwrap_or(config.seed),
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
