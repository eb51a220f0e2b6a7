//! Element-wise loops of the dense engine ([`super`]), compiled for
//! the widest SIMD instruction set the CPU offers (AVX-512 or AVX2+FMA, chosen
//! at run time through `pulp`, the dispatcher faer itself uses).
//!
//! A plain `x86_64` build only assumes SSE2, so without this dispatch the
//! optimiser's update and the ELU ran at a quarter of the machine's width and
//! the activation called libm's scalar `expm1f` once per value. Every kernel
//! here is element-wise or reduces into a fixed number of lanes, and nothing
//! is contracted into fused multiply-adds, so the results are bit-for-bit the
//! same whichever instruction set runs them.

use pulp::Arch;

/// Lanes of the fixed-width partial sums in [`sum_of_squares`]; fixed, so the
/// rounding does not depend on the SIMD width.
const LANES: usize = 16;

/// `Σ vᵢ²`, accumulated in [`LANES`] partial sums (vectorisable, unlike a
/// sequential `f32` sum).
pub fn sum_of_squares(values: &[f32]) -> f32 {
    Arch::new().dispatch(|| {
        let mut acc = [0.0f32; LANES];
        let mut chunks = values.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (a, v) in acc.iter_mut().zip(chunk) {
                *a += v * v;
            }
        }
        for (a, v) in acc.iter_mut().zip(chunks.remainder()) {
            *a += v * v;
        }
        acc.iter().sum()
    })
}

/// Writes `scale · (p − t)` into `grad` and returns `Σ (p − t)²`, summed in
/// [`LANES`] `f64` partial sums.
pub fn squared_error(prediction: &[f32], target: &[f32], scale: f32, grad: &mut [f32]) -> f64 {
    Arch::new().dispatch(|| {
        let mut acc = [0.0f64; LANES];
        let add = |p: &[f32], t: &[f32], g: &mut [f32], acc: &mut [f64]| {
            for (((p, t), g), a) in p.iter().zip(t).zip(g.iter_mut()).zip(acc.iter_mut()) {
                let d = p - t;
                *g = scale * d;
                *a += f64::from(d * d);
            }
        };
        let mut p = prediction.chunks_exact(LANES);
        let mut t = target.chunks_exact(LANES);
        let mut g = grad.chunks_exact_mut(LANES);
        for ((p, t), g) in (&mut p).zip(&mut t).zip(&mut g) {
            add(p, t, g, &mut acc);
        }
        add(p.remainder(), t.remainder(), g.into_remainder(), &mut acc);
        acc.iter().sum()
    })
}

/// `expm1(x)` for `x ≤ 0` in `f32`, vectorisable: `x = k·ln2 + r` with
/// `|r| ≤ ln2/2`, `expm1(r)` from its Taylor series to `r⁹` (truncation error
/// below 1e-9 relative), then `expm1(x) = 2ᵏ·expm1(r) + (2ᵏ − 1)`. Below −87
/// the result is −1 in `f32`. Accurate to a few ulp (see the tests).
#[inline(always)]
fn expm1_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    let x = x.max(-87.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = r
        * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0
                            + r * (1.0 / 720.0
                                + r * (1.0 / 5040.0
                                    + r * (1.0 / 40_320.0 + r * (1.0 / 362_880.0)))))))));
    let scale = f32::from_bits(((k as i32 + 127) << 23) as u32);
    scale * p + (scale - 1.0)
}

/// The ELU (α = 1) in place: `v` for `v > 0`, else `exp(v) − 1`.
pub fn elu_in_place(values: &mut [f32]) {
    Arch::new().dispatch(|| {
        for v in values.iter_mut() {
            let negative = expm1_nonpositive(v.min(0.0));
            *v = if *v > 0.0 { *v } else { negative };
        }
    });
}

/// Multiplies `delta` by the ELU's derivative, read from the layer's output
/// `h`: 1 where `h > 0`, else `exp(z) = h + 1`.
pub fn elu_backward(delta: &mut [f32], output: &[f32]) {
    Arch::new().dispatch(|| {
        for (d, &h) in delta.iter_mut().zip(output) {
            *d *= if h > 0.0 { 1.0 } else { h + 1.0 };
        }
    });
}

/// `delta = d_output` times the ELU's derivative read from the layer's
/// output `h` (as [`elu_backward`] on a copy of `d_output`, in one pass).
pub fn elu_backward_into(delta: &mut [f32], d_output: &[f32], output: &[f32]) {
    Arch::new().dispatch(|| {
        for ((d, &g), &h) in delta.iter_mut().zip(d_output).zip(output) {
            *d = g * if h > 0.0 { 1.0 } else { h + 1.0 };
        }
    });
}

/// The ReLU in place: `max(v, 0)`.
pub fn relu_in_place(values: &mut [f32]) {
    Arch::new().dispatch(|| {
        for v in values.iter_mut() {
            *v = v.max(0.0);
        }
    });
}

/// Multiplies `delta` by the ReLU's derivative, read from the layer's output
/// `h`: 1 where `h > 0`, else 0.
pub fn relu_backward(delta: &mut [f32], output: &[f32]) {
    Arch::new().dispatch(|| {
        for (d, &h) in delta.iter_mut().zip(output) {
            *d = if h > 0.0 { *d } else { 0.0 };
        }
    });
}

/// Inverted dropout from precomputed draws: zeroes `values[i]` where
/// `draws[i] < threshold` and scales the rest by `keep`, without a branch
/// per element.
pub fn drop_below(values: &mut [f32], draws: &[u32], threshold: u32, keep: f32) {
    Arch::new().dispatch(|| {
        for (v, &d) in values.iter_mut().zip(draws) {
            let kept = *v * keep;
            *v = if d < threshold { 0.0 } else { kept };
        }
    });
}

/// `delta = d_output` where the layer's output `h > 0`, else 0 (as
/// [`relu_backward`] on a copy of `d_output`, in one pass).
pub fn relu_backward_into(delta: &mut [f32], d_output: &[f32], output: &[f32]) {
    Arch::new().dispatch(|| {
        for ((d, &g), &h) in delta.iter_mut().zip(d_output).zip(output) {
            *d = if h > 0.0 { g } else { 0.0 };
        }
    });
}

/// Adds every row of the row-major `rows` (rows of `sums.len()` values) into `sums`.
pub fn add_rows(sums: &mut [f32], rows: &[f32]) {
    Arch::new().dispatch(|| {
        for row in rows.chunks_exact(sums.len().max(1)) {
            for (s, v) in sums.iter_mut().zip(row) {
                *s += v;
            }
        }
    });
}

/// Adds `(v − mean)²` of every row of the row-major `rows` into `sums`,
/// column by column (`mean` and `sums` are one row wide).
pub fn add_squared_deviation_rows(sums: &mut [f32], rows: &[f32], mean: &[f32]) {
    Arch::new().dispatch(|| {
        for row in rows.chunks_exact(sums.len().max(1)) {
            for ((s, v), m) in sums.iter_mut().zip(row).zip(mean) {
                *s += (v - m) * (v - m);
            }
        }
    });
}

/// Adds `a ⊙ b` of every row of the row-major `a` and `b` into `sums`.
pub fn add_product_rows(sums: &mut [f32], a: &[f32], b: &[f32]) {
    let cols = sums.len().max(1);
    Arch::new().dispatch(|| {
        for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
            for ((s, x), y) in sums.iter_mut().zip(ra).zip(rb) {
                *s += x * y;
            }
        }
    });
}

/// `out = (x − mean) ⊙ inv_std` row by row (`mean` and `inv_std` one row wide).
pub fn normalise_rows(out: &mut [f32], x: &[f32], mean: &[f32], inv_std: &[f32]) {
    let cols = mean.len().max(1);
    Arch::new().dispatch(|| {
        for (o, row) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
            for (((o, v), m), s) in o.iter_mut().zip(row).zip(mean).zip(inv_std) {
                *o = (v - m) * s;
            }
        }
    });
}

/// The batch normalisation's input gradient row by row:
/// `dx = inv_std ⊙ (dy − sums / n − y ⊙ sums_y / n)`, where `sums` and
/// `sums_y` are the column sums of `dy` and `dy ⊙ y`.
pub fn batch_norm_input_gradient(
    dx: &mut [f32],
    dy: &[f32],
    y: &[f32],
    inv_std: &[f32],
    sums: &[f32],
    sums_y: &[f32],
    n: f32,
) {
    let cols = inv_std.len().max(1);
    Arch::new().dispatch(|| {
        for ((dx, dy), y) in dx
            .chunks_exact_mut(cols)
            .zip(dy.chunks_exact(cols))
            .zip(y.chunks_exact(cols))
        {
            for (((((dx, dy), y), s), sy), is) in dx
                .iter_mut()
                .zip(dy)
                .zip(y)
                .zip(sums)
                .zip(sums_y)
                .zip(inv_std)
            {
                *dx = is * (dy - s / n - y * sy / n);
            }
        }
    });
}

/// One Adam (tf.keras) update of a parameter slice with bias-corrected step
/// size `lr`: `g' = g + factor·w`, the moment updates, then
/// `w −= lr · m / (√v + eps)`.
#[derive(Debug, Clone, Copy)]
pub struct AdamUpdate {
    /// Bias-corrected learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to `√v`.
    pub eps: f32,
}

impl AdamUpdate {
    /// Applies the update to `w` with gradient `g` and moments `m`, `v`;
    /// `factor·w` is the gradient of the L2 and group-lasso penalties.
    pub fn apply(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], factor: f32) {
        let (b1, b2, lr, eps) = (self.beta1, self.beta2, self.lr, self.eps);
        Arch::new().dispatch(|| {
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g + factor * *w;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w -= lr * *m / (v.sqrt() + eps);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expm1_matches_f64_within_a_few_ulp() {
        let mut worst = 0.0f64;
        // A uniform grid over [-100, -1e-3], then a geometric one towards 0.
        let uniform = (0..=72_992).map(|i| -100.0 + 1.37e-3 * i as f32);
        let geometric = (0..2000).map(|i| -1e-3 * 0.97f32.powi(i));
        for x in uniform.chain(geometric) {
            let got = f64::from(expm1_nonpositive(x));
            let want = f64::from(x).exp_m1();
            let ulp = f64::from(f32::EPSILON) * want.abs().max(f64::from(f32::MIN_POSITIVE));
            worst = worst.max((got - want).abs() / ulp);
        }
        assert!(worst < 4.0, "worst error {worst} ulp");
        assert_eq!(expm1_nonpositive(0.0), 0.0);
        assert_eq!(expm1_nonpositive(-200.0), -1.0);
        assert_eq!(expm1_nonpositive(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn elu_and_its_derivative() {
        let mut v = vec![2.0f32, 0.0, -1.0, -30.0];
        elu_in_place(&mut v);
        assert_eq!(v[0], 2.0);
        assert_eq!(v[1], 0.0);
        assert!((f64::from(v[2]) - (-1.0f64).exp_m1()).abs() < 1e-7);
        assert!((f64::from(v[3]) + 1.0).abs() < 1e-7);
        let mut d = vec![3.0f32; 4];
        elu_backward(&mut d, &v);
        assert_eq!(d[0], 3.0);
        assert_eq!(d[1], 3.0);
        assert!((d[2] - 3.0 * (-1.0f32).exp()).abs() < 1e-6);
        let mut r = vec![2.0f32, 0.0, -1.0];
        relu_in_place(&mut r);
        assert_eq!(r, vec![2.0, 0.0, 0.0]);
        let mut d = vec![3.0f32; 3];
        relu_backward(&mut d, &r);
        assert_eq!(d, vec![3.0, 0.0, 0.0]);
    }

    #[test]
    fn sums_match_sequential_f64() {
        let values: Vec<f32> = (0..1003)
            .map(|i| ((i * 37) % 101) as f32 / 17.0 - 3.0)
            .collect();
        let want: f64 = values.iter().map(|v| f64::from(*v).powi(2)).sum();
        assert!((f64::from(sum_of_squares(&values)) - want).abs() < 1e-4 * want);
        let mut sums = vec![0.0f32; 3];
        add_rows(&mut sums, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(sums, vec![5.0, 7.0, 9.0]);
    }

    #[test]
    fn adam_update_matches_the_formula() {
        let update = AdamUpdate {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        };
        let (mut w, mut m, mut v) = (vec![1.0f32], vec![0.0f32], vec![0.0f32]);
        update.apply(&mut w, &[0.5], &mut m, &mut v, 0.2);
        let g: f64 = 0.5 + 0.2 * 1.0;
        // The decays as the f32 update sees them (1 − 0.999 is not 0.001 in f32).
        let (b1, b2) = (f64::from(0.9f32), f64::from(0.999f32));
        let (m1, v1) = ((1.0 - b1) * g, (1.0 - b2) * g * g);
        let want = 1.0 - 0.1 * m1 / (v1.sqrt() + 1e-7);
        assert!((f64::from(w[0]) - want).abs() < 1e-6);
        assert!((f64::from(m[0]) - m1).abs() < 1e-7);
    }
}
