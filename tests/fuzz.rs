//! Fuzzing the file loaders (issue 19): mutated sessions, experiment config
//! files, tables (CSV/TSV, plain and gzip, both orientations) and metadata
//! must each load into something that holds together or be refused with an
//! error naming the file, never panic. A few hundred deterministic inputs per
//! loader keep this to seconds; `cargo run --release --example fuzz` runs
//! millions.

mod fuzz_harness;

use std::cell::Cell;

use fuzz_harness::targets::{Outcome, targets};
use fuzz_harness::{input, inputs, run, scratch_folder};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Mutated inputs per loader.
const CASES_PER_TARGET: u32 = 400;

#[test]
fn every_loader_accepts_its_seeds_and_refuses_degenerate_ones_with_an_error() {
    let scratch = scratch_folder().expect("a scratch folder");
    for target in targets() {
        for seed in 0..target.seeds.len() {
            let outcome = run(&target, &input(&target, seed, &[]), scratch.path());
            assert_eq!(outcome, Outcome::Accepted, "{} seed {seed}", target.name);
        }
        for degenerate in 0..target.degenerate_seeds.len() {
            let seed = target.seeds.len() + degenerate;
            let outcome = run(&target, &input(&target, seed, &[]), scratch.path());
            assert!(
                !matches!(outcome, Outcome::Violated(_)),
                "{} seed {seed}: {outcome:?}",
                target.name
            );
        }
    }
}

#[test]
fn issue_19_mutated_inputs_load_or_fail_with_an_error_naming_the_file() {
    let scratch = scratch_folder().expect("a scratch folder");
    for target in targets() {
        let config = Config {
            cases: CASES_PER_TARGET,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let (accepted, rejected) = (Cell::new(0), Cell::new(0));
        let result = runner.run(&inputs(&target), |(seed, mutations)| {
            let bytes = input(&target, seed, &mutations);
            match run(&target, &bytes, scratch.path()) {
                Outcome::Violated(problem) => Err(TestCaseError::fail(format!(
                    "{problem}\ninput: {:?}",
                    String::from_utf8_lossy(&bytes)
                ))),
                Outcome::Accepted => {
                    accepted.set(accepted.get() + 1);
                    Ok(())
                }
                Outcome::Rejected { .. } => {
                    rejected.set(rejected.get() + 1);
                    Ok(())
                }
            }
        });
        if let Err(failure) = result {
            panic!("{}: {failure}", target.name);
        }
        // Mutations that always destroy the input, or never change it, test nothing.
        assert!(
            accepted.get() > 0 && rejected.get() > 0,
            "{}: {} accepted, {} rejected",
            target.name,
            accepted.get(),
            rejected.get()
        );
    }
}
