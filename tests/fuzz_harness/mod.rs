//! The fuzzing harness shared by `tests/fuzz.rs` (a few thousand mutated
//! inputs, seconds, in CI) and `examples/fuzz.rs` (millions, on demand).
//!
//! An input is a seed of a [`targets::Target`] with [`mutation::Mutation`]s
//! applied; [`run`] writes it to the target's file in a scratch folder and
//! loads it. The only acceptable outcomes are a load whose result holds
//! together and an error that names the file; a panic is a bug in the loader.

pub mod mutation;
pub mod targets;

use std::path::{Path, PathBuf};

use mutation::Mutation;
use targets::{Encoding, Outcome, Target};

/// The bytes written for `target` when `mutations` are applied to seed `seed`.
pub fn input(target: &Target, seed: usize, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = target.seeds[seed % target.seeds.len()].clone();
    mutation::apply_all(&mut bytes, mutations);
    match target.encoding {
        Encoding::Plain => bytes,
        Encoding::Gzip => targets::gzip(&bytes),
    }
}

/// The file `target` reads in `scratch`.
pub fn file_in(target: &Target, scratch: &Path) -> PathBuf {
    scratch.join(target.file_name)
}

/// Writes `bytes` (from [`input`]) to `target`'s file in `scratch` and loads
/// it. An error that does not name the file is a violation.
pub fn run(target: &Target, bytes: &[u8], scratch: &Path) -> Outcome {
    let path = file_in(target, scratch);
    if let Err(error) = std::fs::write(&path, bytes) {
        panic!("cannot write the fuzz input {}: {error}", path.display());
    }
    match (target.load)(&path) {
        Outcome::Rejected { message, .. } if !message.contains(target.file_name) => {
            Outcome::Violated(format!("the error does not name the file: {message}"))
        }
        outcome => outcome,
    }
}
