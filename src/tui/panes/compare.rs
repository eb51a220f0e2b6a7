//! The view pane's compare tab: the runs marked with `m` (else the selected
//! run's sweep) with one curve overlaid, one colour per run with a legend
//! (`n`: next curve), their headline metrics with the best of each marked
//! `*`, and the main metric against a swept parameter (`d`: next
//! parameter; log axis for log-spread sweeps).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table};

use super::experiments::format_value;
use super::view::{ChartLine, color, line_chart};
use crate::figures::compare::Comparison;
use crate::figures::plot;
use crate::tui::app::App;

/// Draws the compare tab into `area`.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(comparison) = app
        .derived
        .comparison
        .as_ref()
        .filter(|c| !c.runs.is_empty())
    else {
        return frame.render_widget(
            Paragraph::new(
                "nothing to compare: mark runs with m, or select a sweep run".dark_gray(),
            ),
            area,
        );
    };
    let table_height = (comparison.runs.len() as u16 + 2)
        .min(area.height / 2)
        .max(3);
    let [plots, table] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(table_height)]).areas(area);
    let [curves, sweep] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(plots);
    draw_overlay(frame, curves, comparison);
    draw_sweep_plot(frame, sweep, comparison);
    draw_table(frame, table, comparison);
}

/// The part of a sweep run's name after `~` (the whole name otherwise).
fn short(name: &str) -> &str {
    name.split_once('~').map_or(name, |(_, point)| point)
}

fn draw_overlay(frame: &mut Frame, area: Rect, comparison: &Comparison) {
    let Some((curve, lines)) = &comparison.curve else {
        return frame.render_widget(Paragraph::new("no curves in these runs".dark_gray()), area);
    };
    let lines: Vec<ChartLine> = lines
        .iter()
        .map(|(run, points)| {
            (
                short(&comparison.runs[*run]).to_string(),
                points.as_slice(),
                color(*run),
            )
        })
        .collect();
    line_chart(frame, area, &lines, "step", &format!("{curve} (n: next)"));
}

fn draw_sweep_plot(frame: &mut Frame, area: Rect, comparison: &Comparison) {
    let Some(plot) = &comparison.sweep_plot else {
        return frame.render_widget(
            Paragraph::new("not a sweep: no parameter to plot against".dark_gray()),
            area,
        );
    };
    let points = plot.plotted();
    if points.is_empty() {
        return frame.render_widget(
            Paragraph::new(
                format!("no results yet for {} vs {}", plot.metric, plot.parameter).dark_gray(),
            ),
            area,
        );
    }
    let x = plot::bounds(points.iter().map(|p| p.0));
    let y = plot::bounds(points.iter().map(|p| p.1));
    let x_label = |v: f64| {
        let value = if plot.log_x { 10f64.powf(v) } else { v };
        Span::raw(format_value(value))
    };
    let y_label = |v: f64| Span::raw(format_value(v));
    let x_title = if plot.log_x {
        format!("{} (log, d: next)", plot.parameter)
    } else {
        format!("{} (d: next)", plot.parameter)
    };
    let data = [Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Scatter)
        .style(Style::new().fg(color(0)))
        .data(&points)];
    let chart = Chart::new(data.to_vec())
        .x_axis(
            Axis::default()
                .title(x_title.dark_gray())
                .bounds(x)
                .labels([x_label(x[0]), x_label(x[1])]),
        )
        .y_axis(
            Axis::default()
                .title(plot.metric.clone().dark_gray())
                .bounds(y)
                .labels([y_label(y[0]), y_label(y[1])]),
        );
    frame.render_widget(chart, area);
}

fn draw_table(frame: &mut Frame, area: Rect, comparison: &Comparison) {
    let shown: Vec<usize> = (0..comparison.metrics.len())
        .take((area.width.saturating_sub(24) / 11) as usize)
        .collect();
    let mut header = vec![Cell::from("run")];
    header.extend(
        shown
            .iter()
            .map(|&m| Cell::from(comparison.metrics[m].chars().take(10).collect::<String>())),
    );
    let rows: Vec<Row> = comparison
        .runs
        .iter()
        .enumerate()
        .map(|(r, name)| {
            let mut cells = vec![Cell::from(Line::from(vec![
                Span::styled("■ ", Style::new().fg(color(r))),
                Span::raw(short(name).to_string()),
            ]))];
            cells.extend(shown.iter().map(|&m| {
                let value = comparison.values[r][m].map_or_else(|| "-".into(), format_value);
                if comparison.best[m] == Some(r) {
                    Cell::from(format!("{value}*"))
                        .style(Style::new().green().add_modifier(Modifier::BOLD))
                } else {
                    Cell::from(value)
                }
            }));
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(24)];
    widths.extend(shown.iter().map(|_| Constraint::Length(10)));
    frame.render_widget(
        Table::new(rows, widths).header(Row::new(header).style(Style::new().bold().yellow())),
        area,
    );
}
