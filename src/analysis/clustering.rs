//! Agreement between two partitions of the same cells: adjusted Rand index,
//! adjusted mutual information (as scikit-learn computes them, arithmetic
//! normalisation) and accuracy after the best one-to-one matching of clusters
//! to classes (Hungarian algorithm).

use pathfinding::prelude::{Matrix, kuhn_munkres};
use statrs::function::gamma::ln_gamma;

/// The contingency table of two labelings given as small integers.
fn contingency(a: &[usize], b: &[usize]) -> Vec<Vec<u64>> {
    let rows = a.iter().max().map_or(0, |m| m + 1);
    let columns = b.iter().max().map_or(0, |m| m + 1);
    let mut table = vec![vec![0u64; columns]; rows];
    for (&i, &j) in a.iter().zip(b) {
        table[i][j] += 1;
    }
    table
}

fn row_sums(table: &[Vec<u64>]) -> Vec<u64> {
    table.iter().map(|r| r.iter().sum()).collect()
}

fn column_sums(table: &[Vec<u64>]) -> Vec<u64> {
    let columns = table.first().map_or(0, Vec::len);
    (0..columns)
        .map(|j| table.iter().map(|r| r[j]).sum())
        .collect()
}

fn pairs(n: u64) -> f64 {
    n as f64 * (n as f64 - 1.0) / 2.0
}

/// Adjusted Rand index of two labelings (1 for identical partitions, about 0
/// for independent ones). Labels are class indices; the lengths must match.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let table = contingency(a, b);
    let n = a.len().min(b.len()) as u64;
    let index: f64 = table.iter().flatten().map(|&c| pairs(c)).sum();
    let sum_a: f64 = row_sums(&table).into_iter().map(pairs).sum();
    let sum_b: f64 = column_sums(&table).into_iter().map(pairs).sum();
    let expected = sum_a * sum_b / pairs(n).max(1.0);
    let maximum = (sum_a + sum_b) / 2.0;
    if (maximum - expected).abs() < f64::EPSILON {
        // Both partitions trivial (one cluster, or all singletons): identical.
        return 1.0;
    }
    (index - expected) / (maximum - expected)
}

fn entropy(counts: &[u64], n: f64) -> f64 {
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

fn ln_factorial(n: u64) -> f64 {
    ln_gamma(n as f64 + 1.0)
}

/// Expected mutual information of two random labelings with the given
/// marginals (Vinh, Epps & Bailey 2010), in nats.
fn expected_mutual_information(a: &[u64], b: &[u64], n: u64) -> f64 {
    let nf = n as f64;
    let ln_n = ln_factorial(n);
    let mut emi = 0.0;
    for &ai in a.iter().filter(|&&x| x > 0) {
        for &bj in b.iter().filter(|&&x| x > 0) {
            let start = (ai + bj).saturating_sub(n).max(1);
            let end = ai.min(bj);
            let fixed =
                ln_factorial(ai) + ln_factorial(bj) + ln_factorial(n - ai) + ln_factorial(n - bj)
                    - ln_n;
            for nij in start..=end {
                let term = nij as f64 / nf * (nf * nij as f64 / (ai as f64 * bj as f64)).ln();
                let ln_p = fixed
                    - ln_factorial(nij)
                    - ln_factorial(ai - nij)
                    - ln_factorial(bj - nij)
                    - ln_factorial(n + nij - ai - bj);
                emi += term * ln_p.exp();
            }
        }
    }
    emi
}

/// Adjusted mutual information of two labelings, normalised by the arithmetic
/// mean of the entropies (scikit-learn's default). 1 for identical
/// partitions, about 0 for independent ones.
pub fn adjusted_mutual_information(a: &[usize], b: &[usize]) -> f64 {
    let table = contingency(a, b);
    let n = a.len().min(b.len()) as u64;
    if n == 0 {
        return 1.0;
    }
    let nf = n as f64;
    let ra = row_sums(&table);
    let cb = column_sums(&table);
    let mut mi = 0.0;
    for (i, row) in table.iter().enumerate() {
        for (j, &c) in row.iter().enumerate() {
            if c > 0 {
                let c = c as f64;
                mi += c / nf * (nf * c / (ra[i] as f64 * cb[j] as f64)).ln();
            }
        }
    }
    let (ha, hb) = (entropy(&ra, nf), entropy(&cb, nf));
    if ha == 0.0 && hb == 0.0 {
        return 1.0;
    }
    let emi = expected_mutual_information(&ra, &cb, n);
    let denominator = (ha + hb) / 2.0 - emi;
    if denominator.abs() < f64::EPSILON {
        return 0.0;
    }
    (mi - emi) / denominator
}

/// The best one-to-one matching of `clusters` to `classes` (Hungarian
/// algorithm on the contingency table): `matching[cluster] = Some(class)`,
/// `None` for clusters left over when there are more clusters than classes.
pub fn match_clusters(clusters: &[usize], classes: &[usize]) -> Vec<Option<usize>> {
    let table = contingency(clusters, classes);
    let k = table.len();
    let c = table.first().map_or(0, Vec::len);
    let size = k.max(c);
    if size == 0 {
        return Vec::new();
    }
    let mut weights = Matrix::new(size, size, 0i64);
    for (i, row) in table.iter().enumerate() {
        for (j, &count) in row.iter().enumerate() {
            weights[(i, j)] = count as i64;
        }
    }
    let (_, assignment) = kuhn_munkres(&weights);
    assignment
        .into_iter()
        .take(k)
        .map(|j| (j < c).then_some(j))
        .collect()
}

/// Fraction of cells whose cluster, after the best one-to-one matching of
/// clusters to classes, is their class ("unsupervised accuracy").
pub fn matched_accuracy(clusters: &[usize], classes: &[usize]) -> f64 {
    let n = clusters.len().min(classes.len());
    if n == 0 {
        return 0.0;
    }
    let matching = match_clusters(clusters, classes);
    let correct = clusters
        .iter()
        .zip(classes)
        .filter(|&(&k, &c)| matching.get(k).copied().flatten() == Some(c))
        .count();
    correct as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_partitions_score_one_whatever_the_names() {
        let a = [0, 0, 1, 1, 2, 2];
        let b = [2, 2, 0, 0, 1, 1];
        assert!((adjusted_rand_index(&a, &b) - 1.0).abs() < 1e-12);
        assert!((adjusted_mutual_information(&a, &b) - 1.0).abs() < 1e-12);
        assert!((matched_accuracy(&a, &b) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn matches_scikit_learn_on_a_small_example() {
        // sklearn.metrics: adjusted_rand_score = 0.1111..., adjusted_mutual_info_score = 0.16502260...
        let a = [0, 0, 0, 1, 1, 1, 2, 2, 2];
        let b = [0, 0, 1, 1, 1, 2, 2, 0, 2];
        assert!((adjusted_rand_index(&a, &b) - 0.111_111_111_111_111_1).abs() < 1e-9);
        let ami = adjusted_mutual_information(&a, &b);
        assert!((ami - 0.165_022_609_128_885_4).abs() < 1e-6, "ami {ami}");
    }

    #[test]
    fn hungarian_matching_picks_the_best_assignment() {
        // Cluster 0 is mostly class 1, cluster 1 mostly class 0, cluster 2 is extra.
        let clusters = [0, 0, 0, 1, 1, 2];
        let classes = [1, 1, 0, 0, 0, 1];
        assert_eq!(
            match_clusters(&clusters, &classes),
            vec![Some(1), Some(0), None]
        );
        assert!((matched_accuracy(&clusters, &classes) - 4.0 / 6.0).abs() < 1e-12);
    }
}
