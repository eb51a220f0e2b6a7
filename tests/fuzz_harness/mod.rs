//! The fuzzing harness shared by `tests/fuzz.rs` (a few thousand mutated
//! inputs, seconds, in CI) and `examples/fuzz.rs` (millions, on demand).
//!
//! An input is a seed of a [`targets::Target`] with [`mutation::Mutation`]s
//! applied; [`run`] writes it to the target's file in a scratch folder and
//! loads it. The only acceptable outcomes are a load whose result holds
//! together and an error that names the file; a panic is a bug in the loader.

pub mod mutation;
mod recipes;
pub mod targets;
pub mod weights;

use std::path::{Path, PathBuf};

use mutation::{Mutation, mutations, value_mutations};
use proptest::prelude::*;
use targets::{Encoding, Mutations, Outcome, Target};

/// Draws an input of `target`: a seed (any number; see [`seed_index`]) and the mutations to apply.
pub fn inputs(target: &Target) -> BoxedStrategy<(usize, Vec<Mutation>)> {
    let mutations = match target.mutations {
        Mutations::Any => mutations().boxed(),
        Mutations::Mixed => prop_oneof![mutations(), value_mutations()].boxed(),
        Mutations::Values => value_mutations().boxed(),
    };
    (any::<usize>(), mutations).boxed()
}

/// Which of `target`'s seeds (valid ones first, then degenerate ones) `seed` picks.
pub fn seed_index(target: &Target, seed: usize) -> usize {
    seed % (target.seeds.len() + target.degenerate_seeds.len())
}

/// The bytes written for `target` when `mutations` are applied to seed `seed`.
pub fn input(target: &Target, seed: usize, mutations: &[Mutation]) -> Vec<u8> {
    let chosen = seed_index(target, seed);
    let mut bytes = target
        .seeds
        .get(chosen)
        .or_else(|| target.degenerate_seeds.get(chosen - target.seeds.len()))
        .cloned()
        .unwrap_or_default();
    mutation::apply_all(&mut bytes, mutations);
    match target.encoding {
        Encoding::Plain => bytes,
        Encoding::Gzip => targets::gzip(&bytes),
        Encoding::SafetensorsHeader => weights::framed(&bytes),
    }
}

/// A folder for the files under test, in memory (`/dev/shm`) where there is
/// one: the loaders are fast enough that writing to a disk would dominate.
pub fn scratch_folder() -> std::io::Result<tempfile::TempDir> {
    let memory = Path::new("/dev/shm");
    if memory.is_dir()
        && let Ok(folder) = tempfile::Builder::new().prefix("fuzz").tempdir_in(memory)
    {
        return Ok(folder);
    }
    tempfile::tempdir()
}

/// The file `target` reads in `scratch`.
pub fn file_in(target: &Target, scratch: &Path) -> PathBuf {
    scratch.join(target.file_name)
}

/// Writes `bytes` (from [`input`]) to `target`'s file in `scratch` and loads
/// it. An error that does not name the file is a violation.
pub fn run(target: &Target, bytes: &[u8], scratch: &Path) -> Outcome {
    let path = file_in(target, scratch);
    // A new file rather than a truncated one: ext4 flushes a file that was
    // truncated and rewritten when it is closed, which is slow.
    let _ = std::fs::remove_file(&path);
    if let Err(error) = std::fs::write(&path, bytes) {
        panic!("cannot write the fuzz input {}: {error}", path.display());
    }
    match (target.load)(&path) {
        Outcome::Rejected { message, .. }
            if !message.contains(target.file_name)
                && !target.error_names.iter().any(|name| message.contains(name)) =>
        {
            Outcome::Violated(format!("the error does not name the file: {message}"))
        }
        outcome => outcome,
    }
}
