use super::*;
use crate::session::{ExperimentConfig, Sweep};

const DEMO: &str = include_str!("../../../sessions/demo.ron");

fn result(value: f64) -> ExperimentResult {
    let text = format!(
        "(metrics: {{\"cv_r2_mean\": {value:?}}}, per_fold: [], \
         preprocessing: {{\"T\": (input_cells: 2, input_features: 2, steps: [], \
         standardise: None, output_cells: 2, output_features: 2)}}, \
         detail: Srrr(rank: 1, lambdas: [], chosen_lambda: None, loadings: [], unconverged_fits: 0), \
         provenance: (patchbench: \"test\", finished_at: 0, seconds: 0.0, threads: 1))"
    );
    ron::from_str(&text).unwrap()
}

/// The demo session's text in a fresh folder.
fn demo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.ron");
    std::fs::write(&path, DEMO).unwrap();
    (dir, path)
}

fn comments(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("//"))
        .collect()
}

fn metric(path: &Path, experiment: &str) -> Option<f64> {
    let session = crate::session::load(path).unwrap();
    let found = session.experiments.iter().find(|e| e.name == experiment)?;
    Some(found.result.as_ref()?.metrics["cv_r2_mean"])
}

#[test]
fn two_writers_with_stale_copies_keep_each_others_results() {
    let (_dir, path) = demo();
    let mut first = SessionStore::open(&path).unwrap();
    let mut second = SessionStore::open(&path).unwrap();
    first
        .record_result("sbnn", "f1".into(), result(0.3))
        .unwrap();
    // `second` still holds the session without sbnn's result.
    second
        .record_result("srrr_rank2", "f2".into(), result(0.2))
        .unwrap();
    assert_eq!(metric(&path, "sbnn"), Some(0.3));
    assert_eq!(metric(&path, "srrr_rank2"), Some(0.2));
    assert_eq!(
        second.session().experiments[2]
            .result
            .as_ref()
            .unwrap()
            .metrics["cv_r2_mean"],
        0.3,
        "a save brings the other writer's results in"
    );
}

#[test]
fn saving_results_keeps_every_comment_of_the_demo_session() {
    let (_dir, path) = demo();
    let mut store = SessionStore::open(&path).unwrap();
    store
        .record_result("sbnn", "f".into(), result(0.25))
        .unwrap();
    store
        .record_result("srrr_rank2", "f".into(), result(0.5))
        .unwrap();
    // A rerun replaces the result in place.
    store
        .record_result("sbnn", "f".into(), result(0.75))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(comments(&text), comments(DEMO));
    assert!(text.starts_with(DEMO.lines().next().unwrap()));
    assert!(text.contains("model: Srrr(rank: 2, target_genes: 25),"));
    assert_eq!(metric(&path, "sbnn"), Some(0.75));
    assert_eq!(metric(&path, "srrr_rank2"), Some(0.5));
    assert_eq!(text.matches("result:").count(), 2);
}

#[test]
fn config_edits_sweeps_and_new_experiments_keep_the_comments() {
    let (_dir, path) = demo();
    let mut store = SessionStore::open(&path).unwrap();
    let base = store.session().experiments[0].clone();
    let mut config = ExperimentConfig::of(&base);
    config.protocol.folds = 5;
    store
        .change(Change::Config {
            experiment: base.name.clone(),
            config: Box::new(config),
        })
        .unwrap();
    let mut copy = base.clone();
    copy.name = "srrr_rank2~rank=3".into();
    store.change(Change::Experiment(Box::new(copy))).unwrap();
    store
        .change(Change::Sweep(Sweep {
            base: base.name.clone(),
            parameter: "rank".into(),
            values: "3".into(),
            more: Vec::new(),
            random: None,
            runs: vec!["srrr_rank2~rank=3".into()],
        }))
        .unwrap();
    store.save().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(comments(&text), comments(DEMO));
    let saved = crate::session::load(&path).unwrap();
    assert_eq!(&saved, store.session());
    assert_eq!(saved.experiments[0].protocol.folds, 5);
    let demo_experiments = crate::session::parse(DEMO, &path)
        .unwrap()
        .experiments
        .len();
    assert_eq!(saved.experiments.len(), demo_experiments + 1);
    assert_eq!(saved.sweeps.len(), 1);
}

#[test]
fn an_invalid_file_on_disk_is_never_overwritten_and_gets_the_changes_once_fixed() {
    let (_dir, path) = demo();
    let mut store = SessionStore::open(&path).unwrap();
    let broken = DEMO.replace("version: 1,", "version: 1,,");
    std::fs::write(&path, &broken).unwrap();
    let error = store
        .record_result("sbnn", "f".into(), result(0.4))
        .unwrap_err();
    assert!(matches!(error, SessionError::DiskInvalid { .. }), "{error}");
    assert!(error.to_string().contains("demo.ron:5:"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(store.has_unsaved_changes());
    // The user fixes the file (and changes something else meanwhile).
    let fixed = DEMO.replace("folds: 5,", "folds: 4,");
    std::fs::write(&path, &fixed).unwrap();
    store.reload(&fixed).unwrap();
    store.save().unwrap();
    assert_eq!(metric(&path, "sbnn"), Some(0.4));
    let saved = crate::session::load(&path).unwrap();
    assert_eq!(
        saved.experiments[2].protocol.folds, 4,
        "the user's fix kept"
    );
}

#[test]
fn a_result_for_an_experiment_removed_meanwhile_is_reported_not_written() {
    let (_dir, path) = demo();
    let mut store = SessionStore::open(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let without = text.replace("\"srrr_full_rank\"", "\"renamed\"");
    std::fs::write(&path, without).unwrap();
    store
        .change(Change::Result {
            experiment: "srrr_full_rank".into(),
            result: Box::new(result(0.1)),
        })
        .unwrap();
    let report = store.save().unwrap();
    assert_eq!(report.dropped.len(), 1, "{report:?}");
    assert!(report.dropped[0].contains("srrr_full_rank"));
    assert_eq!(metric(&path, "renamed"), None);
}

#[test]
fn a_second_workbench_is_read_only_and_says_who_holds_the_session() {
    let (_dir, path) = demo();
    let _first = SessionStore::open_claimed(&path).unwrap();
    let mut second = SessionStore::open_claimed(&path).unwrap();
    let holder = second.read_only().unwrap().to_string();
    assert!(holder.contains(&std::process::id().to_string()), "{holder}");
    let error = second
        .record_result("sbnn", "f".into(), result(0.1))
        .unwrap_err();
    assert!(error.to_string().contains("read-only"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), DEMO);
}

#[test]
fn opening_removes_temp_files_of_dead_writers() {
    let (dir, path) = demo();
    let stale = dir.path().join(".demo.ron.4194305.tmp");
    std::fs::write(&stale, "half a session").unwrap();
    SessionStore::open(&path).unwrap();
    assert!(!stale.exists());
}

#[test]
fn saving_over_an_unchanged_file_writes_the_same_and_the_generation_counts_changes() {
    let (_dir, path) = demo();
    let mut mine = SessionStore::open(&path).unwrap();
    let mut other = SessionStore::open(&path).unwrap();
    let start = mine.generation();
    // Nobody else wrote: the file is not parsed again, and the result is
    // spliced in with the comments kept.
    mine.record_result("srrr_rank2", "fp".into(), result(0.5))
        .unwrap();
    assert_eq!(mine.generation(), start + 1, "one change");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(mine.text(), text);
    assert_eq!(comments(&text), comments(DEMO));
    assert_eq!(&crate::session::load(&path).unwrap(), mine.session());
    // Another writer's save merges this one's result into its session.
    other
        .record_result("sbnn", "fp".into(), result(0.7))
        .unwrap();
    assert_eq!(metric(&path, "srrr_rank2"), Some(0.5));
    assert_eq!(metric(&path, "sbnn"), Some(0.7));
    let seen = mine.generation();
    mine.reload(&std::fs::read_to_string(&path).unwrap())
        .unwrap();
    assert!(mine.generation() > seen, "a reload is a change");
    assert_eq!(&crate::session::load(&path).unwrap(), mine.session());
}
