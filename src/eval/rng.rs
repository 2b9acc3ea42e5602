//! The evaluation's one random number generator: the bootstrap's resampling and the seeded
//! prompt subset both draw from it, so a seed means the same thing on every machine.

/// splitmix64 (Steele, Lea & Flood 2014): tiny, fast, and its output passes BigCrush, which is
/// far more than a bootstrap needs; written here to keep `rand` out of the dependencies.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` by multiply-shift (Lemire): the bias is at most n / 2^64, far below
    /// anything a 10,000-resample bootstrap could show, and it needs no rejection loop.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}
