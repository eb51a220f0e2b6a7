//! The config pane: the selected experiment's configuration as RON, its
//! result's provenance, and the last config error with line and column.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::session::{ApplyDetail, ResultDetail, config_to_ron};
use crate::tui::app::App;
use crate::tui::state::Pane;
use crate::tui::ui::pane_block;

/// Draws the config pane.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let mut lines: Vec<Line> = Vec::new();
    if let Some(error) = &app.config_error {
        lines.push(Line::from(Span::styled(
            format!("✗ {error}"),
            Style::new().red().bold(),
        )));
        lines.push(Line::from("  (last good config kept)".red()));
    }
    let title = match app.selected() {
        None => {
            lines.push(Line::from("no experiment selected".dark_gray()));
            Pane::Config.title().to_string()
        }
        Some(experiment) => {
            // An application's report comes first: it says whether to trust it.
            if let Some(ResultDetail::Apply(detail)) = experiment.result.as_ref().map(|r| &r.detail)
            {
                lines.extend(alignment_lines(detail));
            }
            match config_to_ron(experiment) {
                // The extension header only matters to the parser.
                Ok(text) => lines.extend(
                    text.lines()
                        .filter(|l| !l.starts_with("#!["))
                        .map(|l| Line::from(l.to_string())),
                ),
                Err(error) => lines.push(Line::from(error.to_string())),
            }
            if let Some(result) = &experiment.result {
                let p = &result.provenance;
                lines.push(Line::from(
                    format!(
                        "result: {:.1} s on {} threads, patchbench {}",
                        p.seconds, p.threads, p.patchbench
                    )
                    .dark_gray(),
                ));
            }
            if let Some(reason) = app.runs.failure(&experiment.name) {
                lines.push(Line::from(Span::styled(
                    format!("last run failed: {reason}"),
                    Style::new().red(),
                )));
            }
            format!("{}: {} (e edits)", Pane::Config.title(), experiment.name)
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(pane_block(app, Pane::Config, title)),
        area,
    );
}

/// The model an `Apply` result used and its feature-alignment report.
fn alignment_lines(detail: &ApplyDetail) -> Vec<Line<'static>> {
    let a = &detail.artifact;
    let mut lines = vec![
        Line::from(format!(
            "applied: {} `{}` (trained on {}, data {}, config {})",
            detail.model, detail.model_from, a.dataset, a.data_fingerprint, a.config_fingerprint
        )),
        Line::from("alignment report:".bold()),
    ];
    lines.extend(
        detail
            .report_lines
            .iter()
            .map(|l| Line::from(format!("  {l}"))),
    );
    lines
}
