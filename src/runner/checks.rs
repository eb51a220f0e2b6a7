//! Checks a model's outcome before it becomes a result: a run whose numbers
//! cannot be believed fails with the reason instead of being stored.
//!
//! Every metric must be finite or NaN (NaN marks a score that is undefined for
//! these data, e.g. a classifier that could not be fitted on a fold), the
//! method's headline metrics must be finite, every statistic must lie in its
//! range (within rounding), relative prediction errors must not exceed ten
//! times the error of predicting zeros, and a training loss must not end ten
//! times above where it started.

use std::collections::BTreeMap;

use crate::models::Headline;
use crate::session::Curve;

/// Rounding allowed beyond a statistic's bound.
const ROUNDING: f64 = 1e-9;

/// A relative prediction error above this is a diverged model, not a poor one
/// (predicting zeros scores 1).
const DIVERGED_ERROR: f64 = 10.0;

/// How much a training loss may end above its first value.
const EXPLODED_LOSS: f64 = 10.0;

/// The hint given with every sign of divergence.
const DIVERGED_HINT: &str =
    "the training diverged; a smaller learning rate (or fewer steps) usually helps";

/// The first reason to reject an outcome with these `metrics` and `curves`.
pub(super) fn check_outcome(
    metrics: &BTreeMap<String, f64>,
    curves: &[Curve],
    headline: &[Headline],
) -> Result<(), String> {
    for (name, &value) in metrics {
        if value.is_infinite() {
            return Err(format!("`{name}` is {value}; {DIVERGED_HINT}"));
        }
        if let Some((low, high)) = range(name)
            && !value.is_nan()
            && !(low - ROUNDING..=high + ROUNDING).contains(&value)
        {
            return Err(format!(
                "`{name}` = {value} lies outside its range [{low}, {high}]; the data are too few or degenerate for this model"
            ));
        }
        if is_relative_error(name) && value > DIVERGED_ERROR {
            return Err(format!(
                "`{name}` = {value:.4e}, more than {DIVERGED_ERROR} times the error of predicting zeros; {DIVERGED_HINT}"
            ));
        }
    }
    for metric in headline
        .iter()
        .flat_map(|h| std::iter::once(h.metric).chain(h.sd))
    {
        if metrics.get(metric).is_some_and(|v| v.is_nan()) {
            return Err(format!(
                "`{metric}` is undefined (NaN): the data are too few or degenerate for this model"
            ));
        }
    }
    for curve in curves.iter().filter(|c| c.name == "loss") {
        let finite: Vec<f64> = curve
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        if let (Some(&first), Some(&last)) = (finite.first(), finite.last())
            && first > 0.0
            && last > EXPLODED_LOSS * first
        {
            return Err(format!(
                "the training loss rose from {first:.4e} to {last:.4e}; {DIVERGED_HINT}"
            ));
        }
    }
    Ok(())
}

/// The range of the statistic called `name`, where it has one.
fn range(name: &str) -> Option<(f64, f64)> {
    if name.ends_with("_sd") {
        return Some((0.0, f64::INFINITY));
    }
    if name.starts_with("canonical_correlation")
        || name.contains("acc")
        || name == "agent_agreement"
        || name == "mean_confidence"
    {
        Some((0.0, 1.0))
    } else if name.starts_with("ari")
        || name.starts_with("ami")
        || name.starts_with("consensus_ari")
    {
        Some((-1.0, 1.0))
    } else if name.contains("r2") {
        Some((f64::NEG_INFINITY, 1.0))
    } else if is_relative_error(name) {
        Some((0.0, f64::INFINITY))
    } else {
        None
    }
}

/// Whether `name` is a relative prediction error `‖x − x̂‖² / ‖x‖²`.
fn is_relative_error(name: &str) -> bool {
    (name.starts_with("recon_") || name.starts_with("cross_")) && !name.ends_with("_sd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    const HEADLINE: &[Headline] = &[Headline::with_sd("R²", "cv_r2_mean", "cv_r2_sd")];

    #[test]
    fn plausible_outcomes_pass() {
        let ok = metrics(&[
            ("cv_r2_mean", -0.2),
            ("cv_r2_sd", 0.1),
            ("canonical_correlation_1", 1.0 + 1e-12),
            ("qda_acc_e_type", f64::NAN),
            ("recon_e", 1.4),
            ("seconds", 12.0),
        ]);
        let curve = Curve {
            name: "loss".into(),
            values: vec![2.0, 1.0, 0.5],
        };
        assert_eq!(check_outcome(&ok, &[curve], HEADLINE), Ok(()));
    }

    #[test]
    fn impossible_statistics_and_divergence_are_rejected_with_the_reason() {
        let reject = |pairs: &[(&str, f64)], curves: &[Curve]| {
            check_outcome(&metrics(pairs), curves, HEADLINE).unwrap_err()
        };
        let message = reject(&[("canonical_correlation_2", 1.0000001)], &[]);
        assert!(message.contains("canonical_correlation_2"), "{message}");
        let message = reject(&[("recon_e", 5470.0)], &[]);
        assert!(
            message.contains("recon_e") && message.contains("learning rate"),
            "{message}"
        );
        let message = reject(&[("cv_r2_mean", f64::NAN)], &[]);
        assert!(message.contains("undefined"), "{message}");
        let message = reject(&[("loss", f64::INFINITY)], &[]);
        assert!(message.contains("learning rate"), "{message}");
        let rising = Curve {
            name: "loss".into(),
            values: vec![1.0, 3.0, 40.0],
        };
        let message = reject(&[], &[rising]);
        assert!(message.contains("rose"), "{message}");
    }
}
