//! What a sweep runs: the points of a grid (every combination of every
//! dimension's values) or of a seeded random search (draws from a list, a
//! range or a log-range per dimension), and the typed form they come from
//! (`a=0,1,10 b=2,3,5 seed=1,2,3`, `random 20 a=log 0.001..1 b=2..8`).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{SweepError, SweepValues};

/// The most runs one sweep may create.
pub const MAX_RUNS: usize = 1000;

/// The parameter name that means "the model's seed" in every model (see
/// [`super::set_parameter`]); runs that differ only in it are replicates.
pub const SEED: &str = "seed";

/// One further dimension of a grid or random search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// Field path of the hyperparameter (or `seed`).
    pub parameter: String,
    /// Its values (grid) or distribution (random search), as written.
    pub values: String,
}

/// A random search: `draws` points drawn with `seed` instead of the grid.
/// The `seed` dimension, if any, is not drawn: every draw runs with each seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSearch {
    /// How many points to draw.
    pub draws: usize,
    /// Seed of the draws.
    #[serde(default)]
    pub seed: u64,
}

/// A sweep as typed: its dimensions, and the random search if it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSpec {
    /// The dimensions, first one first (at least one).
    pub dimensions: Vec<Dimension>,
    /// `Some` for a random search.
    pub random: Option<RandomSearch>,
}

impl SweepSpec {
    /// Reads `rank 1,2,4` (one parameter), `a=0,1,10 b=2,3,5 seed=1,2,3` (a
    /// grid) or `random 20 [rng=7] a=log 0.001..1 b=2..8` (a random search
    /// of 20 draws; an `rng=N` right after the count seeds the draws). A word
    /// without `=` continues the previous value (`a=log 0.01..1:3`).
    pub fn parse(text: &str) -> Result<SweepSpec, SweepError> {
        let fail = |message: String| SweepError::Spec {
            text: text.trim().to_string(),
            message,
        };
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let mut random = None;
        if words.first() == Some(&"random") {
            let draws = words
                .get(1)
                .and_then(|w| w.parse::<usize>().ok())
                .filter(|n| (1..=MAX_RUNS).contains(n))
                .ok_or_else(|| fail(format!("`random` needs a count of draws, 1 to {MAX_RUNS}")))?;
            words.drain(..2);
            let mut seed = 0;
            if let Some(value) = words.first().and_then(|w| w.strip_prefix("rng=")) {
                seed = value
                    .parse()
                    .map_err(|_| fail(format!("`rng={value}`: the seed must be a whole number")))?;
                words.remove(0);
            }
            random = Some(RandomSearch { draws, seed });
        }
        let mut dimensions: Vec<Dimension> = Vec::new();
        match words.first() {
            None => return Err(fail("no parameter given".into())),
            Some(first) if !first.contains('=') => {
                if random.is_some() || words.len() < 2 {
                    return Err(fail(
                        "write `PARAM VALUES` or `a=VALUES b=VALUES ...`".into(),
                    ));
                }
                dimensions.push(Dimension {
                    parameter: first.to_string(),
                    values: words[1..].join(" "),
                });
            }
            Some(_) => {
                for word in words {
                    match (word.split_once('='), dimensions.last_mut()) {
                        (Some((parameter, values)), _) => dimensions.push(Dimension {
                            parameter: parameter.to_string(),
                            values: values.to_string(),
                        }),
                        (None, Some(last)) => {
                            last.values.push(' ');
                            last.values.push_str(word);
                        }
                        (None, None) => unreachable!("the first word holds `=`"),
                    }
                }
            }
        }
        for (i, d) in dimensions.iter().enumerate() {
            if d.parameter.is_empty() || d.values.trim().is_empty() {
                return Err(fail(format!(
                    "`{}={}` needs a name and values",
                    d.parameter, d.values
                )));
            }
            if dimensions[..i].iter().any(|e| e.parameter == d.parameter) {
                return Err(fail(format!("`{}` is given twice", d.parameter)));
            }
        }
        Ok(SweepSpec { dimensions, random })
    }

    /// The points of the sweep: for each run, `(parameter, value)` in
    /// dimension order. A grid has every combination (the last dimension
    /// varies fastest); a random search `draws` points, each with every seed.
    pub fn points(&self) -> Result<Vec<Vec<(String, f64)>>, SweepError> {
        let mut axes: Vec<(String, Axis)> = Vec::new();
        for d in &self.dimensions {
            let axis = match self.random {
                Some(_) if d.parameter != SEED => Axis::Drawn(Distribution::parse(&d.values)?),
                _ => Axis::Listed(SweepValues::parse(&d.values)?.expand()),
            };
            axes.push((d.parameter.clone(), axis));
        }
        let listed = |axes: &[(String, Axis)]| -> Vec<Vec<(String, f64)>> {
            let mut points = vec![Vec::new()];
            for (name, axis) in axes {
                let Axis::Listed(values) = axis else { continue };
                points = points
                    .into_iter()
                    .flat_map(|p: Vec<(String, f64)>| {
                        values.iter().map(move |&v| {
                            let mut p = p.clone();
                            p.push((name.clone(), v));
                            p
                        })
                    })
                    .collect();
            }
            points
        };
        let points = match self.random {
            None => listed(&axes),
            Some(search) => {
                let mut rng = ChaCha8Rng::seed_from_u64(search.seed);
                let seeds = listed(&axes);
                let mut points = Vec::new();
                for _ in 0..search.draws {
                    let drawn: Vec<(String, f64)> = axes
                        .iter()
                        .filter_map(|(name, axis)| match axis {
                            Axis::Drawn(d) => Some((name.clone(), d.draw(&mut rng))),
                            Axis::Listed(_) => None,
                        })
                        .collect();
                    for seed in &seeds {
                        // Keep dimension order: drawn and listed values interleaved as typed.
                        let mut point = Vec::new();
                        for (name, _) in &axes {
                            let value = drawn
                                .iter()
                                .chain(seed)
                                .find(|(n, _)| n == name)
                                .map(|(_, v)| *v)
                                .unwrap_or_default();
                            point.push((name.clone(), value));
                        }
                        points.push(point);
                    }
                }
                points
            }
        };
        if points.len() > MAX_RUNS {
            return Err(SweepError::Spec {
                text: self.dimensions_text(),
                message: format!("{} runs; at most {MAX_RUNS}", points.len()),
            });
        }
        Ok(points)
    }

    fn dimensions_text(&self) -> String {
        self.dimensions
            .iter()
            .map(|d| format!("{}={}", d.parameter, d.values))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

enum Axis {
    Listed(Vec<f64>),
    Drawn(Distribution),
}

/// What a random search draws one dimension from.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// One of these values, each equally likely (`1,2,4`, `0..1:0.25`,
    /// `log 0.001..0.1:3`).
    Choice(Vec<f64>),
    /// A whole number from `lo` to `hi`, both included (`2..8`).
    Integers(i64, i64),
    /// Uniform on `[lo, hi]` (`0.0..0.5`: an end written with a `.` or `e`).
    Uniform(f64, f64),
    /// Log-uniform on `[lo, hi]`, both positive (`log 0.001..1`).
    LogUniform(f64, f64),
}

impl Distribution {
    /// Reads a distribution; see the variants for the forms.
    pub fn parse(text: &str) -> Result<Distribution, SweepError> {
        let trimmed = text.trim();
        let range = |body: &str| -> Option<(f64, f64)> {
            let (lo, hi) = body.split_once("..")?;
            let (lo, hi) = (
                lo.trim().parse::<f64>().ok()?,
                hi.trim().parse::<f64>().ok()?,
            );
            (lo.is_finite() && hi.is_finite() && lo <= hi).then_some((lo, hi))
        };
        let fail = |message: &str| SweepError::Values {
            text: trimmed.to_string(),
            message: message.to_string(),
        };
        if trimmed.contains(':') || trimmed.contains(',') || !trimmed.contains("..") {
            return Ok(Distribution::Choice(SweepValues::parse(trimmed)?.expand()));
        }
        if let Some(body) = trimmed.strip_prefix("log") {
            let (lo, hi) =
                range(body).ok_or_else(|| fail("a log-range needs `log lo..hi`, lo ≤ hi"))?;
            if lo <= 0.0 {
                return Err(fail("log-range ends must be positive"));
            }
            return Ok(Distribution::LogUniform(lo, hi));
        }
        let (lo, hi) = range(trimmed).ok_or_else(|| fail("a range needs `lo..hi`, lo ≤ hi"))?;
        let whole = trimmed
            .split("..")
            .all(|end| !end.contains(['.', 'e', 'E'].as_slice()));
        if whole && lo.fract() == 0.0 && hi.fract() == 0.0 {
            return Ok(Distribution::Integers(lo as i64, hi as i64));
        }
        Ok(Distribution::Uniform(lo, hi))
    }

    /// One draw; continuous draws keep 3 significant digits, so run names stay short.
    pub fn draw(&self, rng: &mut impl Rng) -> f64 {
        match *self {
            Distribution::Choice(ref values) => values[rng.random_range(0..values.len())],
            Distribution::Integers(lo, hi) => rng.random_range(lo..=hi) as f64,
            Distribution::Uniform(lo, hi) => significant(lo + (hi - lo) * rng.random::<f64>()),
            Distribution::LogUniform(lo, hi) => {
                let (a, b) = (lo.ln(), hi.ln());
                significant((a + (b - a) * rng.random::<f64>()).exp())
            }
        }
    }

    /// True for a log-uniform distribution (plots use a log axis).
    pub fn is_log(&self) -> bool {
        matches!(self, Distribution::LogUniform(..))
    }
}

/// `value` rounded to 3 significant digits.
fn significant(value: f64) -> f64 {
    format!("{value:.2e}").parse().unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(points: &[Vec<(String, f64)>]) -> Vec<String> {
        points
            .iter()
            .map(|p| {
                p.iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn a_grid_has_every_combination_once() {
        let spec = SweepSpec::parse("a=0,1,10 b=2..4 seed=1,2,3").unwrap();
        assert_eq!(spec.random, None);
        let points = spec.points().unwrap();
        assert_eq!(points.len(), 27);
        let mut unique = names(&points);
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 27);
        assert_eq!(names(&points[..2]), ["a=0,b=2,seed=1", "a=0,b=2,seed=2"]);
    }

    #[test]
    fn the_old_one_parameter_form_still_reads() {
        let spec = SweepSpec::parse("alpha log 0.001..0.1:3").unwrap();
        assert_eq!(
            spec.dimensions,
            [Dimension {
                parameter: "alpha".into(),
                values: "log 0.001..0.1:3".into()
            }]
        );
        let spec = SweepSpec::parse("alpha=log 0.001..0.1:3 rank=1,2").unwrap();
        assert_eq!(spec.dimensions[0].values, "log 0.001..0.1:3");
        assert_eq!(spec.points().unwrap().len(), 6);
    }

    #[test]
    fn random_search_is_seeded_stays_in_range_and_crosses_seeds() {
        let spec = SweepSpec::parse("random 20 rng=5 a=log 0.001..1 b=2..8 seed=1,2").unwrap();
        assert_eq!(spec.random, Some(RandomSearch { draws: 20, seed: 5 }));
        let points = spec.points().unwrap();
        assert_eq!(points.len(), 40);
        assert_eq!(points, spec.points().unwrap(), "same seed, same draws");
        for pair in points.chunks(2) {
            assert_eq!(pair[0][0], pair[1][0], "both seeds get the same draw");
            assert_eq!((pair[0][2].1, pair[1][2].1), (1.0, 2.0));
        }
        for point in &points {
            assert!((0.001..=1.0).contains(&point[0].1), "{point:?}");
            assert!((2.0..=8.0).contains(&point[1].1) && point[1].1.fract() == 0.0);
        }
        let other = SweepSpec::parse("random 20 rng=6 a=log 0.001..1 b=2..8 seed=1,2").unwrap();
        assert_ne!(points, other.points().unwrap());
    }

    #[test]
    fn distributions_read_as_written() {
        assert_eq!(
            Distribution::parse("2..8").unwrap(),
            Distribution::Integers(2, 8)
        );
        assert_eq!(
            Distribution::parse("0.0..0.5").unwrap(),
            Distribution::Uniform(0.0, 0.5)
        );
        assert!(Distribution::parse("log 0.01..1").unwrap().is_log());
        assert_eq!(
            Distribution::parse("1,2,4").unwrap(),
            Distribution::Choice(vec![1.0, 2.0, 4.0])
        );
        assert!(Distribution::parse("log 0..1").is_err());
        assert!(Distribution::parse("3..1").is_err());
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        for (text, part) in [
            ("", "no parameter"),
            ("random a=1,2", "count of draws"),
            ("a=1,2 a=3", "given twice"),
            ("rank", "PARAM VALUES"),
            ("a=1..99 b=1..99", "at most"),
        ] {
            let error = SweepSpec::parse(text)
                .and_then(|s| s.points().map(|_| s))
                .unwrap_err()
                .to_string();
            assert!(error.contains(part), "{text}: {error}");
        }
    }
}
