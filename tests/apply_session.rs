//! The `Apply` experiment kind: a k-CAE trained in a session applied, in the
//! same session, to held-out cells whose electrophysiology is shifted; the
//! stored result equals what `patchbench apply` prints on the same inputs.

// Not every shared helper is used here.
#[allow(dead_code)]
mod common;
mod held_out;

use std::path::Path;

use assert_cmd::Command;
use patchbench::data::{Orientation, read_table};
use patchbench::session::{self, ExperimentResult, ResultDetail};

const CAE: &str = "Cae(model: (steps: 300, batch_size: 32, paired_per_batch: 24, latent_dims: 3, \
    arms: [(hidden: [24]), (hidden: [24])]), analysis: (gmm_components: [3]))";

/// Added to every measured feature of the new cells, in units of its SD.
const SHIFT: f64 = 0.5;

fn patchbench(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("patchbench").expect("binary built");
    command.current_dir(dir);
    command
}

/// A session training the k-CAE on the cells not held out, with an `Apply`
/// experiment listed before it (the batch runs the model first).
fn session_text(held_out: &[String], apply: &str) -> String {
    let ids: Vec<String> = held_out.iter().map(|c| format!("\"{c}\"")).collect();
    let drop = format!("DropCells(cells: [{}])", ids.join(", "));
    let trained = common::session_with_model("cae", CAE, 2)
        .replace(
            "recipe: (steps: [Exclude",
            &format!("recipe: (steps: [{drop}, Exclude"),
        )
        .replace("recipe: (steps: []", &format!("recipe: (steps: [{drop}]"));
    let new_dataset = r#"    (
      name: "new",
      modalities: [
        (name: "T", path: "new/gene_counts.csv", orientation: FeaturesByCells),
        (name: "E", path: "new/ephys_values.csv", orientation: CellsByFeatures),
      ],
      metadata: (path: "data/metadata.csv", id_column: "cell_id"),
    ),
  ],
  experiments: [
"#;
    let apply_experiment = format!(
        r#"    (
      name: "cae_new",
      dataset: "new",
      modalities: ["T", "E"],
      model: {apply},
    ),
"#
    );
    trained.replacen(
        "  ],\n  experiments: [\n",
        &format!("{new_dataset}{apply_experiment}"),
        1,
    )
}

fn result<'a>(session: &'a session::Session, name: &str) -> &'a ExperimentResult {
    session
        .experiments
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.result.as_ref())
        .expect("a stored result")
}

#[test]
fn an_apply_experiment_stores_what_patchbench_apply_prints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::small_dataset(dir.path(), 5);
    let keep = held_out::cells(&data);
    held_out::write_cells(&data, &keep, &dir.path().join("new"), SHIFT);
    let apply = r#"Apply(model_from: "cae", missing: Refuse(0.05), calibrate: Some(Random(10)))"#;
    std::fs::write(dir.path().join("s.ron"), session_text(&keep, apply)).expect("session");
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--json"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let order: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|j| j["experiment"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(order, ["cae", "cae_new"], "the model is trained first");

    let session = session::load(&dir.path().join("s.ron")).expect("session");
    let applied = result(&session, "cae_new");
    let m = &applied.metrics;
    assert_eq!(m["cells"], 40.0);
    assert_eq!(m["missing_genes"], 0.0);
    // Three families: chance is about 1/3.
    assert!(
        m["family_accuracy_z_T"] > 0.6,
        "family from z_T {}",
        m["family_accuracy_z_T"]
    );
    let ResultDetail::Apply(detail) = &applied.detail else {
        panic!("an Apply detail: {:?}", applied.detail);
    };
    assert_eq!(detail.model_from, "cae");
    assert_eq!(detail.model, "k-CAE");
    assert!(
        detail.report_lines[0].starts_with("40 cells"),
        "{:?}",
        detail.report_lines
    );
    assert!(
        detail
            .classes
            .iter()
            .any(|(n, v)| n == "family_from_z_T" && v.len() == 40)
    );
    let latent = applied.latent.as_ref().expect("the applied cells' z_T");
    assert_eq!((latent.cells.len(), latent.dims), (40, 3));
    let trained = result(&session, "cae");
    assert!(
        trained
            .latents
            .iter()
            .any(|l| l.name == detail.training_latent),
        "the training latent `{}` is in the model's result",
        detail.training_latent
    );
    let cross = applied.cross_modal.as_ref().expect("predicted E");
    assert_eq!(cross.cells.len(), 40);
    assert!(cross.observed.iter().all(|v| v.is_finite()));

    // The same model, data and options through the command line.
    let output = patchbench(dir.path())
        .args([
            "apply",
            "s.weights/cae",
            "--data",
            "new/gene_counts.csv",
            "--observed",
            "new/ephys_values.csv",
            "--metadata",
            "data/metadata.csv",
            "--calibrate",
            "10",
            "--json",
        ])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    // serde_json parses floats to within an ulp or two, not exactly.
    let same = |printed: Option<f64>, stored: f64| {
        printed.is_some_and(|p| (p - stored).abs() <= 1e-12 * stored.abs().max(1.0))
    };
    let r2 = json["metrics"]["r2"].as_f64();
    assert!(same(r2, m["r2"]), "{r2:?} vs {}", m["r2"]);
    for class in json["classes"].as_array().expect("classes") {
        let name = format!(
            "{}_accuracy_{}",
            class["level"].as_str().unwrap(),
            class["from"].as_str().unwrap()
        );
        let printed = class["accuracy"].as_f64();
        assert!(
            same(printed, m[&name]),
            "{name}: {printed:?} vs {}",
            m[&name]
        );
    }
    let calibrated = json["calibration"]["calibrated"]["r2"].as_f64();
    assert!(same(calibrated, m["r2_calibrated"]), "{calibrated:?}");
    // The shift lowers R², and the recalibration (fitted on 10 cells) gets it back.
    assert!(
        m["r2_calibrated"] > m["r2_uncalibrated"],
        "calibrated {} vs uncalibrated {}",
        m["r2_calibrated"],
        m["r2_uncalibrated"]
    );

    // Reproducible: running the application again stores the same numbers.
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--only", "cae_new"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let again = session::load(&dir.path().join("s.ron")).expect("session");
    let rerun = result(&again, "cae_new");
    for (name, value) in m.iter().filter(|(n, _)| *n != "seconds") {
        assert_eq!(rerun.metrics[name], *value, "{name}");
    }
    assert_eq!(rerun.latent, applied.latent);
    assert!(current(&again, "cae_new"), "a fresh application is current");

    // Retraining the model (here with more steps) leaves the application stale
    // until it is applied again.
    let text = std::fs::read_to_string(dir.path().join("s.ron")).expect("session text");
    let longer = text.replacen("steps: 300", "steps: 310", 1);
    assert_ne!(longer, text, "the model's steps are in the session");
    std::fs::write(dir.path().join("s.ron"), longer).expect("session");
    for (only, stale) in [("cae", true), ("cae_new", false)] {
        let output = patchbench(dir.path())
            .args(["--batch", "s.ron", "--only", only])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{output:?}");
        let now = session::load(&dir.path().join("s.ron")).expect("session");
        assert!(current(&now, "cae"), "the retrained model is current");
        assert_eq!(!current(&now, "cae_new"), stale, "after running {only}");
    }
}

/// Whether `name`'s stored result was computed from the session as it is now.
fn current(session: &session::Session, name: &str) -> bool {
    let experiment = session
        .experiments
        .iter()
        .find(|e| e.name == name)
        .expect("the experiment");
    result(session, name).provenance.config.as_deref()
        == Some(session::fingerprint_in(session, experiment).as_str())
}

#[test]
fn an_apply_experiment_whose_model_has_not_run_fails_with_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::small_dataset(dir.path(), 5);
    let keep = held_out::cells(&data);
    held_out::write_cells(&data, &keep, &dir.path().join("new"), SHIFT);
    let apply = r#"Apply(model_from: "cae")"#;
    std::fs::write(dir.path().join("s.ron"), session_text(&keep, apply)).expect("session");
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron", "--only", "cae_new"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`model.model_from`: experiment `cae` has no result yet; run it first"),
        "{stderr}"
    );
}

#[test]
fn bad_model_references_are_refused_naming_the_field() {
    let refused = |apply: &str, extra: &str| {
        let text = session_text(&["sim0001".to_string()], apply)
            .replace("  ],\n)", &format!("{extra}  ],\n)"));
        session::parse(&text, Path::new("s.ron"))
            .expect_err("refused")
            .to_string()
    };
    let unknown = refused(r#"Apply(model_from: "nope")"#, "");
    assert!(
        unknown.contains("experiments[0].model.model_from")
            && unknown.contains("unknown experiment `nope`")
            && unknown.contains("`cae`"),
        "{unknown}"
    );
    let chained = refused(r#"Apply(model_from: "cae_new")"#, "");
    assert!(chained.contains("itself an Apply experiment"), "{chained}");
    let pc_cca = r#"    (name: "pcca", dataset: "sim", modalities: ["T", "E"], model: PcCca()),
"#;
    let no_artifact = refused(r#"Apply(model_from: "pcca")"#, pc_cca);
    assert!(
        no_artifact.contains("experiments[0].model.model_from")
            && no_artifact.contains("writes no model artifact"),
        "{no_artifact}"
    );
    let no_such_fold = refused(r#"Apply(model_from: "cae", fold: Some(99))"#, "");
    assert!(
        no_such_fold.contains("experiments[0].model.fold") && no_such_fold.contains("got 99"),
        "{no_such_fold}"
    );
    let srrr = r#"    (name: "rrr", dataset: "sim", modalities: ["T", "E"], model: Srrr(rank: 2, target_genes: 8)),
"#;
    let not_a_cae = refused(r#"Apply(model_from: "rrr", fold: Some(1))"#, srrr);
    assert!(
        not_a_cae.contains("experiments[0].model.fold")
            && not_a_cae.contains("only a k-CAE keeps its cross-validation folds' models"),
        "{not_a_cae}"
    );
}

/// Writes the features-by-cells counts `csv` as a 10x folder whose primary
/// ids are `ID<n>` for every other gene (spike-ins keep theirs), with every
/// gene's name as its `gene_symbols`; returns the renamed genes.
fn tenx_folder(csv: &Path, folder: &Path) -> Vec<String> {
    let table = read_table(csv, Orientation::FeaturesByCells).expect("counts");
    std::fs::create_dir_all(folder).expect("folder");
    let mut entries = Vec::new();
    for ((cell, feature), &v) in table.values.indexed_iter() {
        if v != 0.0 {
            entries.push(format!("{} {} {v}", feature + 1, cell + 1));
        }
    }
    let matrix = format!(
        "%%MatrixMarket matrix coordinate real general\n{} {} {}\n{}\n",
        table.features.len(),
        table.cells.len(),
        entries.len(),
        entries.join("\n")
    );
    std::fs::write(folder.join("matrix.mtx"), matrix).expect("matrix");
    std::fs::write(folder.join("barcodes.tsv"), table.cells.join("\n") + "\n").expect("cells");
    let lines: Vec<String> = table
        .features
        .iter()
        .enumerate()
        .map(|(j, gene)| format!("{}\t{gene}\tGene Expression", renamed_id(j, gene)))
        .collect();
    std::fs::write(folder.join("features.tsv"), lines.join("\n") + "\n").expect("features");
    renamed_genes(&table.features)
}

/// The id a test file gives the `j`-th gene: `ID<j>` for every other gene
/// (spike-ins keep theirs), its name otherwise.
fn renamed_id(j: usize, gene: &str) -> String {
    if j % 2 == 1 && !gene.starts_with("ERCC-") {
        format!("ID{j}")
    } else {
        gene.to_string()
    }
}

/// The genes [`renamed_id`] renames.
fn renamed_genes(genes: &[String]) -> Vec<String> {
    genes
        .iter()
        .enumerate()
        .filter(|(j, gene)| renamed_id(*j, gene) != **gene)
        .map(|(_, gene)| gene.clone())
        .collect()
}

/// Writes the features-by-cells counts `csv` as a CSV with a `symbol` text
/// column (every gene's name) beside ids renamed as [`renamed_id`] says.
fn symbol_csv(csv: &Path, out: &Path) {
    let table = read_table(csv, Orientation::FeaturesByCells).expect("counts");
    let mut text = format!("gene_id,symbol,{}\n", table.cells.join(","));
    for (j, gene) in table.features.iter().enumerate() {
        let values: Vec<String> = table.values.column(j).iter().map(f64::to_string).collect();
        text.push_str(&format!(
            "{},{gene},{}\n",
            renamed_id(j, gene),
            values.join(",")
        ));
    }
    std::fs::write(out, text).expect("symbol csv");
}

#[test]
fn genes_are_matched_through_an_alias_column_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::small_dataset(dir.path(), 5);
    let renamed = tenx_folder(&data.join("gene_counts.csv"), &dir.path().join("tenx"));
    symbol_csv(
        &data.join("gene_counts.csv"),
        &dir.path().join("symbols.csv"),
    );
    let apply = |name: &str, dataset: &str, options: &str| {
        format!(
            r#"    (name: "{name}", dataset: "{dataset}", modalities: ["T", "E"],
      model: Apply(model_from: "srrr"{options})),
"#
        )
    };
    let experiments = [
        apply("csv", "sim", ""),
        apply("aliased", "tenx", r#", alias_column: "gene_symbols""#),
        apply("unaliased", "tenx", ""),
        apply("symbols", "symbols", r#", alias_column: "symbol""#),
    ]
    .concat();
    let tenx = r#"    (
      name: "tenx",
      modalities: [
        (name: "T", path: "tenx", orientation: FeaturesByCells),
        (name: "E", path: "data/ephys_values.csv", orientation: CellsByFeatures),
      ],
    ),
    (
      name: "symbols",
      modalities: [
        (name: "T", path: "symbols.csv", orientation: FeaturesByCells),
        (name: "E", path: "data/ephys_values.csv", orientation: CellsByFeatures),
      ],
    ),
  ],
  experiments: [
"#;
    let text = common::srrr_session("srrr", 2).replacen(
        "  ],\n  experiments: [\n",
        &format!("{tenx}{experiments}"),
        1,
    );
    std::fs::write(dir.path().join("s.ron"), text).expect("session");
    let output = patchbench(dir.path())
        .args(["--batch", "s.ron"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "`unaliased` fails");
    assert!(
        stderr.contains("experiment `unaliased`") && stderr.contains("genes are missing"),
        "{stderr}"
    );
    let session = session::load(&dir.path().join("s.ron")).expect("session");
    let (csv, aliased) = (result(&session, "csv"), result(&session, "aliased"));
    let ResultDetail::Apply(detail) = &aliased.detail else {
        panic!("an Apply detail");
    };
    let report = &detail.report;
    assert_eq!(report.alias_column.as_deref(), Some("gene_symbols"));
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let matched: Vec<&String> = report.aliased.iter().map(|(model, _)| model).collect();
    assert!(!matched.is_empty() && matched.iter().all(|g| renamed.contains(g)));
    assert!(report.aliased.iter().all(|(_, id)| id.starts_with("ID")));
    assert_eq!(aliased.metrics["alias_genes"], matched.len() as f64);
    let line = format!(
        "matched through alias column `gene_symbols` ({})",
        matched.len()
    );
    assert!(
        detail.report_lines.iter().any(|l| l.starts_with(&line)),
        "{:?}",
        detail.report_lines
    );
    // Found through their aliases, the genes give what their names give.
    assert_eq!(aliased.metrics["r2"], csv.metrics["r2"]);
    assert_eq!(aliased.latent, csv.latent);
    // The same from the command line.
    let output = patchbench(dir.path())
        .args(["apply", "s.weights/srrr", "--data", "tenx", "--json"])
        .args(["--alias-column", "gene_symbols"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let listed = json["alignment"]["aliased"].as_array().expect("aliased");
    assert_eq!(listed.len(), matched.len());

    // A CSV's text column serves as the alias column too.
    let symbols = result(&session, "symbols");
    let ResultDetail::Apply(detail) = &symbols.detail else {
        panic!("an Apply detail");
    };
    assert_eq!(detail.report.aliased.len(), matched.len());
    assert_eq!(symbols.metrics["r2"], csv.metrics["r2"]);
    assert_eq!(symbols.latent, csv.latent);
    // A table without that text column is refused, naming it.
    let output = patchbench(dir.path())
        .args(["apply", "s.weights/srrr", "--data", "data/gene_counts.csv"])
        .args(["--alias-column", "symbol"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("no column `symbol` in the header"),
        "{stderr}"
    );
}
