//! The local quadratic regression (LOESS) that scanpy's `seurat_v3` flavour
//! fits through `skmisc.loess(x, y, span, degree=2)`: Cleveland's `dloess`
//! with one predictor, Gaussian family and its default `surface =
//! "interpolate"`, re-implemented from its published algorithm:
//!
//! 1. a k-d tree over `x` (here an interval tree): the bounding box widened by
//!    0.5% on each side is split at the median point (moved off runs of tied
//!    values) until a cell holds at most `floor(n · span · 0.2)` points;
//! 2. at every cell boundary (vertex) `v`, a weighted least-squares quadratic
//!    in `x − v` over the `q = floor(n · span)` nearest points, with tricube
//!    weights `(1 − (d / d_q)³)³` (`d_q` the distance to the `q`-th nearest;
//!    columns scaled to unit norm, solved by SVD with the pseudo-inverse
//!    tolerance `100 ε σ₁`), gives the value and slope there;
//! 3. the fit at any `x` is the cubic Hermite interpolant of the values and
//!    slopes at the two vertices of its cell.

use faer::Mat;

/// The share of `span · n` points a cell may hold before it is split (loess' `cell`).
const CELL: f64 = 0.2;

/// Why a LOESS fit is impossible.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum LoessError {
    /// Fewer neighbourhood points than the quadratic's 3 coefficients need.
    TooFewPoints {
        /// Points in each local fit, `floor(n · span)`.
        neighbours: usize,
    },
    /// A non-finite `x` or `y`.
    NotFinite,
    /// The SVD of a local design matrix did not converge.
    Decomposition,
}

impl std::fmt::Display for LoessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoessError::TooFewPoints { neighbours } => write!(
                f,
                "a local quadratic fit needs at least 4 points in each neighbourhood, \
                 span gives {neighbours}; use more genes or a larger span"
            ),
            LoessError::NotFinite => write!(f, "a non-finite value reached the loess fit"),
            LoessError::Decomposition => write!(f, "a local loess fit's SVD did not converge"),
        }
    }
}

/// The fitted values at `x` of a degree-2 LOESS of `y` on `x` with this `span`.
pub(super) fn loess_fitted(x: &[f64], y: &[f64], span: f64) -> Result<Vec<f64>, LoessError> {
    let n = x.len();
    if x.iter().chain(y).any(|v| !v.is_finite()) || !(span.is_finite() && span > 0.0) {
        return Err(LoessError::NotFinite);
    }
    let neighbours = ((n as f64 * span).floor() as usize).min(n);
    if neighbours < 4 {
        return Err(LoessError::TooFewPoints { neighbours });
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let per_cell = (n as f64 * (span * CELL)).floor() as usize;
    let tree = Tree::build(&sorted, per_cell, n.max(200));
    let mut distances = vec![0.0; n];
    let fits = tree
        .vertices
        .iter()
        .map(|&v| local_fit(x, y, v, neighbours, &mut distances))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(x.iter().map(|&z| tree.evaluate(z, &fits)).collect())
}

/// A cell of the tree: its two vertices and, unless a leaf, its split and children.
#[derive(Debug, Clone, Copy)]
struct Cell {
    low: usize,
    high: usize,
    split: Option<(f64, usize, usize)>,
}

/// The interval tree over `x`: vertex coordinates and cells (the root first).
#[derive(Debug, Clone)]
struct Tree {
    vertices: Vec<f64>,
    cells: Vec<Cell>,
}

impl Tree {
    /// Splits the widened bounding box of `sorted` (ascending) breadth-first
    /// until each cell holds at most `per_cell` points; `capacity` bounds the
    /// number of cells and vertices, as loess' `nvmax`.
    fn build(sorted: &[f64], per_cell: usize, capacity: usize) -> Self {
        let (first, last) = (sorted[0], sorted[sorted.len() - 1]);
        let margin = 0.005 * (last - first).max(1e-10 * first.abs().max(last.abs()) + 1e-30);
        let mut tree = Tree {
            vertices: vec![first - margin, last + margin],
            cells: vec![Cell {
                low: 0,
                high: 1,
                split: None,
            }],
        };
        // Point ranges (inclusive, positions in `sorted`) of each cell.
        let mut ranges = vec![(0_usize, sorted.len() - 1)];
        let mut p = 0;
        while p < tree.cells.len() {
            let (l, u) = ranges[p];
            let Cell { low, high, .. } = tree.cells[p];
            let (v0, v1) = (tree.vertices[low], tree.vertices[high]);
            let full = tree.cells.len() + 2 > capacity || tree.vertices.len() + 1 > capacity;
            if u - l + 1 > per_cell && v1 - v0 > 0.0 && !full {
                let m = median_off_ties(sorted, l, u);
                let xi = sorted[m];
                if v0 != xi && v1 != xi {
                    let vertex = tree.vertices.len();
                    tree.vertices.push(xi);
                    let below = tree.cells.len();
                    tree.cells.push(Cell {
                        low,
                        high: vertex,
                        split: None,
                    });
                    tree.cells.push(Cell {
                        low: vertex,
                        high,
                        split: None,
                    });
                    ranges.push((l, m));
                    ranges.push((m + 1, u));
                    tree.cells[p].split = Some((xi, below, below + 1));
                }
            }
            p += 1;
        }
        tree
    }

    /// The Hermite interpolant at `z` of the vertex `fits` (value, slope).
    fn evaluate(&self, z: f64, fits: &[(f64, f64)]) -> f64 {
        let mut cell = self.cells[0];
        while let Some((xi, below, above)) = cell.split {
            cell = self.cells[if z <= xi { below } else { above }];
        }
        let (v0, v1) = (self.vertices[cell.low], self.vertices[cell.high]);
        let ((g0, s0), (g1, s1)) = (fits[cell.low], fits[cell.high]);
        let h = (z - v0) / (v1 - v0);
        let phi0 = (1.0 - h) * (1.0 - h) * (1.0 + 2.0 * h);
        let phi1 = h * h * (3.0 - 2.0 * h);
        let psi0 = h * (1.0 - h) * (1.0 - h);
        let psi1 = h * h * (h - 1.0);
        phi0 * g0 + phi1 * g1 + (psi0 * s0 + psi1 * s1) * (v1 - v0)
    }
}

/// The split position of the points `l..=u` of `sorted`: the median
/// `(l + u) / 2`, moved to the nearest position (trying +1, −1, +2, −2, ...)
/// whose value differs from the next one, so tied values stay in one cell.
fn median_off_ties(sorted: &[f64], l: usize, u: usize) -> usize {
    let m = (l + u) / 2;
    let mut offset: isize = 0;
    loop {
        let at = m as isize + offset;
        if at >= u as isize || at < l as isize {
            return m;
        }
        let at = at as usize;
        if sorted[at] != sorted[at + 1] {
            return at;
        }
        offset = -offset;
        if offset >= 0 {
            offset += 1;
        }
    }
}

/// The local quadratic's value and slope at `q` from the `neighbours`
/// nearest points (tricube weights); `distances` is scratch space.
fn local_fit(
    x: &[f64],
    y: &[f64],
    q: f64,
    neighbours: usize,
    distances: &mut [f64],
) -> Result<(f64, f64), LoessError> {
    for (d, &xi) in distances.iter_mut().zip(x) {
        *d = (xi - q) * (xi - q);
    }
    let mut scratch = distances.to_vec();
    let (_, &mut rho, _) = scratch.select_nth_unstable_by(neighbours - 1, f64::total_cmp);
    // Points at the q-th distance or beyond have weight 0.
    let inside: Vec<usize> = (0..x.len()).filter(|&i| distances[i] < rho).collect();
    let rows = inside.len();
    let mut design = Mat::<f64>::zeros(rows.max(3), 3);
    let mut target = vec![0.0; rows.max(3)];
    for (r, &i) in inside.iter().enumerate() {
        let t = (distances[i] / rho).sqrt();
        let w = ((1.0 - t * t * t).powi(3)).sqrt();
        let dx = x[i] - q;
        design[(r, 0)] = w;
        design[(r, 1)] = w * dx;
        design[(r, 2)] = w * dx * dx;
        target[r] = w * y[i];
    }
    let mut norms = [1.0; 3];
    for (j, norm) in norms.iter_mut().enumerate() {
        let scale = (0..rows)
            .map(|r| design[(r, j)].powi(2))
            .sum::<f64>()
            .sqrt();
        if scale > 0.0 {
            for r in 0..rows {
                design[(r, j)] /= scale;
            }
            *norm = scale;
        }
    }
    let svd = design.thin_svd().map_err(|_| LoessError::Decomposition)?;
    let (u, s, v) = (svd.U(), svd.S(), svd.V());
    let tolerance = s[0] * 100.0 * f64::EPSILON;
    let mut coefficients = [0.0; 3];
    for k in 0..3 {
        if s[k] > tolerance {
            let projection: f64 = (0..target.len()).map(|r| u[(r, k)] * target[r]).sum();
            let gamma = projection / s[k];
            for (j, c) in coefficients.iter_mut().enumerate() {
                *c += v[(j, k)] * gamma;
            }
        }
    }
    Ok((coefficients[0] / norms[0], coefficients[1] / norms[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quadratic_is_reproduced_exactly() {
        let x: Vec<f64> = (0..60).map(|i| f64::from(i) * 0.1).collect();
        let y: Vec<f64> = x.iter().map(|&v| 1.0 - 2.0 * v + 0.5 * v * v).collect();
        let fitted = loess_fitted(&x, &y, 0.3).unwrap();
        for (f, t) in fitted.iter().zip(&y) {
            assert!((f - t).abs() < 1e-9, "{f} vs {t}");
        }
    }

    #[test]
    fn ties_stay_in_one_cell() {
        let sorted = [1.0, 2.0, 2.0, 2.0, 2.0, 3.0];
        // Median position 2 is inside the run of 2s: move to its end (4).
        assert_eq!(median_off_ties(&sorted, 0, 5), 4);
        assert_eq!(median_off_ties(&[5.0; 4], 0, 3), 1);
    }

    #[test]
    fn too_few_points_and_non_finite_values_are_errors() {
        assert_eq!(
            loess_fitted(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 0.3),
            Err(LoessError::TooFewPoints { neighbours: 0 })
        );
        let x: Vec<f64> = (0..20).map(f64::from).collect();
        let mut y = x.clone();
        y[3] = f64::NAN;
        assert_eq!(loess_fitted(&x, &y, 0.3), Err(LoessError::NotFinite));
    }
}
