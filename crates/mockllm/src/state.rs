//! What the mock's workers share: the current configuration, the fault
//! queue and the request counters.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Serialize;

use crate::{Fault, MockConfig};

/// The three wire formats, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    OpenAi,
    Anthropic,
    Google,
}

/// Shared by every worker. The locks are held only to copy or pop a value,
/// never across an `.await`.
#[derive(Debug)]
pub(crate) struct State {
    config: Mutex<MockConfig>,
    faults: Mutex<VecDeque<Fault>>,
    openai: AtomicU64,
    anthropic: AtomicU64,
    google: AtomicU64,
}

/// `GET /_mock/stats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stats {
    /// Model requests received per format, faulted ones included.
    openai: u64,
    anthropic: u64,
    google: u64,
    faults_queued: usize,
}

/// A poisoned lock only means another request panicked mid-copy of plain
/// data: the data is still whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub(crate) fn new(config: MockConfig) -> Self {
        Self {
            config: Mutex::new(config),
            faults: Mutex::new(VecDeque::new()),
            openai: AtomicU64::new(0),
            anthropic: AtomicU64::new(0),
            google: AtomicU64::new(0),
        }
    }

    pub(crate) fn config(&self) -> MockConfig {
        *lock(&self.config)
    }

    pub(crate) fn set_config(&self, config: MockConfig) {
        *lock(&self.config) = config;
    }

    /// Counts a model request and hands it the next fault, if any.
    pub(crate) fn arrive(&self, api: Api) -> Option<Fault> {
        let counter = match api {
            Api::OpenAi => &self.openai,
            Api::Anthropic => &self.anthropic,
            Api::Google => &self.google,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        lock(&self.faults).pop_front()
    }

    /// Appends `faults`; returns the queue's length.
    pub(crate) fn queue(&self, faults: Vec<Fault>) -> usize {
        let mut queue = lock(&self.faults);
        queue.extend(faults);
        queue.len()
    }

    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            openai: self.openai.load(Ordering::Relaxed),
            anthropic: self.anthropic.load(Ordering::Relaxed),
            google: self.google.load(Ordering::Relaxed),
            faults_queued: lock(&self.faults).len(),
        }
    }
}
