//! The terminal workbench: `patchbench [SESSION]`.
//!
//! One screen of four panes (datasets, experiments and runs, config, view)
//! over a session. The module is split by job: [`app`] holds the view
//! state and handles keys (its submodules: the run queue's glue, saving and
//! hot reload and `$EDITOR`, what commands do), [`state`] has its types,
//! [`command`] is the `:` command table and parser, [`sweep_dialog`] and
//! [`line_edit`] the dialogs, [`keys`] the key map that also drives the hints
//! and help, [`ui`] and [`panes`] draw from the state without changing it,
//! [`worker`] runs experiments and loads data on threads, and [`watch`]
//! reports edits to the session and config files. Runs are booked by the
//! library's [`crate::runner::RunQueue`], saved through
//! [`crate::session::SessionStore`] and exported by [`crate::figures`]. This
//! is the only module of the crate that uses ratatui.

pub mod app;
pub mod command;
pub mod keys;
pub mod line_edit;
pub mod panes;
pub mod state;
pub mod sweep_dialog;
pub mod ui;
pub mod watch;
pub mod worker;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};

use app::App;
use state::{AppEvent, Effect};

use crate::session::BackgroundSaver;

/// How long the loop waits for a key before looking at background events.
const TICK: Duration = Duration::from_millis(50);

/// How long file changes must settle before they are read (editors write in steps).
const SETTLE: Duration = Duration::from_millis(150);

/// Opens the session at `path` in the workbench and runs until the user quits.
/// The terminal is restored on return and on panic.
pub fn run(path: &Path) -> Result<()> {
    let mut app = App::open(path)?;
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let outcome = event_loop(&mut terminal, &mut app);
    ratatui::restore();
    outcome
}

fn event_loop(terminal: &mut DefaultTerminal, app: &mut App) -> Result<()> {
    let (sender, receiver) = mpsc::channel::<AppEvent>();
    let _watcher = match watch::watch(&app.path, &app.side_folder(), sender.clone()) {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            app.handle_watch_error(&error.to_string());
            None
        }
    };
    let saver = {
        let sender = sender.clone();
        BackgroundSaver::start(move |outcome| {
            let _ = sender.send(AppEvent::Saved(outcome));
        })
    };
    let mut changed: Vec<std::path::PathBuf> = Vec::new();
    let mut last_change = Instant::now();
    loop {
        for spec in app.datasets_to_load() {
            worker::spawn_load(spec, app.base(), sender.clone());
        }
        while let Some(job) = app.next_job() {
            worker::spawn_run(job, sender.clone());
        }
        if let Some(job) = app.next_save() {
            saver.save(job);
        }
        app.sync();
        terminal.draw(|frame| ui::draw(frame, app))?;
        if event::poll(TICK)? {
            match event::read()? {
                TermEvent::Key(key) if key.kind != KeyEventKind::Release => app.key(key),
                _ => {}
            }
        }
        while let Ok(event) = receiver.try_recv() {
            match event {
                AppEvent::FilesChanged(paths) => {
                    changed.extend(paths);
                    last_change = Instant::now();
                }
                other => app.handle(other),
            }
        }
        if !changed.is_empty() && last_change.elapsed() >= SETTLE {
            changed.sort();
            changed.dedup();
            app.handle(AppEvent::FilesChanged(std::mem::take(&mut changed)));
        }
        for effect in std::mem::take(&mut app.effects) {
            match effect {
                Effect::Edit(file) => {
                    edit(terminal, &file)?;
                    app.file_changed(&file);
                }
                Effect::Export => match app.export() {
                    Ok(files) => app.exported(&files),
                    Err(error) => app.handle_export_error(&format!("{error:#}")),
                },
            }
        }
        if app.quit {
            finish_saving(app, saver, &receiver);
            return Ok(());
        }
    }
}

/// On quitting: waits for the save in flight, books it (and every other
/// save outcome in `receiver`), then writes what is still unsaved.
pub fn finish_saving(app: &mut App, saver: BackgroundSaver, receiver: &Receiver<AppEvent>) {
    saver.finish();
    while let Ok(event) = receiver.try_recv() {
        if let AppEvent::Saved(outcome) = event {
            app.handle(AppEvent::Saved(outcome));
        }
    }
    if app.save_pending() {
        app.save_now();
    }
}

/// Suspends the UI, runs `$EDITOR` (else `vi`) on `file`, and resumes.
fn edit(terminal: &mut DefaultTerminal, file: &Path) -> Result<()> {
    ratatui::restore();
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let mut words = editor.split_whitespace();
    let status = match words.next() {
        Some(program) => Command::new(program).args(words).arg(file).status(),
        None => Ok(std::process::ExitStatus::default()),
    };
    *terminal = ratatui::try_init().context("cannot set up the terminal again")?;
    terminal.clear()?;
    status.with_context(|| format!("cannot start the editor `{editor}`"))?;
    Ok(())
}
