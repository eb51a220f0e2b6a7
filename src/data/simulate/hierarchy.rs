//! The two-level type hierarchy (family -> type) and the cells drawn from it.
//!
//! Families get neutral Greek-letter names and types are numbered within their
//! family ("Beta 2"). Type proportions are uneven, as in real data, but every
//! type receives at least one cell. Each cell also gets a continuous state in
//! [0, 1], a library size, and a modality pattern (paired, T-only or E-only)
//! with exactly the configured number of unpaired cells, up to rounding.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};

use super::{SimulateError, SimulationConfig};

const FAMILY_NAMES: [&str; 24] = [
    "Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta", "Iota", "Kappa",
    "Lambda", "Mu", "Nu", "Xi", "Omicron", "Pi", "Rho", "Sigma", "Tau", "Upsilon", "Phi", "Chi",
    "Psi", "Omega",
];

/// Shape of the Gamma draws that set the (unnormalised) type proportions;
/// 3 makes the largest type a few times bigger than the smallest.
const PROPORTION_SHAPE: f64 = 3.0;

/// One leaf of the hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub struct CellType {
    /// Type name, "<family> <n>".
    pub name: String,
    /// Index of its family in [`Hierarchy::families`].
    pub family: usize,
}

/// Families and their types.
#[derive(Debug, Clone, PartialEq)]
pub struct Hierarchy {
    /// Family names.
    pub families: Vec<String>,
    /// Types, grouped by family in family order.
    pub types: Vec<CellType>,
}

/// The ground truth of one simulated cell.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatedCell {
    /// Cell id, "sim0001" onwards.
    pub cell_id: String,
    /// Index into [`Hierarchy::families`].
    pub family: usize,
    /// Index into [`Hierarchy::types`].
    pub cell_type: usize,
    /// Continuous within-type state in [0, 1].
    pub state: f64,
    /// Expected total biological counts of the cell (used only if it has expression).
    pub library_size: f64,
    /// Whether the cell has expression (T) data.
    pub has_t: bool,
    /// Whether the cell has electrophysiology (E) data.
    pub has_e: bool,
}

/// Names the families and types of `config`.
pub fn build_hierarchy(config: &SimulationConfig) -> Hierarchy {
    let families: Vec<String> = (0..config.families)
        .map(|f| {
            FAMILY_NAMES
                .get(f)
                .map_or_else(|| format!("Family {}", f + 1), |name| (*name).to_string())
        })
        .collect();
    let types = families
        .iter()
        .enumerate()
        .flat_map(|(family, name)| {
            (1..=config.types_per_family).map(move |n| CellType {
                name: format!("{name} {n}"),
                family,
            })
        })
        .collect();
    Hierarchy { families, types }
}

/// Draws every cell's type, state, library size and modalities.
pub fn draw_cells(
    config: &SimulationConfig,
    hierarchy: &Hierarchy,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<SimulatedCell>, SimulateError> {
    let mut type_of_cell = type_sizes(config.cells, hierarchy.types.len(), rng)?
        .into_iter()
        .enumerate()
        .flat_map(|(t, size)| std::iter::repeat_n(t, size))
        .collect::<Vec<_>>();
    type_of_cell.shuffle(rng);

    let t_only = fraction_count(config.cells, config.t_only_fraction);
    let e_only = fraction_count(config.cells, config.e_only_fraction).min(config.cells - t_only);
    let mut order: Vec<usize> = (0..config.cells).collect();
    order.shuffle(rng);
    let mut pattern = vec![(true, true); config.cells];
    for (rank, &cell) in order.iter().enumerate() {
        if rank < t_only {
            pattern[cell] = (true, false);
        } else if rank < t_only + e_only {
            pattern[cell] = (false, true);
        }
    }

    let width = config.cells.to_string().len().max(4);
    let mut cells = Vec::with_capacity(config.cells);
    for (i, (cell_type, (has_t, has_e))) in type_of_cell.into_iter().zip(pattern).enumerate() {
        let family = hierarchy.types.get(cell_type).map_or(0, |t| t.family);
        let state: f64 = rng.random();
        let z: f64 = StandardNormal.sample(rng);
        let library_size = config.library_size * (config.library_spread * z).exp();
        cells.push(SimulatedCell {
            cell_id: format!("sim{:0width$}", i + 1),
            family,
            cell_type,
            state,
            library_size,
            has_t,
            has_e,
        });
    }
    Ok(cells)
}

/// `round(cells * fraction)`, the number of cells a fraction stands for.
fn fraction_count(cells: usize, fraction: f64) -> usize {
    // Both factors are validated: fraction in [0, 1), so the product fits in usize.
    ((cells as f64) * fraction).round() as usize
}

/// Splits `cells` over `types` with uneven random proportions, at least one cell each.
fn type_sizes(
    cells: usize,
    types: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>, SimulateError> {
    let gamma =
        Gamma::new(PROPORTION_SHAPE, 1.0).map_err(|e| SimulateError::Numeric(e.to_string()))?;
    let weights: Vec<f64> = (0..types).map(|_| gamma.sample(rng)).collect();
    let total: f64 = weights.iter().sum();
    let spare = cells.saturating_sub(types);
    let shares: Vec<f64> = weights.iter().map(|w| spare as f64 * w / total).collect();
    let mut sizes: Vec<usize> = shares.iter().map(|s| 1 + s.floor() as usize).collect();
    let mut left = cells.saturating_sub(sizes.iter().sum());
    let mut by_remainder: Vec<usize> = (0..types).collect();
    by_remainder.sort_by(|&a, &b| {
        let (ra, rb) = (shares[a] - shares[a].floor(), shares[b] - shares[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for t in by_remainder {
        if left == 0 {
            break;
        }
        sizes[t] += 1;
        left -= 1;
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn types_are_named_within_families() {
        let config = SimulationConfig {
            families: 2,
            types_per_family: 2,
            ..SimulationConfig::default()
        };
        let hierarchy = build_hierarchy(&config);
        assert_eq!(hierarchy.families, ["Alpha", "Beta"]);
        let names: Vec<&str> = hierarchy.types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Alpha 1", "Alpha 2", "Beta 1", "Beta 2"]);
        assert_eq!(
            hierarchy.types.iter().map(|t| t.family).collect::<Vec<_>>(),
            [0, 0, 1, 1]
        );
    }

    #[test]
    fn many_families_get_fallback_names() {
        let config = SimulationConfig {
            families: 26,
            types_per_family: 1,
            ..SimulationConfig::default()
        };
        let hierarchy = build_hierarchy(&config);
        assert_eq!(hierarchy.families[23], "Omega");
        assert_eq!(hierarchy.families[25], "Family 26");
    }

    #[test]
    fn type_sizes_cover_all_cells_and_every_type() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (cells, types) in [(9, 9), (10, 9), (600, 9), (37, 5)] {
            let sizes = type_sizes(cells, types, &mut rng).unwrap();
            assert_eq!(sizes.len(), types);
            assert_eq!(sizes.iter().sum::<usize>(), cells);
            assert!(sizes.iter().all(|&s| s >= 1), "{sizes:?}");
        }
    }

    #[test]
    fn modality_counts_follow_the_fractions() {
        let config = SimulationConfig {
            cells: 200,
            t_only_fraction: 0.1,
            e_only_fraction: 0.05,
            ..Default::default()
        };
        let hierarchy = build_hierarchy(&config);
        let cells = draw_cells(&config, &hierarchy, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
        let count = |t, e| {
            cells
                .iter()
                .filter(|c| c.has_t == t && c.has_e == e)
                .count()
        };
        assert_eq!(count(true, false), 20);
        assert_eq!(count(false, true), 10);
        assert_eq!(count(true, true), 170);
        assert_eq!(count(false, false), 0);
        assert_eq!(cells[0].cell_id, "sim0001");
        assert_eq!(cells[199].cell_id, "sim0200");
        assert!(
            cells
                .iter()
                .all(|c| (0.0..=1.0).contains(&c.state) && c.library_size > 0.0)
        );
    }
}
