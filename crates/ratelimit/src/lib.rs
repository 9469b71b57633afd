//! Keyed rate limits (GCRA): `limit` requests per `period` for each key
//! (a client IP, an email, a user, a provider), with bursts up to `limit`.
//! Used by the gateway (account endpoints) and chat (provider limits).
//!
//! State is one instant per key, in memory: limits hold per gateway replica.
//! Behind N replicas a client gets at most N times the limit, which is what
//! these limits are for (throttling guessing), not billing.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// One limit over many keys.
pub struct RateLimiter {
    /// Time between requests at the sustained rate (period / limit).
    interval: Duration,
    /// How far ahead of now a key's theoretical arrival time may run.
    tolerance: Duration,
    state: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// `limit` requests per `period`. A `limit` of 0 disables the limiter.
    pub fn new(limit: u32, period: Duration) -> Self {
        let interval = if limit == 0 {
            Duration::ZERO
        } else {
            period / limit
        };
        Self {
            interval,
            tolerance: period.saturating_sub(interval),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key`: `Err(wait)` when it is over the limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.interval.is_zero() {
            return Ok(());
        }
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        if state.len() > 100_000 {
            state.retain(|_, tat| *tat > now);
        }
        let tat = state.get(key).copied().filter(|t| *t > now).unwrap_or(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        state.insert(key.to_owned(), tat + self.interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_limit_passes_then_the_key_waits() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("ip", t0).is_ok());
        }
        let wait = limiter.check_at("ip", t0).unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Other keys are not affected.
        assert!(limiter.check_at("other", t0).is_ok());
        // One interval later, one more passes.
        assert!(limiter.check_at("ip", t0 + Duration::from_secs(20)).is_ok());
        assert!(
            limiter
                .check_at("ip", t0 + Duration::from_secs(20))
                .is_err()
        );
    }

    #[test]
    fn a_zero_limit_disables_the_limiter() {
        let limiter = RateLimiter::new(0, Duration::from_secs(60));
        for _ in 0..1000 {
            assert!(limiter.check("k").is_ok());
        }
    }
}
