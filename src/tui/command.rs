//! The `:` command line: one table of commands, which both parses a typed
//! line and lists the commands in the help overlay.

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Quit (asks while runs are going).
    Quit,
    /// Open the help overlay.
    Help,
    /// Run the named experiments, or the selected one when none is named.
    Run(Vec<String>),
    /// Run every experiment without a current result.
    RunAll,
    /// Cancel the selected run.
    Cancel,
    /// Edit the selected experiment's config.
    Edit,
    /// Export the current plot and CSVs.
    Export,
    /// Sweep a hyperparameter of the selected experiment.
    Sweep {
        /// The hyperparameter's path.
        parameter: String,
        /// The values as typed.
        values: String,
    },
    /// Sort the runs table by a column.
    Sort(String),
    /// Colour the latent plot by a metadata column.
    Label(String),
    /// Show a view tab.
    Tab(String),
}

/// One command of the table.
pub struct CommandSpec {
    /// The words that call it; the first is shown in the help.
    names: &'static [&'static str],
    /// How to call it, for the help.
    pub usage: &'static str,
    /// What it does, for the help.
    pub description: &'static str,
    /// Builds the command from its arguments; `None` when they do not fit.
    parse: fn(&[&str]) -> Option<Command>,
}

fn one(args: &[&str]) -> Option<String> {
    match args {
        [word] => Some(word.to_string()),
        _ => None,
    }
}

/// Every command, in the order the help lists them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        names: &["run"],
        usage: "run [NAME]",
        description: "run the selected (or named) experiment",
        parse: |args| Some(Command::Run(args.iter().map(|a| a.to_string()).collect())),
    },
    CommandSpec {
        names: &["runall"],
        usage: "runall",
        description: "run every experiment without a current result",
        parse: |_| Some(Command::RunAll),
    },
    CommandSpec {
        names: &["cancel"],
        usage: "cancel",
        description: "cancel the selected run",
        parse: |_| Some(Command::Cancel),
    },
    CommandSpec {
        names: &["sweep"],
        usage: "sweep PARAM VALUES",
        description: "sweep, e.g. `sweep rank 1,2,4` or `sweep alpha log 0.01..1:3`",
        parse: |args| match args {
            [parameter, values @ ..] if !values.is_empty() => Some(Command::Sweep {
                parameter: parameter.to_string(),
                values: values.join(" "),
            }),
            _ => None,
        },
    },
    CommandSpec {
        names: &["sort"],
        usage: "sort COLUMN",
        description: "sort the runs table by a metric, `name` or `status`",
        parse: |args| one(args).map(Command::Sort),
    },
    CommandSpec {
        names: &["label"],
        usage: "label COLUMN",
        description: "colour the latent plot by a metadata column",
        parse: |args| one(args).map(Command::Label),
    },
    CommandSpec {
        names: &["tab"],
        usage: "tab NAME",
        description: "show a view tab: latent, curves, confusion, genes, cross",
        parse: |args| one(args).map(Command::Tab),
    },
    CommandSpec {
        names: &["export"],
        usage: "export",
        description: "export the current plot and CSVs",
        parse: |_| Some(Command::Export),
    },
    CommandSpec {
        names: &["edit"],
        usage: "edit",
        description: "edit the selected experiment's config",
        parse: |_| Some(Command::Edit),
    },
    CommandSpec {
        names: &["q", "quit"],
        usage: "q",
        description: "quit",
        parse: |_| Some(Command::Quit),
    },
    CommandSpec {
        names: &["help"],
        usage: "help",
        description: "this list",
        parse: |_| Some(Command::Help),
    },
];

/// Parses a typed line: `Ok(None)` for an empty line, `Err` with a message
/// for an unknown command or arguments that do not fit.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some((verb, args)) = words.split_first() else {
        return Ok(None);
    };
    let spec = COMMANDS
        .iter()
        .find(|c| c.names.contains(verb))
        .ok_or_else(|| format!("unknown command `{line}`; :help lists the commands"))?;
    (spec.parse)(args)
        .map(Some)
        .ok_or_else(|| format!("usage: :{}", spec.usage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_through_the_table() {
        assert_eq!(parse("  "), Ok(None));
        assert_eq!(parse("quit"), Ok(Some(Command::Quit)));
        assert_eq!(
            parse("run a b"),
            Ok(Some(Command::Run(vec!["a".into(), "b".into()])))
        );
        assert_eq!(
            parse("sweep alpha log 0.01..1:3"),
            Ok(Some(Command::Sweep {
                parameter: "alpha".into(),
                values: "log 0.01..1:3".into()
            }))
        );
        assert_eq!(parse("sort"), Err("usage: :sort COLUMN".into()));
        assert!(parse("bogus 1").unwrap_err().contains("unknown command"));
    }
}
