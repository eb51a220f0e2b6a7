//! The loaders under fuzzing: one [`Target`] per way a file reaches patchbench.
//!
//! Each target names the file it writes, the seed inputs that mutations start
//! from, whether the mutated bytes are gzip-compressed before they are
//! written, and the loader that reads the file back. A loader must accept the
//! file (and then what it returns must hold together) or reject it with an
//! error; [`super::run`] adds that an error names the file. To fuzz one more
//! loader, add a row to [`targets`].

use std::collections::HashSet;
use std::fmt::Debug;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use patchbench::data::{FeatureTable, Metadata, Orientation, read_metadata, read_table};
use patchbench::session::{
    self, ExperimentConfig, ModelSpec, Session, config_to_ron, parse_config,
};

use super::{recipes, weights};

/// What a loader made of one input.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Loaded, and what was loaded holds together.
    Accepted,
    /// Refused with an error.
    Rejected {
        /// The error's kind (its variant), for counting.
        kind: String,
        /// The error as the user sees it.
        message: String,
    },
    /// Loaded something that does not hold together, or refused without naming the file.
    Violated(String),
}

/// How the mutated bytes become the file the loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Written as they are.
    Plain,
    /// Gzip-compressed first, so the damage is inside a valid stream.
    Gzip,
    /// A safetensors header (JSON), a newline, then the tensor data: framed
    /// with the header's length, so a mutated header is still read as one.
    SafetensorsHeader,
}

/// Which mutations a target's inputs get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutations {
    /// Byte-level and format-aware damage ([`super::mutation::mutations`]).
    Any,
    /// Half [`Mutations::Any`], half [`Mutations::Values`]: text formats whose
    /// checks behind the parser deserve as many inputs as the parser.
    Mixed,
    /// Values, words and fields changed ([`super::mutation::value_mutations`]).
    Values,
}

/// A loader and the inputs it is fuzzed with.
pub struct Target {
    /// Short name, for reports and reproducer files.
    pub name: &'static str,
    /// Name of the file written for the loader (its extension matters to some loaders).
    pub file_name: &'static str,
    /// Valid inputs that mutations start from; each one is accepted unmutated.
    pub seeds: Vec<Vec<u8>>,
    /// Further starting points that may be refused unmutated (degenerate data).
    pub degenerate_seeds: Vec<Vec<u8>>,
    /// What an error may name instead of the file (e.g. `dataset `).
    pub error_names: &'static [&'static str],
    /// Which mutations its inputs get.
    pub mutations: Mutations,
    /// How the mutated bytes are written.
    pub encoding: Encoding,
    /// Reads the file at the given path.
    pub load: Box<dyn Fn(&Path) -> Outcome>,
}

impl Target {
    /// A loader of one file kind whose seeds all load and whose errors name
    /// the file, fuzzed with every kind of mutation.
    pub(super) fn file(
        name: &'static str,
        file_name: &'static str,
        seeds: Vec<Vec<u8>>,
        encoding: Encoding,
        load: impl Fn(&Path) -> Outcome + 'static,
    ) -> Self {
        Self {
            name,
            file_name,
            seeds,
            degenerate_seeds: Vec::new(),
            error_names: &[],
            mutations: Mutations::Any,
            encoding,
            load: Box::new(load),
        }
    }
}

/// Every target, in the order reports list them.
pub fn targets() -> Vec<Target> {
    let cells_by_features = cells_by_features_seeds();
    let features_by_cells = features_by_cells_seeds();
    let gzip_streams = features_by_cells.iter().map(|seed| gzip(seed)).collect();
    vec![
        Target {
            mutations: Mutations::Mixed,
            ..Target::file(
                "session",
                "session.ron",
                session_seeds(),
                Encoding::Plain,
                load_session,
            )
        },
        experiment_config_target(),
        Target::file(
            "table_cells_by_features",
            "table.csv",
            cells_by_features.clone(),
            Encoding::Plain,
            |path| load_table(path, Orientation::CellsByFeatures),
        ),
        Target::file(
            "table_features_by_cells",
            "table.csv",
            features_by_cells,
            Encoding::Plain,
            |path| load_table(path, Orientation::FeaturesByCells),
        ),
        Target::file(
            "table_gzip_text",
            "table.csv.gz",
            cells_by_features,
            Encoding::Gzip,
            |path| load_table(path, Orientation::CellsByFeatures),
        ),
        Target::file(
            "table_gzip_stream",
            "table.tsv.gz",
            gzip_streams,
            Encoding::Plain,
            |path| load_table(path, Orientation::FeaturesByCells),
        ),
        Target::file(
            "metadata",
            "metadata.csv",
            metadata_seeds(),
            Encoding::Plain,
            load_metadata,
        ),
        recipes::target(),
        weights::target(),
    ]
}

/// The error's variant name, taken from its `Debug` form (`Parse { .. }` gives `Parse`).
pub fn kind_of(error: &impl Debug) -> String {
    format!("{error:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

pub(super) fn rejected(error: &(impl Debug + std::fmt::Display)) -> Outcome {
    Outcome::Rejected {
        kind: kind_of(error),
        message: error.to_string(),
    }
}

/// Compresses `bytes` as one gzip member.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

pub(super) fn repository_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn read_repository_file(relative: &str) -> Vec<u8> {
    let path = repository_file(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()))
}

/// The first `rows` lines and `columns` comma-separated fields of a repository file.
fn head(relative: &str, rows: usize, columns: usize) -> Vec<u8> {
    let text = String::from_utf8(read_repository_file(relative)).unwrap_or_default();
    text.lines()
        .take(rows)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').take(columns).collect();
            fields.join(",") + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

// ---- sessions and experiment configurations --------------------------------

fn example_sessions() -> Vec<PathBuf> {
    let folder = repository_file("sessions");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "ron"))
        .collect();
    paths.sort();
    paths
}

/// The example sessions and the committed sessions with results (whose
/// results exercise most of the format).
fn session_seeds() -> Vec<Vec<u8>> {
    let corpus = repository_file("tests/fuzz_corpus");
    let mut paths = example_sessions();
    if let Ok(entries) = std::fs::read_dir(&corpus) {
        let mut stored: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "ron"))
            .collect();
        stored.sort();
        paths.extend(stored);
    }
    paths
        .iter()
        .map(|path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

/// Loads a session, then checks that it survives a save and a reload
/// unchanged, and that every experiment's config file (the `e` key's file)
/// parses back to the same configuration.
fn load_session(path: &Path) -> Outcome {
    let loaded = match session::load(path) {
        Ok(loaded) => loaded,
        Err(error) => return rejected(&error),
    };
    let saved = match session::to_ron(&loaded) {
        Ok(text) => text,
        Err(error) => {
            return Outcome::Violated(format!("a loaded session cannot be saved: {error}"));
        }
    };
    match session::parse(&saved, path).map(|reloaded| session::to_ron(&reloaded)) {
        Ok(Ok(again)) if again == saved => {}
        Ok(Ok(again)) => {
            return Outcome::Violated(format!(
                "a loaded session changes when saved and reloaded:\n{saved}\nbecomes\n{again}"
            ));
        }
        Ok(Err(error)) | Err(error) => {
            return Outcome::Violated(format!(
                "a loaded session, once saved, does not load: {error}\n{saved}"
            ));
        }
    }
    for experiment in &loaded.experiments {
        // Compared as text: a NaN hyperparameter is not equal to itself.
        let written = config_to_ron(experiment);
        let reparsed = written
            .as_ref()
            .ok()
            .map(|text| parse_config(text, path).map(|config| ron::to_string(&config).ok()));
        let original = ron::to_string(&ExperimentConfig::of(experiment)).ok();
        if !matches!(&reparsed, Some(Ok(text)) if *text == original) {
            return Outcome::Violated(format!(
                "experiment `{}`'s config file does not read back: {reparsed:?}",
                experiment.name
            ));
        }
    }
    Outcome::Accepted
}

/// The session configs are applied to, and the experiment they replace.
const CONFIG_BASE: (&str, &str) = ("sessions/demo.ron", "srrr_rank2");

/// A config file of every example experiment, pointed at the demo session's
/// dataset and modalities, applied in place of one of its experiments.
fn experiment_config_target() -> Target {
    let (base_file, replaced) = CONFIG_BASE;
    let base_path = repository_file(base_file);
    let base = session::load(&base_path)
        .unwrap_or_else(|e| panic!("the config target's base session: {e}"));
    let dataset = &base.datasets[0];
    let modality_names: Vec<String> = dataset.modalities.iter().map(|m| m.name.clone()).collect();
    let mut seeds = Vec::new();
    for path in example_sessions() {
        let session = session::load(&path).unwrap_or_else(|e| panic!("example session: {e}"));
        for mut experiment in session.experiments.clone() {
            experiment.dataset.clone_from(&dataset.name);
            if let ModelSpec::Apply(spec) = &mut experiment.model {
                spec.model_from = same_kind_in(&base, &session, &spec.model_from);
            }
            experiment.modalities = modality_names
                .iter()
                .take(experiment.model.modality_count())
                .cloned()
                .collect();
            let text = config_to_ron(&experiment)
                .unwrap_or_else(|e| panic!("config of `{}`: {e}", experiment.name));
            seeds.push(text.into_bytes());
        }
    }
    Target {
        mutations: Mutations::Mixed,
        ..Target::file(
            "experiment_config",
            "experiment.ron",
            seeds,
            Encoding::Plain,
            move |path| load_config(path, &base, replaced),
        )
    }
}

/// The experiment of `base` of the same kind as `session`'s experiment
/// `name`, which an example `Apply` names as its model: the base session has
/// its own names for its models.
fn same_kind_in(base: &Session, session: &Session, name: &str) -> String {
    let kind = session
        .experiments
        .iter()
        .find(|e| e.name == name)
        .map(|e| e.model.kind())
        .unwrap_or_else(|| panic!("example Apply names no experiment `{name}`"));
    base.experiments
        .iter()
        .find(|e| e.model.kind() == kind)
        .map(|e| e.name.clone())
        .unwrap_or_else(|| panic!("{} has no {kind} experiment to apply", CONFIG_BASE.0))
}

fn load_config(path: &Path, base: &Session, replaced: &str) -> Outcome {
    // The workbench reads the file as text first; invalid UTF-8 stops there.
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            return Outcome::Rejected {
                kind: "Utf8".into(),
                message: format!("{}: {error}", path.display()),
            };
        }
    };
    match parse_config(&text, path).and_then(|config| config.applied_to(base, replaced, path)) {
        Ok(_) => Outcome::Accepted,
        Err(error) => rejected(&error),
    }
}

// ---- tables and metadata ---------------------------------------------------

fn cells_by_features_seeds() -> Vec<Vec<u8>> {
    vec![
        head("data/demo/ephys_values.csv", 8, 13),
        b",a,b,c\nc1,1,2,3\nc2,4,,6\nc3,NA,NaN,nan\n".to_vec(),
        b"\tAP amp\tAHP\nc1\t1.5\t-2e-3\nc2\t0\t7\n".to_vec(),
        b"a,b\nc1,1,2\nc2,3,4\n".to_vec(),
        b"\"\",\"AP amp, mV\",b\nc1,1,2\n\"c 2\",3,4\n".to_vec(),
        "\u{feff},a,b\r\nc1,1,2\r\nc2,0.5,-1\r\n"
            .as_bytes()
            .to_vec(),
    ]
}

fn features_by_cells_seeds() -> Vec<Vec<u8>> {
    vec![
        head("data/demo/gene_counts.csv", 8, 12),
        b"gene,c1,c2,c3\nGad1,0,5,12\nVip,1,0,3\n".to_vec(),
        b"gene\tc1\tc2\nGad1\t0\t5\nERCC-1\t2\t2\n".to_vec(),
        b"c1,c2\nGad1,0,5\nVip,1,2\n".to_vec(),
    ]
}

fn metadata_seeds() -> Vec<Vec<u8>> {
    vec![
        head("data/demo/metadata.csv", 8, 6),
        b"cell_id,family\nc1,Vip\nc2,\nc3,Sst\n".to_vec(),
        b"family\tcell_id\nVip\tc1\n\"L2/3, IT\"\tc2\n".to_vec(),
    ]
}

fn load_table(path: &Path, orientation: Orientation) -> Outcome {
    match read_table(path, orientation) {
        Ok(table) => table_problem(&table).map_or(Outcome::Accepted, Outcome::Violated),
        Err(error) => rejected(&error),
    }
}

/// What is wrong with a loaded table: shape, ids or values.
pub(super) fn table_problem(table: &FeatureTable) -> Option<String> {
    if table.values.dim() != (table.cells.len(), table.features.len()) {
        return Some(format!(
            "{} cells and {} features but a {:?} matrix",
            table.cells.len(),
            table.features.len(),
            table.values.dim()
        ));
    }
    if table.cells.is_empty() || table.features.is_empty() {
        return Some("an empty table was accepted".into());
    }
    ids_problem("cell id", &table.cells)
        .or_else(|| ids_problem("feature name", &table.features))
        .or_else(|| {
            table
                .values
                .iter()
                .any(|v| v.is_infinite())
                .then(|| "an infinite value was accepted".into())
        })
}

fn ids_problem(what: &str, ids: &[String]) -> Option<String> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().find_map(|id| {
        if id.is_empty() || id.trim_ascii() != id {
            Some(format!("{what} {id:?} is empty or not trimmed"))
        } else if !seen.insert(id.as_str()) {
            Some(format!("{what} {id:?} was accepted twice"))
        } else {
            None
        }
    })
}

fn load_metadata(path: &Path) -> Outcome {
    match read_metadata(path, "cell_id") {
        Ok(metadata) => metadata_problem(&metadata).map_or(Outcome::Accepted, Outcome::Violated),
        Err(error) => rejected(&error),
    }
}

fn metadata_problem(metadata: &Metadata) -> Option<String> {
    if metadata.rows.len() != metadata.cells.len() || metadata.cells.is_empty() {
        return Some(format!(
            "{} cells but {} rows",
            metadata.cells.len(),
            metadata.rows.len()
        ));
    }
    if let Some(row) = metadata
        .rows
        .iter()
        .position(|row| row.len() != metadata.columns.len())
    {
        return Some(format!(
            "row {row} has {} fields for {} columns",
            metadata.rows[row].len(),
            metadata.columns.len()
        ));
    }
    ids_problem("cell id", &metadata.cells)
}
