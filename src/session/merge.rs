//! A writer's own changes to a session, applied to whatever is on disk.
//!
//! Several programs may write one session (two batches, a batch and the
//! workbench). Each keeps the changes it made as a list of [`Change`]s and,
//! when saving, applies them to the session as it is on disk now rather than
//! writing its own (stale) copy, so nobody loses anybody's results. The
//! changes are also spliced into the file's text ([`splice`]), so comments
//! and layout the user wrote are kept.

use super::ron_text::{Group, RonText};
use super::{Experiment, ExperimentConfig, ExperimentResult, Session, SessionError, Sweep};

/// One change a writer made to a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A run finished: experiment `experiment` gets `result`.
    Result {
        /// The experiment's name.
        experiment: String,
        /// Its new result.
        result: Box<ExperimentResult>,
    },
    /// A new experiment (a sweep's run); kept as it is on disk if one of that
    /// name exists there already.
    Experiment(Box<Experiment>),
    /// The experiment's configuration was edited.
    Config {
        /// The experiment's name.
        experiment: String,
        /// Its new configuration.
        config: Box<ExperimentConfig>,
    },
    /// A new sweep.
    Sweep(Sweep),
}

impl Change {
    /// Applies the change to `session`; `Err` says why it no longer applies
    /// (e.g. the experiment was removed from the file meanwhile).
    pub fn apply(&self, session: &mut Session) -> Result<(), String> {
        let experiment = |session: &mut Session, name: &str| {
            let found = session.experiments.iter_mut().position(|e| e.name == name);
            found.ok_or_else(|| format!("`{name}` is no longer in the session"))
        };
        match self {
            Change::Result {
                experiment: name,
                result,
            } => {
                let index = experiment(session, name)?;
                session.experiments[index].result = Some((**result).clone());
            }
            Change::Experiment(new) => {
                if !session.experiments.iter().any(|e| e.name == new.name) {
                    session.experiments.push((**new).clone());
                }
            }
            Change::Config {
                experiment: name,
                config,
            } => {
                let index = experiment(session, name)?;
                let target = &mut session.experiments[index];
                target.dataset = config.dataset.clone();
                target.modalities = config.modalities.clone();
                target.model = config.model.clone();
                target.protocol = config.protocol.clone();
            }
            Change::Sweep(sweep) => {
                if !session.sweeps.contains(sweep) {
                    session.sweeps.push(sweep.clone());
                }
            }
        }
        Ok(())
    }
}

/// `text` (which parses as a session) with `changes` spliced in, every other
/// byte kept; `merged` is the session the text must read back as.
/// `None` when a change cannot be placed in the text (then the caller writes
/// the whole session instead).
pub(super) fn splice(text: &str, merged: &Session, changes: &[Change]) -> Option<String> {
    let mut text = text.to_string();
    for change in changes {
        text = splice_one(&text, merged, change)?;
    }
    Some(text)
}

fn splice_one(text: &str, merged: &Session, change: &Change) -> Option<String> {
    match change {
        Change::Result { experiment, result } => {
            set_experiment_field(text, experiment, "result", &pretty(result.as_ref())?)
        }
        Change::Experiment(new) => {
            let mut doc = RonText::new(text)?;
            if experiment_struct(&doc, &new.name).is_none() {
                let list = experiment_list(&doc)?;
                doc.append_item(list, &pretty(new.as_ref())?)?;
            }
            Some(doc.into_text())
        }
        Change::Config { experiment, config } => {
            let fields: [(&str, String); 4] = [
                ("dataset", pretty(&config.dataset)?),
                ("modalities", pretty(&config.modalities)?),
                ("model", pretty(&config.model)?),
                ("protocol", pretty(&config.protocol)?),
            ];
            let mut text = text.to_string();
            for (name, value) in fields {
                text = set_experiment_field(&text, experiment, name, &value)?;
            }
            Some(text)
        }
        Change::Sweep(_) => {
            let mut doc = RonText::new(text)?;
            let root = doc.root()?;
            set_field(&mut doc, root, "sweeps", &pretty(&merged.sweeps)?)?;
            Some(doc.into_text())
        }
    }
}

/// The `[...]` of the session's `experiments` field.
fn experiment_list(doc: &RonText) -> Option<Group> {
    let root = doc.root()?;
    let field = doc.field(root, "experiments")?;
    doc.value_group(&field)
}

/// The struct of the experiment named `name`.
fn experiment_struct(doc: &RonText, name: &str) -> Option<Group> {
    let list = experiment_list(doc)?;
    doc.items(list).into_iter().find_map(|(_, group)| {
        let group = group?;
        let field = doc.field(group, "name")?;
        let value: String = ron::from_str(doc.slice(field.value)).ok()?;
        (value == name).then_some(group)
    })
}

/// `text` with field `field` of experiment `name` set to `value`.
fn set_experiment_field(text: &str, name: &str, field: &str, value: &str) -> Option<String> {
    let mut doc = RonText::new(text)?;
    let group = experiment_struct(&doc, name)?;
    set_field(&mut doc, group, field, value)?;
    Some(doc.into_text())
}

/// Replaces the value of `field` in the struct `group`, or adds the field.
fn set_field(doc: &mut RonText, group: Group, field: &str, value: &str) -> Option<()> {
    match doc.field(group, field) {
        Some(existing) => {
            doc.replace_value(&existing, value);
            Some(())
        }
        None => doc.add_field(group, field, value),
    }
}

/// `value` as pretty RON in the session file's style, without the
/// `#![enable(...)]` lines (the session's parser enables them anyway).
fn pretty<T: serde::Serialize + ?Sized>(value: &T) -> Option<String> {
    let text = super::file::to_pretty_ron(value).ok()?;
    let mut rest = text.as_str();
    while let Some(attribute) = rest.strip_prefix("#![") {
        rest = attribute.split_once('\n')?.1;
    }
    Some(rest.to_string())
}

/// The text to write for `merged`: `disk_text` with `changes` spliced in when
/// that reads back exactly as the whole session written anew would, else the
/// whole session written anew.
pub(super) fn merged_text(
    disk_text: &str,
    merged: &Session,
    changes: &[Change],
) -> Result<String, SessionError> {
    let full = super::to_ron(merged)?;
    let reread = |text: &str| {
        let options = ron::Options::default().with_default_extension(super::file::extensions());
        let session: Session = options.from_str(text).ok()?;
        super::to_ron(&session).ok()
    };
    if let Some(spliced) = splice(disk_text, merged, changes)
        && let Some(spliced_reread) = reread(&spliced)
        // Reading the whole session back usually gives its text unchanged,
        // which saves a second read of a long session.
        && (spliced_reread == full || Some(spliced_reread) == reread(&full))
    {
        return Ok(spliced);
    }
    Ok(full)
}
