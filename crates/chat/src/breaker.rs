//! A circuit breaker per provider: after `threshold` consecutive failures
//! the provider is open (calls refused at once) for `cool_down`; then one
//! trial call is let through (half-open), and its outcome closes or reopens
//! it. Transitions are reported so the service can flip
//! `aiProviders.isAvailable` and back.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// What a recorded outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// The provider just became unavailable.
    Opened,
    /// The provider just became available again.
    Closed,
}

/// Breakers keyed by provider name.
pub struct Breakers {
    threshold: u32,
    cool_down: Duration,
    states: Mutex<HashMap<String, State>>,
}

impl Breakers {
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a call may go to `provider` now.
    pub fn allow(&self, provider: &str) -> bool {
        self.allow_at(provider, Instant::now())
    }

    fn allow_at(&self, provider: &str, now: Instant) -> bool {
        let Ok(mut states) = self.states.lock() else {
            return true;
        };
        let state = states
            .entry(provider.to_owned())
            .or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                *state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// Records a call's outcome.
    pub fn record(&self, provider: &str, ok: bool) -> Transition {
        self.record_at(provider, ok, Instant::now())
    }

    fn record_at(&self, provider: &str, ok: bool, now: Instant) -> Transition {
        let Ok(mut states) = self.states.lock() else {
            return Transition::None;
        };
        let state = states
            .entry(provider.to_owned())
            .or_insert(State::Closed { failures: 0 });
        let (next, transition) = match (*state, ok) {
            (State::HalfOpen | State::Open { .. }, true) => {
                (State::Closed { failures: 0 }, Transition::Closed)
            }
            (State::Closed { .. }, true) => (State::Closed { failures: 0 }, Transition::None),
            (State::HalfOpen, false) => (
                State::Open {
                    until: now + self.cool_down,
                },
                Transition::None,
            ),
            (State::Open { until }, false) => (State::Open { until }, Transition::None),
            (State::Closed { failures }, false) if failures + 1 >= self.threshold => (
                State::Open {
                    until: now + self.cool_down,
                },
                Transition::Opened,
            ),
            (State::Closed { failures }, false) => (
                State::Closed {
                    failures: failures + 1,
                },
                Transition::None,
            ),
        };
        *state = next;
        transition
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_half_opens_and_closes() {
        let b = Breakers::new(3, Duration::from_secs(30));
        let t0 = Instant::now();
        assert_eq!(b.record_at("openai", false, t0), Transition::None);
        assert_eq!(b.record_at("openai", false, t0), Transition::None);
        assert_eq!(b.record_at("openai", false, t0), Transition::Opened);
        assert!(!b.allow_at("openai", t0 + Duration::from_secs(1)));
        assert!(b.allow_at("anthropic", t0), "others are not affected");
        // After the cool-down, one trial goes through, and only one.
        assert!(b.allow_at("openai", t0 + Duration::from_secs(31)));
        assert!(!b.allow_at("openai", t0 + Duration::from_secs(31)));
        assert_eq!(
            b.record_at("openai", true, t0 + Duration::from_secs(32)),
            Transition::Closed
        );
        assert!(b.allow_at("openai", t0 + Duration::from_secs(32)));
    }

    #[test]
    fn a_failed_trial_reopens_and_a_success_resets_the_count() {
        let b = Breakers::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        b.record_at("g", false, t0);
        b.record_at("g", true, t0);
        assert_eq!(
            b.record_at("g", false, t0),
            Transition::None,
            "the count restarted"
        );
        assert_eq!(b.record_at("g", false, t0), Transition::Opened);
        assert!(b.allow_at("g", t0 + Duration::from_secs(11)));
        assert_eq!(
            b.record_at("g", false, t0 + Duration::from_secs(11)),
            Transition::None
        );
        assert!(!b.allow_at("g", t0 + Duration::from_secs(12)));
    }
}
