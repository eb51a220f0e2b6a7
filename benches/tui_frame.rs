//! How long the workbench takes to draw one frame of each view tab with a
//! 55-experiment session (the demo's five and a 50-run sweep of its sRRR)
//! while the sweep's runs finish one by one, on ratatui's `TestBackend`
//! (120 × 40, the size of the tmux captures). Also times handling a
//! finished run on the UI thread (booking it; the save is only asked for)
//! and the save the writer thread then does.
//!
//! The demo's experiments are trained for real once (about 10 s); each
//! sweep run "finishes" with a copy of the real sRRR result whose R² is
//! shifted, so the runs table, the seed summaries and the compare view have
//! 50 different values to order and summarise.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbench::progress::{Event, Quiet};
use patchbench::runner::{load_dataset, run_experiment};
use patchbench::session::{self, ExperimentResult};
use patchbench::tui::app::App;
use patchbench::tui::state::{AppEvent, RunUpdate, ViewTab};
use patchbench::tui::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// Frames drawn per tab and measurement; the median is reported.
const FRAMES: usize = 31;

/// After how many finished sweep runs the tabs are timed.
const CHECKPOINTS: [usize; 4] = [0, 10, 25, 49];

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("demo.ron");
    let text = std::fs::read_to_string(root.join("sessions/demo.ron"))?.replace(
        "../data/demo",
        &root.join("data/demo").display().to_string(),
    );
    std::fs::write(&path, &text)?;
    let mut session = session::parse(&text, &path)?;
    let dataset = Arc::new(load_dataset(&session.datasets[0], dir.path())?);
    eprintln!(
        "training the demo's {} experiments…",
        session.experiments.len()
    );
    for experiment in &mut session.experiments {
        experiment.result = Some(run_experiment(experiment, &dataset, &mut Quiet)?);
    }
    let template = session.experiments[0]
        .result
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no sRRR result"))?;
    let runs = session.add_sweep("srrr_rank2", "alpha=0.1..1:0.1 seed=1..5", &path)?;
    std::fs::write(&path, session::to_ron(&session)?)?;
    // Opening a session with an unfinished sweep queues its runs.
    let mut app = App::open(&path)?;
    app.handle(AppEvent::Dataset {
        name: "demo".into(),
        outcome: Ok(dataset),
    });
    // Select the first sweep run: its sweep is what 6 Compare shows.
    app.cursor = app.session().experiments.len() - runs.len();
    app.sync();
    let mut terminal = Terminal::new(TestBackend::new(120, 40))?;
    println!(
        "{} experiments, {} sweep runs; median of {FRAMES} frames per tab, 120x40 TestBackend",
        app.session().experiments.len(),
        runs.len()
    );
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "finished", "latent", "curves", "confusion", "genes", "cross", "compare", "book", "save"
    );
    let mut booking = Duration::ZERO;
    let mut saving = Duration::ZERO;
    for (finished, run) in runs.iter().enumerate() {
        let job = app
            .next_job()
            .ok_or_else(|| anyhow::anyhow!("no job for {run}"))?;
        progress(&mut app, run);
        if CHECKPOINTS.contains(&finished) {
            let times: Vec<String> = ViewTab::ALL
                .iter()
                .map(|&tab| {
                    Ok(format!(
                        "{:>9.3}",
                        ms(frame_time(&mut app, &mut terminal, tab)?)
                    ))
                })
                .collect::<anyhow::Result<_>>()?;
            let per_run = |total: Duration| {
                if finished == 0 {
                    "-".to_string()
                } else {
                    format!("{:.3}", ms(total) / finished as f64)
                }
            };
            println!(
                "{finished:>9} {} {:>12} {:>12}",
                times.join(" "),
                per_run(booking),
                per_run(saving)
            );
        }
        let mut result: ExperimentResult = template.clone();
        if let Some(r2) = result.metrics.get_mut("cv_r2_mean") {
            *r2 += 0.001 * finished as f64;
        }
        let start = Instant::now();
        app.handle(AppEvent::Run {
            name: run.clone(),
            update: RunUpdate::Finished {
                fingerprint: job.job.fingerprint,
                result: Box::new(result),
            },
        });
        booking += start.elapsed();
        // What the event loop's writer thread does meanwhile.
        let start = Instant::now();
        while let Some(save) = app.next_save() {
            app.handle(AppEvent::Saved(save.run()));
        }
        saving += start.elapsed();
    }
    println!(
        "(ms; book: mean time the UI thread takes to handle one finished run; \
         save: mean time of its session save, on the writer thread)"
    );
    Ok(())
}

/// Reports a stage, steps and a few metrics for `run`, as a worker would.
fn progress(app: &mut App, run: &str) {
    let send = |app: &mut App, event| {
        app.handle(AppEvent::Run {
            name: run.to_string(),
            update: RunUpdate::Progress(event),
        })
    };
    send(
        app,
        Event::Stage {
            name: "sRRR rank 2: 10 folds x 19 lambdas".into(),
            total: 190,
        },
    );
    for step in 0..95 {
        send(app, Event::Step { done: step });
        send(
            app,
            Event::Metric {
                fold: Some((step % 10) as usize),
                name: "test_r2".into(),
                step: step / 10,
                value: 0.3,
            },
        );
    }
}

/// The median time to draw one frame with `tab` shown.
fn frame_time(
    app: &mut App,
    terminal: &mut Terminal<TestBackend>,
    tab: ViewTab,
) -> anyhow::Result<Duration> {
    app.view.tab = tab;
    let mut times = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let start = Instant::now();
        terminal.draw(|frame| ui::draw(frame, app))?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[FRAMES / 2])
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
