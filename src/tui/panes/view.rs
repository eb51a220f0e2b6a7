//! The view pane: the selected experiment's result as a latent scatter,
//! curves, confusion matrices, gene ranking or cross-modal predictions.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Points};
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, Tabs,
};

use crate::analysis::confusion::Confusion;
use crate::figures::plot::{self, PALETTE};
use crate::session::{ExperimentResult, ResultDetail};
use crate::tui::app::App;
use crate::tui::state::{Pane, ViewTab};
use crate::tui::ui::pane_block;

/// Draws the view pane.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let title = match app.selected() {
        Some(e) => format!("{}: {}", Pane::View.title(), e.name),
        None => Pane::View.title().to_string(),
    };
    let block = pane_block(app, Pane::View, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let [tabs_area, body] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let titles: Vec<String> = ViewTab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()))
        .collect();
    let selected = ViewTab::ALL
        .iter()
        .position(|&t| t == app.view.tab)
        .unwrap_or(0);
    frame.render_widget(
        Tabs::new(titles)
            .select(selected)
            .highlight_style(Style::new().black().on_cyan()),
        tabs_area,
    );
    let Some(experiment) = app.selected() else {
        return message(frame, body, "no experiment selected");
    };
    let live = app.runs.run(&experiment.name).map(|r| &r.live);
    let result = experiment.result.as_ref();
    if app.view.tab == ViewTab::Curves {
        return draw_curves(frame, body, result, live);
    }
    if app.view.tab == ViewTab::Compare {
        return super::compare::draw(frame, body, app);
    }
    let Some(result) = result else {
        let text = if app.runs.run(&experiment.name).is_some() {
            "training… (curves appear under 2 Curves as the model reports them)"
        } else {
            "not run yet: press r to run it"
        };
        return message(frame, body, text);
    };
    match app.view.tab {
        ViewTab::Latent => draw_latent(frame, body, app, result),
        ViewTab::Curves | ViewTab::Compare => {}
        ViewTab::Confusion => draw_confusion(frame, body, result, app.view.confusion_index),
        ViewTab::Genes => draw_genes(frame, body, result),
        ViewTab::CrossModal => draw_cross_modal(frame, body, result, app.view.cell_index),
    }
}

fn message(frame: &mut Frame, area: Rect, text: &str) {
    frame.render_widget(
        Paragraph::new(Line::from(text.to_string().dark_gray())),
        area,
    );
}

/// The marker of the applied cells drawn over a training latent space.
const APPLIED_MARKER: &str = "×";
/// The colour of the applied cells.
const APPLIED_COLOR: Color = Color::White;
/// Most applied cells drawn with [`APPLIED_MARKER`]; beyond, braille dots.
const MAX_APPLIED_MARKERS: usize = 2_000;

fn draw_latent(frame: &mut Frame, area: Rect, app: &App, result: &ExperimentResult) {
    let dataset = app.plotted_dataset().map(|d| d.as_ref());
    let column = app.label_column();
    let source = app.model_from();
    let scatter = match source {
        Some(source) => plot::applied_scatter(
            result,
            source.result.as_ref(),
            app.view.show_applied,
            app.view.dims,
            dataset,
            column.as_deref(),
            app.view.zoom,
        ),
        None => plot::scatter(
            result,
            app.view.latent_index,
            app.view.dims,
            dataset,
            column.as_deref(),
            app.view.zoom,
        ),
    };
    let Some(scatter) = scatter else {
        return message(frame, area, "this result has no latent space");
    };
    let applied = scatter.applied.as_deref().unwrap_or_default();
    let legend_width = scatter
        .groups
        .iter()
        .map(|g| g.label.chars().count() + g.points.len().to_string().len() + 6)
        .chain(
            scatter
                .applied
                .iter()
                .map(|a| 14 + a.len().to_string().len()),
        )
        .max()
        .unwrap_or(8)
        .clamp(8, 28) as u16;
    let legend_width = if area.width > legend_width * 3 {
        legend_width
    } else {
        0
    };
    let [plot_area, legend_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(legend_width)]).areas(area);
    let spaces = match source {
        Some(_) => 1,
        None => plot::latents(result).len(),
    };
    let drawn = plot::subsample(&scatter, plot::MAX_DRAWN, 1);
    let (shown, total) = (plot::point_count(&drawn), plot::point_count(&scatter));
    let applied_hint = match source {
        Some(source) if source.result.is_some() => format!(
            " in `{}`'s space · a {} {APPLIED_MARKER}",
            source.name,
            if app.view.show_applied {
                "hides"
            } else {
                "shows"
            }
        ),
        Some(source) => format!(" · `{}` has no result: applied cells alone", source.name),
        None => String::new(),
    };
    let header = format!(
        "{} vs {}{applied_hint} · colour: {} · zoom ×{:.1}{}{}",
        scatter.axes.0,
        scatter.axes.1,
        column.as_deref().unwrap_or("(loading labels)"),
        app.view.zoom,
        if spaces > 1 {
            " · t toggles space"
        } else {
            ""
        },
        if shown < total {
            format!(" · {shown} of {total} shown")
        } else {
            String::new()
        }
    );
    let groups = &drawn.groups;
    let canvas = Canvas::default()
        .marker(Marker::Braille)
        .x_bounds(scatter.x_bounds)
        .y_bounds(scatter.y_bounds)
        .paint(|ctx| {
            for group in groups {
                ctx.draw(&Points {
                    coords: &group.points,
                    color: color(group.color),
                });
            }
            if applied.len() > MAX_APPLIED_MARKERS {
                ctx.draw(&Points {
                    coords: applied,
                    color: APPLIED_COLOR,
                });
            } else {
                for &(x, y) in applied {
                    ctx.print(
                        x,
                        y,
                        Span::styled(APPLIED_MARKER, Style::new().fg(APPLIED_COLOR).bold()),
                    );
                }
            }
        });
    let [head, canvas_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(plot_area);
    frame.render_widget(Paragraph::new(header.dark_gray()), head);
    frame.render_widget(canvas, canvas_area);
    if legend_width > 0 {
        // The legend counts every cell, drawn or not.
        let mut lines: Vec<Line> = scatter
            .groups
            .iter()
            .map(|g| {
                Line::from(vec![
                    Span::styled("● ", Style::new().fg(color(g.color))),
                    Span::raw(format!("{} ({})", g.label, g.points.len())),
                ])
            })
            .collect();
        if let Some(applied) = &scatter.applied {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{APPLIED_MARKER} "),
                    Style::new().fg(APPLIED_COLOR).bold(),
                ),
                Span::raw(format!("applied ({})", applied.len())),
            ]));
        }
        frame.render_widget(Paragraph::new(lines), legend_area);
    }
}

fn draw_curves(
    frame: &mut Frame,
    area: Rect,
    result: Option<&ExperimentResult>,
    live: Option<&std::collections::BTreeMap<String, Vec<(f64, f64)>>>,
) {
    let curves = plot::curves(result, live);
    if curves.is_empty() {
        return message(frame, area, "no curves: the model reported none");
    }
    // Losses and scores have different scales: one chart each, stacked.
    let panels = plot::curve_panels(curves);
    let areas = Layout::vertical(vec![Constraint::Fill(1); panels.len()]).split(area);
    let mut colour = 0;
    for ((title, curves), &panel_area) in panels.iter().zip(areas.iter()) {
        let lines: Vec<ChartLine> = curves
            .iter()
            .map(|(name, points)| {
                colour += 1;
                (name.clone(), points.as_slice(), color(colour - 1))
            })
            .collect();
        line_chart(frame, panel_area, &lines, "step", title);
    }
}

/// One line of a chart: name, points, colour.
pub(crate) type ChartLine<'a> = (String, &'a [(f64, f64)], Color);

/// A braille line chart of `lines` (name, points, colour) with a legend.
pub(crate) fn line_chart(
    frame: &mut Frame,
    area: Rect,
    lines: &[ChartLine],
    x_title: &str,
    y_title: &str,
) {
    let x = plot::bounds(lines.iter().flat_map(|(_, p, _)| p.iter().map(|q| q.0)));
    let y = plot::bounds(lines.iter().flat_map(|(_, p, _)| p.iter().map(|q| q.1)));
    let datasets: Vec<Dataset> = lines
        .iter()
        .map(|(name, points, colour)| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*colour))
                .data(points)
        })
        .collect();
    let label = |v: f64| Span::raw(crate::tui::panes::experiments::format_value(v));
    let chart = Chart::new(datasets)
        .x_axis(
            Axis::default()
                .title(x_title.to_string().dark_gray())
                .bounds(x)
                .labels([label(x[0]), label(x[1])]),
        )
        .y_axis(
            Axis::default()
                .title(y_title.to_string().dark_gray())
                .bounds(y)
                .labels([label(y[0]), label(y[1])]),
        )
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, area);
}

fn draw_confusion(frame: &mut Frame, area: Rect, result: &ExperimentResult, index: usize) {
    let Some(confusion) = result.confusions.get(index).or(result.confusions.first()) else {
        return message(frame, area, "no confusion matrices in this result");
    };
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new(format!(
            "{} ({}/{}; n/N for others) · count and row %",
            confusion.name,
            index.min(result.confusions.len() - 1) + 1,
            result.confusions.len()
        )),
        head,
    );
    frame.render_widget(confusion_table(confusion), body);
}

/// A confusion matrix as a heat-coloured table: count and row-normalised
/// percentage in each cell, the row's accuracy at the end.
fn confusion_table(confusion: &Confusion) -> Table<'static> {
    let mut header = vec![Cell::from("truth \\ pred")];
    header.extend(confusion.predicted.iter().map(|p| Cell::from(p.clone())));
    header.push(Cell::from("acc"));
    let rows: Vec<Row> = confusion
        .truth
        .iter()
        .zip(&confusion.counts)
        .map(|(truth, counts)| {
            let total: u64 = counts.iter().sum();
            let mut cells = vec![Cell::from(truth.clone())];
            for count in counts {
                let share = if total == 0 {
                    0.0
                } else {
                    *count as f64 / total as f64
                };
                cells.push(
                    Cell::from(format!("{count} {:.0}%", share * 100.0))
                        .style(Style::new().bg(heat(share)).fg(Color::White)),
                );
            }
            let correct = confusion
                .predicted
                .iter()
                .position(|p| p == truth)
                .and_then(|c| counts.get(c).copied())
                .unwrap_or_else(|| counts.iter().copied().max().unwrap_or(0));
            let accuracy = if total == 0 {
                0.0
            } else {
                correct as f64 / total as f64
            };
            cells.push(Cell::from(format!("{:.0}%", accuracy * 100.0)).bold());
            Row::new(cells)
        })
        .collect();
    let mut widths = vec![Constraint::Length(12)];
    widths.extend(confusion.predicted.iter().map(|_| Constraint::Length(9)));
    widths.push(Constraint::Length(5));
    Table::new(rows, widths).header(Row::new(header).bold())
}

/// Dark blue (0) to red (1).
fn heat(share: f64) -> Color {
    let s = share.clamp(0.0, 1.0);
    Color::Rgb(
        (40.0 + 200.0 * s) as u8,
        (40.0 + 40.0 * (1.0 - s)) as u8,
        (120.0 * (1.0 - s)) as u8,
    )
}

fn draw_genes(frame: &mut Frame, area: Rect, result: &ExperimentResult) {
    if result.genes.is_empty() {
        return message(frame, area, "no gene ranking in this result");
    }
    let selected = result
        .metrics
        .get("n_genes")
        .map_or(result.genes.len(), |&n| n as usize);
    let shown = (area.height as usize).min(result.genes.len());
    let max = result.genes.iter().map(|g| g.score).fold(0.0_f64, f64::max);
    let bars: Vec<Bar> = result
        .genes
        .iter()
        .take(shown)
        .enumerate()
        .map(|(i, gene)| {
            let style = if i < selected {
                Style::new().fg(Color::Yellow)
            } else {
                Style::new().fg(Color::DarkGray)
            };
            let scaled = if max > 0.0 {
                gene.score / max * 1000.0
            } else {
                0.0
            };
            Bar::default()
                .label(Line::from(gene.name.clone()))
                .value(scaled as u64)
                .text_value(format!("{:.3}", gene.score))
                .style(style)
        })
        .collect();
    let chart = BarChart::default()
        .direction(ratatui::layout::Direction::Horizontal)
        .bar_width(1)
        .bar_gap(0)
        .data(BarGroup::default().bars(&bars));
    frame.render_widget(chart, area);
}

fn draw_cross_modal(frame: &mut Frame, area: Rect, result: &ExperimentResult, cell: usize) {
    let Some(cross) = &result.cross_modal else {
        return message(
            frame,
            area,
            "no cross-modal predictions in this result (models that translate between modalities fill them)",
        );
    };
    let n_features = cross.features.len();
    if n_features == 0 || cross.cells.is_empty() {
        return message(frame, area, "empty cross-modal predictions");
    }
    let cell = cell.min(cross.cells.len() - 1);
    let row = |values: &[f32]| -> Vec<f32> {
        values
            .get(cell * n_features..(cell + 1) * n_features)
            .map(<[f32]>::to_vec)
            .unwrap_or_default()
    };
    let observed = row(&cross.observed);
    let predicted = row(&cross.predicted);
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(
        Paragraph::new(format!(
            "cell {} ({}/{}; n/N for others) · {} predicted from {}",
            cross.cells[cell],
            cell + 1,
            cross.cells.len(),
            cross.target,
            cross.source
        )),
        head,
    );
    let [table_area, chart_area] =
        Layout::horizontal([Constraint::Length(36), Constraint::Min(0)]).areas(body);
    let value = |v: f32| {
        if v.is_finite() {
            format!("{v:.3}")
        } else {
            "-".into()
        }
    };
    let mut rows: Vec<Row> = cross
        .features
        .iter()
        .zip(observed.iter().zip(&predicted))
        .map(|(name, (&o, &p))| Row::new(vec![name.clone(), value(o), value(p)]))
        .collect();
    if let ResultDetail::Apply(detail) = &result.detail {
        for (name, classes) in &detail.classes {
            let class = classes.get(cell).cloned().flatten();
            rows.push(Row::new(vec![
                name.replace("_from_", " ← "),
                String::new(),
                class.unwrap_or_else(|| "-".into()),
            ]));
        }
    }
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(10),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(vec!["feature", "observed", "predicted"]).bold()),
        table_area,
    );
    let points: Vec<(f64, f64)> = observed
        .iter()
        .zip(&predicted)
        .filter(|(o, p)| o.is_finite() && p.is_finite())
        .map(|(&o, &p)| (f64::from(o), f64::from(p)))
        .collect();
    let b = plot::bounds(points.iter().flat_map(|p| [p.0, p.1]));
    let diagonal = [(b[0], b[0]), (b[1], b[1])];
    let chart = Chart::new(vec![
        Dataset::default()
            .name("y = x")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().dark_gray())
            .data(&diagonal),
        Dataset::default()
            .name("features")
            .marker(Marker::Braille)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(color(1)))
            .data(&points),
    ])
    .x_axis(Axis::default().title("observed").bounds(b))
    .y_axis(Axis::default().title("predicted").bounds(b));
    frame.render_widget(chart, chart_area);
}

/// The terminal colour of palette entry `index` (wrapping).
pub(crate) fn color(index: usize) -> Color {
    let (r, g, b) = PALETTE[index % PALETTE.len()];
    Color::Rgb(r, g, b)
}
