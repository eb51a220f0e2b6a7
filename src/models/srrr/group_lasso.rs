//! The W-step: a multi-response group lasso / elastic net by group coordinate
//! descent, in covariance form.
//!
//! Minimises `½ tr(WᵀGW) − tr(WᵀD) + λ[(1−α)/2 ‖W‖²_F + α Σ_g ‖W_g‖₂]`, which for
//! `G = XᵀX/n` and `D = XᵀYV/n` equals glmnet's `mgaussian` objective
//! `(1/2n)‖YV − XW‖²_F + penalty` up to a constant. The gradient `R = D − GW` is
//! kept up to date after every row update. Like glmnet, a full sweep over all
//! genes is followed by cheap sweeps over the active set (during which only the
//! active rows of `R` are maintained) until those converge, then another full
//! sweep checks whether any gene wants to enter.

/// Stopping rule of the coordinate descent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CdSettings {
    /// Stop when no row update changes the objective by more than this (absolute).
    pub threshold: f64,
    /// Give up after this many sweeps.
    pub max_sweeps: usize,
}

/// How the coordinate descent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdOutcome {
    /// Sweeps done (full and active-set).
    pub sweeps: usize,
    /// Whether a full sweep met the threshold.
    pub converged: bool,
}

/// One group-lasso problem: `gram` is p×p, `target` is `D` (p×r), row-major.
#[derive(Debug, Clone, Copy)]
pub struct GroupLassoProblem<'a> {
    /// `XᵀX/n`, p×p.
    pub gram: &'a [f64],
    /// `XᵀYV/n`, p×r.
    pub target: &'a [f64],
    /// Number of predictors.
    pub p: usize,
    /// Number of responses (columns of `W`).
    pub r: usize,
    /// Penalty strength λ.
    pub lambda: f64,
    /// Mixing α: 1 is the pure group lasso.
    pub alpha: f64,
}

struct Solver<'a> {
    problem: GroupLassoProblem<'a>,
    residual: Vec<f64>,
    delta: Vec<f64>,
    proposal: Vec<f64>,
}

impl Solver<'_> {
    /// Updates row `g` of `w`; refreshes `residual` on `rows` (all when None).
    /// Returns the objective-scale size of the change.
    fn update(&mut self, g: usize, w: &mut [f64], rows: Option<&[usize]>) -> f64 {
        let GroupLassoProblem {
            gram,
            p,
            r,
            lambda,
            alpha,
            ..
        } = self.problem;
        let diagonal = gram[g * p + g];
        let row = &mut w[g * r..(g + 1) * r];
        let residual_row = &self.residual[g * r..(g + 1) * r];
        let mut norm2 = 0.0;
        for ((u, &gradient), &current) in self.proposal.iter_mut().zip(residual_row).zip(row.iter())
        {
            *u = gradient + diagonal * current;
            norm2 += *u * *u;
        }
        let norm = norm2.sqrt();
        let denominator = diagonal + lambda * (1.0 - alpha);
        let shrink = if norm <= lambda * alpha || denominator <= 0.0 {
            0.0
        } else {
            (1.0 - lambda * alpha / norm) / denominator
        };
        let mut change = 0.0;
        for ((delta, value), &u) in self
            .delta
            .iter_mut()
            .zip(row.iter_mut())
            .zip(&self.proposal)
        {
            let new = shrink * u;
            *delta = new - *value;
            change += *delta * *delta;
            *value = new;
        }
        if change == 0.0 {
            return 0.0;
        }
        let column = &gram[g * p..(g + 1) * p];
        let delta = &self.delta;
        let subtract = |target: &mut [f64], coefficient: f64| {
            for (t, &d) in target.iter_mut().zip(delta) {
                *t -= coefficient * d;
            }
        };
        match rows {
            Some(rows) => {
                for &i in rows {
                    subtract(&mut self.residual[i * r..(i + 1) * r], column[i]);
                }
            }
            None => {
                for (target, &coefficient) in self.residual.chunks_exact_mut(r).zip(column) {
                    subtract(target, coefficient);
                }
            }
        }
        denominator * change
    }
}

/// `D − G W` for row-major inputs.
fn gradient(problem: &GroupLassoProblem<'_>, w: &[f64]) -> Vec<f64> {
    let GroupLassoProblem {
        gram, target, p, r, ..
    } = *problem;
    let mut residual = target.to_vec();
    for a in 0..p {
        let row = &w[a * r..(a + 1) * r];
        if row.iter().all(|&v| v == 0.0) {
            continue;
        }
        let column = &gram[a * p..(a + 1) * p];
        for (i, &coefficient) in column.iter().enumerate() {
            for k in 0..r {
                residual[i * r + k] -= coefficient * row[k];
            }
        }
    }
    residual
}

/// Solves the problem in place, warm-starting from the current `w` (p×r).
pub fn solve(problem: GroupLassoProblem<'_>, w: &mut [f64], settings: CdSettings) -> CdOutcome {
    let (p, r) = (problem.p, problem.r);
    let mut solver = Solver {
        problem,
        residual: gradient(&problem, w),
        delta: vec![0.0; r],
        proposal: vec![0.0; r],
    };
    let mut sweeps = 0;
    let mut is_active = vec![false; p];
    loop {
        let mut largest = 0.0_f64;
        for g in 0..p {
            largest = largest.max(solver.update(g, w, None));
        }
        sweeps += 1;
        if largest < settings.threshold {
            return CdOutcome {
                sweeps,
                converged: true,
            };
        }
        if sweeps >= settings.max_sweeps {
            return CdOutcome {
                sweeps,
                converged: false,
            };
        }
        let active: Vec<usize> = (0..p)
            .filter(|&g| w[g * r..(g + 1) * r].iter().any(|&v| v != 0.0))
            .collect();
        is_active.iter_mut().for_each(|a| *a = false);
        active.iter().for_each(|&g| is_active[g] = true);
        let start: Vec<f64> = active
            .iter()
            .flat_map(|&g| w[g * r..(g + 1) * r].iter().copied())
            .collect();
        loop {
            let mut largest = 0.0_f64;
            for &g in &active {
                largest = largest.max(solver.update(g, w, Some(&active)));
            }
            sweeps += 1;
            if largest < settings.threshold || sweeps >= settings.max_sweeps {
                break;
            }
        }
        // Bring the inactive rows of the gradient up to date.
        for (slot, &g) in active.iter().enumerate() {
            let change: Vec<f64> = (0..r).map(|k| w[g * r + k] - start[slot * r + k]).collect();
            if change.iter().all(|&c| c == 0.0) {
                continue;
            }
            let column = &problem.gram[g * p..(g + 1) * p];
            let rows = solver
                .residual
                .chunks_exact_mut(r)
                .zip(column)
                .zip(&is_active);
            for ((target, &coefficient), _) in rows.filter(|(_, active)| !**active) {
                for (t, &c) in target.iter_mut().zip(&change) {
                    *t -= coefficient * c;
                }
            }
        }
    }
}

/// The largest violation of the optimality (KKT) conditions at `w`: for a
/// nonzero row, `‖∇_g + λα w_g/‖w_g‖‖`; for a zero row, `max(0, ‖∇_g‖ − λα)`,
/// where `∇` is the gradient of the smooth part. Zero at the exact optimum.
pub fn kkt_violation(problem: GroupLassoProblem<'_>, w: &[f64]) -> f64 {
    let (p, r) = (problem.p, problem.r);
    let residual = gradient(&problem, w);
    let l1 = problem.lambda * problem.alpha;
    let l2 = problem.lambda * (1.0 - problem.alpha);
    (0..p)
        .map(|g| {
            let row = &w[g * r..(g + 1) * r];
            let grad: Vec<f64> = (0..r).map(|k| -residual[g * r + k] + l2 * row[k]).collect();
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                (0..r)
                    .map(|k| (grad[k] + l1 * row[k] / norm).powi(2))
                    .sum::<f64>()
                    .sqrt()
            } else {
                (grad.iter().map(|v| v * v).sum::<f64>().sqrt() - l1).max(0.0)
            }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random Gram matrix of n samples and its target for r responses.
    fn random_problem(n: usize, p: usize, r: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..n * p).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<f64> = (0..n * r)
            .map(|i| x[(i / r) * p] * 2.0 - x[(i / r) * p + 1] + rng.random_range(-0.5..0.5))
            .collect();
        let mut gram = vec![0.0; p * p];
        let mut target = vec![0.0; p * r];
        for s in 0..n {
            for a in 0..p {
                for b in 0..p {
                    gram[a * p + b] += x[s * p + a] * x[s * p + b] / n as f64;
                }
                for k in 0..r {
                    target[a * r + k] += x[s * p + a] * y[s * r + k] / n as f64;
                }
            }
        }
        (gram, target)
    }

    const TIGHT: CdSettings = CdSettings {
        threshold: 1e-16,
        max_sweeps: 100_000,
    };

    #[test]
    fn solution_satisfies_the_kkt_conditions() {
        let (gram, target) = random_problem(80, 12, 3, 4);
        for (lambda, alpha) in [(0.05, 1.0), (0.2, 1.0), (0.1, 0.5), (0.3, 0.0)] {
            let problem = GroupLassoProblem {
                gram: &gram,
                target: &target,
                p: 12,
                r: 3,
                lambda,
                alpha,
            };
            let mut w = vec![0.0; 36];
            let outcome = solve(problem, &mut w, TIGHT);
            assert!(outcome.converged);
            assert!(
                kkt_violation(problem, &w) < 1e-6,
                "lambda {lambda} alpha {alpha}"
            );
            // A perturbed point violates them: the check can fail.
            w[0] += 0.1;
            assert!(kkt_violation(problem, &w) > 1e-3);
        }
    }

    #[test]
    fn penalty_selects_the_relevant_genes_and_warm_starts_agree() {
        let (gram, target) = random_problem(200, 10, 2, 8);
        let problem = |lambda| GroupLassoProblem {
            gram: &gram,
            target: &target,
            p: 10,
            r: 2,
            lambda,
            alpha: 1.0,
        };
        let mut cold = vec![0.0; 20];
        solve(problem(0.3), &mut cold, TIGHT);
        let nonzero: Vec<usize> = (0..10)
            .filter(|&g| cold[2 * g] != 0.0 || cold[2 * g + 1] != 0.0)
            .collect();
        assert_eq!(nonzero, vec![0, 1]);
        let mut warm = vec![0.0; 20];
        solve(problem(0.01), &mut warm, TIGHT);
        solve(problem(0.3), &mut warm, TIGHT);
        for (a, b) in cold.iter().zip(&warm) {
            assert!((a - b).abs() < 1e-7);
        }
        // A huge penalty zeroes everything.
        let mut none = vec![0.0; 20];
        solve(problem(100.0), &mut none, TIGHT);
        assert!(none.iter().all(|&v| v == 0.0));
    }
}
