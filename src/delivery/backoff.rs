//! When to try a failed push again: exponential backoff with full jitter
//! (AWS Architecture Blog, "Exponential Backoff and Jitter"): attempt `n`
//! waits a uniformly random time in `[0, min(max, base · 2^(n-1))]`, so that
//! a partner coming back after an outage is not hit by every queued delivery
//! at the same instant.

use std::time::Duration;

use rand::Rng;

use crate::config::DeliverySettings;

/// The retry policy, from `[delivery]` in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    /// Attempts before dead-lettering.
    pub attempts: u32,
}

impl Backoff {
    pub fn from_settings(s: &DeliverySettings) -> Backoff {
        Backoff {
            base: Duration::from_millis(s.backoff_base_ms),
            max: Duration::from_millis(s.backoff_max_ms),
            attempts: s.max_attempts,
        }
    }

    /// The ceiling of the delay after failed attempt `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << shift)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// `None`: `attempt` was the last one, dead-letter. Otherwise the delay
    /// before the next attempt, drawn with full jitter.
    pub fn after_failure(&self, attempt: u32, rng: &mut impl Rng) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Some(Duration::from_millis(rng.gen_range(0..=ceiling)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn policy() -> Backoff {
        Backoff {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            attempts: 10,
        }
    }

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let b = policy();
        let secs: Vec<u64> = (1..=9).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(b.ceiling(200), Duration::from_secs(3600), "no overflow");
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling_and_the_last_attempt_dead_letters() {
        let b = policy();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..200)
            .map(|_| b.after_failure(3, &mut rng).unwrap())
            .collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(120)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 100, "full jitter spreads the retries");
        assert!(delays.iter().any(|d| *d < Duration::from_secs(60)));
        assert_eq!(b.after_failure(10, &mut rng), None);
        assert_eq!(b.after_failure(11, &mut rng), None);
    }
}
