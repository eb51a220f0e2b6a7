//! Plot data prepared from a result, shared by the terminal views and the
//! figure export so that both show the same thing.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::runner::PreparedDataset;
use crate::session::{ExperimentResult, Latent, ResultDetail};

/// Distinct colours for label groups, in order of use (RGB).
pub const PALETTE: [(u8, u8, u8); 12] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (188, 189, 34),
    (23, 190, 207),
    (127, 127, 127),
    (255, 187, 120),
    (152, 223, 138),
];

/// One label's points.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The label (`(none)` for cells without one).
    pub label: String,
    /// Palette index.
    pub color: usize,
    /// `(x, y)` of each cell.
    pub points: Vec<(f64, f64)>,
}

/// A latent scatter plot ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    /// The latent space's name.
    pub name: String,
    /// Axis titles.
    pub axes: (String, String),
    /// Groups, largest first.
    pub groups: Vec<Group>,
    /// `[min, max]` of x, zoomed.
    pub x_bounds: [f64; 2],
    /// `[min, max]` of y, zoomed.
    pub y_bounds: [f64; 2],
    /// Cells drawn over the others with their own marker: the new cells an
    /// `Apply` experiment placed in its model's training latent space.
    pub applied: Option<Vec<(f64, f64)>>,
}

/// The latent spaces of a result with their names: `latent` first (named
/// `z`), then the extra named ones.
pub fn latents(result: &ExperimentResult) -> Vec<(String, &Latent)> {
    result
        .latent
        .iter()
        .map(|l| ("z".to_string(), l))
        .chain(result.latents.iter().map(|n| (n.name.clone(), &n.latent)))
        .collect()
}

/// The scatter of latent space `index` of `result`, dims `dims`, coloured by
/// `column` of `dataset`'s metadata, zoomed by `zoom` around the centre.
pub fn scatter(
    result: &ExperimentResult,
    index: usize,
    dims: (usize, usize),
    dataset: Option<&PreparedDataset>,
    column: Option<&str>,
    zoom: f64,
) -> Option<Scatter> {
    let all = latents(result);
    let (name, latent) = all.get(index).or(all.first())?;
    if latent.dims == 0 || latent.cells.is_empty() {
        return None;
    }
    let (dx, dy) = if latent.dims == 1 {
        (0, 0)
    } else {
        (dims.0.min(latent.dims - 1), dims.1.min(latent.dims - 1))
    };
    let labels = match (dataset, column) {
        (Some(data), Some(column)) => data.data.labels(column, &latent.cells),
        _ => None,
    };
    let mut by_label: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (cell, row) in latent.values.chunks(latent.dims).enumerate() {
        let x = f64::from(row[dx]);
        let y = if latent.dims == 1 {
            0.0
        } else {
            f64::from(row[dy])
        };
        if !x.is_finite() || !y.is_finite() {
            continue;
        }
        let label = labels
            .as_ref()
            .and_then(|l| l.get(cell).cloned().flatten())
            .unwrap_or_else(|| if labels.is_some() { "(none)" } else { "cells" }.to_string());
        by_label.entry(label).or_default().push((x, y));
    }
    let groups: Vec<Group> = by_label
        .into_iter()
        .enumerate()
        .map(|(i, (label, points))| Group {
            label,
            color: i,
            points,
        })
        .collect();
    let points = groups.iter().flat_map(|g| g.points.iter());
    let x_bounds = zoomed(bounds(points.clone().map(|p| p.0)), zoom);
    let y_bounds = zoomed(bounds(points.map(|p| p.1)), zoom);
    Some(Scatter {
        name: name.clone(),
        axes: (format!("{name}[{dx}]"), format!("{name}[{dy}]")),
        groups,
        x_bounds,
        y_bounds,
        applied: None,
    })
}

/// The scatter of an `Apply` experiment's result `applied`: the training
/// latent space of the model it applied (`training`, the `model_from`
/// experiment's result, space `training_latent` of its detail) coloured
/// like [`scatter`], with the applied cells' codes as the `applied` overlay
/// when `show_applied`. Without the training result, the applied cells alone.
pub fn applied_scatter(
    applied: &ExperimentResult,
    training: Option<&ExperimentResult>,
    show_applied: bool,
    dims: (usize, usize),
    dataset: Option<&PreparedDataset>,
    column: Option<&str>,
    zoom: f64,
) -> Option<Scatter> {
    let ResultDetail::Apply(detail) = &applied.detail else {
        return scatter(applied, 0, dims, dataset, column, zoom);
    };
    let space = training.and_then(|t| {
        latents(t)
            .iter()
            .position(|(name, _)| *name == detail.training_latent)
            .map(|index| (t, index))
    });
    let Some((training, index)) = space else {
        return scatter(applied, 0, dims, None, None, zoom);
    };
    let mut plot = scatter(training, index, dims, dataset, column, 1.0)?;
    let latent = applied.latent.as_ref()?;
    if show_applied && latent.dims > 0 {
        let (dx, dy) = (dims.0.min(latent.dims - 1), dims.1.min(latent.dims - 1));
        let points: Vec<(f64, f64)> = latent
            .values
            .chunks(latent.dims)
            .map(|row| {
                let y = if latent.dims == 1 { 0.0 } else { row[dy] };
                (f64::from(row[dx]), f64::from(y))
            })
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        plot.applied = Some(points);
    }
    let all = plot
        .groups
        .iter()
        .flat_map(|g| g.points.iter())
        .chain(plot.applied.iter().flatten());
    plot.x_bounds = zoomed(bounds(all.clone().map(|p| p.0)), zoom);
    plot.y_bounds = zoomed(bounds(all.map(|p| p.1)), zoom);
    Some(plot)
}

/// Most points the workbench's braille latent plot draws; beyond this a
/// subsample is drawn (see [`subsample`]) so that 10^5 cells stay responsive.
pub const MAX_DRAWN: usize = 20_000;

/// A copy of `scatter` with about `limit` points: each label keeps its share
/// of them (rounded down, at least one point so no label disappears), drawn
/// without replacement by a generator seeded with `seed`, so the same plot
/// shows the same points. Bounds stay those of all points. A scatter with at
/// most `limit` points is returned whole.
pub fn subsample(scatter: &Scatter, limit: usize, seed: u64) -> Scatter {
    let total: usize = scatter.groups.iter().map(|g| g.points.len()).sum();
    if total <= limit {
        return scatter.clone();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = scatter
        .groups
        .iter()
        .map(|group| {
            let n = group.points.len();
            let keep = (n * limit / total).max(1).min(n);
            let mut chosen = sample(&mut rng, n, keep).into_vec();
            chosen.sort_unstable();
            Group {
                label: group.label.clone(),
                color: group.color,
                points: chosen.into_iter().map(|i| group.points[i]).collect(),
            }
        })
        .collect();
    Scatter {
        groups,
        ..scatter.clone()
    }
}

/// Number of points of a scatter, all groups together.
pub fn point_count(scatter: &Scatter) -> usize {
    scatter.groups.iter().map(|g| g.points.len()).sum()
}

/// `[min, max]` of the values with 5% padding; `[-1, 1]` when there are none.
pub fn bounds(values: impl Iterator<Item = f64>) -> [f64; 2] {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return [-1.0, 1.0];
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    [lo - pad, hi + pad]
}

fn zoomed([lo, hi]: [f64; 2], zoom: f64) -> [f64; 2] {
    let centre = (lo + hi) / 2.0;
    let half = (hi - lo) / 2.0 / zoom.max(1e-6);
    [centre - half, centre + half]
}

/// Curves to plot: a result's stored curves, or the live ones of a run
/// (see [`live_curves`]). Each is `(name, points)`.
pub fn curves(
    result: Option<&ExperimentResult>,
    live: Option<&BTreeMap<String, Vec<(f64, f64)>>>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    if let Some(live) = live.filter(|l| !l.is_empty()) {
        return live_curves(live);
    }
    result
        .map(|r| {
            r.curves
                .iter()
                .map(|c| {
                    let points = c
                        .values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| v.is_finite())
                        .map(|(i, &v)| (i as f64, v))
                        .collect();
                    (c.name.clone(), points)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A named curve: `(name, points)`.
pub type NamedCurve = (String, Vec<(f64, f64)>);

/// Curves split by scale: losses (and anything unbounded) in the first
/// panel, scores in `[-1, 1]`-ish units (R², accuracy, ARI, AMI,
/// correlations) in the second, so neither flattens the other. Empty panels
/// are left out.
pub fn curve_panels(curves: Vec<NamedCurve>) -> Vec<(&'static str, Vec<NamedCurve>)> {
    let is_score = |name: &str| {
        let name = name.to_lowercase();
        ["r2", "acc", "ari", "ami", "corr"]
            .iter()
            .any(|part| name.contains(part))
    };
    let (scores, losses): (Vec<_>, Vec<_>) = curves.into_iter().partition(|(n, _)| is_score(n));
    [("loss", losses), ("score", scores)]
        .into_iter()
        .filter(|(_, c)| !c.is_empty())
        .collect()
}

/// One curve per metric from the values a run reported so far (by metric
/// name, whatever fold reported them): every metric is averaged over all its
/// reports at the same step, so the pane shows the mean over the folds
/// reported so far, like the curves stored with the finished result.
/// Non-finite values are left out.
pub fn live_curves(live: &BTreeMap<String, Vec<(f64, f64)>>) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut sums: BTreeMap<&str, BTreeMap<i64, (f64, f64, usize)>> = BTreeMap::new();
    for (metric, points) in live {
        let steps = sums.entry(metric).or_default();
        for &(step, value) in points
            .iter()
            .filter(|(s, v)| s.is_finite() && v.is_finite())
        {
            let sum = steps.entry(step.round() as i64).or_insert((step, 0.0, 0));
            sum.1 += value;
            sum.2 += 1;
        }
    }
    sums.into_iter()
        .filter(|(_, steps)| !steps.is_empty())
        .map(|(metric, steps)| {
            let points = steps
                .into_values()
                .map(|(step, total, n)| (step, total / n as f64))
                .collect();
            (metric.to_string(), points)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big_scatter() -> Scatter {
        let group = |label: &str, color: usize, n: usize| Group {
            label: label.into(),
            color,
            points: (0..n).map(|i| (i as f64, (color * n + i) as f64)).collect(),
        };
        Scatter {
            name: "z".into(),
            axes: ("z[0]".into(), "z[1]".into()),
            groups: vec![
                group("A", 0, 70_000),
                group("B", 1, 29_995),
                group("C", 2, 5),
            ],
            x_bounds: [0.0, 70_000.0],
            y_bounds: [0.0, 140_000.0],
            applied: None,
        }
    }

    #[test]
    fn a_subsample_keeps_each_labels_share_and_the_bounds() {
        let all = big_scatter();
        let drawn = subsample(&all, MAX_DRAWN, 1);
        let sizes: Vec<usize> = drawn.groups.iter().map(|g| g.points.len()).collect();
        // 70% and 30% of 20,000 (rounded down), and the rare label keeps a point.
        assert_eq!(sizes, [14_000, 5_999, 1]);
        assert!(point_count(&drawn) <= MAX_DRAWN + drawn.groups.len());
        assert_eq!(
            (drawn.x_bounds, drawn.y_bounds),
            (all.x_bounds, all.y_bounds)
        );
        for (kept, whole) in drawn.groups.iter().zip(&all.groups) {
            assert!(kept.points.iter().all(|p| whole.points.contains(p)));
            assert!(
                kept.points.windows(2).all(|w| w[0].0 < w[1].0),
                "distinct, in order"
            );
        }
        assert_eq!(subsample(&all, MAX_DRAWN, 1), drawn, "seeded");
        assert_ne!(subsample(&all, MAX_DRAWN, 2), drawn);
        let small = subsample(&drawn, MAX_DRAWN * 2, 1);
        assert_eq!(small, drawn, "small scatters are drawn whole");
    }
}
