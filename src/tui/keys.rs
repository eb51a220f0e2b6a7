//! The key map: every binding with its action and description, in one table
//! that drives key handling, the status-bar hints and the `?` help overlay.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::state::Pane;

/// Something the user can ask for with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Focus the next pane.
    FocusNext,
    /// Focus the previous pane.
    FocusPrev,
    /// Move the selection down.
    Down,
    /// Move the selection up.
    Up,
    /// Select the first row.
    Top,
    /// Select the last row.
    Bottom,
    /// Queue the selected experiment.
    Run,
    /// Queue every experiment without a current result.
    RunAll,
    /// Cancel the selected experiment's run.
    Cancel,
    /// Start a sweep over a hyperparameter of the selected experiment.
    Sweep,
    /// Edit the selected experiment's config in `$EDITOR`.
    Edit,
    /// Sort the runs table by the next column.
    SortNext,
    /// Reverse the sort order.
    SortReverse,
    /// Show the next view tab.
    TabNext,
    /// Show the previous view tab.
    TabPrev,
    /// Colour the latent plot by the next label column.
    LabelNext,
    /// Switch between the result's latent spaces (z_T / z_E).
    LatentNext,
    /// Plot the next pair of latent dimensions.
    DimsNext,
    /// Show or hide the applied cells over the training latent space (Apply).
    AppliedToggle,
    /// Zoom in.
    ZoomIn,
    /// Zoom out.
    ZoomOut,
    /// Zoom to fit the data.
    ZoomFit,
    /// Next confusion matrix, or next cell in the cross-modal view.
    ItemNext,
    /// Previous confusion matrix or cell.
    ItemPrev,
    /// Export the current plot (SVG and PNG) and the latents and metrics (CSV).
    Export,
    /// Mark or unmark the selected run for the compare view.
    Mark,
    /// Run the unfinished experiments as a Slurm array job.
    LaunchCluster,
    /// Show the help overlay.
    Help,
    /// Open the command line.
    Command,
    /// Quit (asks first while runs are going).
    Quit,
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere.
    Global,
    /// Only while the view pane has focus.
    View,
}

/// One key binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The key codes that trigger it.
    pub codes: &'static [KeyCode],
    /// How the keys are written in hints and help.
    pub label: &'static str,
    /// What it does.
    pub action: Action,
    /// One-line description.
    pub desc: &'static str,
    /// Where it applies.
    pub scope: Scope,
    /// Whether the status bar hints show it.
    pub hint: bool,
}

const fn bind(
    codes: &'static [KeyCode],
    label: &'static str,
    action: Action,
    desc: &'static str,
    scope: Scope,
    hint: bool,
) -> Binding {
    Binding {
        codes,
        label,
        action,
        desc,
        scope,
        hint,
    }
}

use Action as A;
use KeyCode as K;
use Scope::{Global as G, View as V};

/// Every key binding of the normal mode.
pub const BINDINGS: &[Binding] = &[
    bind(
        &[K::Tab, K::Char('l')],
        "Tab/l",
        A::FocusNext,
        "focus next pane",
        G,
        true,
    ),
    bind(
        &[K::BackTab, K::Char('h')],
        "S-Tab/h",
        A::FocusPrev,
        "focus previous pane",
        G,
        false,
    ),
    bind(
        &[K::Down, K::Char('j')],
        "j/↓",
        A::Down,
        "select next row",
        G,
        false,
    ),
    bind(
        &[K::Up, K::Char('k')],
        "k/↑",
        A::Up,
        "select previous row",
        G,
        false,
    ),
    bind(
        &[K::Home, K::Char('g')],
        "g",
        A::Top,
        "select first row",
        G,
        false,
    ),
    bind(
        &[K::End, K::Char('G')],
        "G",
        A::Bottom,
        "select last row",
        G,
        false,
    ),
    bind(
        &[K::Enter, K::Char('r')],
        "r/Enter",
        A::Run,
        "run the selected experiment",
        G,
        true,
    ),
    bind(
        &[K::Char('R')],
        "R",
        A::RunAll,
        "run every experiment without a current result",
        G,
        false,
    ),
    bind(
        &[K::Char('c')],
        "c",
        A::Cancel,
        "cancel the selected run",
        G,
        true,
    ),
    bind(
        &[K::Char('w')],
        "w",
        A::Sweep,
        "sweep a hyperparameter of the selected experiment",
        G,
        true,
    ),
    bind(
        &[K::Char('e')],
        "e",
        A::Edit,
        "edit the selected experiment's config in $EDITOR",
        G,
        true,
    ),
    bind(
        &[K::Char('s')],
        "s",
        A::SortNext,
        "sort the runs table by the next column",
        G,
        false,
    ),
    bind(
        &[K::Char('S')],
        "S",
        A::SortReverse,
        "reverse the sort order",
        G,
        false,
    ),
    bind(&[K::Char(']')], "]", A::TabNext, "next view tab", G, true),
    bind(
        &[K::Char('[')],
        "[",
        A::TabPrev,
        "previous view tab",
        G,
        false,
    ),
    bind(
        &[K::Char('b')],
        "b",
        A::LabelNext,
        "colour the latent plot by the next label column",
        G,
        false,
    ),
    bind(
        &[K::Char('t')],
        "t",
        A::LatentNext,
        "toggle latent space (z_T / z_E)",
        G,
        false,
    ),
    bind(
        &[K::Char('d')],
        "d",
        A::DimsNext,
        "next pair of latent dimensions / compared parameter",
        G,
        false,
    ),
    bind(
        &[K::Char('a')],
        "a",
        A::AppliedToggle,
        "show / hide the applied cells over the training latent (Apply)",
        G,
        false,
    ),
    bind(
        &[K::Char('+'), K::Char('=')],
        "+",
        A::ZoomIn,
        "zoom in",
        V,
        false,
    ),
    bind(&[K::Char('-')], "-", A::ZoomOut, "zoom out", V, false),
    bind(&[K::Char('f')], "f", A::ZoomFit, "zoom to fit", G, false),
    bind(
        &[K::Char('n')],
        "n",
        A::ItemNext,
        "next confusion matrix / cell / compared curve",
        G,
        false,
    ),
    bind(
        &[K::Char('N')],
        "N",
        A::ItemPrev,
        "previous confusion matrix / previous cell",
        G,
        false,
    ),
    bind(
        &[K::Char('x')],
        "x",
        A::Export,
        "export the plot (SVG, PNG) and latents and metrics (CSV)",
        G,
        true,
    ),
    bind(
        &[K::Char('m')],
        "m",
        A::Mark,
        "mark / unmark the selected run for 6 Compare",
        G,
        false,
    ),
    bind(
        &[K::Char('L')],
        "L",
        A::LaunchCluster,
        "launch the unfinished experiments as a Slurm array job",
        G,
        false,
    ),
    bind(&[K::Char('?')], "?", A::Help, "show this help", G, true),
    bind(
        &[K::Char(':')],
        ":",
        A::Command,
        "command line (:help lists commands)",
        G,
        true,
    ),
    bind(
        &[K::Char('q')],
        "q",
        A::Quit,
        "quit (asks while runs are going)",
        G,
        true,
    ),
];

/// The action `key` triggers in normal mode with `focus`, if any.
pub fn action_for(key: KeyEvent, focus: Pane) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            _ => None,
        };
    }
    BINDINGS
        .iter()
        .filter(|b| b.scope == Scope::Global || focus == Pane::View)
        .find(|b| b.codes.contains(&key.code))
        .map(|b| b.action)
}

/// The short hints for the status bar: `key desc` pairs.
pub fn hints() -> Vec<(&'static str, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.hint)
        .map(|b| (b.label, short(b.desc)))
        .collect()
}

fn short(desc: &'static str) -> &'static str {
    desc.split_whitespace().next().unwrap_or(desc)
}
