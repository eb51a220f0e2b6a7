//! Hyperparameter sweeps: one experiment's model run over a grid of values of
//! one hyperparameter.
//!
//! A sweep is kept in the session with the names of the experiments it
//! created, one per value; each holds its own result, so a sweep interrupted
//! by quitting resumes by running the ones without a result. Hyperparameters
//! are addressed generically by their field path in the model's serialised
//! form (`rank`, `alpha`, `encoder.width`), so sweeps work for every model.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Experiment, ModelSpec, Session, SessionError, validate};

/// A sweep over one hyperparameter of one experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    /// The experiment whose configuration the runs copy.
    pub base: String,
    /// Field path of the hyperparameter in the model (e.g. `rank`).
    pub parameter: String,
    /// The values as the user wrote them (see [`SweepValues::parse`]).
    pub values: String,
    /// The experiments created, one per value, in value order.
    pub runs: Vec<String>,
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
                (0..count).map(|i| start + step * i as f64).collect()
            }
            SweepValues::LogRange { start, stop, count } => {
                let (a, b) = (start.ln(), stop.ln());
                (0..count)
                    .map(|i| (a + (b - a) * i as f64 / (count - 1) as f64).exp())
                    .map(|v| (v * 1e12).round() / 1e12)
                    .collect()
            }
        }
    }
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

/// The name of a sweep run: `base~parameter=value`.
pub fn run_name(base: &str, parameter: &str, value: f64) -> String {
    format!("{base}~{parameter}={value}")
}

impl Session {
    /// Adds a sweep of `parameter` over `values` (as [`SweepValues::parse`]
    /// reads them) to experiment `base`: one new experiment per value, unless
    /// one by that name exists already (its result is kept). The session is
    /// validated with the new experiments; `path` names it in errors. Returns
    /// the names of the sweep's runs.
    pub fn add_sweep(
        &mut self,
        base: &str,
        parameter: &str,
        values: &str,
        path: &Path,
    ) -> Result<Vec<String>, SweepError> {
        let template = self
            .experiments
            .iter()
            .find(|e| e.name == base)
            .cloned()
            .ok_or_else(|| SweepError::UnknownExperiment(base.to_string()))?;
        let mut updated = self.clone();
        let mut runs = Vec::new();
        for value in SweepValues::parse(values)?.expand() {
            let name = run_name(base, parameter, value);
            let model = with_parameter(&template.model, parameter, value)?;
            if !updated.experiments.iter().any(|e| e.name == name) {
                updated.experiments.push(Experiment {
                    name: name.clone(),
                    model,
                    result: None,
                    ..template.clone()
                });
            }
            runs.push(name);
        }
        updated.sweeps.push(Sweep {
            base: base.to_string(),
            parameter: parameter.to_string(),
            values: values.trim().to_string(),
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
