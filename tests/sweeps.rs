//! Grid sweeps from the command line, run in shards as a cluster would, and
//! merged back: every experiment runs exactly once, merging twice changes
//! nothing, and a shard result of a changed configuration is refused while
//! every other result is kept.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use assert_cmd::Command;

fn run_ok(dir: &Path, args: &[&str]) -> String {
    let output = Command::cargo_bin("patchbench")
        .expect("binary built")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "patchbench {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf8")
}

/// The session in `dir/s.ron` with a 2 × 2 grid × 2 seeds (8 runs) of a
/// small sRRR.
fn grid_session(dir: &Path) -> patchbench::session::Session {
    common::small_dataset(dir, 5);
    // λ up to 3: at alpha 0.5 the path must reach 10 genes, else those runs fail.
    let session = common::srrr_session("rrr", 2).replace(
        "0.5, 0.8])",
        "0.5, 0.8, 1.2, 1.6, 2.0, 2.25, 2.5, 2.75, 3.0])",
    );
    std::fs::write(dir.join("s.ron"), session).expect("session");
    run_ok(
        dir,
        &[
            "sweep",
            "s.ron",
            "rrr",
            "rank=1,2",
            "alpha=0.5,1",
            "seed=1,2",
        ],
    );
    patchbench::session::load(&dir.join("s.ron")).expect("session with the sweep")
}

fn results(dir: &Path) -> BTreeMap<String, bool> {
    let session = patchbench::session::load(&dir.join("s.ron")).expect("session");
    session
        .experiments
        .into_iter()
        .map(|e| (e.name, e.result.is_some()))
        .collect()
}

#[test]
fn shards_run_every_experiment_once_and_merging_twice_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = grid_session(dir.path());
    assert_eq!(session.experiments.len(), 9);
    assert_eq!(session.sweeps[0].runs.len(), 8);
    let before = std::fs::read_to_string(dir.path().join("s.ron")).expect("text");

    let mut ran = Vec::new();
    for k in 1..=3 {
        let shard = format!("{k}/3");
        let stdout = run_ok(
            dir.path(),
            &["--batch", "s.ron", "--shard", &shard, "--json"],
        );
        for line in stdout.lines() {
            let value: serde_json::Value = serde_json::from_str(line).expect("json");
            ran.push(value["experiment"].as_str().expect("name").to_string());
        }
        assert!(dir.path().join(format!("s.ron.shard-{k}-of-3")).exists());
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.ron")).expect("text"),
        before,
        "shards leave the session alone"
    );
    ran.sort();
    let mut all: Vec<String> = session.experiments.iter().map(|e| e.name.clone()).collect();
    all.sort();
    assert_eq!(ran, all, "every experiment exactly once");

    // A shard started again (preempted task) has nothing left to do.
    assert_eq!(
        run_ok(
            dir.path(),
            &["--batch", "s.ron", "--shard", "2/3", "--json"]
        ),
        ""
    );

    let report = run_ok(dir.path(), &["merge", "s.ron"]);
    assert!(
        report.contains("9 results merged, 0 already there, 0 refused"),
        "{report}"
    );
    let merged = std::fs::read_to_string(dir.path().join("s.ron")).expect("text");
    assert!(results(dir.path()).values().all(|&done| done));
    let report = run_ok(dir.path(), &["merge", "s.ron"]);
    assert!(
        report.contains("0 results merged, 9 already there"),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.ron")).expect("text"),
        merged,
        "merging twice changes nothing"
    );
}

#[test]
fn a_shard_of_a_changed_configuration_is_refused_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    grid_session(dir.path());
    run_ok(dir.path(), &["--batch", "s.ron", "--shard", "1/2"]);
    run_ok(dir.path(), &["--batch", "s.ron", "--shard", "2/2"]);
    // Edit one run's configuration after its shard ran.
    let path = dir.path().join("s.ron");
    let text = std::fs::read_to_string(&path).expect("text");
    let edited = text.replacen("target_genes: 10", "target_genes: 11", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).expect("edit");

    let report = run_ok(dir.path(), &["merge", "s.ron"]);
    assert!(
        report.contains("8 results merged, 0 already there, 1 refused"),
        "{report}"
    );
    let results = results(dir.path());
    assert_eq!(results.values().filter(|&&done| done).count(), 8);
    assert!(
        !results["rrr"],
        "the edited experiment keeps no stale result"
    );
}

#[test]
fn bad_sweeps_and_shards_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    grid_session(dir.path());
    let fail = |args: &[&str], part: &str| {
        let output = Command::cargo_bin("patchbench")
            .expect("binary built")
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(part), "{args:?}: {stderr}");
    };
    fail(&["--batch", "s.ron", "--shard", "4/3"], "K/N");
    fail(
        &["sweep", "s.ron", "rrr", "nope=1,2"],
        "no numeric hyperparameter `nope`",
    );
    fail(
        &["sweep", "s.ron", "missing", "rank=1"],
        "no experiment `missing`",
    );
    fail(&["sweep", "s.ron", "rrr", "random", "x"], "count of draws");
}

/// Regression: a rank sweep of the demo sRRR showed `-` for `cv_r2_mean` at
/// rank 2, because a run whose λ path never reached the gene target was
/// stored as done without a score. It now fails, saying which λ to add, and
/// nothing without the headline metric is stored.
#[test]
fn a_srrr_run_whose_lambdas_miss_the_gene_target_fails_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 5);
    let session = common::session_with_model(
        "rrr",
        "Srrr(rank: 1, target_genes: 10, lambdas: [0.05, 0.1, 0.2, 0.3, 0.5, 0.8])",
        5,
    );
    std::fs::write(dir.path().join("s.ron"), session).expect("session");
    run_ok(
        dir.path(),
        &["sweep", "s.ron", "rrr", "target_genes=10,100"],
    );
    let output = Command::cargo_bin("patchbench")
        .expect("binary built")
        .current_dir(dir.path())
        .args(["--batch", "s.ron"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a failed run fails the batch");
    assert!(
        stderr.contains("rrr~target_genes=100")
            && stderr.contains("no λ gives 100 ± 3 genes on average")
            && stderr.contains("add smaller λ values to `lambdas`"),
        "{stderr}"
    );
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("session");
    let stored: BTreeMap<&str, bool> = session
        .experiments
        .iter()
        .filter_map(|e| {
            Some((
                e.name.as_str(),
                e.result.as_ref()?.metrics.contains_key("cv_r2_mean"),
            ))
        })
        .collect();
    assert_eq!(
        stored,
        BTreeMap::from([("rrr", true), ("rrr~target_genes=10", true)]),
        "only runs with a score are stored"
    );
}
