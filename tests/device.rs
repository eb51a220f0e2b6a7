//! The device setting: `protocol.device` in the session, `--batch --device`,
//! the device recorded in each result's provenance, and the message when the
//! device cannot be used.

mod common;

use std::path::Path;

use assert_cmd::Command;
use patchbench::nn::DeviceChoice;
use patchbench::session;

fn batch(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("patchbench")
        .expect("binary built")
        .current_dir(dir)
        .args(["--batch", "s.ron"])
        .args(args)
        .output()
        .expect("run")
}

#[test]
fn the_device_setting_round_trips_and_stays_out_of_the_fingerprint() {
    let text = common::srrr_session("rrr", 2);
    let path = Path::new("s.ron");
    let on_cpu = session::parse(&text, path).expect("valid session");
    assert_eq!(on_cpu.experiments[0].protocol.device, DeviceChoice::Cpu);
    // The default is not written, so existing session files stay as they are.
    let written = session::to_ron(&on_cpu).expect("serialise");
    assert!(!written.contains("device"), "{written}");

    let gpu_text = text.replace("scheme: Shuffled)", "scheme: Shuffled, device: Cuda(1))");
    let on_gpu = session::parse(&gpu_text, path).expect("valid session");
    assert_eq!(on_gpu.experiments[0].protocol.device, DeviceChoice::Cuda(1));
    let again =
        session::parse(&session::to_ron(&on_gpu).expect("serialise"), path).expect("reparse");
    assert_eq!(again, on_gpu);

    let dataset = on_cpu.datasets.first();
    assert_eq!(
        session::fingerprint(&on_cpu.experiments[0], dataset),
        session::fingerprint(&on_gpu.experiments[0], dataset),
        "moving to another device must not make a result stale"
    );
}

#[test]
fn an_unknown_device_in_the_session_is_reported_with_its_line() {
    let text = common::srrr_session("rrr", 2)
        .replace("scheme: Shuffled)", "scheme: Shuffled, device: Gpu)");
    let line = text
        .lines()
        .position(|l| l.contains("device: Gpu"))
        .expect("edited line")
        + 1;
    let error = session::parse(&text, Path::new("s.ron"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("s.ron"), "{error}");
    assert!(error.contains(&format!("{line}:")), "{error}");
    assert!(error.contains("Gpu"), "{error}");
}

#[test]
fn results_record_the_device_they_ran_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 3);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2)).expect("write");

    let output = batch(dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let saved = session::load(&dir.path().join("s.ron")).expect("valid");
    let result = saved.experiments[0].result.as_ref().expect("result");
    assert_eq!(result.provenance.device, DeviceChoice::Cpu);
}

/// sRRR has no GPU backend (only the sBNN and the k-CAE have one, see
/// `cuda_without_the_feature_fails_with_a_message_naming_the_setting` for
/// them on a build without it): asked for a GPU it refuses, whatever the build.
#[test]
fn a_model_that_cannot_train_on_the_gpu_refuses_it_instead_of_falling_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 3);
    std::fs::write(dir.path().join("s.ron"), common::srrr_session("rrr", 2)).expect("write");

    let output = batch(dir.path(), &["--device", "cuda:1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for part in ["experiment `rrr`", "protocol.device", "cuda:1"] {
        assert!(stderr.contains(part), "missing {part:?} in {stderr}");
    }
    let saved = session::load(&dir.path().join("s.ron")).expect("valid");
    assert!(saved.experiments[0].result.is_none());
    // The override is for the run: the session's setting is unchanged.
    assert_eq!(saved.experiments[0].protocol.device, DeviceChoice::Cpu);
}

#[test]
fn a_malformed_device_flag_names_the_expected_forms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = batch(dir.path(), &["--device", "gpu0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("--device"), "{stderr}");
    assert!(
        stderr.contains("expected `cpu`, `cuda` or `cuda:N`"),
        "{stderr}"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_fails_with_a_message_naming_the_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::small_dataset(dir.path(), 3);
    let cae = common::session_with_model("cae", "Cae()", 2);
    // The k-CAE, the sBNN and the mixture VAE have a GPU backend; without
    // the feature they refuse the GPU because it cannot be opened.
    let sbnn = common::session_with_model(
        "sbnn",
        "Sbnn(encoder: [16], decoder: [16], clusters: 4, kmeans_restarts: 2, genes: 5)",
        2,
    );
    let mixvae = common::session_with_model(
        "mixvae",
        "MixVae(labels: None, seeds: [1], model: (epochs: 1, hidden: 8))",
        2,
    )
    .replace(r#"modalities: ["T", "E"]"#, r#"modalities: ["T"]"#);
    let cases = [
        // Asked for by the session ...
        (
            "cae",
            cae.replace("scheme: Shuffled)", "scheme: Shuffled, device: Cuda(0))"),
            vec![],
        ),
        // ... and by the command line over a CPU session.
        ("cae", cae.clone(), vec!["--device", "cuda"]),
        ("sbnn", sbnn, vec!["--device", "cuda"]),
        ("mixvae", mixvae, vec!["--device", "cuda"]),
    ];
    for (name, text, args) in cases {
        std::fs::write(dir.path().join("s.ron"), text).expect("write");
        let output = batch(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for part in [
            &format!("experiment `{name}`"),
            "protocol.device",
            "cuda:0",
            "`cuda` feature",
        ] {
            assert!(stderr.contains(part), "missing {part:?} in {stderr}");
        }
        let saved = session::load(&dir.path().join("s.ron")).expect("valid");
        assert!(saved.experiments[0].result.is_none());
    }
}
