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
    /// Sweep the selected experiment: `PARAM VALUES`, a grid `a=.. b=..`
    /// or a random search `random N a=.. b=..`.
    Sweep(String),
    /// Sort the runs table by a column.
    Sort(String),
    /// Colour the latent plot by a metadata column.
    Label(String),
    /// Show a view tab.
    Tab(String),
    /// Launch the unfinished experiments as a Slurm array, in this many shards.
    Slurm(Option<usize>),
    /// Fold finished shard files into the session.
    Merge,
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
        description: "`sweep rank 1,2,4`, grid `sweep a=0,1 b=2..4 seed=1,2`, `sweep random 20 a=log 0.01..1`",
        parse: |args| (!args.is_empty()).then(|| Command::Sweep(args.join(" "))),
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
        description: "show a view tab: latent, curves, confusion, genes, cross, compare",
        parse: |args| one(args).map(Command::Tab),
    },
    CommandSpec {
        names: &["slurm"],
        usage: "slurm [SHARDS]",
        description: "run the unfinished experiments as a Slurm array (one task per shard)",
        parse: |args| match args {
            [] => Some(Command::Slurm(None)),
            [n] => n
                .parse()
                .ok()
                .filter(|&n: &usize| n > 0)
                .map(|n| Command::Slurm(Some(n))),
            _ => None,
        },
    },
    CommandSpec {
        names: &["merge"],
        usage: "merge",
        description: "fold finished cluster shard files into the session",
        parse: |_| Some(Command::Merge),
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
            Ok(Some(Command::Sweep("alpha log 0.01..1:3".into())))
        );
        assert_eq!(parse("sort"), Err("usage: :sort COLUMN".into()));
        assert!(parse("bogus 1").unwrap_err().contains("unknown command"));
    }
}
