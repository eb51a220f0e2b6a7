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
use patchbench::nn::dense::DenseNet;
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

/// A weight file whose metadata holds `layers` and the tensors of one linear 1 x 1 layer.
fn weight_file(dir: &std::path::Path, layers: &str) -> std::path::PathBuf {
    use safetensors::tensor::{Dtype, TensorView};
    let weight = 0.5_f32.to_le_bytes();
    let bias = 0.25_f32.to_le_bytes();
    let tensors = [
        (
            "layer0.weight",
            TensorView::new(Dtype::F32, vec![1, 1], &weight),
        ),
        ("layer0.bias", TensorView::new(Dtype::F32, vec![1], &bias)),
    ]
    .map(|(name, view)| (name, view.expect("a 1 x 1 tensor")));
    let metadata = std::collections::HashMap::from([
        ("format".to_owned(), "patchbench-dense".to_owned()),
        ("version".to_owned(), "1".to_owned()),
        ("layers".to_owned(), layers.to_owned()),
        ("activation:0".to_owned(), "linear".to_owned()),
    ]);
    let bytes = safetensors::serialize(tensors, Some(metadata)).expect("serialising");
    let path = dir.join("final.safetensors");
    std::fs::write(&path, bytes).expect("writing the weight file");
    path
}

#[test]
fn issue_19_a_weight_file_claiming_more_layers_than_memory_holds_is_refused() {
    let scratch = scratch_folder().expect("a scratch folder");
    let path = weight_file(scratch.path(), "1");
    assert_eq!(DenseNet::load(&path).expect("one layer").0.layers.len(), 1);
    // Found by the fuzzer: `Vec::with_capacity(layers)` panicked with "capacity overflow".
    for claimed in ["18446744073709551615", "1000000000000"] {
        let path = weight_file(scratch.path(), claimed);
        let error = DenseNet::load(&path)
            .expect_err("the file holds one layer")
            .to_string();
        assert!(
            error.contains("final.safetensors") && error.contains("layer1.weight"),
            "{claimed}: {error}"
        );
    }
}

#[test]
fn issue_19_a_weight_file_of_no_layers_is_refused_naming_the_file() {
    let scratch = scratch_folder().expect("a scratch folder");
    let error = DenseNet::load(&weight_file(scratch.path(), "0"))
        .expect_err("no layers")
        .to_string();
    assert!(
        error.contains("final.safetensors") && error.contains("at least one layer"),
        "{error}"
    );
}
