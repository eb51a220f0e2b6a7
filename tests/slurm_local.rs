//! The `sbatch` array script of `patchbench::cluster::slurm`, run by a real
//! Slurm, and a real sweep submitted with `patchbench slurm`, merged back
//! with `patchbench merge`. Needs the single-node cluster of
//! `scripts/slurm-local.sh`:
//!
//! ```sh
//! scripts/slurm-local.sh
//! SLURM_CONF=/tmp/patchbench-slurm/slurm.conf cargo test --test slurm_local -- --ignored
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use patchbench::cluster::slurm::{ArrayJob, SlurmOptions};

#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-local.sh, then SLURM_CONF=... -- --ignored"]
fn slurm_runs_one_array_task_per_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let session = dir.path().join("sweep.ron");
    std::fs::write(&session, "").expect("session placeholder");
    // `echo` stands in for patchbench: each task prints the arguments it got.
    let job = ArrayJob {
        program: PathBuf::from("/bin/echo"),
        session: session.clone(),
        shards: 3,
        options: SlurmOptions {
            time: Some("2:00".into()),
            cpus: Some(1),
            array_parallel: Some(2),
            ..SlurmOptions::default()
        },
    };
    std::fs::create_dir_all(job.log_dir()).expect("log folder");
    let script = dir.path().join("job.sh");
    std::fs::write(&script, job.script().expect("valid job")).expect("write script");

    let output = Command::new("sbatch")
        .arg("--wait")
        .arg(&script)
        .output()
        .expect("sbatch on the PATH");
    assert!(
        output.status.success(),
        "sbatch failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut lines: Vec<String> = std::fs::read_dir(job.log_dir())
        .expect("logs")
        .map(|entry| std::fs::read_to_string(entry.expect("entry").path()).expect("log"))
        .map(|text| text.trim().to_string())
        .collect();
    lines.sort();
    let expected: Vec<String> = (1..=3)
        .map(|k| format!("--batch {} --shard {k}/3", session.display()))
        .collect();
    assert_eq!(lines, expected);
}

fn patchbench(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_patchbench"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("patchbench runs");
    assert!(
        output.status.success(),
        "patchbench {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-local.sh, then SLURM_CONF=... -- --ignored"]
fn a_sweep_runs_as_an_array_job_and_merges_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 7);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2)).expect("session");
    patchbench(
        dir.path(),
        &["sweep", "s.ron", "rrr", "rank=1,2", "seed=1,2"],
    );
    let submitted = patchbench(
        dir.path(),
        &[
            "slurm", "s.ron", "--shards", "3", "--time", "5:00", "--cpus", "1",
        ],
    );
    assert!(submitted.contains("3 tasks, 5 experiments"), "{submitted}");

    // The tasks write their shard files; wait until they hold every experiment.
    let started = Instant::now();
    let finished = |dir: &Path| {
        (1..=3)
            .map(|k| dir.join(format!("s.ron.shard-{k}-of-3")))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|text| text.matches("experiment:").count())
            .sum::<usize>()
    };
    while finished(dir.path()) < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the array job did not finish in 5 minutes; logs in {}",
            dir.path().join("s.ron.slurm").display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let report = patchbench(dir.path(), &["merge", "s.ron"]);
    assert!(report.contains("5 results merged"), "{report}");
    let session = patchbench::session::load(&dir.path().join("s.ron")).expect("merged session");
    for experiment in &session.experiments {
        let result = experiment
            .result
            .as_ref()
            .expect("every experiment has a result");
        assert!(
            result.metrics["cv_r2_mean"].is_finite(),
            "{}",
            experiment.name
        );
    }
    let again = patchbench(dir.path(), &["merge", "s.ron"]);
    assert!(
        again.contains("0 results merged, 5 already there"),
        "{again}"
    );
}
