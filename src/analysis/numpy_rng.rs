//! A bit-exact re-implementation of numpy's legacy `RandomState` for the one
//! thing the sBNN paper used it for: `np.random.seed(s); np.random.permutation(n)`.
//!
//! numpy's legacy generator is the 32-bit Mersenne Twister MT19937 seeded with
//! `init_genrand`; `permutation` shuffles `0..n` with a Fisher-Yates pass from the
//! back whose bounded draws use masked rejection sampling (`random_interval`).
//! Reproducing it exactly lets our cross-validation use the paper's folds.

const STATE_LEN: usize = 624;
const SHIFT: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// numpy's legacy `RandomState` (MT19937), seeded from a 32-bit integer.
#[derive(Debug, Clone)]
pub struct LegacyRandomState {
    state: [u32; STATE_LEN],
    position: usize,
}

impl LegacyRandomState {
    /// Seeds the generator as `np.random.seed(seed)` does for an integer seed.
    pub fn new(seed: u32) -> Self {
        let mut state = [0_u32; STATE_LEN];
        let mut value = seed;
        for (slot, index) in state.iter_mut().zip(1_u32..) {
            *slot = value;
            value = 1_812_433_253_u32
                .wrapping_mul(value ^ (value >> 30))
                .wrapping_add(index);
        }
        Self {
            state,
            position: STATE_LEN,
        }
    }

    fn twist(&mut self) {
        for i in 0..STATE_LEN {
            let y = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % STATE_LEN] & LOWER_MASK);
            let mut next = self.state[(i + SHIFT) % STATE_LEN] ^ (y >> 1);
            if y & 1 == 1 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.position = 0;
    }

    /// The next tempered 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.position >= STATE_LEN {
            self.twist();
        }
        let mut y = self.state[self.position];
        self.position += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// The next 64-bit output: two 32-bit draws, the first in the high half.
    pub fn next_u64(&mut self) -> u64 {
        let high = u64::from(self.next_u32());
        (high << 32) | u64::from(self.next_u32())
    }

    /// A uniform integer in `0..=max` by masked rejection sampling, as numpy's
    /// legacy `random_interval`.
    pub fn random_interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        if max <= u64::from(u32::MAX) {
            loop {
                let value = u64::from(self.next_u32()) & mask;
                if value <= max {
                    return value;
                }
            }
        }
        loop {
            let value = self.next_u64() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// `np.random.permutation(n)`: a legacy Fisher-Yates shuffle of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut values: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            // `random_interval(i)` never exceeds `i`, so it fits in usize.
            let j = usize::try_from(self.random_interval(i as u64)).unwrap_or(i);
            values.swap(i, j);
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden values from real numpy 2.4.6:
    //   import numpy as np
    //   np.random.seed(42); p = np.random.permutation(1213); print(p[:10], p[-10:])
    //   np.random.seed(0); print(np.random.permutation(10))
    //   np.random.seed(7); print(np.random.permutation(1), np.random.permutation(2), np.random.permutation(5))
    //   np.random.seed(123456789); print(np.random.permutation(100)[:8])
    #[test]
    fn permutation_matches_numpy_seed_42_n_1213() {
        let perm = LegacyRandomState::new(42).permutation(1213);
        assert_eq!(
            &perm[..10],
            &[382, 787, 43, 155, 493, 578, 270, 589, 123, 113]
        );
        assert_eq!(
            &perm[1203..],
            &[1123, 87, 330, 466, 121, 1044, 1095, 1130, 860, 1126]
        );
        let mut sorted = perm.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1213).collect::<Vec<_>>());
    }

    #[test]
    fn permutation_matches_numpy_small_cases() {
        assert_eq!(
            LegacyRandomState::new(0).permutation(10),
            vec![2, 8, 4, 9, 1, 6, 7, 3, 0, 5]
        );
        let mut rng = LegacyRandomState::new(7);
        assert_eq!(rng.permutation(1), vec![0]);
        assert_eq!(rng.permutation(2), vec![0, 1]);
        assert_eq!(rng.permutation(5), vec![0, 3, 2, 1, 4]);
        let perm = LegacyRandomState::new(123_456_789).permutation(100);
        assert_eq!(&perm[..8], &[49, 86, 58, 10, 13, 5, 20, 14]);
    }

    #[test]
    fn random_interval_stays_in_range() {
        let mut rng = LegacyRandomState::new(1);
        for max in [1_u64, 2, 3, 7, 100, 5_000_000_000] {
            for _ in 0..200 {
                assert!(rng.random_interval(max) <= max);
            }
        }
        assert_eq!(rng.random_interval(0), 0);
    }
}
