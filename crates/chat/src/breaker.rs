//! A circuit breaker per provider: after `threshold` consecutive failures
//! the provider is open (calls refused at once) for `cool_down`; then one
//! trial call is let through (half-open), and its outcome closes or reopens
//! it. Transitions are reported so the service can flip
//! `aiProviders.isAvailable` and back.
//!
//! A call goes out under a [`Permit`]. Only a real provider call may use the
//! half-open trial: a send refused after taking the permit (quota, message
//! limit, rate limit, billing down) drops it unused, which hands the trial
//! back, so the breaker can never wait for an outcome nobody will report.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
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

    /// The right to call `provider` now, if its circuit lets a call through
    /// (in half-open, only one holds it at a time).
    pub fn permit(self: &Arc<Self>, provider: &str) -> Option<Permit> {
        let now = Instant::now();
        let trial = self.is_trial_at(provider, now);
        self.allow_at(provider, now).then(|| Permit {
            breakers: self.clone(),
            provider: provider.to_owned(),
            trial,
            reported: false,
        })
    }

    fn is_trial_at(&self, provider: &str, now: Instant) -> bool {
        self.states.lock().is_ok_and(
            |states| matches!(states.get(provider), Some(State::Open { until }) if now >= *until),
        )
    }

    /// An unused trial comes back: the next call may take it at once.
    fn hand_back(&self, provider: &str, now: Instant) {
        if let Ok(mut states) = self.states.lock()
            && let Some(state) = states.get_mut(provider)
            && *state == State::HalfOpen
        {
            *state = State::Open { until: now };
        }
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
    fn record(&self, provider: &str, ok: bool) -> Transition {
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

/// The right to make one provider call, and the duty to report its outcome
/// ([`Permit::record`]). Dropped unreported, it hands a half-open trial back.
pub struct Permit {
    breakers: Arc<Breakers>,
    provider: String,
    /// This permit is the half-open trial.
    trial: bool,
    reported: bool,
}

impl Permit {
    /// Records how the call went.
    pub fn record(mut self, ok: bool) -> Transition {
        self.reported = true;
        self.breakers.record(&self.provider, ok)
    }

    /// The provider it is for.
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported && self.trial {
            self.breakers.hand_back(&self.provider, Instant::now());
        }
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

    #[test]
    fn a_trial_refused_before_the_call_is_handed_back() {
        let b = Arc::new(Breakers::new(1, Duration::from_millis(1)));
        let first = b.permit("openai").unwrap();
        assert_eq!(first.record(false), Transition::Opened);
        std::thread::sleep(Duration::from_millis(5));
        // The trial is taken by a send that is then refused (quota, ...).
        let trial = b.permit("openai").unwrap();
        assert!(b.permit("openai").is_none(), "one trial at a time");
        drop(trial);
        // Before, the breaker stayed half-open for ever; now the next call
        // gets the trial, and its outcome closes the circuit.
        let next = b.permit("openai").expect("the trial was handed back");
        assert_eq!(next.record(true), Transition::Closed);
        assert!(b.permit("openai").is_some());
    }

    #[test]
    fn an_unreported_permit_of_a_closed_circuit_changes_nothing() {
        let b = Arc::new(Breakers::new(2, Duration::from_secs(10)));
        drop(b.permit("g").unwrap());
        b.permit("g").unwrap().record(false);
        drop(b.permit("g").unwrap());
        assert_eq!(b.permit("g").unwrap().record(false), Transition::Opened);
    }
}
