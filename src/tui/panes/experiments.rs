//! The experiments and runs table: status, progress with ETA, and every
//! metric, sortable by any column.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row, Table, TableState};

use crate::tui::app::App;
use crate::tui::state::{Pane, SortColumn, Status};
use crate::tui::ui::pane_block;

/// Draws the experiments pane.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let title = format!(
        "{} ({}) · sort: {}",
        Pane::Experiments.title(),
        app.session().experiments.len(),
        app.sort_label()
    );
    let block = pane_block(app, Pane::Experiments, title);
    if app.session().experiments.is_empty() {
        frame.render_widget(
            ratatui::widgets::Paragraph::new(Line::from(
                "no experiments: add one to the session file".dark_gray(),
            ))
            .block(block),
            area,
        );
        return;
    }
    let metrics = &app.derived.table_metrics;
    let sorted_metric = match &app.sort.column {
        SortColumn::Metric(m) => Some(m.clone()),
        _ => None,
    };
    let name_width = app
        .session()
        .experiments
        .iter()
        .map(|e| e.name.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(10, 32) as u16;
    let seeds = &app.derived.seeds;
    let seed_width: u16 = if seeds.is_empty() { 0 } else { 16 };
    let fixed = name_width + 7 + 17 + seed_width + 3;
    let room = area.width.saturating_sub(fixed + 2) / 11;
    let mut shown: Vec<String> = metrics.iter().take(room as usize).cloned().collect();
    if let Some(m) = &sorted_metric
        && !shown.contains(m)
        && room > 0
    {
        shown.pop();
        shown.insert(0, m.clone());
    }
    let header_style = Style::new().bold().fg(Color::Yellow);
    let mut header = vec![
        Cell::from("experiment"),
        Cell::from("model"),
        Cell::from("status"),
    ];
    if !seeds.is_empty() {
        header.push(Cell::from("mean±SD seeds"));
    }
    header.extend(shown.iter().map(|m| {
        let style = if Some(m) == sorted_metric.as_ref() {
            Style::new().add_modifier(Modifier::UNDERLINED)
        } else {
            Style::new()
        };
        Cell::from(short_metric(m)).style(style)
    }));
    let now = Instant::now();
    let rows: Vec<Row> = app
        .rows()
        .into_iter()
        .map(|i| {
            let experiment = &app.session().experiments[i];
            let status = app.status(experiment);
            let status_text = match (&status, app.runs.run(&experiment.name)) {
                (Status::Running(_), Some(run)) => match &run.progress {
                    Some(p) => match p.eta(now) {
                        Some(eta) => format!("{} {}s", status.text(), eta.as_secs()),
                        None => status.text(),
                    },
                    None => status.text(),
                },
                _ => status.text(),
            };
            let status_style = match status {
                Status::Running(_) => Style::new().cyan(),
                Status::Queued => Style::new().blue(),
                Status::Failed => Style::new().red(),
                Status::Stale => Style::new().magenta(),
                Status::Done => Style::new().green(),
                Status::NotRun => Style::new().dark_gray(),
                Status::OnCluster => Style::new().light_blue(),
                Status::ClusterDone => Style::new().light_green(),
            };
            let mut cells = vec![
                Cell::from(experiment.name.clone()),
                Cell::from(experiment.model.kind()),
                Cell::from(status_text).style(status_style),
            ];
            if !seeds.is_empty() {
                cells.push(Cell::from(
                    seeds.get(&experiment.name).map_or_else(String::new, |s| {
                        format!("{}±{} n{}", format_value(s.mean), format_value(s.sd), s.n)
                    }),
                ));
            }
            cells.extend(shown.iter().map(|m| {
                let value = experiment.result.as_ref().and_then(|r| r.metrics.get(m));
                Cell::from(value.map_or_else(|| "-".to_string(), |v| format_value(*v)))
            }));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(name_width),
        Constraint::Length(7),
        Constraint::Length(17),
    ];
    if !seeds.is_empty() {
        widths.push(Constraint::Length(seed_width));
    }
    widths.extend(shown.iter().map(|_| Constraint::Length(10)));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(header_style))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(block);
    let mut state = TableState::default().with_selected(Some(app.cursor));
    frame.render_stateful_widget(table, area, &mut state);
    if let Some(progress_line) = progress_line(app, now) {
        let y = area.y + area.height.saturating_sub(1);
        if area.height > 3 {
            let line_area = Rect {
                x: area.x + 2,
                y,
                width: area.width.saturating_sub(4),
                height: 1,
            };
            frame.render_widget(ratatui::widgets::Paragraph::new(progress_line), line_area);
        }
    }
}

/// `name: stage done/total ETA` of the active run, drawn on the bottom border.
fn progress_line(app: &App, now: Instant) -> Option<Line<'static>> {
    let name = app.runs.active()?;
    let progress = app.runs.run(name)?.progress.as_ref()?;
    let eta = progress
        .eta(now)
        .map(|d| format!(" · ETA {}s", d.as_secs()))
        .unwrap_or_default();
    let elapsed = now.duration_since(progress.started).as_secs();
    Some(Line::from(
        format!(
            " {name}: {} {}/{}{eta} · {elapsed}s ",
            progress.stage, progress.done, progress.total
        )
        .cyan(),
    ))
}

fn short_metric(name: &str) -> String {
    name.chars().take(10).collect()
}

/// A metric value in at most about 9 characters.
pub fn format_value(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        format!("{value:.0}")
    } else if value.abs() >= 1000.0 || (value != 0.0 && value.abs() < 0.001) {
        format!("{value:.2e}")
    } else {
        format!("{value:.4}")
    }
}
