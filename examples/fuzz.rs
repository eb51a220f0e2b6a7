//! The long fuzz run of issue 19: mutated sessions, experiment config files,
//! tables and metadata through the loaders, in process, round-robin over the
//! loaders of `tests/fuzz_harness/targets.rs`.
//!
//! ```text
//! cargo run --release --example fuzz -- [--inputs N] [--seed S] [--out DIR] [--target NAME]...
//! cargo run --release --example fuzz -- --target NAME --replay FILE
//! ```
//! Defaults: 1,000,000 inputs, seed 1, reproducers in `target/fuzz`, every
//! loader. Prints, per loader, how many inputs were accepted, refused (by
//! error kind), broke an invariant (a loaded result that does not hold
//! together, or an error that does not name the file) or panicked. Every
//! panic and violation leaves its input (`panic-N-LOADER-FILE`) and what
//! happened (`.txt`) in the output folder; `--replay FILE` loads such a file
//! with the loader named by `--target`, without catching a panic, and says
//! what happened and how long it took.

#[path = "../tests/fuzz_harness/mod.rs"]
mod fuzz_harness;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use fuzz_harness::mutation::Mutation;
use fuzz_harness::targets::{Outcome, Target, targets};
use fuzz_harness::{input, inputs, run, scratch_folder, seed_index};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Reproducer files written at most, so that a systematic bug cannot fill the disk.
const MAX_REPRODUCERS: usize = 1000;
/// Inputs between progress lines.
const PROGRESS_EVERY: u64 = 100_000;

#[derive(Parser)]
#[command(about = "Fuzz patchbench's loaders with mutated inputs")]
struct Args {
    /// How many inputs in all.
    #[arg(long, default_value_t = 1_000_000)]
    inputs: u64,
    /// Seed of the mutations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Folder for reproducer files.
    #[arg(long, default_value = "target/fuzz")]
    out: PathBuf,
    /// An input that takes longer than this many milliseconds is written out as `slow-N-...`.
    #[arg(long, default_value_t = 1000)]
    slow_ms: u64,
    /// Fuzz only these loaders (repeatable); all by default.
    #[arg(long = "target")]
    only: Vec<String>,
    /// Load this file (a reproducer) with the one loader named by `--target`.
    #[arg(long, requires = "only")]
    replay: Option<PathBuf>,
}

/// Counts for one loader.
#[derive(Default)]
struct Tally {
    inputs: u64,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    violations: u64,
    panics: u64,
    slow: u64,
    slowest: Duration,
}

thread_local! {
    /// The message and place of the last panic, recorded by the panic hook.
    static LAST_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

fn main() -> Result<()> {
    let args = Args::parse();
    let targets: Vec<Target> = targets()
        .into_iter()
        .filter(|target| args.only.is_empty() || args.only.iter().any(|n| n == target.name))
        .collect();
    if targets.is_empty() {
        bail!("no loader called {:?}", args.only);
    }
    let scratch = scratch_folder().context("a scratch folder")?;
    if let Some(file) = &args.replay {
        return replay(&targets, file, scratch.path());
    }
    std::fs::create_dir_all(&args.out).with_context(|| args.out.display().to_string())?;
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        LAST_PANIC.with(|last| *last.borrow_mut() = format!("{place}: {message}"));
    }));

    let mut seed_bytes = [0_u8; 32];
    seed_bytes[..8].copy_from_slice(&args.seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategies: Vec<_> = targets.iter().map(inputs).collect();
    let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
    let mut reproducers = 0_usize;
    let started = Instant::now();
    for i in 0..args.inputs {
        let k = usize::try_from(i).unwrap_or(usize::MAX) % targets.len();
        let (target, tally) = (&targets[k], &mut tallies[k]);
        let (seed, mutations) = strategies[k]
            .new_tree(&mut runner)
            .map_err(|reason| anyhow::anyhow!("drawing an input: {reason}"))?
            .current();
        let bytes = input(target, seed, &mutations);
        let began = Instant::now();
        let outcome =
            std::panic::catch_unwind(AssertUnwindSafe(|| run(target, &bytes, scratch.path())));
        let took = began.elapsed();
        tally.slowest = tally.slowest.max(took);
        tally.inputs += 1;
        let mut finding = match outcome {
            Ok(Outcome::Accepted) => {
                tally.accepted += 1;
                None
            }
            Ok(Outcome::Rejected { kind, .. }) => {
                *tally.rejected.entry(kind).or_default() += 1;
                None
            }
            Ok(Outcome::Violated(problem)) => {
                tally.violations += 1;
                Some(("violation", problem))
            }
            Err(_) => {
                tally.panics += 1;
                Some(("panic", LAST_PANIC.with(|last| last.borrow().clone())))
            }
        };
        if took > Duration::from_millis(args.slow_ms) {
            tally.slow += 1;
            finding = finding
                .or_else(|| Some(("slow", format!("took {:.0} ms", took.as_secs_f64() * 1e3))));
        }
        if let Some((what, description)) = finding {
            eprintln!("{what} in {}: {description}", target.name);
            if reproducers < MAX_REPRODUCERS {
                reproducers += 1;
                write_reproducer(
                    &args.out,
                    reproducers,
                    what,
                    target,
                    &bytes,
                    &Found {
                        description: &description,
                        seed,
                        mutations: &mutations,
                    },
                )?;
            }
        }
        if (i + 1) % PROGRESS_EVERY == 0 {
            eprintln!(
                "{} inputs, {:.0} s, {} panics, {} violations",
                i + 1,
                started.elapsed().as_secs_f64(),
                tallies.iter().map(|t| t.panics).sum::<u64>(),
                tallies.iter().map(|t| t.violations).sum::<u64>(),
            );
        }
    }
    report(&args, &targets, &tallies, started.elapsed(), reproducers);
    Ok(())
}

/// Loads `file` with the only target and prints the outcome and the time it took.
fn replay(targets: &[Target], file: &Path, scratch: &Path) -> Result<()> {
    let [target] = targets else {
        bail!("--replay needs exactly one --target");
    };
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    let began = Instant::now();
    let outcome = run(target, &bytes, scratch);
    println!(
        "{}: {outcome:?} in {:.1} ms",
        target.name,
        began.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

/// What a reproducer's description file says.
struct Found<'a> {
    description: &'a str,
    seed: usize,
    mutations: &'a [Mutation],
}

fn write_reproducer(
    out: &Path,
    number: usize,
    what: &str,
    target: &Target,
    bytes: &[u8],
    found: &Found<'_>,
) -> Result<()> {
    let stem = format!("{what}-{number}-{}-{}", target.name, target.file_name);
    let input_path = out.join(&stem);
    std::fs::write(&input_path, bytes).with_context(|| input_path.display().to_string())?;
    let text = format!(
        "loader: {}\nfile: {}\nwhat happened: {}\nseed input: {}\nmutations: {:?}\n",
        target.name,
        input_path.display(),
        found.description,
        seed_index(target, found.seed),
        found.mutations
    );
    let text_path = out.join(format!("{stem}.txt"));
    std::fs::write(&text_path, text).with_context(|| text_path.display().to_string())
}

fn report(
    args: &Args,
    targets: &[Target],
    tallies: &[Tally],
    elapsed: Duration,
    reproducers: usize,
) {
    println!(
        "| loader | inputs | accepted | refused (by error kind) | violations | panics | slowest input (inputs over {} ms) |",
        args.slow_ms
    );
    println!("|---|---|---|---|---|---|---|");
    for (target, tally) in targets.iter().zip(tallies) {
        let refused: Vec<String> = tally
            .rejected
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} ms ({}) |",
            target.name,
            tally.inputs,
            tally.accepted,
            refused.join(", "),
            tally.violations,
            tally.panics,
            tally.slowest.as_secs_f64() * 1e3,
            tally.slow
        );
    }
    let total = |count: fn(&Tally) -> u64| tallies.iter().map(count).sum::<u64>();
    println!(
        "\n{} inputs (seed {}) in {:.1} s: {} accepted, {} refused, {} violations, {} panics; {} reproducer files in {}",
        total(|t| t.inputs),
        args.seed,
        elapsed.as_secs_f64(),
        total(|t| t.accepted),
        total(|t| t.rejected.values().sum()),
        total(|t| t.violations),
        total(|t| t.panics),
        reproducers,
        args.out.display()
    );
}
