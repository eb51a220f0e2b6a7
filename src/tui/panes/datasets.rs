//! The datasets pane: modalities, cell counts, pairing and label columns.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::state::{DatasetState, Pane};
use crate::tui::ui::pane_block;

/// Draws the datasets pane.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines: Vec<Line> = Vec::new();
    if app.session().datasets.is_empty() {
        lines.push(Line::from("no datasets in this session".dark_gray()));
    }
    for (i, spec) in app.session().datasets.iter().enumerate() {
        let marker = if i == app.dataset_cursor {
            "▶ "
        } else {
            "  "
        };
        lines.push(Line::from(vec![
            Span::raw(marker),
            Span::styled(spec.name.clone(), Style::new().bold()),
        ]));
        match app.datasets.get(&spec.name) {
            None | Some(DatasetState::Loading) => {
                lines.push(Line::from("    loading…".dark_gray()));
            }
            Some(DatasetState::Failed(error)) => {
                lines.push(Line::from(Span::styled(
                    format!("    {error}"),
                    Style::new().red(),
                )));
            }
            Some(DatasetState::Loaded(data)) => {
                for modality in &data.data.modalities {
                    lines.push(Line::from(format!(
                        "    {}: {} cells × {} features",
                        modality.name,
                        modality.table.cells().len(),
                        modality.table.features().len()
                    )));
                    if modality.table.is_sparse() {
                        lines.push(Line::from("      kept sparse".dark_gray()));
                    }
                }
                if let [a, b, ..] = data.data.modalities.as_slice()
                    && let Some(pairing) = data.data.pairing(&a.name, &b.name)
                {
                    let counts = pairing.counts();
                    lines.push(Line::from(format!(
                        "    paired {} · only {} {} · only {} {}",
                        counts.paired, a.name, counts.only_a, b.name, counts.only_b
                    )));
                }
                if let Some(metadata) = &data.data.metadata {
                    lines.push(Line::from(format!(
                        "    labels: {}",
                        metadata.columns.join(", ")
                    )));
                }
            }
        }
    }
    let title = format!(
        "{} ({})",
        Pane::Datasets.title(),
        app.session().datasets.len()
    );
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane_block(app, Pane::Datasets, title)),
        area,
    );
}
