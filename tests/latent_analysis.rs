//! QDA, Gaussian mixtures, CCA and the KS test against reference values from
//! scikit-learn 1.9.1 / SciPy 1.17.1, and C_MSV's power iteration against
//! faer's exact eigensolver.
//!
//! The data come from a 32-bit LCG so that Python and Rust see the same
//! numbers. The reference values were printed by this script:
//!
//! ```python
//! import numpy as np
//! from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
//! from sklearn.mixture import GaussianMixture
//! from sklearn.cross_decomposition import CCA
//! from scipy.stats import ks_2samp
//! def lcg(seed, n):
//!     x = seed; out = []
//!     for _ in range(n):
//!         x = (1664525 * x + 1013904223) % 2**32
//!         out.append(x / 2**32)
//!     return np.array(out)
//! def normals(seed, n):  # sum of 4 uniforms, centred
//!     return lcg(seed, 4 * n).reshape(n, 4).sum(1) - 2.0
//! def blobs(seed, counts, centres, scales):
//!     xs, ys = [], []
//!     for k, (c, s) in enumerate(zip(centres, scales)):
//!         d = len(c)
//!         z = normals(seed + k, counts[k] * d).reshape(counts[k], d)
//!         xs.append(np.array(c) + z * np.array(s)); ys += [k] * counts[k]
//!     return np.vstack(xs), np.array(ys)
//! X, y = blobs(1, [40, 30, 20], [[0, 0, 0], [2, 1, 0], [0, 2, 2]], [[1, .5, .8], [.6, .6, 1.2], [.9, .3, .5]])
//! Xt, _ = blobs(11, [5], [[1, 1, 1]], [[1.5, 1.5, 1.5]])
//! q = QuadraticDiscriminantAnalysis(reg_param=0.01).fit(X, y)
//! print(q.predict(Xt).tolist(), q.predict_log_proba(Xt).ravel().tolist())
//! G, _ = blobs(21, [60, 50, 40], [[0, 0], [4, 0], [0, 4]], [[1, .5], [.5, 1], [.7, .7]])
//! g = GaussianMixture(3, covariance_type="full", reg_covar=1e-4, tol=1e-10,
//!                     max_iter=2000, n_init=5, random_state=0).fit(G)
//! print(g.score(G), sorted(g.means_.round(10).tolist()))
//! n = 100
//! L = normals(31, n * 2).reshape(n, 2)
//! A = np.c_[L[:, 0] + .5 * normals(32, n), L[:, 1] + .8 * normals(33, n), normals(34, n),
//!           L[:, 0] - L[:, 1] + normals(35, n)]
//! B = np.c_[L[:, 0] + .7 * normals(36, n), .3 * L[:, 1] + normals(37, n), normals(38, n)]
//! c = CCA(n_components=2, scale=True, max_iter=10000, tol=1e-12).fit(A, B)
//! xs, ys = c.transform(A, B)
//! print([np.corrcoef(xs[:, k], ys[:, k])[0, 1] for k in range(2)])
//! a = normals(41, 30); b = normals(42, 45) * 1.5 + 0.4
//! r = ks_2samp(a, b); print(r.statistic, r.pvalue)
//! ```

use faer::{Mat, Side};
use ndarray::{Array1, Array2, Axis, array, concatenate};
use patchbench::analysis::cca::{Cca, PcCca, PcCcaConfig};
use patchbench::analysis::gmm::{Gmm, GmmConfig};
use patchbench::analysis::neighbours::{ks_two_sample, nearest_distances};
use patchbench::analysis::qda::{Prior, Qda, QdaConfig};
use patchbench::models::cae::spectral::{PowerIteration, smallest_eigenpair};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn lcg(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = (1_664_525 * x + 1_013_904_223) % (1u64 << 32);
            x as f64 / (1u64 << 32) as f64
        })
        .collect()
}

fn normals(seed: u64, n: usize) -> Vec<f64> {
    lcg(seed, 4 * n)
        .chunks(4)
        .map(|c| c.iter().sum::<f64>() - 2.0)
        .collect()
}

fn blobs(
    seed: u64,
    counts: &[usize],
    centres: &[Vec<f64>],
    scales: &[Vec<f64>],
) -> (Array2<f64>, Vec<usize>) {
    let mut parts = Vec::new();
    let mut labels = Vec::new();
    for (k, &count) in counts.iter().enumerate() {
        let d = centres[k].len();
        let z = Array2::from_shape_vec((count, d), normals(seed + k as u64, count * d)).unwrap();
        let c = Array1::from_vec(centres[k].clone());
        let s = Array1::from_vec(scales[k].clone());
        parts.push(&z * &s + &c);
        labels.extend(std::iter::repeat_n(k, count));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    (concatenate(Axis(0), &views).unwrap(), labels)
}

#[test]
fn qda_matches_scikit_learn() {
    let (x, y) = blobs(
        1,
        &[40, 30, 20],
        &[
            vec![0.0, 0.0, 0.0],
            vec![2.0, 1.0, 0.0],
            vec![0.0, 2.0, 2.0],
        ],
        &[
            vec![1.0, 0.5, 0.8],
            vec![0.6, 0.6, 1.2],
            vec![0.9, 0.3, 0.5],
        ],
    );
    let (test, _) = blobs(11, &[5], &[vec![1.0, 1.0, 1.0]], &[vec![1.5, 1.5, 1.5]]);
    let config = QdaConfig {
        reg: 0.01,
        min_class_size: 2,
        prior: Prior::Empirical,
    };
    let qda = Qda::fit(x.view(), &y, &config).unwrap();
    assert_eq!(qda.predict(test.view()), vec![0, 1, 2, 2, 0]);
    let want = [
        -4.1937911152603166e-08,
        -16.987158807368534,
        -26.381760694672177,
        -0.7821493187844931,
        -0.6114230725539317,
        -29.763247613244303,
        -35.308261527155736,
        -31.550802308926016,
        -2.0206059048177644e-14,
        -31.47905456447604,
        -20.807475548590308,
        -9.19259778985802e-10,
        -0.0001175580709303174,
        -9.04863690424362,
        -74.90261747614508,
    ];
    let decision = qda.decision(test.view());
    for (r, row) in decision.rows().into_iter().enumerate() {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let norm = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        for k in 0..3 {
            let got = row[k] - norm;
            assert!(
                (got - want[r * 3 + k]).abs() < 1e-8 * (1.0 + got.abs()),
                "{r},{k}: {got}"
            );
        }
    }
    // Classes below the minimum size are left out.
    let strict = QdaConfig {
        min_class_size: 25,
        ..config
    };
    assert_eq!(
        Qda::fit(x.view(), &y, &strict).unwrap().classes(),
        vec![0, 1]
    );
}

#[test]
fn gmm_reaches_scikit_learns_optimum() {
    let (g, truth) = blobs(
        21,
        &[60, 50, 40],
        &[vec![0.0, 0.0], vec![4.0, 0.0], vec![0.0, 4.0]],
        &[vec![1.0, 0.5], vec![0.5, 1.0], vec![0.7, 0.7]],
    );
    let config = GmmConfig {
        inits: 5,
        max_iter: 2000,
        tol: 1e-10,
        reg_covar: 1e-4,
        seed: 0,
    };
    let gmm = Gmm::fit(g.view(), 3, &config).unwrap();
    assert!((gmm.score(g.view()).unwrap() - -2.18400329825843).abs() < 1e-6);
    let mut means: Vec<[f64; 2]> = gmm.means.rows().into_iter().map(|r| [r[0], r[1]]).collect();
    means.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let want = [
        [0.0225056223, -0.0518553066],
        [0.0331505212, 3.8726074917],
        [3.9660761049, -0.085911236],
    ];
    for (m, w) in means.iter().zip(want) {
        assert!(
            (m[0] - w[0]).abs() < 1e-5 && (m[1] - w[1]).abs() < 1e-5,
            "{m:?} vs {w:?}"
        );
    }
    let labels = gmm.predict(g.view()).unwrap();
    let ami = patchbench::analysis::clustering::adjusted_mutual_information(&labels, &truth);
    assert!(ami > 0.9, "{ami}");
}

fn cca_data() -> (Array2<f64>, Array2<f64>) {
    let n = 100;
    let l = normals(31, n * 2);
    let (l0, l1): (Vec<f64>, Vec<f64>) = (0..n).map(|i| (l[2 * i], l[2 * i + 1])).unzip();
    let (n32, n33, n34, n35) = (
        normals(32, n),
        normals(33, n),
        normals(34, n),
        normals(35, n),
    );
    let (n36, n37, n38) = (normals(36, n), normals(37, n), normals(38, n));
    let a = Array2::from_shape_fn((n, 4), |(i, j)| match j {
        0 => l0[i] + 0.5 * n32[i],
        1 => l1[i] + 0.8 * n33[i],
        2 => n34[i],
        _ => l0[i] - l1[i] + n35[i],
    });
    let b = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => l0[i] + 0.7 * n36[i],
        1 => 0.3 * l1[i] + n37[i],
        _ => n38[i],
    });
    (a, b)
}

#[test]
fn cca_correlations_match_scikit_learn() {
    let (a, b) = cca_data();
    let cca = Cca::fit(a.view(), b.view(), 2).unwrap();
    let want = [0.7794686983138497, 0.3100501497927426];
    for (got, want) in cca.correlations.iter().zip(want) {
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    }
    // The scores reproduce the correlations and are uncorrelated across components.
    let (za, zb) = (cca.transform_x(a.view()), cca.transform_y(b.view()));
    let corr = |x: ndarray::ArrayView1<f64>, y: ndarray::ArrayView1<f64>| {
        let (mx, my) = (x.mean().unwrap(), y.mean().unwrap());
        let cov: f64 = x.iter().zip(y).map(|(p, q)| (p - mx) * (q - my)).sum();
        let vx: f64 = x.iter().map(|p| (p - mx).powi(2)).sum();
        let vy: f64 = y.iter().map(|q| (q - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    };
    assert!((corr(za.column(0), zb.column(0)) - want[0]).abs() < 1e-9);
    assert!(corr(za.column(0), za.column(1)).abs() < 1e-9);
    // PC-CCA keeping every component is CCA, and its training codes are white.
    let config = PcCcaConfig {
        pcs_a: 4,
        pcs_b: 3,
        components: 2,
    };
    let fit = PcCca::fit(a.view(), b.view(), &config).unwrap();
    assert!((fit.correlations()[0] - want[0]).abs() < 1e-9);
    let z = fit.transform_a(a.view());
    let cov = z.t().dot(&z) / 99.0;
    assert!((cov[[0, 0]] - 1.0).abs() < 1e-9 && cov[[0, 1]].abs() < 1e-9);
}

#[test]
fn ks_test_matches_scipy() {
    let a = normals(41, 30);
    let b: Vec<f64> = normals(42, 45).iter().map(|v| v * 1.5 + 0.4).collect();
    let r = ks_two_sample(&a, &b).unwrap();
    assert!((r.statistic - 1.0 / 3.0).abs() < 1e-12);
    assert!(
        (r.p_value - 0.030566856379850134).abs() < 1e-6,
        "{}",
        r.p_value
    );
}

#[test]
fn nearest_distances_find_the_closest_reference() {
    let query = array![[0.0, 0.0], [5.0, 5.0]];
    let reference = array![[3.0, 4.0], [1.0, 0.0], [5.0, 6.0]];
    assert_eq!(
        nearest_distances(query.view(), reference.view()),
        vec![1.0, 1.0]
    );
}

#[test]
fn power_iteration_agrees_with_the_exact_eigensolver() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for trial in 0..50 {
        let d = 2 + trial % 6;
        let m = Array2::from_shape_simple_fn((d, d + 3), || rng.random_range(-1.0..1.0));
        let mut spd = m.dot(&m.t()) / (d + 3) as f64;
        for i in 0..d {
            spd[[i, i]] += 1e-3;
        }
        let (value, vector) = smallest_eigenpair(&spd, PowerIteration::default()).unwrap();
        let exact = Mat::<f64>::from_fn(d, d, |i, j| spd[[i, j]])
            .self_adjoint_eigenvalues(Side::Lower)
            .unwrap();
        assert!(
            (value - exact[0]).abs() < 1e-4,
            "trial {trial}: {value} vs {}",
            exact[0]
        );
        let residual = spd.dot(&vector) - &vector * value;
        assert!(residual.iter().all(|r| r.abs() < 1e-4), "trial {trial}");
    }
}
