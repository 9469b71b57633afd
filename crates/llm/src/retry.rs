//! How long to wait between attempts: exponential backoff with full jitter
//! (AWS Architecture Blog, "Exponential Backoff And Jitter"), or the
//! provider's own `Retry-After` when it gives one.

use std::time::Duration;

use rand::Rng;

/// Bounds on retrying a completion before its first token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `0` counts as `1`.
    pub max_attempts: u32,
    /// The backoff ceiling after the first failure; it doubles after each.
    pub base_delay: Duration,
    /// The longest single wait. A `Retry-After` above it is not waited for:
    /// the call fails at once with [`crate::LlmError::RateLimited`].
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 250 ms base, 4 s cap: a chat user waits at most a few
    /// seconds before hearing the provider is down.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Attempts allowed, at least one.
    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The wait after failed attempt number `attempt` (1-based), or `None`
    /// when the provider asked for more than [`Self::max_delay`].
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        let jittered = if ceiling.is_zero() {
            ceiling
        } else {
            rand::thread_rng().gen_range(Duration::ZERO..=ceiling)
        };
        match retry_after {
            Some(asked) if asked > self.max_delay => None,
            Some(asked) => Some(asked.max(jittered)),
            None => Some(jittered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1000),
    };

    #[test]
    fn backoff_stays_under_a_doubling_ceiling_capped_at_max_delay() {
        for _ in 0..200 {
            for (attempt, ceiling_ms) in [
                (1, 100),
                (2, 200),
                (3, 400),
                (4, 800),
                (5, 1000),
                (30, 1000),
            ] {
                let delay = POLICY.delay(attempt, None).unwrap();
                assert!(
                    delay <= Duration::from_millis(ceiling_ms),
                    "{attempt}: {delay:?}"
                );
            }
        }
    }

    #[test]
    fn backoff_is_jittered() {
        let delays: std::collections::HashSet<_> =
            (0..50).map(|_| POLICY.delay(4, None).unwrap()).collect();
        assert!(delays.len() > 10);
    }

    #[test]
    fn retry_after_is_a_floor() {
        for _ in 0..100 {
            let delay = POLICY.delay(1, Some(Duration::from_millis(700))).unwrap();
            assert!(delay >= Duration::from_millis(700));
        }
    }

    #[test]
    fn retry_after_beyond_max_delay_is_not_waited_for() {
        assert_eq!(POLICY.delay(1, Some(Duration::from_secs(30))), None);
    }

    #[test]
    fn zero_attempts_means_one() {
        let policy = RetryPolicy {
            max_attempts: 0,
            ..POLICY
        };
        assert_eq!(policy.attempts(), 1);
    }
}
