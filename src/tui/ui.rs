//! Drawing the whole screen from the app's state. Nothing here changes state.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, List, ListItem, Paragraph, Wrap};

use super::app::App;
use super::command::COMMANDS;
use super::keys::{BINDINGS, hints};
use super::panes;
use super::state::{Mode, Pane, Severity};
use super::sweep_dialog::SweepDialog;

/// Draws the app into `frame`.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let status_height = if area.height >= 10 { 2 } else { 1 };
    let [main, status] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(status_height)]).areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(32), Constraint::Percentage(68)]).areas(main);
    let [datasets, config] =
        Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(left);
    let [experiments, view] =
        Layout::vertical([Constraint::Percentage(35), Constraint::Percentage(65)]).areas(right);
    panes::datasets::draw(frame, datasets, app);
    panes::experiments::draw(frame, experiments, app);
    panes::config::draw(frame, config, app);
    panes::view::draw(frame, view, app);
    draw_status(frame, status, app);
    match &app.mode {
        Mode::Help => draw_help(frame, area),
        Mode::ConfirmQuit => draw_confirm(frame, area),
        Mode::Sweep(dialog) => draw_sweep(frame, area, dialog),
        Mode::Normal | Mode::Command(_) => {}
    }
}

/// A bordered block titled `title`, highlighted when `pane` has focus.
pub fn pane_block(app: &App, pane: Pane, title: String) -> Block<'static> {
    let focused = app.focus == pane;
    let style = if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(style)
        .title(Span::styled(format!(" {title} "), style))
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let focused = match app.focus {
        Pane::Datasets => app
            .session()
            .datasets
            .get(app.dataset_cursor)
            .map(|d| format!("dataset {}", d.name)),
        _ => app.selected().map(|e| format!("experiment {}", e.name)),
    }
    .unwrap_or_else(|| "nothing selected".into());
    let running = if app.busy() {
        format!(" · {} run(s) queued/going", app.runs.len())
    } else {
        String::new()
    };
    let head = Line::from(vec![
        Span::styled(" patchbench ", Style::new().black().on_cyan()),
        Span::raw(format!(" {} · {focused}{running} ", app.display_path)),
    ]);
    let second = match &app.mode {
        Mode::Command(text) => {
            Line::from(vec![Span::raw(":"), Span::raw(text.clone()), "█".into()])
        }
        Mode::Sweep(SweepDialog::Values { .. }) => {
            Line::from("type values, Enter to launch, Esc to cancel")
        }
        _ => match &app.message {
            Some((text, Severity::Error)) => {
                Line::from(Span::styled(text.clone(), Style::new().red()))
            }
            Some((text, Severity::Info)) => Line::from(text.clone()),
            None => hint_line(),
        },
    };
    if area.height >= 2 {
        let [a, b] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
        let head = match &app.message {
            Some(_) if !matches!(app.mode, Mode::Command(_)) => {
                let mut spans = head.spans;
                spans.extend(hint_line().spans);
                Line::from(spans)
            }
            _ => head,
        };
        frame.render_widget(Paragraph::new(head), a);
        frame.render_widget(Paragraph::new(second), b);
    } else {
        frame.render_widget(Paragraph::new(second), area);
    }
}

fn hint_line() -> Line<'static> {
    let mut spans = Vec::new();
    for (key, desc) in hints() {
        spans.push(Span::styled(
            format!(" {key}"),
            Style::new().bold().yellow(),
        ));
        spans.push(Span::raw(format!(" {desc}")));
    }
    Line::from(spans)
}

/// A rectangle of at most `width` x `height` centred in `area`.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let mut lines: Vec<Line> = vec![Line::from("Keys".bold())];
    for binding in BINDINGS {
        lines.push(Line::from(vec![
            Span::styled(format!("{:>8}  ", binding.label), Style::new().yellow()),
            Span::raw(binding.desc),
        ]));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("{:>8}  ", "1-6"), Style::new().yellow()),
        Span::raw("show view tab 1-6"),
    ]));
    lines.push(Line::from(""));
    lines.push(Line::from("Commands (after :)".bold()));
    for command in COMMANDS {
        lines.push(Line::from(vec![
            Span::styled(format!("  {:<20}", command.usage), Style::new().yellow()),
            Span::raw(command.description),
        ]));
    }
    let popup = centred(area, 84, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Help: any key closes ")),
        popup,
    );
}

fn draw_confirm(frame: &mut Frame, area: Rect) {
    let popup = centred(area, 44, 3);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new("Runs are going. Quit and cancel them? y/n")
            .block(Block::bordered().title(" Quit? ")),
        popup,
    );
}

fn draw_sweep(frame: &mut Frame, area: Rect, dialog: &SweepDialog) {
    match dialog {
        SweepDialog::Parameter {
            base,
            choices,
            cursor,
        } => {
            let items: Vec<ListItem> = choices
                .iter()
                .enumerate()
                .map(|(i, (name, value))| {
                    let style = if i == *cursor {
                        Style::new().black().on_cyan()
                    } else {
                        Style::new()
                    };
                    ListItem::new(format!("{name:<16} {value}")).style(style)
                })
                .collect();
            let popup = centred(area, 50, choices.len() as u16 + 2);
            frame.render_widget(Clear, popup);
            frame.render_widget(
                List::new(items).block(
                    Block::bordered()
                        .title(format!(" Sweep {base}: pick a hyperparameter (Enter) ")),
                ),
                popup,
            );
        }
        SweepDialog::Values {
            base,
            parameter,
            text,
        } => {
            let popup = centred(area, 64, 5);
            frame.render_widget(Clear, popup);
            let lines = vec![
                Line::from(format!("{parameter} = {text}█")),
                Line::from("list 1,2,4 · range 1..5 or 0..1:0.25 · log 0.001..0.1:3".dark_gray()),
                Line::from("Enter launches the runs, Esc cancels".dark_gray()),
            ];
            frame.render_widget(
                Paragraph::new(lines).block(Block::bordered().title(format!(" Sweep {base} "))),
                popup,
            );
        }
    }
}
