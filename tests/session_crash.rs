//! Crash safety of session saves: writers killed with SIGKILL at random
//! moments while saving leave a session that reads, holds every result they
//! reported saved, and no temporary file after the next open.
//!
//! Run with `cargo test --test session_crash -- --ignored
//! kill_nine_during_saves --nocapture` (`PATCHBENCH_KILLS`, default 1000).
//! The writer is this test binary itself, started in its child mode.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use patchbench::session::{self, SessionStore};
use rand::{Rng, SeedableRng};

const CHILD: &str = "PATCHBENCH_SAVE_LOOP";

/// A result carrying `counter`: the demo session's sBNN gets a copy of a
/// small result whose metric says how many saves came before.
fn result_with(counter: f64, template: &session::ExperimentResult) -> session::ExperimentResult {
    let mut result = template.clone();
    result.metrics.insert("counter".into(), counter);
    result
}

fn counter(path: &Path) -> f64 {
    let session = session::load(path).expect("the session reads after a kill");
    session.experiments[2]
        .result
        .as_ref()
        .map_or(0.0, |r| r.metrics["counter"])
}

fn temp_files(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect()
}

/// The child: saves forever, printing `saved N` after each save returned.
#[test]
#[ignore = "the writer process of kill_nine_during_saves"]
fn save_loop_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let path = PathBuf::from(path);
    let template = template_result();
    let mut store = SessionStore::open(&path).unwrap();
    let mut n = counter(&path);
    let stdout = std::io::stdout();
    loop {
        n += 1.0;
        store
            .record_result("sbnn", "fp".into(), result_with(n, &template))
            .unwrap();
        writeln!(stdout.lock(), "saved {n}").unwrap();
    }
}

fn template_result() -> session::ExperimentResult {
    let text = include_str!("../sessions/demo.ron").replace(
        "protocol: (folds: 5,",
        "result: (metrics: {}, per_fold: [], detail: Srrr(rank: 1, lambdas: [], chosen_lambda: None, loadings: [], unconverged_fits: 0), provenance: (patchbench: \"t\", finished_at: 0, seconds: 0.0, threads: 1)),\n      protocol: (folds: 5,",
    );
    let session = session::parse(&text, Path::new("demo.ron")).unwrap();
    session.experiments[2].result.clone().unwrap()
}

#[test]
#[ignore = "slow: 1000 kills; run by hand (see the module docs)"]
fn kill_nine_during_saves() {
    let kills: usize = std::env::var("PATCHBENCH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.ron");
    std::fs::write(&path, include_str!("../sessions/demo.ron")).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut corrupt, mut lost, mut temps_left, mut killed_mid_save) = (0, 0, 0, 0);
    for _ in 0..kills {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["save_loop_child", "--exact", "--ignored", "--nocapture"])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.random_range(2_000..40_000)));
        child.kill().unwrap();
        child.wait().unwrap();
        let reported = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("saved ")?.parse::<f64>().ok())
            .last()
            .unwrap_or(0.0);
        if !temp_files(dir.path()).is_empty() {
            killed_mid_save += 1;
        }
        match SessionStore::open(&path) {
            Ok(_) => {
                if counter(&path) < reported {
                    lost += 1;
                }
            }
            Err(_) => corrupt += 1,
        }
        temps_left += temp_files(dir.path()).len();
    }
    println!(
        "{kills} kills ({killed_mid_save} left a temp file): {corrupt} corrupt, {lost} lost, {temps_left} temp files left after the next open; final counter {}",
        counter(&path)
    );
    assert_eq!((corrupt, lost, temps_left), (0, 0, 0));
}
