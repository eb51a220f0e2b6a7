//! `sbatch` array scripts for a session: one array task per shard, task `i`
//! running `patchbench --batch SESSION --shard i+1/N`, so that `N` tasks
//! together run every unfinished experiment once.
//!
//! Writing the text is pure: nothing here touches the file system or runs
//! Slurm. The caller creates [`ArrayJob::log_dir`] (Slurm does not create the
//! folder of `--output`) and submits the script.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::nn::DeviceChoice;

/// What an array job asks of Slurm; every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlurmOptions {
    /// Partition (`--partition`; a comma-separated list is allowed); the
    /// cluster's default when `None`.
    pub partition: Option<String>,
    /// Time limit of each task (`--time`): `M`, `M:S`, `H:M:S`, `D-H`,
    /// `D-H:M`, `D-H:M:S`, or `UNLIMITED`.
    pub time: Option<String>,
    /// CPUs per task (`--cpus-per-task`).
    pub cpus: Option<u32>,
    /// GPUs per task (`--gres=gpu:G`).
    pub gpus: Option<u32>,
    /// At most this many tasks running at once (`--array=0-K%M`).
    pub array_parallel: Option<u32>,
    /// Passed on as `--device` (e.g. `cuda:0` with `gpus`).
    pub device: Option<DeviceChoice>,
}

/// An array job that runs the session at `session` in `shards` shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayJob {
    /// The `patchbench` executable the tasks run (absolute path).
    pub program: PathBuf,
    /// The session file (absolute path).
    pub session: PathBuf,
    /// Number of shards, one array task each (at least 1).
    pub shards: usize,
    /// What to ask of Slurm.
    pub options: SlurmOptions,
}

/// Why no script could be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("slurm option `{option}`: {message}")]
pub struct SlurmError {
    /// The option or field at fault (`--time`, `session`, ...).
    pub option: &'static str,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ArrayJob {
    /// Where the tasks write their logs: `SESSION.slurm/` beside the session
    /// file, one `JOBID_TASK.log` per task.
    pub fn log_dir(&self) -> PathBuf {
        let mut name = self.session.file_name().unwrap_or_default().to_os_string();
        name.push(".slurm");
        self.session.with_file_name(name)
    }

    /// The `sbatch` script, or what is wrong with the job.
    pub fn script(&self) -> Result<String, SlurmError> {
        let session = directive_path("session", &self.session)?;
        let program = absolute("program", &self.program)?;
        let folder = directive_path("session", self.session.parent().unwrap_or(Path::new("/")))?;
        let log_dir = directive_path("session", &self.log_dir())?;
        if self.shards == 0 {
            return Err(error("shards", "expected at least 1 shard".into()));
        }
        let options = &self.options;
        let mut array = format!("0-{}", self.shards - 1);
        if let Some(parallel) = options.array_parallel {
            array.push_str(&format!("%{}", at_least_one("--array-parallel", parallel)?));
        }
        let mut directives = vec![
            format!("--job-name=patchbench-{}", job_name(&self.session)),
            format!("--array={array}"),
        ];
        if let Some(partition) = &options.partition {
            directives.push(format!("--partition={}", checked_partition(partition)?));
        }
        if let Some(time) = &options.time {
            directives.push(format!("--time={}", checked_time(time)?));
        }
        if let Some(cpus) = options.cpus {
            directives.push(format!("--cpus-per-task={}", at_least_one("--cpus", cpus)?));
        }
        if let Some(gpus) = options.gpus {
            directives.push(format!("--gres=gpu:{}", at_least_one("--gpus", gpus)?));
        }
        directives.push(format!("--chdir={folder}"));
        directives.push(format!("--output={log_dir}/%A_%a.log"));

        let mut command = format!(
            "exec {} --batch {} --shard \"$((SLURM_ARRAY_TASK_ID + 1))/{}\"",
            shell_quote(&program),
            shell_quote(&session),
            self.shards
        );
        if let Some(device) = options.device {
            command.push_str(&format!(" --device {device}"));
        }
        let mut script = format!(
            "#!/bin/bash\n\
             # patchbench array job: task i runs shard i+1 of {} of {session}.\n",
            self.shards
        );
        for directive in directives {
            script.push_str(&format!("#SBATCH {directive}\n"));
        }
        script.push_str("set -euo pipefail\n");
        // rayon sizes its pool from this; without it a task would use every
        // core of the node, not the ones Slurm gave it.
        script.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
        script.push_str(&command);
        script.push('\n');
        Ok(script)
    }
}

fn error(option: &'static str, message: String) -> SlurmError {
    SlurmError { option, message }
}

fn absolute(option: &'static str, path: &Path) -> Result<String, SlurmError> {
    if !path.is_absolute() {
        return Err(error(
            option,
            format!("expected an absolute path, got `{}`", path.display()),
        ));
    }
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| error(option, format!("`{}` is not valid UTF-8", path.display())))
}

/// An absolute path that can stand in an `#SBATCH` line: Slurm splits those
/// at white space, reads no quotes, and expands `%` patterns in `--output`.
fn directive_path(option: &'static str, path: &Path) -> Result<String, SlurmError> {
    let text = absolute(option, path)?;
    if let Some(bad) = text
        .chars()
        .find(|c| c.is_whitespace() || *c == '%' || *c == '"' || *c == '\'')
    {
        return Err(error(
            option,
            format!(
                "`{text}` contains {bad:?}, which an #SBATCH line cannot hold; move the session to a path without it"
            ),
        ));
    }
    Ok(text)
}

fn at_least_one(option: &'static str, value: u32) -> Result<u32, SlurmError> {
    if value == 0 {
        Err(error(option, "expected at least 1, got 0".into()))
    } else {
        Ok(value)
    }
}

fn checked_partition(partition: &str) -> Result<&str, SlurmError> {
    let valid =
        Regex::new(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$").is_ok_and(|r| r.is_match(partition));
    if valid {
        Ok(partition)
    } else {
        Err(error(
            "--partition",
            format!(
                "expected a partition name (letters, digits, `_`, `.`, `-`; several joined by `,`), got `{partition}`"
            ),
        ))
    }
}

fn checked_time(time: &str) -> Result<&str, SlurmError> {
    let valid = time.eq_ignore_ascii_case("unlimited")
        || Regex::new(r"^(\d+-\d{1,2}(:\d{1,2}){0,2}|\d+(:\d{1,2}){0,2})$")
            .is_ok_and(|r| r.is_match(time));
    if valid {
        Ok(time)
    } else {
        Err(error(
            "--time",
            format!("expected M, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED, got `{time}`"),
        ))
    }
}

/// The session file's stem with anything but `[A-Za-z0-9_.-]` replaced by `_`.
fn job_name(session: &Path) -> String {
    session
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `text` in single quotes for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(options: SlurmOptions) -> ArrayJob {
        ArrayJob {
            program: PathBuf::from("/opt/patchbench/bin/patchbench"),
            session: PathBuf::from("/home/lab/m1 sweeps/../m1_sbnn.ron"),
            shards: 4,
            options,
        }
    }

    fn plain() -> ArrayJob {
        ArrayJob {
            session: PathBuf::from("/home/lab/sessions/m1_sbnn.ron"),
            ..job(SlurmOptions::default())
        }
    }

    #[test]
    fn every_option_becomes_a_directive() {
        let job = ArrayJob {
            program: PathBuf::from("/opt/it's here/patchbench"),
            options: SlurmOptions {
                partition: Some("gpu,long".into()),
                time: Some("1-02:30:00".into()),
                cpus: Some(4),
                gpus: Some(1),
                array_parallel: Some(2),
                device: Some(DeviceChoice::Cuda(0)),
            },
            ..plain()
        };
        insta::assert_snapshot!(job.script().unwrap());
    }

    #[test]
    fn without_options_only_the_array_and_paths_are_set() {
        let script = plain().script().unwrap();
        insta::assert_snapshot!(script);
        for absent in [
            "--partition",
            "--time",
            "--cpus-per-task",
            "--gres",
            "--device",
            "%2",
        ] {
            assert!(!script.contains(absent), "{absent} in {script}");
        }
    }

    #[test]
    fn each_array_task_runs_its_own_shard() {
        let script = ArrayJob {
            shards: 7,
            ..plain()
        }
        .script()
        .unwrap();
        assert!(script.contains("#SBATCH --array=0-6\n"), "{script}");
        assert!(
            script.contains("--shard \"$((SLURM_ARRAY_TASK_ID + 1))/7\""),
            "{script}"
        );
        let one = ArrayJob {
            shards: 1,
            ..plain()
        }
        .script()
        .unwrap();
        assert!(one.contains("#SBATCH --array=0-0\n"), "{one}");
    }

    #[test]
    fn logs_go_beside_the_session() {
        let job = plain();
        assert_eq!(
            job.log_dir(),
            PathBuf::from("/home/lab/sessions/m1_sbnn.ron.slurm")
        );
        let script = job.script().unwrap();
        assert!(
            script.contains("#SBATCH --chdir=/home/lab/sessions\n"),
            "{script}"
        );
        assert!(
            script.contains("#SBATCH --output=/home/lab/sessions/m1_sbnn.ron.slurm/%A_%a.log\n"),
            "{script}"
        );
    }

    #[test]
    fn bad_options_are_named_with_what_was_expected() {
        let with = |options: SlurmOptions| ArrayJob { options, ..plain() }.script().unwrap_err();
        let cases = [
            (
                with(SlurmOptions {
                    time: Some("2 hours".into()),
                    ..Default::default()
                }),
                "--time",
                "`2 hours`",
            ),
            (
                with(SlurmOptions {
                    time: Some("1:2:3:4".into()),
                    ..Default::default()
                }),
                "--time",
                "H:M:S",
            ),
            (
                with(SlurmOptions {
                    partition: Some("gpu\n#SBATCH --mem=1".into()),
                    ..Default::default()
                }),
                "--partition",
                "partition name",
            ),
            (
                with(SlurmOptions {
                    cpus: Some(0),
                    ..Default::default()
                }),
                "--cpus",
                "at least 1",
            ),
            (
                with(SlurmOptions {
                    gpus: Some(0),
                    ..Default::default()
                }),
                "--gpus",
                "at least 1",
            ),
            (
                with(SlurmOptions {
                    array_parallel: Some(0),
                    ..Default::default()
                }),
                "--array-parallel",
                "at least 1",
            ),
            (
                ArrayJob {
                    shards: 0,
                    ..plain()
                }
                .script()
                .unwrap_err(),
                "shards",
                "at least 1 shard",
            ),
            (
                job(SlurmOptions::default()).script().unwrap_err(),
                "session",
                "' '",
            ),
            (
                ArrayJob {
                    session: PathBuf::from("sessions/a.ron"),
                    ..plain()
                }
                .script()
                .unwrap_err(),
                "session",
                "absolute path",
            ),
            (
                ArrayJob {
                    program: PathBuf::from("patchbench"),
                    ..plain()
                }
                .script()
                .unwrap_err(),
                "program",
                "absolute path",
            ),
        ];
        for (err, option, part) in cases {
            assert_eq!(err.option, option, "{err}");
            assert!(err.to_string().contains(part), "{part:?} not in {err}");
        }
    }

    #[test]
    fn valid_time_limits_pass() {
        for time in [
            "30",
            "30:00",
            "4:00:00",
            "2-0",
            "2-12:00",
            "2-12:00:00",
            "UNLIMITED",
        ] {
            let options = SlurmOptions {
                time: Some(time.into()),
                ..Default::default()
            };
            let script = ArrayJob { options, ..plain() }.script().unwrap();
            assert!(
                script.contains(&format!("#SBATCH --time={time}\n")),
                "{script}"
            );
        }
    }

    #[test]
    fn odd_characters_in_the_session_name_leave_a_clean_job_name() {
        let job = ArrayJob {
            session: PathBuf::from("/data/grid(λ)+seeds.ron"),
            ..plain()
        };
        let script = job.script().unwrap();
        assert!(
            script.contains("#SBATCH --job-name=patchbench-grid____seeds\n"),
            "{script}"
        );
    }
}
