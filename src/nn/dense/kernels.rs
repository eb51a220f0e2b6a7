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

use pulp::{Arch, Simd, WithSimd};

/// Lanes of the fixed-width partial sums in [`sum_of_squares`]; fixed, so the
/// rounding does not depend on the SIMD width.
const LANES: usize = 16;

/// An element-wise kernel's loop, for [`dispatch`].
trait Kernel<A> {
    /// The loop over `args`.
    fn run(args: A);
}

/// Runs `K::run(args)` in pulp's dispatch, compiled for the instruction set
/// it picks: `run` is `#[inline(always)]` and called directly from the
/// dispatched function. (A closure passed to `dispatch` may stay out of
/// line and then compiles for SSE2 only: perf found `normal_pairs`' loop
/// running four lanes wide on an AVX-512 machine.)
#[inline(always)]
fn dispatch<K: Kernel<A>, A>(args: A) {
    struct Dispatched<K, A>(A, std::marker::PhantomData<K>);
    impl<K: Kernel<A>, A> WithSimd for Dispatched<K, A> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) {
            K::run(self.0);
        }
    }
    Arch::new().dispatch(Dispatched::<K, A>(args, std::marker::PhantomData));
}

/// `Σ vᵢ²`, accumulated in [`LANES`] partial sums (vectorisable, unlike a
/// sequential `f32` sum).
pub fn sum_of_squares(values: &[f32]) -> f32 {
    struct Op<'a>(&'a [f32]);
    impl WithSimd for Op<'_> {
        type Output = f32;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> f32 {
            lane_sum_of_squares(self.0)
        }
    }
    Arch::new().dispatch(Op(values))
}

/// The body of [`sum_of_squares`], inlined into the caller's SIMD context
/// (a closure passed to `dispatch` may stay out of line and so compile
/// without the SIMD instruction set: perf found this sum running on SSE).
#[inline(always)]
fn lane_sum_of_squares(values: &[f32]) -> f32 {
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
}

/// Writes `scale · (p − t)` into `grad` and returns `Σ (p − t)²`, summed in
/// [`LANES`] `f64` partial sums.
pub fn squared_error(prediction: &[f32], target: &[f32], scale: f32, grad: &mut [f32]) -> f64 {
    struct Op<'a> {
        prediction: &'a [f32],
        target: &'a [f32],
        scale: f32,
        grad: &'a mut [f32],
    }
    impl WithSimd for Op<'_> {
        type Output = f64;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> f64 {
            let scale = self.scale;
            let mut acc = [0.0f64; LANES];
            let add = |p: &[f32], t: &[f32], g: &mut [f32], acc: &mut [f64]| {
                for (((p, t), g), a) in p.iter().zip(t).zip(g.iter_mut()).zip(acc.iter_mut()) {
                    let d = p - t;
                    *g = scale * d;
                    *a += f64::from(d * d);
                }
            };
            let mut p = self.prediction.chunks_exact(LANES);
            let mut t = self.target.chunks_exact(LANES);
            let mut g = self.grad.chunks_exact_mut(LANES);
            for ((p, t), g) in (&mut p).zip(&mut t).zip(&mut g) {
                add(p, t, g, &mut acc);
            }
            add(p.remainder(), t.remainder(), g.into_remainder(), &mut acc);
            acc.iter().sum()
        }
    }
    Arch::new().dispatch(Op {
        prediction,
        target,
        scale,
        grad,
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

/// `exp(x)` in `f32`, vectorisable: `x = k·ln2 + r` with `|r| ≤ ln2/2`,
/// `exp(r)` from its Taylor series to `r⁷` (truncation below 6e-9
/// relative), scaled by `2ᵏ` in two halves so that results underflow to
/// subnormals and 0 and overflow to infinity as `f32` does. NaN stays NaN.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer
    let x = x.clamp(-104.0, 89.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let k = k as i32;
    let half = k >> 1;
    let first = f32::from_bits(((half + 127) << 23) as u32);
    let second = f32::from_bits(((k - half + 127) << 23) as u32);
    p * first * second
}

/// `ln(x)` for a positive, normal, finite `f32`, vectorisable: `x = 2ᵉ·m`
/// with `m ∈ [√½, √2)`, then `ln m = 2 atanh(s)`, `s = (m − 1)/(m + 1)`,
/// from its series to `s⁹` (`|s| < 0.172`: truncation below 1e-9).
#[inline(always)]
fn ln_normal(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let bits = x.to_bits();
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = (if big { e + 1 } else { e }) as f32;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let series =
        2.0 * s * (1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0)))));
    e * LN2_HI + (e * LN2_LO + series)
}

/// `ln(x)` in `f32` for any input: [`ln_normal`], with subnormals scaled up
/// first, `ln 0 = −∞`, `ln ∞ = ∞` and NaN for negative inputs and NaN.
#[inline(always)]
fn ln_f32(x: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    const LN_TWO_23: f32 = 15.942_385;
    let tiny = x < f32::MIN_POSITIVE;
    let scaled = ln_normal(if tiny { x * TWO_23 } else { x });
    let value = if tiny { scaled - LN_TWO_23 } else { scaled };
    if x > 0.0 && x < f32::INFINITY {
        value
    } else if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        f32::NAN
    }
}

/// `exp` of every value, in place (within 2 ulp of the exact result for
/// normal outputs, see the tests).
pub fn exp_in_place(values: &mut [f32]) {
    struct Body;
    impl Kernel<&mut [f32]> for Body {
        #[inline(always)]
        fn run(values: &mut [f32]) {
            for v in values.iter_mut() {
                *v = exp_f32(*v);
            }
        }
    }
    dispatch::<Body, _>(values);
}

/// `out = ln(x + shift)` element by element (within 2 ulp of the rounded
/// sum's logarithm; `ln 0 = −∞`, NaN below 0).
pub fn ln_shifted(out: &mut [f32], x: &[f32], shift: f32) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32], f32)> for Body {
        #[inline(always)]
        fn run((out, x, shift): (&mut [f32], &[f32], f32)) {
            for (o, v) in out.iter_mut().zip(x) {
                *o = ln_f32(v + shift);
            }
        }
    }
    dispatch::<Body, _>((out, x, shift));
}

/// `1 / 2²⁴`: the spacing of the 24-bit uniform draws below.
const UNIT_24: f32 = 1.0 / 16_777_216.0;

/// Standard Gumbel draws `−ln(−ln u)` in place of uniform draws `u ∈ (0, 1)`.
pub fn gumbel_from_uniform(values: &mut [f32]) {
    struct Body;
    impl Kernel<&mut [f32]> for Body {
        #[inline(always)]
        fn run(values: &mut [f32]) {
            for v in values.iter_mut() {
                *v = -ln_normal(-ln_normal(*v));
            }
        }
    }
    dispatch::<Body, _>(values);
}

/// Standard normal pairs by the Box–Muller transform from 32-bit draws
/// (their top 24 bits each): `u = 1 − a/2²⁴ ∈ (0, 1]` (exact in `f32`),
/// `θ = 2π (b/2²⁴ − ½) ∈ [−π, π)`, `first[i] = √(−2 ln u)·cos θ` and
/// `second[i] = √(−2 ln u)·sin θ`. `sin` and `cos` of `θ/2` come from their
/// Taylor series (to `x¹¹` and `x¹²`, truncation below 6e-8) and are
/// doubled by the angle formulas.
/// The largest magnitude is `√(2 ln 2²⁴) ≈ 5.8`.
pub fn normal_pairs(first: &mut [f32], second: &mut [f32], a: &[u32], b: &[u32]) {
    struct Body;
    impl Kernel<(&mut [f32], &mut [f32], &[u32], &[u32])> for Body {
        #[inline(always)]
        fn run((first, second, a, b): (&mut [f32], &mut [f32], &[u32], &[u32])) {
            for (((c, s), &a), &b) in first.iter_mut().zip(second.iter_mut()).zip(a).zip(b) {
                let u = 1.0 - (a >> 8) as f32 * UNIT_24;
                let radius = (-2.0 * ln_normal(u)).sqrt();
                let half = std::f32::consts::PI * ((b >> 8) as f32 * UNIT_24 - 0.5);
                let z = half * half;
                let sin = half
                    * (1.0
                        - z * (1.0 / 6.0
                            - z * (1.0 / 120.0
                                - z * (1.0 / 5040.0
                                    - z * (1.0 / 362_880.0 - z * (1.0 / 39_916_800.0))))));
                let cos = 1.0
                    - z * (0.5
                        - z * (1.0 / 24.0
                            - z * (1.0 / 720.0
                                - z * (1.0 / 40_320.0
                                    - z * (1.0 / 3_628_800.0 - z * (1.0 / 479_001_600.0))))));
                *c = radius * (cos * cos - sin * sin);
                *s = radius * (2.0 * sin * cos);
            }
        }
    }
    dispatch::<Body, _>((first, second, a, b));
}

/// `values += scale · noise`, element by element.
pub fn add_scaled(values: &mut [f32], noise: &[f32], scale: f32) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32], f32)> for Body {
        #[inline(always)]
        fn run((values, noise, scale): (&mut [f32], &[f32], f32)) {
            for (v, n) in values.iter_mut().zip(noise) {
                *v += scale * n;
            }
        }
    }
    dispatch::<Body, _>((values, noise, scale));
}

/// The ELU (α = 1) in place: `v` for `v > 0`, else `exp(v) − 1`.
pub fn elu_in_place(values: &mut [f32]) {
    struct Body;
    impl Kernel<&mut [f32]> for Body {
        #[inline(always)]
        fn run(values: &mut [f32]) {
            for v in values.iter_mut() {
                let negative = expm1_nonpositive(v.min(0.0));
                *v = if *v > 0.0 { *v } else { negative };
            }
        }
    }
    dispatch::<Body, _>(values);
}

/// Multiplies `delta` by the ELU's derivative, read from the layer's output
/// `h`: 1 where `h > 0`, else `exp(z) = h + 1`.
pub fn elu_backward(delta: &mut [f32], output: &[f32]) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32])> for Body {
        #[inline(always)]
        fn run((delta, output): (&mut [f32], &[f32])) {
            for (d, &h) in delta.iter_mut().zip(output) {
                *d *= if h > 0.0 { 1.0 } else { h + 1.0 };
            }
        }
    }
    dispatch::<Body, _>((delta, output));
}

/// `delta = d_output` times the ELU's derivative read from the layer's
/// output `h` (as [`elu_backward`] on a copy of `d_output`, in one pass).
pub fn elu_backward_into(delta: &mut [f32], d_output: &[f32], output: &[f32]) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32], &[f32])> for Body {
        #[inline(always)]
        fn run((delta, d_output, output): (&mut [f32], &[f32], &[f32])) {
            for ((d, &g), &h) in delta.iter_mut().zip(d_output).zip(output) {
                *d = g * if h > 0.0 { 1.0 } else { h + 1.0 };
            }
        }
    }
    dispatch::<Body, _>((delta, d_output, output));
}

/// The ReLU in place: `max(v, 0)`.
pub fn relu_in_place(values: &mut [f32]) {
    struct Body;
    impl Kernel<&mut [f32]> for Body {
        #[inline(always)]
        fn run(values: &mut [f32]) {
            for v in values.iter_mut() {
                *v = v.max(0.0);
            }
        }
    }
    dispatch::<Body, _>(values);
}

/// Multiplies `delta` by the ReLU's derivative, read from the layer's output
/// `h`: 1 where `h > 0`, else 0.
pub fn relu_backward(delta: &mut [f32], output: &[f32]) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32])> for Body {
        #[inline(always)]
        fn run((delta, output): (&mut [f32], &[f32])) {
            for (d, &h) in delta.iter_mut().zip(output) {
                *d = if h > 0.0 { *d } else { 0.0 };
            }
        }
    }
    dispatch::<Body, _>((delta, output));
}

/// Inverted dropout from precomputed draws: zeroes `values[i]` where
/// `draws[i] < threshold` and scales the rest by `keep`, without a branch
/// per element.
pub fn drop_below(values: &mut [f32], draws: &[u32], threshold: u32, keep: f32) {
    struct Body;
    impl Kernel<(&mut [f32], &[u32], u32, f32)> for Body {
        #[inline(always)]
        fn run((values, draws, threshold, keep): (&mut [f32], &[u32], u32, f32)) {
            for (v, &d) in values.iter_mut().zip(draws) {
                let kept = *v * keep;
                *v = if d < threshold { 0.0 } else { kept };
            }
        }
    }
    dispatch::<Body, _>((values, draws, threshold, keep));
}

/// `delta = d_output` where the layer's output `h > 0`, else 0 (as
/// [`relu_backward`] on a copy of `d_output`, in one pass).
pub fn relu_backward_into(delta: &mut [f32], d_output: &[f32], output: &[f32]) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32], &[f32])> for Body {
        #[inline(always)]
        fn run((delta, d_output, output): (&mut [f32], &[f32], &[f32])) {
            for ((d, &g), &h) in delta.iter_mut().zip(d_output).zip(output) {
                *d = if h > 0.0 { g } else { 0.0 };
            }
        }
    }
    dispatch::<Body, _>((delta, d_output, output));
}

/// Adds every row of the row-major `rows` (rows of `sums.len()` values) into `sums`.
pub fn add_rows(sums: &mut [f32], rows: &[f32]) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32])> for Body {
        #[inline(always)]
        fn run((sums, rows): (&mut [f32], &[f32])) {
            for row in rows.chunks_exact(sums.len().max(1)) {
                for (s, v) in sums.iter_mut().zip(row) {
                    *s += v;
                }
            }
        }
    }
    dispatch::<Body, _>((sums, rows));
}

/// Adds `(v − mean)²` of every row of the row-major `rows` into `sums`,
/// column by column (`mean` and `sums` are one row wide).
pub fn add_squared_deviation_rows(sums: &mut [f32], rows: &[f32], mean: &[f32]) {
    struct Body;
    impl Kernel<(&mut [f32], &[f32], &[f32])> for Body {
        #[inline(always)]
        fn run((sums, rows, mean): (&mut [f32], &[f32], &[f32])) {
            for row in rows.chunks_exact(sums.len().max(1)) {
                for ((s, v), m) in sums.iter_mut().zip(row).zip(mean) {
                    *s += (v - m) * (v - m);
                }
            }
        }
    }
    dispatch::<Body, _>((sums, rows, mean));
}

/// Adds `a ⊙ b` of every row of the row-major `a` and `b` into `sums`.
pub fn add_product_rows(sums: &mut [f32], a: &[f32], b: &[f32]) {
    let cols = sums.len().max(1);
    struct Body;
    impl Kernel<(&mut [f32], &[f32], &[f32], usize)> for Body {
        #[inline(always)]
        fn run((sums, a, b, cols): (&mut [f32], &[f32], &[f32], usize)) {
            for (ra, rb) in a.chunks_exact(cols).zip(b.chunks_exact(cols)) {
                for ((s, x), y) in sums.iter_mut().zip(ra).zip(rb) {
                    *s += x * y;
                }
            }
        }
    }
    dispatch::<Body, _>((sums, a, b, cols));
}

/// `out = (x − mean) ⊙ inv_std` row by row (`mean` and `inv_std` one row wide).
pub fn normalise_rows(out: &mut [f32], x: &[f32], mean: &[f32], inv_std: &[f32]) {
    let cols = mean.len().max(1);
    struct Body;
    impl Kernel<(&mut [f32], &[f32], &[f32], &[f32], usize)> for Body {
        #[inline(always)]
        fn run((out, x, mean, inv_std, cols): (&mut [f32], &[f32], &[f32], &[f32], usize)) {
            for (o, row) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
                for (((o, v), m), s) in o.iter_mut().zip(row).zip(mean).zip(inv_std) {
                    *o = (v - m) * s;
                }
            }
        }
    }
    dispatch::<Body, _>((out, x, mean, inv_std, cols));
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
    struct Body;
    impl
        Kernel<(
            &mut [f32],
            &[f32],
            &[f32],
            &[f32],
            &[f32],
            &[f32],
            f32,
            usize,
        )> for Body
    {
        #[inline(always)]
        fn run(
            (dx, dy, y, inv_std, sums, sums_y, n, cols): (
                &mut [f32],
                &[f32],
                &[f32],
                &[f32],
                &[f32],
                &[f32],
                f32,
                usize,
            ),
        ) {
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
        }
    }
    dispatch::<Body, _>((dx, dy, y, inv_std, sums, sums_y, n, cols));
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

/// The penalties whose gradient [`AdamUpdate::apply_rows`] adds row by row.
#[derive(Debug, Clone, Copy)]
pub struct RowPenalties {
    /// `l2 Σ w²` on every weight.
    pub l2: f32,
    /// Group lasso `λ Σ_g ‖W[g, :]‖` on the rows (0 for none).
    pub lasso: f32,
    /// Added inside the group-lasso square root.
    pub eps: f32,
}

impl AdamUpdate {
    /// Applies the update to `w` with gradient `g` and moments `m`, `v`;
    /// `factor·w` is the gradient of the L2 and group-lasso penalties.
    pub fn apply(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], factor: f32) {
        struct Op<'a> {
            update: AdamUpdate,
            w: &'a mut [f32],
            g: &'a [f32],
            m: &'a mut [f32],
            v: &'a mut [f32],
            factor: f32,
        }
        impl WithSimd for Op<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                self.update
                    .lanes(self.w, self.g, self.m, self.v, self.factor);
            }
        }
        Arch::new().dispatch(Op {
            update: *self,
            w,
            g,
            m,
            v,
            factor,
        });
    }

    /// [`AdamUpdate::apply`] on every `cols`-wide row of a weight, each with
    /// the penalties' gradient from its own values: `factor = 2·l2 +
    /// lasso/‖row‖`, where `‖row‖ = √(Σ w² + eps)` (no lasso term for a zero
    /// norm). Adds each row's penalty values (`l2 Σ w²`, then `lasso ‖row‖`)
    /// to `penalty`, row after row, and runs in one SIMD dispatch.
    #[allow(clippy::too_many_arguments)] // the update's slices and the penalties
    pub fn apply_rows(
        &self,
        w: &mut [f32],
        g: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        cols: usize,
        penalties: RowPenalties,
        penalty: &mut f32,
    ) {
        struct Op<'a> {
            update: AdamUpdate,
            w: &'a mut [f32],
            g: &'a [f32],
            m: &'a mut [f32],
            v: &'a mut [f32],
            cols: usize,
            penalties: RowPenalties,
            penalty: &'a mut f32,
        }
        impl WithSimd for Op<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, _: S) {
                let RowPenalties { l2, lasso, eps } = self.penalties;
                let l2_factor = 2.0 * l2;
                let cols = self.cols.max(1);
                for (((w, g), m), v) in self
                    .w
                    .chunks_exact_mut(cols)
                    .zip(self.g.chunks_exact(cols))
                    .zip(self.m.chunks_exact_mut(cols))
                    .zip(self.v.chunks_exact_mut(cols))
                {
                    let sq = lane_sum_of_squares(w);
                    *self.penalty += l2 * sq;
                    let mut factor = l2_factor;
                    if lasso > 0.0 {
                        let norm = (sq + eps).sqrt();
                        *self.penalty += lasso * norm;
                        if norm > 0.0 {
                            factor += lasso / norm;
                        }
                    }
                    self.update.lanes(w, g, m, v, factor);
                }
            }
        }
        Arch::new().dispatch(Op {
            update: *self,
            w,
            g,
            m,
            v,
            cols,
            penalties,
            penalty,
        });
    }

    /// The element-wise update, inlined into the caller's SIMD context.
    #[inline(always)]
    fn lanes(&self, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], factor: f32) {
        let (b1, b2, lr, eps) = (self.beta1, self.beta2, self.lr, self.eps);
        for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = g + factor * *w;
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *w -= lr * *m / (v.sqrt() + eps);
        }
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

    /// The worst error of `f` against `want` in units of the `f32` spacing
    /// at the exact result.
    fn worst_ulp(
        inputs: impl Iterator<Item = f32>,
        f: fn(f32) -> f32,
        want: fn(f64) -> f64,
    ) -> f64 {
        let mut worst = 0.0f64;
        for x in inputs {
            let exact = want(f64::from(x));
            let ulp = f64::from(f32::EPSILON) * exact.abs().max(f64::from(f32::MIN_POSITIVE));
            worst = worst.max((f64::from(f(x)) - exact).abs() / ulp);
        }
        worst
    }

    #[test]
    fn exp_matches_f64_within_two_ulp() {
        let grid = (0..=200_000).map(|i| -87.0 + 8.775e-4 * i as f32);
        assert!(worst_ulp(grid, exp_f32, f64::exp) < 2.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(-200.0), 0.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(89.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
        // Subnormal results keep their magnitude (e^-100 ≈ 3.7e-44).
        let tiny = f64::from(exp_f32(-100.0));
        assert!((tiny - (-100.0f64).exp()).abs() < 2e-45, "{tiny}");
    }

    #[test]
    fn ln_matches_f64_within_two_ulp() {
        let fine = (1..=100_000).map(|i| 0.5 + 1e-5 * i as f32);
        let wide = (0..4000).map(|i| 1e-37 * 1.0219f32.powi(i));
        assert!(worst_ulp(fine.chain(wide), ln_f32, f64::ln) < 2.0);
        assert_eq!(ln_f32(1.0), 0.0);
        assert_eq!(ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32(-1.0).is_nan() && ln_f32(f32::NAN).is_nan());
        let subnormal = f32::from_bits(1000);
        let want = f64::from(subnormal).ln();
        assert!((f64::from(ln_f32(subnormal)) - want).abs() < 1e-5 * want.abs());
        let mut v = vec![0.0f32; 3];
        ln_shifted(&mut v, &[0.5, std::f32::consts::E - 0.5, -0.5], 0.5);
        assert_eq!(v[0], 0.0);
        assert!((v[1] - 1.0).abs() < 1e-7 && v[2] == f32::NEG_INFINITY);
        exp_in_place(&mut v);
        assert!((v[1] - std::f32::consts::E).abs() < 1e-6 && v[2] == 0.0);
    }

    #[test]
    fn box_muller_pairs_match_the_f64_formula() {
        let draws: Vec<(u32, u32)> = (0..5000u64)
            .map(|i| {
                let a = (i.wrapping_mul(2_654_435_761) % (1 << 32)) as u32;
                let b = (i.wrapping_mul(40_503).wrapping_add(17) % (1 << 32)) as u32;
                (a, b)
            })
            .chain([
                (0, 0),
                (u32::MAX, u32::MAX),
                (0, 1 << 31),
                (u32::MAX, 1 << 30),
            ])
            .collect();
        let (a, b): (Vec<u32>, Vec<u32>) = draws.iter().copied().unzip();
        let (mut c, mut s) = (vec![0.0f32; a.len()], vec![0.0f32; a.len()]);
        normal_pairs(&mut c, &mut s, &a, &b);
        for (i, (&a, &b)) in a.iter().zip(&b).enumerate() {
            let u = 1.0 - (a >> 8) as f64 / 16_777_216.0;
            let theta = 2.0 * std::f64::consts::PI * ((b >> 8) as f64 / 16_777_216.0 - 0.5);
            let r = (-2.0 * u.ln()).sqrt();
            assert!(
                (f64::from(c[i]) - r * theta.cos()).abs() < 2e-6 * (1.0 + r),
                "{i}"
            );
            assert!(
                (f64::from(s[i]) - r * theta.sin()).abs() < 2e-6 * (1.0 + r),
                "{i}"
            );
        }
        assert!(c.iter().chain(&s).all(|v| v.abs() < 5.8));
    }

    #[test]
    fn gumbel_matches_the_f64_formula() {
        let u: Vec<f32> = (1..1000)
            .map(|i| i as f32 / 1000.0)
            .chain([f32::MIN_POSITIVE, 1.0 - f32::EPSILON])
            .collect();
        let mut g = u.clone();
        gumbel_from_uniform(&mut g);
        for (u, g) in u.iter().zip(&g) {
            let want = -(-f64::from(*u).ln()).ln();
            assert!(
                (f64::from(*g) - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{u}: {g} vs {want}"
            );
        }
    }

    /// The same bits, or both NaN.
    fn same(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    #[test]
    fn dispatched_kernels_are_bitwise_their_scalar_loops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let specials = [
            0.0f32,
            -0.0,
            1e-40,
            -1e-40,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -90.0,
            88.0,
            1.0,
            -1.0,
        ];
        // Empty, shorter than a vector, exact vectors, ragged tails.
        for len in [0usize, 1, 7, 16, 17, 33, 1003] {
            let x: Vec<f32> = (0..len)
                .map(|i| match i % 5 {
                    0 => specials[(i / 5) % specials.len()],
                    _ => rng.random_range(-6.0f32..6.0),
                })
                .collect();
            let y: Vec<f32> = (0..len).map(|_| rng.random_range(-3.0f32..3.0)).collect();
            let u: Vec<f32> = (0..len).map(|_| rng.random_range(1e-7f32..1.0)).collect();
            let bits: Vec<u32> = (0..len).map(|_| rng.random()).collect();
            let bits2: Vec<u32> = (0..len).map(|_| rng.random()).collect();
            let map = |f: &dyn Fn(f32, f32) -> f32| -> Vec<f32> {
                x.iter().zip(&y).map(|(&a, &b)| f(a, b)).collect()
            };

            let mut got = x.clone();
            exp_in_place(&mut got);
            assert!(same(&got, &map(&|a, _| exp_f32(a))), "exp, {len}");
            let mut got = vec![0.0; len];
            ln_shifted(&mut got, &x, 0.25);
            assert!(same(&got, &map(&|a, _| ln_f32(a + 0.25))), "ln, {len}");
            let mut got = u.clone();
            gumbel_from_uniform(&mut got);
            let want: Vec<f32> = u.iter().map(|&v| -ln_normal(-ln_normal(v))).collect();
            assert!(same(&got, &want), "gumbel, {len}");
            let (mut c, mut s) = (vec![0.0; len], vec![0.0; len]);
            normal_pairs(&mut c, &mut s, &bits, &bits2);
            for i in 0..len {
                let (mut c1, mut s1) = ([0.0f32], [0.0f32]);
                normal_pairs(&mut c1, &mut s1, &bits[i..=i], &bits2[i..=i]);
                assert!(
                    same(&[c[i], s[i]], &[c1[0], s1[0]]),
                    "normal pair {i} of {len}"
                );
            }
            let mut got = x.clone();
            add_scaled(&mut got, &y, 0.3);
            assert!(same(&got, &map(&|a, b| a + 0.3 * b)), "add_scaled, {len}");
            let mut got = x.clone();
            elu_in_place(&mut got);
            let elu = |a: f32| {
                let negative = expm1_nonpositive(a.min(0.0));
                if a > 0.0 { a } else { negative }
            };
            assert!(same(&got, &map(&|a, _| elu(a))), "elu, {len}");
            let elu_grad = |g: f32, h: f32| g * if h > 0.0 { 1.0 } else { h + 1.0 };
            let mut got = y.clone();
            elu_backward(&mut got, &x);
            assert!(
                same(&got, &map(&|a, b| elu_grad(b, a))),
                "elu backward, {len}"
            );
            let mut got = vec![0.0; len];
            elu_backward_into(&mut got, &y, &x);
            assert!(
                same(&got, &map(&|a, b| elu_grad(b, a))),
                "elu backward into, {len}"
            );
            let mut got = x.clone();
            relu_in_place(&mut got);
            assert!(same(&got, &map(&|a, _| a.max(0.0))), "relu, {len}");
            let relu_grad = |g: f32, h: f32| if h > 0.0 { g } else { 0.0 };
            let mut got = y.clone();
            relu_backward(&mut got, &x);
            assert!(
                same(&got, &map(&|a, b| relu_grad(b, a))),
                "relu backward, {len}"
            );
            let mut got = vec![0.0; len];
            relu_backward_into(&mut got, &y, &x);
            assert!(
                same(&got, &map(&|a, b| relu_grad(b, a))),
                "relu backward into, {len}"
            );
            let mut got = x.clone();
            drop_below(&mut got, &bits, 1 << 31, 2.0);
            let want: Vec<f32> = x
                .iter()
                .zip(&bits)
                .map(|(&v, &d)| if d < 1 << 31 { 0.0 } else { v * 2.0 })
                .collect();
            assert!(same(&got, &want), "dropout, {len}");

            // Row-wise kernels on rows of `cols`.
            for cols in [1usize, 7, 16, 17] {
                let n = len / cols * cols;
                let (a, b) = (&y[..n], &u[..n]);
                let mean: Vec<f32> = (0..cols).map(|c| 0.1 * c as f32 - 0.4).collect();
                let inv: Vec<f32> = (0..cols).map(|c| 1.0 + 0.05 * c as f32).collect();
                let column = |f: &dyn Fn(usize, usize) -> f32| -> Vec<f32> {
                    let mut sums = vec![0.5f32; cols];
                    for r in 0..n / cols {
                        for (c, s) in sums.iter_mut().enumerate() {
                            *s += f(r, c);
                        }
                    }
                    sums
                };
                let mut got = vec![0.5f32; cols];
                add_rows(&mut got, a);
                assert!(same(&got, &column(&|r, c| a[r * cols + c])), "add_rows");
                let mut got = vec![0.5f32; cols];
                add_squared_deviation_rows(&mut got, a, &mean);
                let want = column(&|r, c| {
                    let d = a[r * cols + c] - mean[c];
                    d * d
                });
                assert!(same(&got, &want), "add_squared_deviation_rows");
                let mut got = vec![0.5f32; cols];
                add_product_rows(&mut got, a, b);
                let want = column(&|r, c| a[r * cols + c] * b[r * cols + c]);
                assert!(same(&got, &want), "add_product_rows");
                let mut got = vec![0.0; n];
                normalise_rows(&mut got, a, &mean, &inv);
                let want: Vec<f32> = (0..n)
                    .map(|i| (a[i] - mean[i % cols]) * inv[i % cols])
                    .collect();
                assert!(same(&got, &want), "normalise_rows");
                let mut got = vec![0.0; n];
                batch_norm_input_gradient(&mut got, a, b, &inv, &mean, &inv, 3.0);
                let want: Vec<f32> = (0..n)
                    .map(|i| {
                        let c = i % cols;
                        inv[c] * (a[i] - mean[c] / 3.0 - b[i] * inv[c] / 3.0)
                    })
                    .collect();
                assert!(same(&got, &want), "batch_norm_input_gradient");
            }
        }
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
    fn the_row_update_is_bitwise_the_update_of_each_row_with_its_penalty() {
        let update = AdamUpdate {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        };
        let (rows, cols) = (7, 37);
        let value = |i: usize, scale: f32| ((i * 7919 % 211) as f32 / 105.0 - 1.0) * scale;
        let w0: Vec<f32> = (0..rows * cols).map(|i| value(i, 0.3)).collect();
        let g: Vec<f32> = (0..rows * cols).map(|i| value(i + 5, 0.01)).collect();
        let m0: Vec<f32> = (0..rows * cols).map(|i| value(i + 11, 0.001)).collect();
        let v0: Vec<f32> = (0..rows * cols).map(|i| value(i + 3, 1e-5).abs()).collect();
        let penalties = RowPenalties {
            l2: 1e-4,
            lasso: 0.1,
            eps: 1e-12,
        };
        // Row by row with the separate kernels, as the optimiser did before.
        let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
        let mut want = 0.5f32;
        for (((w, g), m), v) in w
            .chunks_exact_mut(cols)
            .zip(g.chunks_exact(cols))
            .zip(m.chunks_exact_mut(cols))
            .zip(v.chunks_exact_mut(cols))
        {
            let sq = sum_of_squares(w);
            want += penalties.l2 * sq;
            let norm = (sq + penalties.eps).sqrt();
            want += penalties.lasso * norm;
            update.apply(w, g, m, v, 2.0 * penalties.l2 + penalties.lasso / norm);
        }
        let (mut w2, mut m2, mut v2) = (w0, m0, v0);
        let mut got = 0.5f32;
        update.apply_rows(&mut w2, &g, &mut m2, &mut v2, cols, penalties, &mut got);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&w), bits(&w2));
        assert_eq!(bits(&m), bits(&m2));
        assert_eq!(bits(&v), bits(&v2));
        assert_eq!(want.to_bits(), got.to_bits());
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
