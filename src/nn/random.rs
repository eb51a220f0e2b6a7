//! Layers that draw random numbers: dropout, additive Gaussian noise and
//! Gumbel-softmax sampling. All randomness comes from the caller's seeded
//! `ChaCha8Rng`, never from the backend, so a run is reproducible from its seed.
//!
//! A layer's draws (a mask or noise per element, 10⁵–10⁶ per mini-batch) come
//! from a xoshiro256++ generator seeded from the caller's stream: per element
//! it costs a fraction of a ChaCha draw, which made the random layers a third
//! of the mixVAE's time on the training thread. Gaussian noise is made from
//! those draws by a vectorised Box–Muller transform
//! ([`dense::kernels::normal_pairs`]), several times faster than a
//! per-element ziggurat.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::NnError;
use super::dense;
use super::layers::Mode;
use super::var::Var;

/// Inverted dropout: in [`Mode::Train`] zeroes each element with probability
/// `rate` and scales the survivors by `1 / (1 − rate)`; identity in [`Mode::Eval`].
pub fn dropout(x: Var, rate: f32, mode: Mode, rng: &mut ChaCha8Rng) -> Result<Var, NnError> {
    check_rate(rate)?;
    if mode == Mode::Eval || rate == 0.0 {
        return Ok(x);
    }
    let (r, c) = x.shape();
    let mut mask = vec![1.0f32; r * c];
    dropout_in_place(&mut mask, rate, rng)?;
    let mask = Var::from_vec(&x.device(), r, c, mask)?;
    x.mul(mask)
}

/// Inverted dropout on host values, in place: each value is zeroed with
/// probability `rate` and the survivors are scaled by `1 / (1 − rate)`.
/// For inputs that need no gradient this spares a tensor operation.
pub fn dropout_in_place(
    values: &mut [f32],
    rate: f32,
    rng: &mut ChaCha8Rng,
) -> Result<(), NnError> {
    dropout_blocks(values.len(), rate, rng, |range, draws, threshold, keep| {
        dense::kernels::drop_below(&mut values[range], draws, threshold, keep);
    })
}

/// [`dropout_in_place`] on a copy of `source` written into `out` (resized
/// to it), with the same draws: the copy is made block by block as the
/// mask is applied, sparing a separate pass over the values.
pub fn dropout_copy(
    source: &[f32],
    rate: f32,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<f32>,
) -> Result<(), NnError> {
    check_rate(rate)?;
    out.resize(source.len(), 0.0);
    if rate == 0.0 {
        out.copy_from_slice(source);
        return Ok(());
    }
    dropout_blocks(source.len(), rate, rng, |range, draws, threshold, keep| {
        let block = &mut out[range.clone()];
        block.copy_from_slice(&source[range]);
        dense::kernels::drop_below(block, draws, threshold, keep);
    })
}

/// Calls `mask(block, draws, threshold, keep)` for consecutive blocks of
/// `len` values with one uniform 32-bit draw per value: a value is dropped
/// when its draw falls below `threshold = rate · 2³²`, and `keep = 1 / (1 −
/// rate)` scales the survivors. Nothing is drawn for a zero rate.
fn dropout_blocks(
    len: usize,
    rate: f32,
    rng: &mut ChaCha8Rng,
    mut mask: impl FnMut(std::ops::Range<usize>, &[u32], u32, f32),
) -> Result<(), NnError> {
    check_rate(rate)?;
    if rate == 0.0 {
        return Ok(());
    }
    let keep = 1.0 / (1.0 - rate);
    let threshold = (f64::from(rate) * 4_294_967_296.0) as u32;
    let mut draws = layer_stream(rng);
    // Draw a block of bits first, then mask without branches: half the
    // elements drop at random, so a branch per element mispredicts half the
    // time. Each 64-bit draw gives two 32-bit ones, the low half first.
    const BLOCK: usize = 512;
    let mut halves = [0u32; BLOCK];
    for start in (0..len).step_by(BLOCK) {
        let end = (start + BLOCK).min(len);
        let halves = &mut halves[..(end - start).next_multiple_of(2)];
        for pair in halves.chunks_exact_mut(2) {
            let word = draws.next_u64();
            pair[0] = word as u32;
            pair[1] = (word >> 32) as u32;
        }
        mask(start..end, halves, threshold, keep);
    }
    Ok(())
}

fn check_rate(rate: f32) -> Result<(), NnError> {
    if (0.0..1.0).contains(&rate) {
        Ok(())
    } else {
        Err(NnError::invalid(
            "dropout rate",
            format!("must be in [0, 1), got {rate}"),
        ))
    }
}

/// Adds independent `N(0, std²)` noise in [`Mode::Train`]; identity in [`Mode::Eval`].
pub fn gaussian_noise(x: Var, std: f32, mode: Mode, rng: &mut ChaCha8Rng) -> Result<Var, NnError> {
    check_std(std)?;
    if mode == Mode::Eval || std == 0.0 {
        return Ok(x);
    }
    let (r, c) = x.shape();
    let mut noise = vec![0.0f32; r * c];
    add_noise_in_place(&mut noise, std, rng)?;
    let noise = Var::from_vec(&x.device(), r, c, noise)?;
    x.add(noise)
}

/// Adds independent `N(0, std²)` noise to host values, in place.
pub fn add_noise_in_place(
    values: &mut [f32],
    std: f32,
    rng: &mut ChaCha8Rng,
) -> Result<(), NnError> {
    check_std(std)?;
    if std == 0.0 {
        return Ok(());
    }
    let mut draws = layer_stream(rng);
    // Box–Muller over a block: each 64-bit draw gives one pair, its low half
    // the radius and its high half the angle; the block's first half of
    // values gets the cosines, its second half the sines.
    const PAIRS: usize = 256;
    let (mut a, mut b) = ([0u32; PAIRS], [0u32; PAIRS]);
    let mut noise = [0.0f32; 2 * PAIRS];
    for chunk in values.chunks_mut(2 * PAIRS) {
        let pairs = chunk.len().div_ceil(2);
        for (a, b) in a[..pairs].iter_mut().zip(&mut b[..pairs]) {
            let word = draws.next_u64();
            (*a, *b) = (word as u32, (word >> 32) as u32);
        }
        let (first, second) = noise[..2 * pairs].split_at_mut(pairs);
        dense::kernels::normal_pairs(first, second, &a[..pairs], &b[..pairs]);
        dense::kernels::add_scaled(chunk, &noise[..chunk.len()], std);
    }
    Ok(())
}

fn check_std(std: f32) -> Result<(), NnError> {
    if std >= 0.0 && std.is_finite() {
        Ok(())
    } else {
        Err(NnError::invalid(
            "noise std",
            format!("must be finite and non-negative, got {std}"),
        ))
    }
}

/// A relaxed one-hot sample per row: `softmax((logits + g) / temperature)` with
/// standard Gumbel noise `g = −ln(−ln u)`, `u ~ U(0, 1)`. Gradients flow to the logits.
pub fn gumbel_softmax(logits: Var, temperature: f32, rng: &mut ChaCha8Rng) -> Result<Var, NnError> {
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(NnError::invalid(
            "temperature",
            format!("must be positive, got {temperature}"),
        ));
    }
    let (r, c) = logits.shape();
    let gumbel = Var::from_vec(&logits.device(), r, c, gumbel_noise(r * c, rng))?;
    logits.add(gumbel)?.scale(1.0 / temperature)?.softmax()
}

/// `count` standard Gumbel draws `g = −ln(−ln u)`, `u ~ U(0, 1)`, the noise
/// [`gumbel_softmax`] adds (for engines that sample outside the tape).
pub fn gumbel_noise(count: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut draws = layer_stream(rng);
    // Keep u inside (0, 1) so both logarithms are finite.
    let mut noise: Vec<f32> = (0..count)
        .map(|_| {
            draws
                .random::<f32>()
                .clamp(f32::MIN_POSITIVE, 1.0 - f32::EPSILON)
        })
        .collect();
    dense::kernels::gumbel_from_uniform(&mut noise);
    noise
}

/// The generator one layer call draws from, seeded from the caller's stream.
fn layer_stream(rng: &mut ChaCha8Rng) -> SmallRng {
    SmallRng::from_rng(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Device, DeviceChoice};
    use rand::SeedableRng;

    fn ones(r: usize, c: usize) -> Var {
        Var::from_vec(
            &Device::open(DeviceChoice::Cpu).unwrap(),
            r,
            c,
            vec![1.0; r * c],
        )
        .unwrap()
    }

    #[test]
    fn dropout_zeroes_about_rate_and_keeps_the_mean() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let y = dropout(ones(100, 100), 0.3, Mode::Train, &mut rng)
            .unwrap()
            .to_array()
            .unwrap();
        let zeros = y.iter().filter(|&&v| v == 0.0).count() as f32 / 1e4;
        assert!((zeros - 0.3).abs() < 0.02, "{zeros}");
        assert!((y.mean().unwrap() - 1.0).abs() < 0.03);
        let e = dropout(ones(3, 3), 0.3, Mode::Eval, &mut rng)
            .unwrap()
            .to_array()
            .unwrap();
        assert!(e.iter().all(|&v| v == 1.0));
        assert!(dropout(ones(1, 1), 1.0, Mode::Train, &mut rng).is_err());
    }

    #[test]
    fn dropout_masks_come_from_consecutive_halves_of_the_draws() {
        let values: Vec<f32> = (0..1001).map(|i| i as f32).collect();
        let mut dropped = values.clone();
        dropout_in_place(&mut dropped, 0.4, &mut ChaCha8Rng::seed_from_u64(6)).unwrap();
        let mut draws = layer_stream(&mut ChaCha8Rng::seed_from_u64(6));
        let threshold = (0.4f64 * 4_294_967_296.0) as u64;
        for pair in values.chunks(2).zip(dropped.chunks(2)) {
            let bits = draws.next_u64();
            for ((v, d), half) in pair
                .0
                .iter()
                .zip(pair.1)
                .zip([bits & 0xffff_ffff, bits >> 32])
            {
                let want = if half < threshold {
                    0.0
                } else {
                    v * (1.0 / (1.0 - 0.4f32))
                };
                assert_eq!(d.to_bits(), want.to_bits());
            }
        }
    }

    #[test]
    fn dropout_copy_matches_dropout_on_a_copy() {
        let source: Vec<f32> = (0..1301).map(|i| i as f32 - 600.0).collect();
        for rate in [0.0, 0.5] {
            let mut copy = source.clone();
            dropout_in_place(&mut copy, rate, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
            // A stale, longer buffer is cut to the source's length.
            let mut out = vec![7.0f32; 2000];
            dropout_copy(&source, rate, &mut ChaCha8Rng::seed_from_u64(9), &mut out).unwrap();
            assert_eq!(out, copy);
        }
        assert!(
            dropout_copy(
                &source,
                1.0,
                &mut ChaCha8Rng::seed_from_u64(9),
                &mut Vec::new()
            )
            .is_err()
        );
    }

    #[test]
    fn gaussian_noise_has_the_requested_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let y = gaussian_noise(ones(100, 100), 0.5, Mode::Train, &mut rng)
            .unwrap()
            .to_array()
            .unwrap();
        let sd = y.mapv(|v| (v - 1.0) * (v - 1.0)).mean().unwrap().sqrt();
        assert!((sd - 0.5).abs() < 0.02, "{sd}");
        let e = gaussian_noise(ones(2, 2), 0.5, Mode::Eval, &mut rng)
            .unwrap()
            .to_array()
            .unwrap();
        assert!(e.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn noise_is_normal_and_reproducible() {
        // An odd length, so the last block has an unpaired value.
        let n = 200_001;
        let mut noise = vec![0.0f32; n];
        add_noise_in_place(&mut noise, 2.0, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        let mut again = vec![0.0f32; n];
        add_noise_in_place(&mut again, 2.0, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
        assert_eq!(noise, again);
        let z: Vec<f64> = noise.iter().map(|v| f64::from(*v) / 2.0).collect();
        let mean = z.iter().sum::<f64>() / n as f64;
        let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let kurtosis = z.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n as f64 / var.powi(2);
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01,
            "{mean} {var}"
        );
        assert!((kurtosis - 3.0).abs() < 0.05, "{kurtosis}");
        // The normal CDF at 0.5, 1, 2 and 3 SD.
        for (t, want) in [
            (0.5, 0.382_925),
            (1.0, 0.682_689),
            (2.0, 0.954_500),
            (3.0, 0.997_300),
        ] {
            let inside = z.iter().filter(|v| v.abs() < t).count() as f64 / n as f64;
            assert!((inside - want).abs() < 0.004, "within {t}: {inside}");
        }
        assert_ne!(noise[n - 1], 0.0);
        // A pair's cosine and sine halves are uncorrelated.
        let pairs: Vec<(f64, f64)> = z
            .chunks_exact(512)
            .flat_map(|b| b[..256].iter().copied().zip(b[256..].iter().copied()))
            .collect();
        let corr = pairs.iter().map(|(a, b)| a * b).sum::<f64>() / pairs.len() as f64;
        assert!(corr.abs() < 0.01, "{corr}");
    }

    #[test]
    fn gumbel_softmax_samples_follow_the_class_probabilities() {
        let d = Device::open(DeviceChoice::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = 4000;
        // log-probabilities of (0.7, 0.2, 0.1)
        let logits: Vec<f32> = (0..n)
            .flat_map(|_| [0.7f32.ln(), 0.2f32.ln(), 0.1f32.ln()])
            .collect();
        let y = gumbel_softmax(Var::from_vec(&d, n, 3, logits).unwrap(), 0.1, &mut rng)
            .unwrap()
            .to_array()
            .unwrap();
        let mut counts = [0usize; 3];
        for row in y.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-4);
            let arg = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            counts[arg] += 1;
        }
        let freq: Vec<f32> = counts.iter().map(|&c| c as f32 / n as f32).collect();
        assert!(
            (freq[0] - 0.7).abs() < 0.03 && (freq[2] - 0.1).abs() < 0.03,
            "{freq:?}"
        );
    }
}
