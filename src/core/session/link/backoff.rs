//! Retry timing of the link: a small seeded generator (SplitMix64, the same
//! sequence the TypeScript client drew; the caller supplies the seed, so
//! runs replay) and exponential backoff with full jitter, capped, reset by
//! the link after a stable connection.

/// SplitMix64: tiny, fast, and good enough to spread reconnects (and to
/// drive the link's simulation).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next output's top 53 bits, as an integer below 2^53.
    pub fn next53(&mut self) -> u64 {
        self.next_u64() >> 11
    }

    /// Uniform in `0..=max` (the output modulo `max + 1`).
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (max + 1)
    }
}

/// Exponential backoff with full jitter: the n-th consecutive retry waits a
/// uniform time in `0..=min(cap, base * 2^n)`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(base_ms: u64, cap_ms: u64) -> Self {
        Backoff {
            base_ms,
            cap_ms,
            attempt: 0,
        }
    }

    /// The wait before the next attempt, counting it.
    pub(crate) fn next_delay(&mut self, rng: &mut Rng) -> u64 {
        let ceiling = self
            .base_ms
            .saturating_mul(1u64 << self.attempt.min(40))
            .min(self.cap_ms);
        self.attempt = self.attempt.saturating_add(1);
        rng.up_to(ceiling)
    }

    /// A stable connection: the next failure starts from `base` again.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_reference_sequence() {
        let mut r = Rng::new(1_234_567);
        assert_eq!(
            [r.next_u64(), r.next_u64(), r.next_u64()],
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
        assert_eq!(Rng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(Rng::new(u64::MAX).next_u64(), Rng::new(u64::MAX).next_u64());
        // up_to is the output modulo max + 1.
        let (mut a, mut b) = (Rng::new(99), Rng::new(99));
        for max in [0, 1, 250, 29_999, 86_400_000, 1 << 36] {
            assert_eq!(a.up_to(max), b.next_u64() % (max + 1));
        }
    }

    #[test]
    fn full_jitter_grows_to_the_cap_and_resets() {
        let mut rng = Rng::new(7);
        let mut b = Backoff::new(250, 30_000);
        let mut max_seen = 0;
        for n in 0..200 {
            let d = b.next_delay(&mut rng);
            assert!(d <= 30_000 && d <= 250u64 << n.min(20), "{n}: {d}");
            max_seen = max_seen.max(d);
        }
        assert!(max_seen > 20_000, "jitter reaches near the cap: {max_seen}");
        b.reset();
        assert!(b.next_delay(&mut rng) <= 250);
    }
}
