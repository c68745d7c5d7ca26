//! Capped exponential backoff with jitter. The jitter comes from a small xorshift seeded from the
//! clock: it only spreads retries apart, it decides nothing.

use std::time::Duration;

/// Backoff state for one call.
pub struct Backoff {
    next: Duration,
    max: Duration,
    rng: u64,
}

impl Backoff {
    /// Start at `base`, double up to `max`; jitter from `seed`, or from the clock if `None`.
    pub fn new(base: Duration, max: Duration, seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos() as u64)
                .unwrap_or(0x9e37)
        });
        Self {
            next: base.max(Duration::from_millis(1)),
            max,
            rng: seed | 1,
        }
    }

    /// The next pause: a random point in [next/2, next], then `next` doubles (capped).
    pub fn next_delay(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let full = self.next.as_micros() as u64;
        let half = full / 2;
        let delay = Duration::from_micros(half + self.rng % (full - half + 1));
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_inside_bounds() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100), None);
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(5) && delays[0] <= Duration::from_millis(10));
        for d in &delays {
            assert!(*d <= Duration::from_millis(100));
        }
        assert!(delays[7] >= Duration::from_millis(50), "{delays:?}");
    }
}
