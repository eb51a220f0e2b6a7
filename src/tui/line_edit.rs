//! A one-line text field: the `:` command line and the sweep's values.

use ratatui::crossterm::event::{KeyCode, KeyEvent};

/// The outcome of one key in a one-line text field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEdit {
    /// Still typing; the text so far.
    Editing(String),
    /// Esc, or Backspace on an empty line.
    Cancelled,
    /// Enter; the text typed.
    Done(String),
}

/// Applies `key` to the field holding `text`.
pub fn edit_line(mut text: String, key: KeyEvent) -> LineEdit {
    match key.code {
        KeyCode::Esc => LineEdit::Cancelled,
        KeyCode::Enter => LineEdit::Done(text),
        KeyCode::Backspace => {
            if text.pop().is_none() {
                return LineEdit::Cancelled;
            }
            LineEdit::Editing(text)
        }
        KeyCode::Char(c) => {
            text.push(c);
            LineEdit::Editing(text)
        }
        _ => LineEdit::Editing(text),
    }
}
