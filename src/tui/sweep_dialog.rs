//! The sweep dialog: pick a numeric hyperparameter, then type its values.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::line_edit::{LineEdit, edit_line};

/// The sweep dialog's steps.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepDialog {
    /// Choosing the hyperparameter from the model's numeric fields.
    Parameter {
        /// The experiment swept.
        base: String,
        /// `(path, current value)` of every numeric hyperparameter.
        choices: Vec<(String, f64)>,
        /// The highlighted one.
        cursor: usize,
    },
    /// Typing the values.
    Values {
        /// The experiment swept.
        base: String,
        /// The hyperparameter.
        parameter: String,
        /// The text typed so far.
        text: String,
    },
}

/// What a key did to the dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum DialogStep {
    /// The dialog stays open in this state.
    Open(SweepDialog),
    /// The user left it.
    Cancelled,
    /// The user asked for this sweep.
    Launch {
        /// The experiment swept.
        base: String,
        /// The hyperparameter.
        parameter: String,
        /// The values as typed.
        values: String,
    },
}

impl SweepDialog {
    /// The dialog for experiment `base` with its `(path, value)` choices.
    pub fn new(base: String, choices: Vec<(String, f64)>) -> SweepDialog {
        SweepDialog::Parameter {
            base,
            choices,
            cursor: 0,
        }
    }

    /// Applies one key.
    pub fn key(self, key: KeyEvent) -> DialogStep {
        match self {
            SweepDialog::Parameter {
                base,
                choices,
                cursor,
            } => {
                let last = choices.len().saturating_sub(1);
                let cursor = match key.code {
                    KeyCode::Esc | KeyCode::Char('q') => return DialogStep::Cancelled,
                    KeyCode::Enter => {
                        let parameter = choices
                            .get(cursor)
                            .map(|(p, _)| p.clone())
                            .unwrap_or_default();
                        return DialogStep::Open(SweepDialog::Values {
                            base,
                            parameter,
                            text: String::new(),
                        });
                    }
                    KeyCode::Down | KeyCode::Char('j') => (cursor + 1).min(last),
                    KeyCode::Up | KeyCode::Char('k') => cursor.saturating_sub(1),
                    _ => cursor,
                };
                DialogStep::Open(SweepDialog::Parameter {
                    base,
                    choices,
                    cursor,
                })
            }
            SweepDialog::Values {
                base,
                parameter,
                text,
            } => match edit_line(text, key) {
                LineEdit::Editing(text) => DialogStep::Open(SweepDialog::Values {
                    base,
                    parameter,
                    text,
                }),
                LineEdit::Cancelled => DialogStep::Cancelled,
                LineEdit::Done(values) => DialogStep::Launch {
                    base,
                    parameter,
                    values,
                },
            },
        }
    }
}
