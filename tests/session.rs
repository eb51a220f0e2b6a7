//! The session file: parsing, checking, round trips and atomic saves.

mod common;

use std::path::Path;

use patchbench::session::{self, SessionError};

fn parse(text: &str) -> Result<patchbench::session::Session, SessionError> {
    session::parse(text, Path::new("test.ron"))
}

#[test]
fn a_valid_session_parses_and_round_trips_through_ron() {
    let parsed = parse(&common::srrr_session("rrr", 2)).expect("valid session");
    assert_eq!(parsed.experiments.len(), 1);
    assert_eq!(parsed.experiments[0].name, "rrr");
    let text = session::to_ron(&parsed).expect("serialise");
    let again = parse(&text).expect("the written session reads back");
    assert_eq!(parsed, again);
}

#[test]
fn an_unknown_experiment_field_is_reported_with_line_and_column() {
    let text = common::srrr_session("rrr", 2).replace(
        "dataset: \"sim\",\n      modalities",
        "dataset: \"sim\",\n      colour: 3,\n      modalities",
    );
    let error = parse(&text).expect_err("unknown field must be rejected");
    let message = error.to_string();
    assert!(matches!(error, SessionError::Parse { .. }), "{message}");
    assert!(message.starts_with("test.ron:"), "{message}");
    assert!(message.contains("colour"), "{message}");
    let SessionError::Parse { line, .. } = error else {
        unreachable!()
    };
    let expected_line = text
        .lines()
        .position(|l| l.contains("colour"))
        .expect("inserted line")
        + 1;
    assert_eq!(line, expected_line);
}

#[test]
fn a_reference_to_an_unknown_dataset_names_the_field() {
    let text = common::srrr_session("rrr", 2).replace("dataset: \"sim\"", "dataset: \"other\"");
    let message = parse(&text).expect_err("unknown dataset").to_string();
    assert!(message.contains("experiments[0].dataset"), "{message}");
    assert!(
        message.contains("`other`") && message.contains("`sim`"),
        "{message}"
    );
}

#[test]
fn an_unknown_modality_and_a_wrong_version_are_rejected() {
    let text = common::srrr_session("rrr", 2)
        .replace("modalities: [\"T\", \"E\"]", "modalities: [\"T\", \"X\"]");
    let message = parse(&text).expect_err("unknown modality").to_string();
    assert!(
        message.contains("experiments[0].modalities") && message.contains("`X`"),
        "{message}"
    );
    let text = common::srrr_session("rrr", 2).replace("version: 1", "version: 99");
    let message = parse(&text).expect_err("future version").to_string();
    assert!(
        message.contains("version") && message.contains("99"),
        "{message}"
    );
}

#[test]
fn invalid_model_settings_are_rejected_before_running() {
    let text = common::srrr_session("rrr", 2).replace("rank: 2", "rank: 0");
    let message = parse(&text).expect_err("rank 0").to_string();
    assert!(message.contains("experiments[0].model"), "{message}");
}

#[test]
fn scored_folds_must_lie_between_one_and_the_fold_count() {
    for bad in [0, 6] {
        let text = common::srrr_session("rrr", 2).replace(
            "scheme: Shuffled)",
            &format!("scheme: Shuffled, scored_folds: Some({bad}))"),
        );
        let message = parse(&text).expect_err("out of range").to_string();
        assert!(
            message.contains("experiments[0].protocol.scored_folds")
                && message.contains(&format!("got {bad}")),
            "{message}"
        );
    }
    let text = common::srrr_session("rrr", 2).replace(
        "scheme: Shuffled)",
        "scheme: Shuffled, scored_folds: Some(2))",
    );
    let parsed = parse(&text).expect("2 of 5 folds is valid");
    assert_eq!(parsed.experiments[0].protocol.scored_folds, Some(2));
}

#[test]
fn save_replaces_the_file_atomically_and_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.ron");
    std::fs::write(&path, "old contents").expect("write");
    let parsed = parse(&common::srrr_session("rrr", 2)).expect("valid");
    session::save(&parsed, &path).expect("save");
    let loaded = session::load(&path).expect("load what was saved");
    assert_eq!(loaded, parsed);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("s.ron")]);
}

#[test]
fn a_failed_save_leaves_the_previous_session_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.ron");
    let parsed = parse(&common::srrr_session("rrr", 2)).expect("valid");
    session::save(&parsed, &path).expect("first save");
    let before = std::fs::read(&path).expect("read");
    // A directory where the file should go makes the final rename fail.
    let blocked = dir.path().join("blocked.ron");
    std::fs::create_dir(&blocked).expect("mkdir");
    std::fs::write(blocked.join("x"), "x").expect("fill");
    assert!(session::save(&parsed, &blocked).is_err());
    assert_eq!(std::fs::read(&path).expect("read"), before);
    let leftovers = std::fs::read_dir(dir.path()).expect("list").filter(|e| {
        e.as_ref()
            .map(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .unwrap_or(false)
    });
    assert_eq!(leftovers.count(), 0);
}

#[test]
fn relocating_keeps_data_paths_pointing_at_the_same_files() {
    let mut parsed = parse(&common::srrr_session("rrr", 2)).expect("valid");
    session::relocate(&mut parsed, Path::new("/work/a"), Path::new("/work/b/c"));
    let path = &parsed.datasets[0].modalities[0].path;
    assert_eq!(path, Path::new("../../a/data/gene_counts.csv"));
}

#[test]
fn a_session_dataset_loads_pairs_cells_and_reports_its_preprocessing() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 2);
    let parsed = parse(&common::srrr_session("rrr", 2)).expect("valid");
    let prepared =
        patchbench::runner::load_dataset(&parsed.datasets[0], dir.path()).expect("loads");
    let pairing = prepared.data.pairing("T", "E").expect("both modalities");
    let counts = pairing.counts();
    // The small config has 160 cells, 10% T-only and 5% E-only.
    assert_eq!((counts.paired, counts.only_a, counts.only_b), (136, 16, 8));
    let t = prepared.data.modality("T").expect("T");
    assert!(
        t.table.features().iter().all(|g| !g.starts_with("ERCC-")),
        "spike-ins excluded by the recipe"
    );
    let report = &prepared.reports["T"];
    assert_eq!(report.output_features, t.table.features().len());
    assert!(report.input_features > report.output_features);
    for column in t.table.dense().unwrap().values.columns() {
        let mean = column.mean().expect("non-empty");
        assert!(mean.abs() < 1e-9, "AllCells z-scoring centres every gene");
    }
}
