//! Keyed rate limits (GCRA): `limit` requests per `period` for each key
//! (a client IP, an email, a user, a provider), with bursts up to `limit`.
//! Used by the gateway (account endpoints) and chat (provider limits).
//!
//! State is one instant per key, in memory: limits hold per gateway replica.
//! Behind N replicas a client gets at most N times the limit, which is what
//! these limits are for (throttling guessing), not billing.
//!
//! The map is bounded, since its keys come from clients (IPs, emails):
//! - a key whose theoretical arrival time has passed is back to a full
//!   burst, so forgetting it changes nothing; such stale keys are swept once
//!   per `period` (every key goes stale within `period` of its last request);
//! - at most `max_keys` keys are kept. When a new key would pass that cap
//!   (more live keys than the cap within one period: a spray of addresses or
//!   emails), the tenth of the keys that are nearest to going stale is
//!   dropped. Those owe the least (one request or so), so the cost is a few
//!   early extra requests for them; the keys being throttled hardest stay.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Keys one limiter keeps at most by default (a few MB: a key is an IP, an
/// email or an id).
pub const DEFAULT_MAX_KEYS: usize = 50_000;

/// One limit over many keys.
pub struct RateLimiter {
    /// Time between requests at the sustained rate (period / limit).
    interval: Duration,
    /// How far ahead of now a key's theoretical arrival time may run.
    tolerance: Duration,
    /// How often stale keys are swept.
    period: Duration,
    /// Keys kept at most.
    max_keys: usize,
    state: Mutex<State>,
}

/// The keys' theoretical arrival times, and when stale ones were last swept.
struct State {
    tats: HashMap<String, Instant>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    /// `limit` requests per `period`. A `limit` of 0 disables the limiter.
    pub fn new(limit: u32, period: Duration) -> Self {
        Self::with_max_keys(limit, period, DEFAULT_MAX_KEYS)
    }

    /// As [`RateLimiter::new`], keeping at most `max_keys` keys (at least 10).
    pub fn with_max_keys(limit: u32, period: Duration, max_keys: usize) -> Self {
        let interval = if limit == 0 {
            Duration::ZERO
        } else {
            period / limit
        };
        Self {
            interval,
            tolerance: period.saturating_sub(interval),
            period,
            max_keys: max_keys.max(10),
            state: Mutex::new(State {
                tats: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    /// Counts a request for `key`: `Err(wait)` when it is over the limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.tats.len())
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.interval.is_zero() {
            return Ok(());
        }
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        match state.last_sweep {
            None => state.last_sweep = Some(now),
            Some(last) if now.saturating_duration_since(last) >= self.period => {
                state.sweep_stale(now);
            }
            Some(_) => {}
        }
        let tat = state
            .tats
            .get(key)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        let ahead = tat - now;
        if ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        let next = tat + self.interval;
        if let Some(slot) = state.tats.get_mut(key) {
            *slot = next;
            return Ok(());
        }
        if state.tats.len() >= self.max_keys {
            state.sweep_stale(now);
            if state.tats.len() >= self.max_keys {
                state.evict_nearest_to_stale(self.max_keys / 10);
            }
        }
        state.tats.insert(key.to_owned(), next);
        Ok(())
    }
}

impl State {
    /// Forgets the keys back at a full burst.
    fn sweep_stale(&mut self, now: Instant) {
        self.tats.retain(|_, tat| *tat > now);
        self.last_sweep = Some(now);
    }

    /// Forgets the `count` keys with the earliest arrival times (linear
    /// time, once per `count` new keys).
    fn evict_nearest_to_stale(&mut self, count: usize) {
        if count == 0 || self.tats.is_empty() {
            return;
        }
        let mut tats: Vec<Instant> = self.tats.values().copied().collect();
        let nth = count.min(tats.len()) - 1;
        let (_, threshold, _) = tats.select_nth_unstable(nth);
        let threshold = *threshold;
        // Below the threshold go all; at it, only as many as still needed.
        let below = tats.iter().filter(|t| **t < threshold).count();
        let mut at_threshold = count.saturating_sub(below);
        self.tats.retain(|_, tat| {
            if *tat < threshold {
                false
            } else if *tat == threshold && at_threshold > 0 {
                at_threshold -= 1;
                false
            } else {
                true
            }
        });
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
        assert!(limiter.is_empty());
    }

    #[test]
    fn stale_keys_are_forgotten_once_a_period_has_passed() {
        let period = Duration::from_secs(60);
        let limiter = RateLimiter::new(5, period);
        let t0 = Instant::now();
        for i in 0..1000 {
            assert!(
                limiter
                    .check_at(&format!("10.0.{}.{}", i / 256, i % 256), t0)
                    .is_ok()
            );
        }
        assert_eq!(limiter.len(), 1000);
        // Within the period nothing is stale yet: every key is remembered.
        assert!(
            limiter
                .check_at("late", t0 + Duration::from_secs(55))
                .is_ok()
        );
        assert_eq!(limiter.len(), 1001);
        // A period later the first thousand are back at a full burst.
        assert!(limiter.check_at("later", t0 + period).is_ok());
        assert_eq!(limiter.len(), 2, "only `late` and `later` are still owed");
    }

    #[test]
    fn the_map_never_holds_more_than_its_cap_and_keeps_the_throttled_keys() {
        let limiter = RateLimiter::with_max_keys(3, Duration::from_secs(3600), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("abuser", t0).is_ok());
        }
        assert!(limiter.check_at("abuser", t0).is_err());
        // A spray of new keys within the period, all live.
        for i in 0..10_000 {
            let now = t0 + Duration::from_millis(i);
            assert!(limiter.check_at(&format!("spray-{i}"), now).is_ok());
            assert!(limiter.len() <= 100, "{} keys", limiter.len());
        }
        assert!(limiter.len() >= 90, "evicts a tenth at a time, not all");
        // The key that owes the most was never the one dropped.
        assert!(
            limiter
                .check_at("abuser", t0 + Duration::from_secs(11))
                .is_err()
        );
        // A sprayed key that is still remembered is still counted.
        let recent = "spray-9999";
        let now = t0 + Duration::from_millis(10_000);
        assert!(limiter.check_at(recent, now).is_ok());
        assert!(limiter.check_at(recent, now).is_ok());
        assert!(limiter.check_at(recent, now).is_err());
    }

    #[test]
    fn eviction_among_equal_arrival_times_drops_exactly_a_tenth() {
        let limiter = RateLimiter::with_max_keys(1, Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(limiter.check_at(&format!("k{i}"), t0).is_ok());
        }
        assert_eq!(limiter.len(), 100);
        assert!(limiter.check_at("one-more", t0).is_ok());
        assert_eq!(limiter.len(), 91);
    }
}
