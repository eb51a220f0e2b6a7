//! Hyperparameter sweeps: one experiment's model run over a grid of values
//! of one or more hyperparameters, or over a seeded random search.
//!
//! A sweep is kept in the session with the names of the experiments it
//! created, one per point; each holds its own result, so a sweep interrupted
//! by quitting resumes by running the ones without a result. Hyperparameters
//! are addressed generically by their field path in the model's serialised
//! form (`rank`, `alpha`, `encoder.width`), so sweeps work for every model;
//! `seed` means the model's own seed, whatever its path ([`set_parameter`]).

mod plan;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use plan::{Dimension, Distribution, RandomSearch, SEED, SweepSpec};

use super::{Experiment, ModelSpec, Session, SessionError, validate};

/// A sweep of one experiment: its first dimension, any further ones (a grid
/// of every combination) and, for a random search, the draws. Sessions
/// written before grids read unchanged (`more` and `random` are optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// The experiment whose configuration the runs copy.
    pub base: String,
    /// Field path of the first hyperparameter in the model (e.g. `rank`).
    pub parameter: String,
    /// Its values as the user wrote them (see [`SweepValues::parse`]), or its
    /// distribution in a random search (see [`Distribution::parse`]).
    pub values: String,
    /// Further dimensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<Dimension>,
    /// Set for a random search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomSearch>,
    /// The experiments created, one per point, in the order of the points.
    pub runs: Vec<String>,
}

impl Sweep {
    /// The sweep's dimensions, first one first.
    pub fn dimensions(&self) -> Vec<Dimension> {
        std::iter::once(Dimension {
            parameter: self.parameter.clone(),
            values: self.values.clone(),
        })
        .chain(self.more.iter().cloned())
        .collect()
    }

    /// True when `parameter`'s values are spread in log scale (a log-range
    /// or a log-uniform draw), so plots against it want a log axis.
    pub fn is_log(&self, parameter: &str) -> bool {
        self.dimensions()
            .iter()
            .any(|d| d.parameter == parameter && d.values.trim_start().starts_with("log"))
    }
}

/// Why a sweep could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The values text is not a list, range or log-range.
    #[error(
        "values `{text}`: {message}; write a list `1,2,4`, a range `1..5` or `0..1:0.25`, or a log-range `log 0.001..0.1:3`"
    )]
    Values {
        /// What the user wrote.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// The model has no numeric hyperparameter at that path.
    #[error("the model has no numeric hyperparameter `{parameter}`; it has {known}")]
    UnknownParameter {
        /// The path asked for.
        parameter: String,
        /// The numeric paths the model has.
        known: String,
    },
    /// The value does not suit the hyperparameter's type.
    #[error("`{parameter}` = {value}: {message}")]
    BadValue {
        /// The hyperparameter.
        parameter: String,
        /// The value.
        value: f64,
        /// What is wrong.
        message: String,
    },
    /// The sweep as typed does not read.
    #[error("sweep `{text}`: {message}")]
    Spec {
        /// What the user wrote.
        text: String,
        /// What is wrong.
        message: String,
    },
    /// The session has no such experiment.
    #[error("the session has no experiment `{0}`")]
    UnknownExperiment(String),
    /// A run's configuration does not validate.
    #[error("{0}")]
    Invalid(#[from] SessionError),
}

/// A parsed values specification.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepValues {
    /// Explicit values: `1,2,4`.
    List(Vec<f64>),
    /// `start..stop` (step 1) or `start..stop:step`, both ends included.
    Range {
        /// First value.
        start: f64,
        /// Last value (included when the steps land on it).
        stop: f64,
        /// Increment.
        step: f64,
    },
    /// `log start..stop:count`: `count` values evenly spaced in log scale.
    LogRange {
        /// First value (positive).
        start: f64,
        /// Last value (positive).
        stop: f64,
        /// How many values.
        count: usize,
    },
}

/// The most values one sweep may have.
const MAX_VALUES: usize = 100;

impl SweepValues {
    /// Parses `1,2,4`, `1..5`, `0..1:0.25` or `log 0.001..0.1:3`.
    pub fn parse(text: &str) -> Result<SweepValues, SweepError> {
        let fail = |message: &str| SweepError::Values {
            text: text.to_string(),
            message: message.to_string(),
        };
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| fail(&format!("`{}` is not a number", s.trim())))
        };
        let trimmed = text.trim();
        if let Some(rest) = trimmed.strip_prefix("log") {
            let (range, count) = rest
                .split_once(':')
                .ok_or_else(|| fail("a log-range needs a count after `:`"))?;
            let (start, stop) = range
                .split_once("..")
                .ok_or_else(|| fail("a log-range needs `start..stop`"))?;
            let (start, stop) = (number(start)?, number(stop)?);
            let count = count
                .trim()
                .parse::<usize>()
                .map_err(|_| fail("the count must be a whole number"))?;
            if start <= 0.0 || stop <= 0.0 {
                return Err(fail("log-range ends must be positive"));
            }
            if !(2..=MAX_VALUES).contains(&count) {
                return Err(fail(&format!("the count must be 2 to {MAX_VALUES}")));
            }
            return Ok(SweepValues::LogRange { start, stop, count });
        }
        if let Some((start, rest)) = trimmed.split_once("..") {
            let (stop, step) = match rest.split_once(':') {
                Some((stop, step)) => (number(stop)?, number(step)?),
                None => (number(rest)?, 1.0),
            };
            let start = number(start)?;
            if step <= 0.0 {
                return Err(fail("the step must be positive"));
            }
            if stop < start {
                return Err(fail("the range must not run backwards"));
            }
            if (stop - start) / step >= MAX_VALUES as f64 {
                return Err(fail(&format!("more than {MAX_VALUES} values")));
            }
            return Ok(SweepValues::Range { start, stop, step });
        }
        let values = trimmed
            .split(',')
            .map(number)
            .collect::<Result<Vec<_>, _>>()?;
        if values.len() > MAX_VALUES {
            return Err(fail(&format!("more than {MAX_VALUES} values")));
        }
        Ok(SweepValues::List(values))
    }

    /// The values, in order.
    pub fn expand(&self) -> Vec<f64> {
        match *self {
            SweepValues::List(ref values) => values.clone(),
            SweepValues::Range { start, stop, step } => {
                let count = ((stop - start) / step + 1e-9).floor() as usize + 1;
                (0..count).map(|i| tidy(start + step * i as f64)).collect()
            }
            SweepValues::LogRange { start, stop, count } => {
                let (a, b) = (start.ln(), stop.ln());
                (0..count)
                    .map(|i| tidy((a + (b - a) * i as f64 / (count - 1) as f64).exp()))
                    .collect()
            }
        }
    }
}

/// `v` rounded to 12 decimals, so that a computed grid point is the number
/// the user would type (`0.3`, not `0.30000000000000004`) in run names.
fn tidy(v: f64) -> f64 {
    (v * 1e12).round() / 1e12
}

/// Every numeric hyperparameter of `model` with its value, by field path.
pub fn numeric_parameters(model: &ModelSpec) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Object(variant)) = serde_json::to_value(model) {
        for fields in variant.values() {
            collect_numbers(fields, "", &mut out);
        }
    }
    out
}

fn collect_numbers(value: &serde_json::Value, path: &str, out: &mut Vec<(String, f64)>) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(v) = n.as_f64() {
                out.push((path.to_string(), v));
            }
        }
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect_numbers(child, &child_path, out);
            }
        }
        _ => {}
    }
}

/// `model` with the numeric hyperparameter at `parameter` set to `value`.
/// Whole-number fields only take whole numbers.
pub fn with_parameter(
    model: &ModelSpec,
    parameter: &str,
    value: f64,
) -> Result<ModelSpec, SweepError> {
    let unknown = || SweepError::UnknownParameter {
        parameter: parameter.to_string(),
        known: numeric_parameters(model)
            .into_iter()
            .map(|(p, _)| format!("`{p}`"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let bad = |message: String| SweepError::BadValue {
        parameter: parameter.to_string(),
        value,
        message,
    };
    let mut tree = serde_json::to_value(model).map_err(|e| bad(e.to_string()))?;
    let mut slot = tree
        .as_object_mut()
        .and_then(|variant| variant.values_mut().next())
        .ok_or_else(unknown)?;
    for key in parameter.split('.') {
        slot = slot.get_mut(key).ok_or_else(unknown)?;
    }
    let serde_json::Value::Number(current) = slot else {
        return Err(unknown());
    };
    *slot = if current.is_f64() {
        serde_json::json!(value)
    } else if value.fract() == 0.0 && value >= 0.0 {
        serde_json::json!(value as u64)
    } else {
        return Err(bad("this hyperparameter takes whole numbers".into()));
    };
    serde_json::from_value(tree).map_err(|e| bad(e.to_string()))
}

/// `experiment` with `parameter` set to `value`: a field path of its model,
/// or `seed`, which means the model's own seed (`seed` or `model.seed`, so a
/// k-CAE's network seed too) and, for a model without one, the protocol's
/// fold seed.
pub fn set_parameter(
    experiment: &Experiment,
    parameter: &str,
    value: f64,
) -> Result<Experiment, SweepError> {
    let mut updated = experiment.clone();
    if parameter == SEED {
        let known = numeric_parameters(&experiment.model);
        let path = ["seed", "model.seed"]
            .into_iter()
            .find(|p| known.iter().any(|(k, _)| k == p));
        match path {
            Some(path) => updated.model = with_parameter(&experiment.model, path, value)?,
            None if value.fract() == 0.0 && value >= 0.0 => {
                updated.protocol.seed = value as u64;
            }
            None => {
                return Err(SweepError::BadValue {
                    parameter: parameter.into(),
                    value,
                    message: "a seed is a whole number".into(),
                });
            }
        }
    } else {
        updated.model = with_parameter(&experiment.model, parameter, value)?;
    }
    Ok(updated)
}

/// The name of a sweep run: `base~a=1,b=2` (`base~parameter=value` for one).
pub fn run_name(base: &str, point: &[(String, f64)]) -> String {
    let values: Vec<String> = point.iter().map(|(p, v)| format!("{p}={v}")).collect();
    format!("{base}~{}", values.join(","))
}

/// `name` without its `seed=...` part: runs with the same key are replicates
/// of one configuration over seeds.
pub fn replicate_key(name: &str) -> String {
    let Some((base, point)) = name.split_once('~') else {
        return name.to_string();
    };
    let kept: Vec<&str> = point
        .split(',')
        .filter(|part| !part.starts_with("seed="))
        .collect();
    format!("{base}~{}", kept.join(","))
}

impl Session {
    /// Adds a sweep of experiment `base` as `spec` says (see
    /// [`SweepSpec::parse`]: `rank 1,2,4`, `a=0,1 b=2,3 seed=1,2`, `random
    /// 20 a=log 0.001..1`): one new experiment per point, unless one by that
    /// name exists already (its result is kept). The session is validated
    /// with the new experiments; `path` names it in errors. Returns the names
    /// of the sweep's runs.
    pub fn add_sweep(
        &mut self,
        base: &str,
        spec: &str,
        path: &Path,
    ) -> Result<Vec<String>, SweepError> {
        let template = self
            .experiments
            .iter()
            .find(|e| e.name == base)
            .cloned()
            .ok_or_else(|| SweepError::UnknownExperiment(base.to_string()))?;
        let spec = SweepSpec::parse(spec)?;
        let mut updated = self.clone();
        let mut runs = Vec::new();
        for point in spec.points()? {
            let name = run_name(base, &point);
            let mut experiment = template.clone();
            for (parameter, value) in &point {
                experiment = set_parameter(&experiment, parameter, *value)?;
            }
            if !updated.experiments.iter().any(|e| e.name == name) {
                updated.experiments.push(Experiment {
                    name: name.clone(),
                    result: None,
                    ..experiment
                });
            }
            if !runs.contains(&name) {
                runs.push(name);
            }
        }
        let mut dimensions = spec.dimensions.into_iter();
        let first = dimensions.next().ok_or_else(|| SweepError::Spec {
            text: String::new(),
            message: "no parameter given".into(),
        })?;
        updated.sweeps.push(Sweep {
            base: base.to_string(),
            parameter: first.parameter,
            values: first.values.trim().to_string(),
            more: dimensions.collect(),
            random: spec.random,
            runs: runs.clone(),
        });
        validate::check(&updated, path)?;
        *self = updated;
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::srrr::SrrrConfig;

    fn demo() -> Session {
        let text = include_str!("../../sessions/demo.ron");
        crate::session::parse(text, Path::new("demo.ron")).unwrap()
    }

    #[test]
    fn a_grid_sweep_adds_one_experiment_per_point_and_keeps_old_ones() {
        let mut session = demo();
        let path = Path::new("demo.ron");
        let runs = session
            .add_sweep("sbnn", "group_lasso=0.01,0.1 genes=10,25 seed=1,2", path)
            .unwrap();
        assert_eq!(runs.len(), 8);
        assert_eq!(runs[0], "sbnn~group_lasso=0.01,genes=10,seed=1");
        let run = session
            .experiments
            .iter()
            .find(|e| e.name == runs[7])
            .unwrap();
        let ModelSpec::Sbnn(config) = &run.model else {
            panic!("an sBNN")
        };
        assert_eq!(
            (config.group_lasso, config.genes, config.seed),
            (0.1, 25, 2)
        );
        let sweep = session.sweeps.last().unwrap();
        assert_eq!(sweep.more.len(), 2);
        assert_eq!(replicate_key(&runs[7]), "sbnn~group_lasso=0.1,genes=25");
        let again = session
            .add_sweep("sbnn", "group_lasso=0.01,0.1 genes=10,25 seed=1,2", path)
            .unwrap();
        assert_eq!(again, runs);
        assert_eq!(
            session.experiments.len(),
            demo().experiments.len() + 8,
            "no experiment twice"
        );
        let text = crate::session::to_ron(&session).unwrap();
        assert_eq!(crate::session::parse(&text, path).unwrap(), session);
    }

    #[test]
    fn a_seed_reaches_every_model_s_own_seed() {
        let session = demo();
        let srrr = &session.experiments[0];
        let seeded = set_parameter(srrr, SEED, 7.0).unwrap();
        assert_eq!(
            seeded.protocol.seed, 7,
            "sRRR has no seed: the folds get it"
        );
        let cae = Experiment {
            model: ModelSpec::Cae {
                model: Default::default(),
                analysis: Default::default(),
            },
            ..srrr.clone()
        };
        let ModelSpec::Cae { model, .. } = set_parameter(&cae, SEED, 9.0).unwrap().model else {
            panic!("a k-CAE")
        };
        assert_eq!(model.seed, 9);
    }

    #[test]
    fn values_parse_as_list_range_and_log_range() {
        let list = SweepValues::parse("1, 2,4").unwrap();
        assert_eq!(list.expand(), vec![1.0, 2.0, 4.0]);
        assert_eq!(
            SweepValues::parse("1..3").unwrap().expand(),
            vec![1.0, 2.0, 3.0]
        );
        assert_eq!(
            SweepValues::parse("0..1:0.5").unwrap().expand(),
            vec![0.0, 0.5, 1.0]
        );
        assert_eq!(
            SweepValues::parse("log 0.001..0.1:3").unwrap().expand(),
            vec![0.001, 0.01, 0.1]
        );
        let tenths: Vec<String> = SweepValues::parse("0.1..1:0.1")
            .unwrap()
            .expand()
            .iter()
            .map(f64::to_string)
            .collect();
        assert_eq!(
            tenths,
            [
                "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"
            ]
        );
        assert!(SweepValues::parse("1,x").is_err());
        assert!(SweepValues::parse("log 0..1:3").is_err());
        assert!(SweepValues::parse("3..1").is_err());
    }

    #[test]
    fn parameters_are_set_through_the_serialised_model() {
        let model = ModelSpec::Srrr(SrrrConfig::default());
        let names: Vec<_> = numeric_parameters(&model)
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert!(names.contains(&"rank".to_string()));
        let ModelSpec::Srrr(config) = with_parameter(&model, "rank", 4.0).unwrap() else {
            panic!("an sRRR model")
        };
        assert_eq!(config.rank, 4);
        let ModelSpec::Srrr(config) = with_parameter(&model, "alpha", 0.5).unwrap() else {
            panic!("an sRRR model")
        };
        assert_eq!(config.alpha, 0.5);
        assert!(with_parameter(&model, "rank", 1.5).is_err());
        assert!(with_parameter(&model, "nope", 1.0).is_err());
    }
}
