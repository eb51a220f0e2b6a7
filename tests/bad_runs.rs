//! Runs that cannot give a true result fail with the true cause, once, and
//! store nothing (issue 19's repros: a rank above the genes kept, a learning
//! rate that makes the k-CAE diverge, two cells, too many PCs, values of 1e300,
//! a missing stratification column).

mod common;

use std::path::Path;

use patchbench::progress::Quiet;
use patchbench::runner::{RunError, load_dataset, run_experiment};
use patchbench::session;

/// Runs the one experiment of session `text` (over `dir`) and returns its
/// error as printed: every cause once, joined by `: `.
fn failure(dir: &Path, text: &str) -> String {
    let session = session::parse(text, &dir.join("s.ron")).expect("a valid session");
    let outcome = load_dataset(&session.datasets[0], dir)
        .and_then(|data| run_experiment(&session.experiments[0], &data, &mut Quiet));
    let error: RunError = outcome.expect_err("the run must fail");
    let message = format!("{:#}", anyhow::Error::new(error));
    assert_no_repeats(&message);
    message
}

/// No part of the message (split at `: `) appears twice.
fn assert_no_repeats(message: &str) {
    let parts: Vec<&str> = message.split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "`{part}` is repeated in: {message}"
        );
    }
}

#[test]
fn srrr_rank_above_the_genes_kept_names_the_rank_instead_of_panicking() {
    let dir = tempfile::tempdir().unwrap();
    common::small_dataset(dir.path(), 3);
    let text = common::srrr_session("rrr", 2)
        .replace("Log2p1]", "Log2p1, SelectGenes(n: 1, method: Variance)]");
    let message = failure(dir.path(), &text);
    assert!(
        message.contains("`rank` = 2") && message.contains("(1)"),
        "{message}"
    );
}

#[test]
fn a_cae_with_learning_rate_one_fails_and_points_at_the_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    common::small_dataset(dir.path(), 4);
    for rate in ["1.0", "1e30"] {
        let model = format!(
            "Cae(model: (learning_rate: {rate}, steps: 60, batch_size: 32, paired_per_batch: 32), analysis: (gmm_components: [2]))"
        );
        let text = common::session_with_model("cae", &model, 2);
        let message = failure(dir.path(), &text);
        assert!(message.contains("learning"), "rate {rate}: {message}");
    }
}

#[test]
fn two_cells_are_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_dataset(dir.path(), 5);
    let ephys = data.join("ephys_values.csv");
    let text = std::fs::read_to_string(&ephys).unwrap();
    let kept: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(&ephys, kept.join("\n") + "\n").unwrap();
    for model in [
        "Srrr(rank: 1, target_genes: 10)",
        "Cae(model: (steps: 10), analysis: (gmm_components: [2]))",
    ] {
        let message = failure(dir.path(), &common::session_with_model("two", model, 2));
        assert!(
            message.contains("2 cells are too few for 2 folds"),
            "{model}: {message}"
        );
    }
}

#[test]
fn pc_cca_with_more_pcs_than_training_cells_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    common::small_dataset(dir.path(), 6);
    let model = "PcCca(model: (pcs_a: 1000), analysis: (gmm_components: [2]))";
    let message = failure(dir.path(), &common::session_with_model("cca", model, 5));
    assert!(message.contains("pcs_a"), "{message}");
}

#[test]
fn huge_values_are_not_reported_as_all_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_dataset(dir.path(), 7);
    let ephys = data.join("ephys_values.csv");
    let text = std::fs::read_to_string(&ephys).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<&str> = lines[1].split(',').collect();
    fields[1] = "1e300";
    lines[1] = fields.join(",");
    std::fs::write(&ephys, lines.join("\n") + "\n").unwrap();
    let message = failure(dir.path(), &common::srrr_session("big", 1));
    assert!(!message.contains("all zero"), "{message}");
    assert!(message.contains("too large"), "{message}");
}

#[test]
fn a_missing_stratification_column_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    common::small_dataset(dir.path(), 8);
    let text = common::srrr_session("strat", 1).replace(
        "scheme: Shuffled",
        "scheme: Stratified, stratify_by: \"no_such_column\"",
    );
    let message = failure(dir.path(), &text);
    assert!(
        message.contains("protocol.stratify_by")
            && message.contains("metadata.csv")
            && message.contains("no_such_column"),
        "{message}"
    );
}
