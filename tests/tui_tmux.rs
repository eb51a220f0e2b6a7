//! End-to-end test of the workbench in tmux: start `patchbench` on a generated
//! session, train a small sRRR model from the keyboard, check that the plot
//! and metrics are shown, edit the config from outside (the pane reloads),
//! write an invalid config (the error shows, the app keeps running), train an
//! sBNN and capture its loss curves while it runs, then quit, reopen and find
//! every result again. Skipped with a message when tmux is not installed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_patchbench");

fn tmux(args: &[&str]) -> String {
    let output = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A tmux session that is killed when dropped, even when the test fails.
struct Pane(String);

impl Pane {
    /// Starts `command` in a detached 120x40 tmux session `name`, in `dir`.
    fn open(name: String, dir: &Path, command: &str) -> Pane {
        tmux(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            &dir.display().to_string(),
            command,
        ]);
        Pane(name)
    }

    fn capture(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.0])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.0];
        args.extend_from_slice(keys);
        tmux(&args);
    }

    /// Waits until the screen satisfies `check`, failing with the screen after `limit`.
    fn wait_for(&self, what: &str, limit: Duration, check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if check(&screen) {
                return screen;
            }
            if start.elapsed() > limit {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

fn write_session(dir: &Path) {
    let status = Command::new(BIN)
        .args([
            "simulate", "--cells", "120", "--genes", "150", "--seed", "3", "--out",
        ])
        .arg(dir.join("data"))
        .output()
        .expect("simulate runs");
    assert!(status.status.success(), "{status:?}");
    let session = r#"(
  version: 1,
  datasets: [(
    name: "sim",
    modalities: [
      (name: "T", path: "data/gene_counts.csv", orientation: FeaturesByCells,
       recipe: (steps: [ExcludeFeatures(pattern: "^ERCC-"), LibrarySizeNormalise, Log2p1,
                        SelectGenes(n: 40, method: Variance)], standardise: AllCells)),
      (name: "E", path: "data/ephys_values.csv", orientation: CellsByFeatures,
       recipe: (steps: [], standardise: AllCells)),
    ],
    metadata: (path: "data/metadata.csv", id_column: "cell_id"),
  )],
  experiments: [(
    name: "fast",
    dataset: "sim",
    modalities: ["T", "E"],
    model: Srrr(rank: 2, target_genes: 8, lambdas: [0.2, 0.5, 1.0, 2.0], tolerance: 100.0, max_iter: 30),
    protocol: (folds: 3, seed: 1),
  ), (
    name: "net",
    dataset: "sim",
    modalities: ["T", "E"],
    model: Sbnn(encoder: [128, 64], decoder: [64, 128], clusters: 4, kmeans_restarts: 2,
                pretrain_epochs: 5, frozen_epochs: 5, unfrozen_epochs: 5, genes: 8,
                pruned_epochs: PRUNED, pretrain_lr: 1e-3, frozen_lr: 1e-3,
                unfrozen_lr: 1e-3, pruned_lr: 1e-3),
    protocol: (folds: 3, seed: 1),
  )],
)
"#;
    // Long enough that the screen is captured mid-run many times over.
    let session = session.replace("PRUNED", PRUNED_EPOCHS);
    std::fs::write(dir.join("s.ron"), session).unwrap();
}

/// The sBNN's epochs after pruning in the generated session.
const PRUNED_EPOCHS: &str = "400";

/// The line of the runs table that names `experiment`.
fn row<'s>(screen: &'s str, experiment: &str) -> &'s str {
    screen
        .lines()
        .find(|l| l.contains(&format!("┃{experiment} ")))
        .unwrap_or("")
}

fn has_braille(screen: &str) -> bool {
    screen
        .chars()
        .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
}

#[test]
fn workbench_trains_shows_plots_and_hot_reloads_in_tmux() {
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("skipped: tmux is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_session(dir.path());
    let name = format!("patchbench-test-{}", std::process::id());
    let command = format!("EDITOR=true {BIN} s.ron");
    let pane = Pane::open(name, dir.path(), &command);
    let long = Duration::from_secs(120);
    pane.wait_for("the workbench", long, |s| {
        s.contains("Experiments & runs") && s.contains("labels:")
    });

    pane.keys(&["r"]);
    let screen = pane.wait_for("the run to finish", long, |s| {
        s.contains(" done") && has_braille(s)
    });
    assert!(
        screen.contains("cv_r2_mean"),
        "metrics header shown:\n{screen}"
    );
    assert!(
        screen.contains("colour: rna_family"),
        "latent coloured by family:\n{screen}"
    );

    // `e` writes the config file (EDITOR=true returns at once); edit it from outside.
    pane.keys(&["e"]);
    let config = dir.path().join("s.ron.d/fast.ron");
    let start = Instant::now();
    while !config.exists() && start.elapsed() < long {
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("rank: 2", "rank: 3")).unwrap();
    pane.wait_for("the config pane to reload", long, |s| {
        s.contains("rank: 3") && s.contains("stale")
    });

    std::fs::write(
        &config,
        "(\n  dataset: \"sim\",\n  model: Srrr(rank: ),\n)\n",
    )
    .unwrap();
    let screen = pane.wait_for("the parse error", long, |s| s.contains("fast.ron:3:"));
    assert!(
        screen.contains("rank: 3"),
        "last good config kept:\n{screen}"
    );

    // Still responsive: the help overlay opens and closes, then quit.
    pane.keys(&["?"]);
    pane.wait_for("the help overlay", long, |s| {
        s.contains("Help: any key closes")
    });
    pane.keys(&["Escape"]);
    // Wait for the overlay to close: keys sent right after Escape would
    // arrive as one Alt chord.
    pane.wait_for("the help overlay to close", long, |s| {
        !s.contains("Help: any key closes")
    });

    // The sBNN's curves are drawn while it trains (the curves tab, then run).
    pane.keys(&["j", "2", "r"]);
    let mid = pane.wait_for("live curves while the sBNN trains", long, |s| {
        row(s, "net").contains("running")
            && has_braille(s)
            && s.contains("train_r2")
            && s.contains("loss")
    });
    println!("mid-run capture (120x40):\n{mid}");
    let screen = pane.wait_for("the sBNN to finish", long, |s| {
        row(s, "net").contains("done")
    });
    assert!(has_braille(&screen), "the final curves:\n{screen}");
    let weights = dir.path().join("s.weights/net/final.safetensors");
    assert!(
        weights.exists(),
        "the trained network is saved beside the session"
    );
    pane.keys(&["q"]);
    // Quitting waits for the writer thread and saves what it has not yet
    // written; read the session once the workbench has gone.
    let alive = |name: &str| {
        Command::new("tmux")
            .args(["has-session", "-t", name])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let start = Instant::now();
    while alive(&pane.0) && start.elapsed() < long {
        std::thread::sleep(Duration::from_millis(100));
    }
    let session = std::fs::read_to_string(dir.path().join("s.ron")).unwrap();
    assert!(session.contains("cv_r2_mean"), "the result was autosaved");
    assert!(
        session.contains("s.weights/net/final.safetensors"),
        "the sBNN result is saved on quitting:\n{session}"
    );

    // Reopened, both results and their plots are there without retraining.
    let name = format!("{}-reopened", pane.0);
    let reopened = Pane::open(name, dir.path(), &command);
    reopened.wait_for("the reopened session with the sRRR plot", long, |s| {
        row(s, "net").contains("done") && s.contains("colour: rna_family") && has_braille(s)
    });
    reopened.keys(&["j", "2"]);
    reopened.wait_for("the sBNN curves after reopening", long, |s| {
        s.contains("test_r2") && has_braille(s) && !row(s, "net").contains("running")
    });
    reopened.keys(&["q"]);
}
