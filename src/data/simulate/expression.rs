//! Gene expression ground truth and negative-binomial counts.
//!
//! Every biological gene has a log-normal baseline with a small per-type
//! jitter. Family markers are raised by `marker_fold_change` in all types of
//! their family, type markers in their type only; both start from a low
//! baseline, so they are specific. State genes scale with the cell's state by
//! up to `state_fold_change`. A cell's expected count of gene `g` is its
//! library size times the normalised profile; the count is Gamma-Poisson
//! (negative binomial, variance `mu + phi mu^2`). Spike-ins are technical: a
//! fixed amount per gene times a per-cell capture efficiency, Poisson noise.

use ndarray::Array2;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Normal, Poisson, StandardNormal};

use super::{SimulateError, SimulatedCell, SimulationConfig};
use crate::data::FeatureTable;

/// Standard deviation of the natural-log baseline expression of ordinary genes.
const BASELINE_SD: f64 = 1.5;
/// Mean and standard deviation of the natural-log baseline of marker genes
/// where they are not expressed (low, so markers are specific).
const MARKER_BASELINE: (f64, f64) = (-1.0, 0.5);
/// Standard deviation of the per-type random shift of every log baseline.
const TYPE_JITTER_SD: f64 = 0.2;
/// Expected spike-in counts, per spike-in gene, as a fraction of the median
/// library size (three spike-ins make about 0.6 %, as in real Smart-seq data).
const SPIKE_IN_SHARE: f64 = 0.002;
/// Standard deviation of the natural log of a cell's spike-in capture efficiency.
const CAPTURE_SD: f64 = 0.3;

/// A gene whose expression follows the within-type state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateGene {
    /// Gene index (column of the expression table).
    pub gene: usize,
    /// Natural-log fold change from state 0 to state 1 (negative: down with state).
    pub log_fold: f64,
}

/// What the expression of every type and cell is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionTruth {
    /// Gene names: biological genes first, spike-ins last.
    pub genes: Vec<String>,
    /// Indices of the spike-in genes.
    pub spike_ins: Vec<usize>,
    /// Marker gene indices of each family (up in all its types).
    pub family_markers: Vec<Vec<usize>>,
    /// Marker gene indices of each type (up in that type only).
    pub type_markers: Vec<Vec<usize>>,
    /// Genes modulated by the continuous state.
    pub state_genes: Vec<StateGene>,
    /// `log_profile[[t, g]]`: unnormalised natural-log expression of biological
    /// gene `g` in type `t` at state 0.
    pub log_profile: Array2<f64>,
    /// Expected count of each spike-in in a cell of capture efficiency 1.
    pub spike_in_means: Vec<f64>,
}

/// Draws the expression ground truth for `types` (each with its family index).
pub fn build_expression_truth(
    config: &SimulationConfig,
    type_families: &[usize],
    rng: &mut ChaCha8Rng,
) -> Result<ExpressionTruth, SimulateError> {
    let biological = config.biological_genes();
    let width = biological.to_string().len().max(3);
    let mut genes: Vec<String> = (1..=biological)
        .map(|g| format!("Gene{g:0width$}"))
        .collect();
    genes.extend((0..config.spike_ins).map(spike_in_name));
    let spike_ins: Vec<usize> = (biological..config.genes).collect();

    let mut shuffled: Vec<usize> = (0..biological).collect();
    shuffled.shuffle(rng);
    let mut pool = shuffled.into_iter();
    let mut take = |n: usize| {
        let mut chosen: Vec<usize> = pool.by_ref().take(n).collect();
        chosen.sort_unstable();
        chosen
    };
    let family_markers: Vec<Vec<usize>> = (0..config.families)
        .map(|_| take(config.family_markers))
        .collect();
    let type_markers: Vec<Vec<usize>> = type_families
        .iter()
        .map(|_| take(config.type_markers))
        .collect();
    let max_log_fold = config.state_fold_change.ln();
    let state_genes = take(config.state_genes)
        .into_iter()
        .map(|gene| {
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            StateGene {
                gene,
                log_fold: sign * max_log_fold * rng.random_range(0.5..=1.0),
            }
        })
        .collect();

    let normal = |mean: f64, sd: f64| {
        Normal::new(mean, sd).map_err(|e| SimulateError::Numeric(e.to_string()))
    };
    let ordinary = normal(0.0, BASELINE_SD)?;
    let low = normal(MARKER_BASELINE.0, MARKER_BASELINE.1)?;
    let jitter = normal(0.0, TYPE_JITTER_SD)?;
    let is_marker = {
        let mut flags = vec![false; biological];
        for &g in family_markers.iter().chain(&type_markers).flatten() {
            flags[g] = true;
        }
        flags
    };
    let baseline: Vec<f64> = is_marker
        .iter()
        .map(|&marker| {
            if marker {
                low.sample(rng)
            } else {
                ordinary.sample(rng)
            }
        })
        .collect();
    let marker_log_fold = config.marker_fold_change.ln();
    let mut log_profile = Array2::zeros((type_families.len(), biological));
    for (t, mut row) in log_profile.rows_mut().into_iter().enumerate() {
        for (value, base) in row.iter_mut().zip(&baseline) {
            *value = base + jitter.sample(rng);
        }
        let family_genes = type_families
            .get(t)
            .and_then(|&f| family_markers.get(f))
            .into_iter()
            .flatten();
        for &g in family_genes.chain(type_markers.get(t).into_iter().flatten()) {
            row[g] += marker_log_fold;
        }
    }
    let spike_in_means = (0..config.spike_ins)
        .map(|_| config.library_size * SPIKE_IN_SHARE * rng.random_range(0.5..1.5))
        .collect();
    Ok(ExpressionTruth {
        genes,
        spike_ins,
        family_markers,
        type_markers,
        state_genes,
        log_profile,
        spike_in_means,
    })
}

/// ERCC-style names; the first three are those found in the M1 Patch-seq data.
fn spike_in_name(i: usize) -> String {
    const KNOWN: [usize; 3] = [9, 108, 136];
    let number = KNOWN.get(i).copied().unwrap_or(171 + i);
    format!("ERCC-{number:05}")
}

/// Draws the counts of every cell that has expression, in cell order.
pub fn draw_counts(
    config: &SimulationConfig,
    truth: &ExpressionTruth,
    cells: &[SimulatedCell],
    rng: &mut ChaCha8Rng,
) -> Result<FeatureTable, SimulateError> {
    let measured: Vec<&SimulatedCell> = cells.iter().filter(|c| c.has_t).collect();
    let biological = truth.log_profile.ncols();
    let mut values = Array2::zeros((measured.len(), truth.genes.len()));
    let mut log_mean = vec![0.0; biological];
    for (mut row, cell) in values.rows_mut().into_iter().zip(&measured) {
        let profile = truth.log_profile.row(cell.cell_type);
        log_mean
            .iter_mut()
            .zip(profile.iter())
            .for_each(|(m, &p)| *m = p);
        for state_gene in &truth.state_genes {
            log_mean[state_gene.gene] += state_gene.log_fold * cell.state;
        }
        let peak = log_mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = log_mean.iter().map(|m| (m - peak).exp()).sum();
        for (g, m) in log_mean.iter().enumerate() {
            let mean = cell.library_size * (m - peak).exp() / total;
            row[g] = negative_binomial(mean, config.dispersion, rng)?;
        }
        let capture_z: f64 = StandardNormal.sample(rng);
        let capture = (CAPTURE_SD * capture_z).exp();
        for (&g, &mean) in truth.spike_ins.iter().zip(&truth.spike_in_means) {
            row[g] = negative_binomial(mean * capture, 0.0, rng)?;
        }
    }
    Ok(FeatureTable {
        cells: measured.iter().map(|c| c.cell_id.clone()).collect(),
        features: truth.genes.clone(),
        values,
    })
}

/// One Gamma-Poisson draw with the given mean and dispersion (0: Poisson).
fn negative_binomial(
    mean: f64,
    dispersion: f64,
    rng: &mut ChaCha8Rng,
) -> Result<f64, SimulateError> {
    let numeric =
        |message: String| SimulateError::Numeric(format!("count with mean {mean}: {message}"));
    if mean <= 0.0 {
        // A profile share can underflow to zero; such a gene is simply not detected.
        return Ok(0.0);
    }
    let rate = if dispersion > 0.0 {
        Gamma::new(1.0 / dispersion, mean * dispersion)
            .map_err(|e| numeric(e.to_string()))?
            .sample(rng)
    } else {
        mean
    };
    if !rate.is_finite() {
        return Err(numeric("the Poisson rate is not finite".into()));
    }
    if rate <= 0.0 {
        return Ok(0.0);
    }
    Ok(Poisson::new(rate)
        .map_err(|e| numeric(e.to_string()))?
        .sample(rng))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn negative_binomial_matches_its_moments() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mean, phi) = (20.0, 0.5);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| negative_binomial(mean, phi, &mut rng).unwrap())
            .collect();
        let m = draws.iter().sum::<f64>() / draws.len() as f64;
        let v = draws.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (draws.len() - 1) as f64;
        // Expected variance 20 + 0.5 * 400 = 220; sampling error of these moments is a few percent.
        assert!((m - mean).abs() < 0.5, "mean {m}");
        assert!((v / 220.0 - 1.0).abs() < 0.1, "variance {v}");
        assert!(draws.iter().all(|x| x.fract() == 0.0 && *x >= 0.0));
    }

    #[test]
    fn poisson_when_dispersion_is_zero_and_zero_mean_gives_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| negative_binomial(5.0, 0.0, &mut rng).unwrap())
            .collect();
        let m = draws.iter().sum::<f64>() / draws.len() as f64;
        let v = draws.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (draws.len() - 1) as f64;
        assert!((v / m - 1.0).abs() < 0.1, "Poisson variance/mean {}", v / m);
        assert_eq!(negative_binomial(0.0, 0.3, &mut rng).unwrap(), 0.0);
    }

    #[test]
    fn markers_are_disjoint_and_spike_ins_are_named_last() {
        let config = SimulationConfig {
            genes: 120,
            ..SimulationConfig::default()
        };
        let families = [0, 0, 0, 1, 1, 1, 2, 2, 2];
        let truth =
            build_expression_truth(&config, &families, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
        let mut all: Vec<usize> = truth
            .family_markers
            .iter()
            .chain(&truth.type_markers)
            .flatten()
            .copied()
            .collect();
        all.extend(truth.state_genes.iter().map(|s| s.gene));
        let before = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), before);
        assert_eq!(before, 92);
        assert!(all.iter().all(|&g| g < 117));
        assert_eq!(
            &truth.genes[117..],
            ["ERCC-00009", "ERCC-00108", "ERCC-00136"]
        );
        assert_eq!(truth.genes[0], "Gene001");
    }
}
