//! Batches that share a session with other writers, and `--export`.

mod common;

use std::path::Path;
use std::process::Command;

fn patchbench(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_patchbench"));
    command.current_dir(dir).args(args);
    command
}

/// A session with two sRRR experiments, `a` and `b`, and a comment.
fn two_experiments(dir: &Path) {
    common::small_dataset(dir, 3);
    let one = common::srrr_session("a", 2);
    let start = one.find("    (\n      name: \"a\"").expect("experiment a");
    let end = one[start..].find("\n    ),\n").expect("its end") + start + "\n    ),\n".len();
    let second = one[start..end].replace("name: \"a\"", "name: \"b\"");
    let text = format!(
        "// kept by every save\n{}{second}{}",
        &one[..end],
        &one[end..]
    );
    std::fs::write(dir.join("s.ron"), text).expect("write session");
}

#[test]
fn two_batches_at_once_keep_both_results_and_the_comments() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_experiments(dir.path());
    let mut first = patchbench(dir.path(), &["--batch", "s.ron", "--only", "a"])
        .spawn()
        .expect("start");
    let second = patchbench(dir.path(), &["--batch", "s.ron", "--only", "b"])
        .output()
        .expect("run");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(first.wait().expect("wait").success());
    let text = std::fs::read_to_string(dir.path().join("s.ron")).expect("read");
    assert!(text.starts_with("// kept by every save\n"));
    let saved = patchbench::session::load(&dir.path().join("s.ron")).expect("valid");
    for experiment in &saved.experiments {
        assert!(
            experiment.result.is_some(),
            "{} lost its result",
            experiment.name
        );
    }
}

#[test]
fn export_writes_csvs_and_every_figure_of_each_finished_experiment() {
    let dir = tempfile::tempdir().expect("tempdir");
    two_experiments(dir.path());
    let output = patchbench(
        dir.path(),
        &["--batch", "s.ron", "--only", "a", "--export", "out"],
    )
    .output()
    .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = dir.path().join("out");
    for file in [
        "a-metrics.csv",
        "a-latent.csv",
        "a-latent.svg",
        "a-latent.png",
        "a-genes.svg",
        "a-latents.h5ad",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    assert!(!out.join("b-metrics.csv").exists(), "b did not run");
    let latent = std::fs::read_to_string(out.join("a-latent.csv")).expect("read");
    let header = latent.lines().next().expect("a header");
    assert!(header.starts_with("cell,"), "{header}");
    let saved = patchbench::session::load(&dir.path().join("s.ron")).expect("valid");
    let cells = saved.experiments[0]
        .result
        .as_ref()
        .expect("a result")
        .latent
        .as_ref()
        .expect("a latent")
        .cells
        .len();
    assert_eq!(
        latent.lines().count(),
        cells + 1,
        "a row per cell of the latent"
    );
    // The latents as an .h5ad: obsm["X_a"], one row per cell, read back.
    let selection = patchbench::data::h5ad::H5adSelection {
        obsm: Some("X_a".into()),
        ..Default::default()
    };
    let h5ad = patchbench::data::h5ad::read_h5ad(&out.join("a-latents.h5ad"), &selection)
        .expect("the exported .h5ad reads back")
        .into_dense();
    assert_eq!(h5ad.cells.len(), cells);
    let metrics = std::fs::read_to_string(out.join("a-metrics.csv")).expect("read");
    assert!(metrics.contains("cv_r2_mean,"));
    let png = std::fs::read(out.join("a-latent.png")).expect("read");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
}
