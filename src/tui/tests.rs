//! Key-by-key tests of the app state (no terminal) and TestBackend snapshots
//! of every pane, tiny terminals and an empty session.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::Array2;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::App;
use super::state::{
    AppEvent, DatasetState, Effect, Mode, Pane, RunUpdate, Severity, Status, ViewTab,
};
use super::ui;
use crate::analysis::confusion::Confusion;
use crate::data::{Dataset, FeatureTable, Metadata, Modality, Orientation};
use crate::models::srrr::SrrrConfig;
use crate::progress::Event;
use crate::runner::PreparedDataset;
use crate::session::{
    self, CrossModal, Curve, DatasetSpec, Experiment, ExperimentResult, FeatureScore, Latent,
    MetadataSpec, ModalitySpec, ModelSpec, Protocol, Provenance, ResultDetail, Session,
};

const FAMILIES: [&str; 3] = ["Alpha", "Beta", "Gamma"];

fn cells() -> Vec<String> {
    (0..30).map(|i| format!("c{i:02}")).collect()
}

fn dataset_spec() -> DatasetSpec {
    DatasetSpec {
        name: "toy".into(),
        modalities: ["T", "E"]
            .iter()
            .map(|m| {
                ModalitySpec::new(
                    *m,
                    format!("{m}.csv"),
                    Orientation::CellsByFeatures,
                    Default::default(),
                )
            })
            .collect(),
        metadata: Some(MetadataSpec {
            path: "meta.csv".into(),
            id_column: "cell_id".into(),
        }),
        fetch: None,
    }
}

fn prepared() -> Arc<PreparedDataset> {
    let table = |features: usize| FeatureTable {
        cells: cells(),
        features: (0..features).map(|f| format!("f{f}")).collect(),
        values: Array2::from_shape_fn((30, features), |(c, f)| (c * f) as f64),
    };
    let modality = |name: &str, features| {
        Modality::new(
            name,
            PathBuf::from(name),
            Orientation::CellsByFeatures,
            table(features),
        )
    };
    let metadata = Metadata {
        path: PathBuf::from("meta.csv"),
        cells: cells(),
        columns: vec!["rna_family".into(), "depth".into()],
        rows: (0..30)
            .map(|i| vec![FAMILIES[i % 3].to_string(), format!("{}", i % 2)])
            .collect(),
    };
    let data = Dataset::new(vec![modality("T", 5), modality("E", 3)], Some(metadata)).unwrap();
    Arc::new(PreparedDataset {
        name: "toy".into(),
        data,
        reports: BTreeMap::new(),
        fitted: BTreeMap::new(),
    })
}

fn result(r2: f64) -> ExperimentResult {
    let latent_values: Vec<f32> = (0..30)
        .flat_map(|i| {
            let centre = (i % 3) as f32 * 3.0;
            [
                centre + (i as f32 * 0.37).sin(),
                centre * 0.5 + (i as f32 * 0.71).cos(),
            ]
        })
        .collect();
    ExperimentResult {
        metrics: BTreeMap::from([
            ("cv_r2_mean".to_string(), r2),
            ("cv_r2_sd".to_string(), 0.05),
            ("n_genes".to_string(), 3.0),
            ("seconds".to_string(), 1.5),
        ]),
        per_fold: vec![r2; 3],
        per_feature: vec![],
        genes: ["Gad1", "Pvalb", "Sst", "Vip"]
            .iter()
            .enumerate()
            .map(|(i, g)| FeatureScore {
                name: (*g).into(),
                score: 1.0 / (i + 1) as f64,
            })
            .collect(),
        latent: Some(Latent {
            dims: 2,
            cells: cells(),
            values: latent_values.clone(),
        }),
        latents: vec![session::NamedLatent {
            name: "z_E".into(),
            latent: Latent {
                dims: 2,
                cells: cells(),
                values: latent_values.iter().map(|v| -v).collect(),
            },
        }],
        weights: vec![],
        cross_modal: Some(CrossModal {
            source: "T".into(),
            target: "E".into(),
            features: vec!["R_input".into(), "Tau".into()],
            cells: vec!["c00".into(), "c01".into()],
            observed: vec![1.0, 2.0, 3.0, 4.0],
            predicted: vec![1.1, 1.8, 2.7, 4.2],
        }),
        curves: vec![
            Curve {
                name: "loss".into(),
                values: (0..20).map(|e| 2.0 / (1.0 + e as f64)).collect(),
            },
            Curve {
                name: "test_r2".into(),
                values: (0..20).map(|e| 0.5 - 0.4 / (1.0 + e as f64)).collect(),
            },
        ],
        confusions: vec![Confusion {
            name: "qda z_E -> rna_family".into(),
            truth: FAMILIES.iter().map(|s| s.to_string()).collect(),
            predicted: FAMILIES.iter().map(|s| s.to_string()).collect(),
            counts: vec![vec![8, 2, 0], vec![1, 9, 0], vec![0, 3, 7]],
        }],
        preprocessing: BTreeMap::new(),
        detail: ResultDetail::Srrr {
            rank: 2,
            lambdas: vec![],
            chosen_lambda: None,
            loadings: vec![],
            weights: vec![],
            unconverged_fits: 0,
        },
        provenance: Provenance {
            patchbench: "0.1.0".into(),
            finished_at: 0,
            seconds: 1.5,
            threads: 2,
            device: crate::nn::DeviceChoice::Cpu,
            config: None,
        },
    }
}

fn experiment(name: &str, rank: usize, result: Option<ExperimentResult>) -> Experiment {
    Experiment {
        name: name.into(),
        dataset: "toy".into(),
        modalities: vec!["T".into(), "E".into()],
        model: ModelSpec::Srrr(SrrrConfig {
            rank,
            ..SrrrConfig::default()
        }),
        protocol: Protocol {
            folds: 3,
            ..Protocol::default()
        },
        result,
    }
}

fn session() -> Session {
    Session {
        version: session::SESSION_VERSION,
        datasets: vec![dataset_spec()],
        experiments: vec![
            experiment("alpha", 2, Some(result(0.41))),
            experiment("beta", 3, Some(result(0.57))),
            experiment("gamma", 1, None),
        ],
        sweeps: vec![],
    }
}

/// An app over [`session`] saved in a fresh temporary folder.
fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.ron");
    session::save(&session(), &path).unwrap();
    let mut app = App::open(&path).unwrap();
    app.datasets
        .insert("toy".into(), DatasetState::Loaded(prepared()));
    (dir, app)
}

/// Runs the saves the app asks for, as the event loop's writer thread does.
fn write_saves(app: &mut App) {
    while let Some(job) = app.next_save() {
        app.handle(AppEvent::Saved(job.run()));
    }
}

/// Reports that run `name` finished with a result scoring `r2`.
fn finish(app: &mut App, name: &str, r2: f64) {
    let fingerprint = job_fingerprint(app, name);
    app.handle(AppEvent::Run {
        name: name.into(),
        update: RunUpdate::Finished {
            fingerprint,
            result: Box::new(result(r2)),
        },
    });
}

fn saved_r2(path: &Path) -> Vec<Option<f64>> {
    session::load(path)
        .unwrap()
        .experiments
        .iter()
        .map(|e| e.result.as_ref().map(|r| r.metrics["cv_r2_mean"]))
        .collect()
}

#[test]
fn finished_runs_are_saved_by_the_writer_one_save_at_a_time() {
    let (_dir, mut app) = app();
    let path = app.path.clone();
    finish(&mut app, "alpha", 0.1);
    assert_eq!(app.status(&app.session().experiments[0]), Status::Done);
    assert_eq!(
        saved_r2(&path),
        [Some(0.41), Some(0.57), None],
        "not saved on the UI thread"
    );
    let first = app.next_save().expect("a save job");
    // Two more finish while the first save is written: no second job yet.
    finish(&mut app, "beta", 0.2);
    finish(&mut app, "gamma", 0.3);
    assert!(app.next_save().is_none(), "one save in flight");
    app.handle(AppEvent::Saved(first.run()));
    assert_eq!(saved_r2(&path), [Some(0.1), Some(0.57), None]);
    // The next save writes the latest state once.
    let second = app.next_save().expect("the coalesced save");
    app.handle(AppEvent::Saved(second.run()));
    assert!(app.next_save().is_none() && !app.save_pending());
    assert_eq!(saved_r2(&path), [Some(0.1), Some(0.2), Some(0.3)]);
    assert_eq!(&session::load(&path).unwrap(), app.session());
}

#[test]
fn quitting_waits_for_the_save_in_flight_and_writes_the_rest() {
    let (_dir, mut app) = app();
    let path = app.path.clone();
    let (sender, receiver) = std::sync::mpsc::channel();
    let saver = session::BackgroundSaver::start(move |outcome| {
        let _ = sender.send(AppEvent::Saved(outcome));
    });
    finish(&mut app, "alpha", 0.1);
    saver.save(app.next_save().unwrap());
    finish(&mut app, "beta", 0.2);
    crate::tui::finish_saving(&mut app, saver, &receiver);
    assert!(!app.save_pending());
    assert_eq!(saved_r2(&path), [Some(0.1), Some(0.2), None]);
}

#[test]
fn a_failed_background_save_keeps_the_file_and_reaches_the_ui() {
    let (_dir, mut app) = app();
    let path = app.path.clone();
    finish(&mut app, "alpha", 0.1);
    let job = app.next_save().unwrap();
    // The file turns invalid before the writer reads it.
    let broken = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("version: 1,", "version: 1,,", 1);
    std::fs::write(&path, &broken).unwrap();
    app.handle(AppEvent::Saved(job.run()));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    let (message, severity) = app.message.clone().unwrap();
    assert_eq!(severity, Severity::Error, "{message}");
    // Fixed: the result, still pending, is written by the next save.
    std::fs::write(&path, broken.replacen("version: 1,,", "version: 1,", 1)).unwrap();
    app.save();
    write_saves(&mut app);
    assert_eq!(saved_r2(&path), [Some(0.1), Some(0.57), None]);
}

/// The fingerprint a run of `name` records: its configuration now.
fn job_fingerprint(app: &App, name: &str) -> String {
    let experiment = app.session().experiments.iter().find(|e| e.name == name);
    session::fingerprint(experiment.unwrap(), Some(&app.session().datasets[0]))
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        let code = match c {
            '\n' => KeyCode::Enter,
            '\t' => KeyCode::Tab,
            '\x1b' => KeyCode::Esc,
            c => KeyCode::Char(c),
        };
        app.key(KeyEvent::new(code, KeyModifiers::NONE));
    }
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| ui::draw(frame, app)).unwrap();
    // Temporary paths differ between runs; show the session by name only.
    terminal
        .backend()
        .to_string()
        .replace(&app.display_path, "s.ron")
}

#[test]
fn tab_and_vim_keys_move_focus_and_selection() {
    let (_dir, mut app) = app();
    assert_eq!(app.focus, Pane::Experiments);
    press(&mut app, "\t");
    assert_eq!(app.focus, Pane::Config);
    app.key(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT));
    assert_eq!(app.focus, Pane::Experiments);
    press(&mut app, "jj");
    assert_eq!(app.selected().unwrap().name, "gamma");
    press(&mut app, "jk");
    assert_eq!(app.selected().unwrap().name, "beta");
    press(&mut app, "g");
    assert_eq!(app.selected().unwrap().name, "alpha");
    press(&mut app, "hh");
    assert_eq!(app.focus, Pane::View);
    press(&mut app, "]]");
    assert_eq!(app.view.tab, ViewTab::Confusion);
    press(&mut app, "4");
    assert_eq!(app.view.tab, ViewTab::Genes);
}

#[test]
fn help_overlay_and_command_line() {
    let (_dir, mut app) = app();
    press(&mut app, "?");
    assert_eq!(app.mode, Mode::Help);
    press(&mut app, "x");
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, ":sort cv_r2_mean\n");
    assert_eq!(app.selected().unwrap().name, "beta");
    press(&mut app, ":label depth\n");
    assert_eq!(app.label_column().as_deref(), Some("depth"));
    press(&mut app, ":bogus\n");
    assert!(app.message.as_ref().unwrap().0.contains("unknown command"));
    press(&mut app, ":tab curves\n");
    assert_eq!(app.view.tab, ViewTab::Curves);
}

#[test]
fn sorting_cycles_through_columns_and_reverses() {
    let (_dir, mut app) = app();
    press(&mut app, "s");
    assert_eq!(app.sort_label(), "name ↑");
    press(&mut app, "ss");
    // Status, then the first metric, largest first.
    assert_eq!(app.sort_label(), "cv_r2_mean ↓");
    let names: Vec<_> = app
        .rows()
        .iter()
        .map(|&i| app.session().experiments[i].name.clone())
        .collect();
    assert_eq!(names, ["beta", "alpha", "gamma"]);
    press(&mut app, "S");
    let names: Vec<_> = app
        .rows()
        .iter()
        .map(|&i| app.session().experiments[i].name.clone())
        .collect();
    assert_eq!(
        names,
        ["alpha", "beta", "gamma"],
        "missing values stay last"
    );
}

#[test]
fn a_run_reports_progress_saves_its_result_and_survives_reopening() {
    let (dir, mut app) = app();
    press(&mut app, "jj");
    press(&mut app, "r");
    assert_eq!(app.status(app.selected().unwrap()), Status::Queued);
    let job = app.next_job().unwrap();
    assert_eq!(job.job.experiment.name, "gamma");
    assert!(app.next_job().is_none(), "one run at a time");
    let progress = |event| AppEvent::Run {
        name: "gamma".into(),
        update: RunUpdate::Progress(event),
    };
    app.handle(progress(Event::Stage {
        name: "fold 1/3".into(),
        total: 10,
    }));
    app.handle(progress(Event::Step { done: 5 }));
    app.handle(progress(Event::Metric {
        fold: None,
        name: "loss".into(),
        step: 1,
        value: 0.5,
    }));
    assert_eq!(app.status(app.selected().unwrap()), Status::Running(0.5));
    assert_eq!(
        app.runs.run("gamma").unwrap().live["loss"],
        vec![(1.0, 0.5)]
    );
    press(&mut app, "q");
    assert_eq!(app.mode, Mode::ConfirmQuit, "quitting asks while runs go");
    press(&mut app, "n");
    assert!(!app.quit);
    app.handle(AppEvent::Run {
        name: "gamma".into(),
        update: RunUpdate::Finished {
            fingerprint: job_fingerprint(&app, "gamma"),
            result: Box::new(result(0.33)),
        },
    });
    assert_eq!(app.status(app.selected().unwrap()), Status::Done);
    press(&mut app, "q");
    assert!(app.quit);
    write_saves(&mut app); // as the event loop does when quitting
    let reopened = App::open(&dir.path().join("s.ron")).unwrap();
    let gamma = &reopened.session().experiments[2];
    assert_eq!(gamma.result.as_ref().unwrap().metrics["cv_r2_mean"], 0.33);
    assert_eq!(reopened.status(gamma), Status::Done);
}

#[test]
fn cancel_sets_the_flag_and_a_cancelled_run_is_recorded_as_failed() {
    let (_dir, mut app) = app();
    press(&mut app, "r");
    let job = app.next_job().unwrap();
    press(&mut app, "c");
    assert!(job.job.cancel.load(std::sync::atomic::Ordering::Relaxed));
    app.handle(AppEvent::Run {
        name: "alpha".into(),
        update: RunUpdate::Failed("cancelled".into()),
    });
    assert_eq!(app.status(app.selected().unwrap()), Status::Failed);
    assert!(app.selected().unwrap().result.is_some(), "old result kept");
}

#[test]
fn a_sweep_from_the_keyboard_queues_runs_and_resumes_after_reopening() {
    let (dir, mut app) = app();
    press(&mut app, "w");
    let Mode::Sweep(super::sweep_dialog::SweepDialog::Parameter { choices, .. }) = app.mode.clone()
    else {
        panic!("sweep dialog expected, got {:?}", app.mode);
    };
    let rank = choices.iter().position(|(p, _)| p == "rank").unwrap();
    press(&mut app, &"j".repeat(rank));
    press(&mut app, "\n1,2,3\n");
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.session().experiments.len(), 6);
    assert_eq!(app.session().sweeps.len(), 1);
    assert_eq!(app.runs.waiting().count(), 3);
    // Finish one run, then "quit" and reopen: the other two are queued again.
    let job = app.next_job().unwrap();
    app.handle(AppEvent::Run {
        name: job.job.experiment.name.clone(),
        update: RunUpdate::Finished {
            fingerprint: job_fingerprint(&app, &job.job.experiment.name),
            result: Box::new(result(0.2)),
        },
    });
    // "Quit" (saves written, the session free again), then reopen.
    write_saves(&mut app);
    drop(app);
    let reopened = App::open(&dir.path().join("s.ron")).unwrap();
    assert_eq!(reopened.session().sweeps[0].runs.len(), 3);
    assert_eq!(reopened.runs.waiting().count(), 2);
    assert!(
        !reopened
            .runs
            .waiting()
            .any(|n| n == job.job.experiment.name)
    );
}

#[test]
fn config_edits_reload_valid_and_report_invalid_with_line_and_column() {
    let (_dir, mut app) = app();
    press(&mut app, "e");
    let Some(Effect::Edit(path)) = app.effects.pop() else {
        panic!("an edit effect expected");
    };
    // A result made with the current config, then an edit of the rank.
    app.handle(AppEvent::Run {
        name: "alpha".into(),
        update: RunUpdate::Finished {
            fingerprint: job_fingerprint(&app, "alpha"),
            result: Box::new(result(0.4)),
        },
    });
    write_saves(&mut app);
    assert_eq!(app.status(app.selected().unwrap()), Status::Done);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("rank: 2"));
    std::fs::write(&path, text.replace("rank: 2", "rank: 4")).unwrap();
    app.handle(AppEvent::FilesChanged(vec![path.clone()]));
    write_saves(&mut app);
    let ModelSpec::Srrr(config) = &app.selected().unwrap().model else {
        panic!("an sRRR model")
    };
    assert_eq!(config.rank, 4);
    assert_eq!(app.status(app.selected().unwrap()), Status::Stale);
    let saved = session::load(&app.path).unwrap();
    assert_eq!(saved.experiments[0].model, app.selected().unwrap().model);

    std::fs::write(&path, "(\n  dataset: \"toy\",\n  model: Srrr(rank: ),\n)").unwrap();
    app.handle(AppEvent::FilesChanged(vec![path.clone()]));
    let error = app.config_error.clone().unwrap();
    assert!(error.contains(":3:"), "line and column in {error}");
    let ModelSpec::Srrr(config) = &app.selected().unwrap().model else {
        panic!("an sRRR model")
    };
    assert_eq!(config.rank, 4, "last good config kept");

    std::fs::write(&path, text.replace("\"toy\"", "\"nope\"")).unwrap();
    app.handle(AppEvent::FilesChanged(vec![path]));
    assert!(
        app.config_error
            .clone()
            .unwrap()
            .contains("unknown dataset")
    );
}

#[test]
fn a_finished_run_keeps_the_comments_of_the_demo_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.ron");
    let demo = include_str!("../../sessions/demo.ron");
    std::fs::write(&path, demo).unwrap();
    let mut app = App::open(&path).unwrap();
    app.enqueue("sbnn");
    let job = app.next_job().unwrap();
    app.handle(AppEvent::Run {
        name: "sbnn".into(),
        update: RunUpdate::Finished {
            fingerprint: job.job.fingerprint,
            result: Box::new(result(0.3)),
        },
    });
    write_saves(&mut app);
    let text = std::fs::read_to_string(&path).unwrap();
    let comments = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.trim_start().starts_with("//"))
            .map(String::from)
            .collect()
    };
    assert_eq!(comments(&text), comments(demo));
    assert_eq!(app.status(&app.session().experiments[2]), Status::Done);
    let saved = session::load(&path).unwrap();
    assert!(saved.experiments[2].result.is_some());
}

#[test]
fn another_writer_and_the_workbench_keep_each_others_results() {
    let (dir, mut app) = app();
    let path = dir.path().join("s.ron");
    // A batch on the same session stores beta's result while gamma runs here.
    app.enqueue("gamma");
    let job = app.next_job().unwrap();
    let mut batch = session::SessionStore::open(&path).unwrap();
    let beta = job_fingerprint(&app, "beta");
    batch.record_result("beta", beta, result(0.9)).unwrap();
    app.handle(AppEvent::Run {
        name: "gamma".into(),
        update: RunUpdate::Finished {
            fingerprint: job.job.fingerprint,
            result: Box::new(result(0.1)),
        },
    });
    write_saves(&mut app);
    let saved = session::load(&path).unwrap();
    let r2 = |i: usize| saved.experiments[i].result.as_ref().unwrap().metrics["cv_r2_mean"];
    assert_eq!((r2(1), r2(2)), (0.9, 0.1));
    assert_eq!(app.session(), &saved, "the workbench shows both");
}

#[test]
fn a_second_workbench_opens_read_only_and_names_the_holder() {
    let (dir, _app) = app();
    let mut second = App::open(&dir.path().join("s.ron")).unwrap();
    let (message, _) = second.message.clone().unwrap();
    assert!(message.starts_with("read-only: pid "), "{message}");
    second.save();
    second.handle(AppEvent::Run {
        name: "gamma".into(),
        update: RunUpdate::Finished {
            fingerprint: "x".into(),
            result: Box::new(result(0.1)),
        },
    });
    write_saves(&mut second);
    let (message, _) = second.message.clone().unwrap();
    assert!(message.contains("read-only"), "{message}");
    assert!(
        session::load(&dir.path().join("s.ron"))
            .unwrap()
            .experiments[2]
            .result
            .is_none()
    );
}

#[test]
fn an_invalid_session_on_disk_stops_autosave_until_it_is_fixed() {
    let (_dir, mut app) = app();
    let path = app.path.clone();
    let good = std::fs::read_to_string(&path).unwrap();
    let broken = good.replacen("version: 1,", "version: 1,,", 1);
    std::fs::write(&path, &broken).unwrap();
    app.handle(AppEvent::FilesChanged(vec![path.clone()]));
    assert!(app.config_error.is_some());
    // A config edit meanwhile is not written over the user's text.
    press(&mut app, "e");
    let Some(Effect::Edit(config)) = app.effects.pop() else {
        panic!("an edit effect expected");
    };
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("rank: 2", "rank: 5")).unwrap();
    app.handle(AppEvent::FilesChanged(vec![config]));
    write_saves(&mut app);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(app.message.clone().unwrap().0.contains("not saved"));
    // The user fixes the file: the pending edit is saved into it.
    std::fs::write(&path, &good).unwrap();
    app.handle(AppEvent::FilesChanged(vec![path.clone()]));
    write_saves(&mut app);
    let ModelSpec::Srrr(config) = &session::load(&path).unwrap().experiments[0].model else {
        panic!("an sRRR model")
    };
    assert_eq!(config.rank, 5);
}

#[test]
fn the_session_file_edited_outside_is_reloaded() {
    let (_dir, mut app) = app();
    let path = app.path.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"gamma\"", "\"delta\"")).unwrap();
    app.handle(AppEvent::FilesChanged(vec![path.clone()]));
    assert_eq!(app.session().experiments[2].name, "delta");
    std::fs::write(&path, "(version: 1, datasets: [ oops ])").unwrap();
    app.handle(AppEvent::FilesChanged(vec![path]));
    assert!(app.config_error.is_some());
    assert_eq!(app.session().experiments.len(), 3);
}

#[test]
fn export_writes_svg_png_and_csv() {
    let (_dir, mut app) = app();
    for tab in ["1", "2", "3", "4"] {
        press(&mut app, tab);
        let files = app.export().unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"alpha-metrics.csv".to_string()));
        assert!(names.contains(&"alpha-latent.csv".to_string()));
        assert!(names.contains(&"alpha-latents.h5ad".to_string()));
        assert!(names.iter().any(|n| n.ends_with(".svg")), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with(".png")), "{names:?}");
    }
    let png = std::fs::read(app.side_folder().join("exports/alpha-latent.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG signature");
    let image = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        (1280, 960),
        "twice the SVG's 640x480"
    );
    let coloured = image
        .pixels()
        .iter()
        .filter(|p| p.red() != p.green() || p.green() != p.blue())
        .count();
    assert!(
        coloured > 500,
        "the coloured points are drawn ({coloured} pixels)"
    );
    let latent =
        std::fs::read_to_string(app.side_folder().join("exports/alpha-latent.csv")).unwrap();
    assert!(latent.starts_with("cell,rna_family,z0,z1\nc00,Alpha,"));
    let svg = std::fs::read_to_string(app.side_folder().join("exports/alpha-latent.svg")).unwrap();
    assert!(svg.contains("<circle") && svg.ends_with("</svg>\n"));
    // The .h5ad holds the latent in obsm["X_alpha"] and the label column in obs.
    let h5ad = app.side_folder().join("exports/alpha-latents.h5ad");
    let selection = crate::data::h5ad::H5adSelection {
        obsm: Some("X_alpha".into()),
        ..Default::default()
    };
    let latent = crate::data::h5ad::read_h5ad(&h5ad, &selection)
        .unwrap()
        .into_dense();
    assert_eq!(latent.cells[0], "c00");
    let obs = crate::data::read_metadata(&h5ad, "obs_names").unwrap();
    assert_eq!(obs.label("rna_family", "c00"), Some("Alpha"));
}

#[test]
fn png_export_draws_the_labels_in_an_installed_font() {
    let mut fonts = resvg::usvg::fontdb::Database::new();
    fonts.load_system_fonts();
    if fonts.is_empty() {
        println!("skipped: no system fonts, so PNG figures carry no labels");
        return;
    }
    let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="100" height="40" font-family="sans-serif" font-size="20"><text x="5" y="30">Alpha</text></svg>"#;
    let png = crate::figures::svg::svg_to_png(svg, 1.0).unwrap();
    let image = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
    assert_eq!((image.width(), image.height()), (100, 40));
    let inked = image.pixels().iter().filter(|p| p.red() < 128).count();
    assert!(inked > 30, "the text is drawn ({inked} dark pixels)");
}

fn snapshot_app() -> App {
    let mut app = App::new(Path::new("s.ron"), session());
    app.datasets
        .insert("toy".into(), DatasetState::Loaded(prepared()));
    app
}

#[test]
fn snapshot_latent_view_120x40() {
    let app = snapshot_app();
    insta::assert_snapshot!(render(&app, 120, 40));
}

#[test]
fn snapshot_every_view_tab_80x24() {
    let mut app = snapshot_app();
    app.focus = Pane::View;
    for tab in ["2", "3", "4", "5"] {
        press(&mut app, tab);
        insta::assert_snapshot!(format!("tab_{tab}"), render(&app, 80, 24));
    }
}

#[test]
fn snapshot_datasets_and_config_panes_focused_with_error() {
    let mut app = snapshot_app();
    app.focus = Pane::Datasets;
    app.config_error = Some("s.ron.d/alpha.ron:3:17: Expected integer".into());
    insta::assert_snapshot!(render(&app, 100, 30));
}

#[test]
fn the_datasets_pane_marks_a_modality_kept_sparse() {
    let mut app = snapshot_app();
    app.focus = Pane::Datasets;
    let mut prepared = (*prepared()).clone();
    for modality in &mut prepared.data.modalities {
        if modality.name == "T"
            && let crate::data::PreparedTable::Dense(table) = &modality.table
        {
            modality.table = crate::data::PreparedTable::Sparse(crate::data::SparseInput {
                table: crate::data::SparseTable::from_dense(table),
                scaling: None,
            });
        }
    }
    app.datasets
        .insert("toy".into(), DatasetState::Loaded(Arc::new(prepared)));
    let screen = render(&app, 120, 40);
    let lines: Vec<&str> = screen.lines().collect();
    let row = |text: &str| lines.iter().position(|line| line.contains(text));
    let (t, e) = (
        row("T: 30 cells × 5 features"),
        row("E: 30 cells × 3 features"),
    );
    let kept = row("kept sparse");
    assert!(
        t.is_some() && kept == t.map(|t| t + 1) && e == t.map(|t| t + 2),
        "{screen}"
    );
    assert_eq!(screen.matches("kept sparse").count(), 1, "{screen}");
}

#[test]
fn snapshot_running_with_live_curve_and_help_overlay() {
    let mut app = snapshot_app();
    press(&mut app, "jj");
    press(&mut app, "r");
    let _job = app.next_job().unwrap();
    for step in 0..10 {
        app.handle(AppEvent::Run {
            name: "gamma".into(),
            update: RunUpdate::Progress(Event::Metric {
                fold: None,
                name: "loss".into(),
                step,
                value: 1.0 / (1.0 + step as f64),
            }),
        });
    }
    press(&mut app, "2");
    let screen = render(&app, 100, 30);
    assert!(screen.contains("running"));
    insta::assert_snapshot!(screen);
    press(&mut app, "?");
    insta::assert_snapshot!("help", render(&app, 100, 40));
}

#[test]
fn live_curves_average_folds_per_metric_and_step() {
    // Two folds' losses, in the order they arrived, and a metric reported twice at step 0.
    let live = BTreeMap::from([
        (
            "loss".to_string(),
            vec![(0.0, 4.0), (0.0, 2.0), (1.0, 2.0), (1.0, f64::NAN)],
        ),
        ("train_r2".to_string(), vec![(0.0, 0.5)]),
        ("coupling".to_string(), vec![(0.0, 1.0), (0.0, 3.0)]),
    ]);
    let curves = crate::figures::plot::live_curves(&live);
    let by_name: BTreeMap<_, _> = curves.into_iter().collect();
    assert_eq!(by_name["loss"], vec![(0.0, 3.0), (1.0, 2.0)]);
    assert_eq!(by_name["train_r2"], vec![(0.0, 0.5)]);
    assert_eq!(
        by_name["coupling"],
        vec![(0.0, 2.0)],
        "a second fold's step 0"
    );
    assert_eq!(by_name.len(), 3);
}

/// An sBNN run as the worker reports it: per-fold `loss`, `train_r2` and
/// `test_r2` every epoch. The curves tab draws them while the run still goes.
#[test]
fn sbnn_curves_are_drawn_while_the_run_is_going() {
    let mut app = snapshot_app();
    press(&mut app, "jj");
    press(&mut app, "2");
    press(&mut app, "r");
    let _job = app.next_job().unwrap();
    let send = |app: &mut App, (fold, name): (usize, &str), step: u64, value: f64| {
        app.handle(AppEvent::Run {
            name: "gamma".into(),
            update: RunUpdate::Progress(Event::Metric {
                fold: Some(fold),
                name: name.into(),
                step,
                value,
            }),
        })
    };
    app.handle(AppEvent::Run {
        name: "gamma".into(),
        update: RunUpdate::Progress(Event::Stage {
            name: "sBNN: 2 folds + final model".into(),
            total: 60,
        }),
    });
    let before = render(&app, 120, 40);
    assert!(before.contains("running"), "{before}");
    for epoch in 0..12u64 {
        for fold in [0, 1] {
            let e = epoch as f64;
            send(&mut app, (fold, "loss"), epoch, 2.0 / (1.0 + e));
            send(&mut app, (fold, "train_r2"), epoch, 0.7 * e / (2.0 + e));
            send(&mut app, (fold, "test_r2"), epoch, 0.5 * e / (3.0 + e));
        }
    }
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("running"),
        "the run is still going:\n{screen}"
    );
    assert!(app.selected().unwrap().result.is_none());
    for name in ["loss", "train_r2", "test_r2"] {
        assert!(screen.contains(name), "legend names {name}:\n{screen}");
    }
    let braille = screen
        .chars()
        .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
        .count();
    assert!(
        braille > 20,
        "the curves are drawn ({braille} dots):\n{screen}"
    );
    assert!(!screen.contains("fold0/"), "folds are averaged:\n{screen}");
}

#[test]
fn snapshot_tiny_terminals_and_empty_session() {
    let app = snapshot_app();
    insta::assert_snapshot!("tiny_20x5", render(&app, 20, 5));
    insta::assert_snapshot!("tiny_1x1", render(&app, 1, 1));
    let empty = App::new(
        Path::new("s.ron"),
        Session {
            version: session::SESSION_VERSION,
            datasets: vec![],
            experiments: vec![],
            sweeps: vec![],
        },
    );
    insta::assert_snapshot!("empty_80x24", render(&empty, 80, 24));
    let mut empty = empty;
    press(&mut empty, "rcwex?");
    insta::assert_snapshot!("empty_help_20x5", render(&empty, 20, 5));
}

#[test]
fn the_runs_table_shows_each_model_s_main_metric_in_a_mixed_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = session();
    let mut scores = result(0.5);
    scores.metrics = BTreeMap::from([
        ("accuracy".to_string(), 0.72),
        ("accuracy_sd".to_string(), 0.0),
        ("seconds".to_string(), 1.4),
    ]);
    let mut mixture = experiment("mix", 1, Some(scores));
    mixture.modalities = vec!["T".into()];
    mixture.model = ron::from_str("MixVae((labels: Some(\"family\"), seeds: [], model: ()))")
        .expect("a mixture VAE spec");
    session.experiments.push(mixture);
    let app = App::new(&dir.path().join("s.ron"), session);
    // 100 columns leave room for two metrics: the sRRR's and the mixVAE's
    // main ones, not the sRRR's first two.
    let screen = render(&app, 100, 30);
    let header = screen.lines().find(|l| l.contains("experiment")).unwrap();
    assert!(
        header.contains("cv_r2_mean") && header.contains("accuracy"),
        "{screen}"
    );
    let row = screen.lines().find(|l| l.contains("mix ")).unwrap();
    assert!(row.contains("0.7200"), "{row}");
}

/// The result of an `Apply` experiment that placed four new cells in the
/// training latent space of `alpha` (the last one without measured E).
fn applied_result() -> ExperimentResult {
    use crate::artifact::{AlignmentReport, MissingPolicy, Provenance as ArtifactProvenance};
    let new_cells: Vec<String> = (0..4).map(|i| format!("n{i}")).collect();
    let report = AlignmentReport {
        cells: 4,
        transposed: true,
        model_genes: 10,
        missing: vec!["Gene9".into()],
        alias_column: None,
        aliased: vec![],
        recipe_features: 12,
        recipe_missing: 1,
        scale_mismatch: vec![],
        warnings: vec![],
        policy: MissingPolicy::Refuse(0.2),
        skipped: Default::default(),
    };
    let mut applied = result(0.0);
    applied.metrics = BTreeMap::from([
        ("cells".to_string(), 4.0),
        ("r2".to_string(), 0.31),
        ("family_accuracy_z_T".to_string(), 0.75),
        ("seconds".to_string(), 0.2),
    ]);
    applied.latent = Some(Latent {
        dims: 2,
        cells: new_cells.clone(),
        values: vec![0.0, 0.0, 3.0, 1.5, 6.0, 3.0, 1.5, 0.5],
    });
    applied.latents = vec![];
    applied.cross_modal = Some(CrossModal {
        source: "T".into(),
        target: "E".into(),
        features: vec!["R_input".into(), "Tau".into()],
        cells: new_cells,
        observed: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, f32::NAN, f32::NAN],
        predicted: vec![1.2, 1.9, 2.5, 4.4, 5.5, 6.1, 7.0, 8.0],
    });
    applied.detail = ResultDetail::Apply(Box::new(session::ApplyDetail {
        model_from: "alpha".into(),
        model: "sRRR".into(),
        artifact: ArtifactProvenance {
            session: "s.ron".into(),
            experiment: "alpha".into(),
            dataset: "toy".into(),
            data_fingerprint: "d41d8cd9".into(),
            config_fingerprint: "0123abcd".into(),
            patchbench: "0.1.0".into(),
        },
        training_latent: "z".into(),
        report_lines: report.lines(),
        report,
        classes: vec![(
            "family_from_z_T".into(),
            vec![
                Some("Alpha".into()),
                Some("Beta".into()),
                None,
                Some("Gamma".into()),
            ],
        )],
        calibration: None,
    }));
    applied
}

/// The snapshot session with an `Apply` experiment of `alpha`, selected.
fn applied_app() -> App {
    let mut session = session();
    session.experiments.push(Experiment {
        name: "alpha_new".into(),
        dataset: "toy".into(),
        modalities: vec!["T".into(), "E".into()],
        model: ModelSpec::Apply(crate::models::apply::ApplySpec {
            model_from: "alpha".into(),
            missing: crate::artifact::MissingPolicy::Refuse(0.2),
            calibrate: None,
            filter: None,
            alias_column: None,
            fold: None,
        }),
        protocol: Protocol::default(),
        result: Some(applied_result()),
    });
    let mut app = App::new(Path::new("s.ron"), session);
    app.datasets
        .insert("toy".into(), DatasetState::Loaded(prepared()));
    press(&mut app, "G");
    app
}

#[test]
fn applied_cells_are_drawn_over_the_training_latent_and_toggled_with_a() {
    let mut app = applied_app();
    assert_eq!(app.selected().unwrap().name, "alpha_new");
    let screen = render(&app, 120, 40);
    assert!(screen.contains("× applied (4)"), "{screen}");
    assert!(
        screen.contains("Alpha (10)"),
        "training cells coloured by family"
    );
    assert!(
        screen.contains("in `alpha`'s space · a hides ×"),
        "{screen}"
    );
    insta::assert_snapshot!("applied_latent_120x40", screen);
    press(&mut app, "a");
    let hidden = render(&app, 120, 40);
    assert!(!hidden.contains("applied (4)"), "{hidden}");
    assert!(hidden.contains("a shows"), "{hidden}");
    press(&mut app, "a");
    assert_eq!(render(&app, 120, 40), screen);
}

#[test]
fn the_config_pane_shows_the_alignment_report_and_cross_modal_the_applied_cells() {
    let mut app = applied_app();
    let screen = render(&app, 120, 40);
    for line in [
        "applied: sRRR `alpha`",
        "alignment report:",
        "4 cells (genes in rows); model",
        "missing model genes (1): Gene9",
        "missing-gene policy: refuse:0.2",
    ] {
        assert!(screen.contains(line), "{line} in\n{screen}");
    }
    app.focus = Pane::View;
    press(&mut app, "5nnn");
    let screen = render(&app, 120, 40);
    assert!(screen.contains("cell n3 (4/4"), "{screen}");
    insta::assert_snapshot!("applied_cross_modal_120x40", screen);
}
