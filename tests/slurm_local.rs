//! The `sbatch` array script of `patchbench::cluster::slurm`, run by a real
//! Slurm. Needs the single-node cluster of `scripts/slurm-local.sh`:
//!
//! ```sh
//! scripts/slurm-local.sh
//! SLURM_CONF=/tmp/patchbench-slurm/slurm.conf cargo test --test slurm_local -- --ignored
//! ```

use std::path::PathBuf;
use std::process::Command;

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
