//! How the mock paces and sizes its replies.

use std::time::Duration;

use aichat_config::ConfigError;
use serde::{Deserialize, Serialize};

/// Reply pacing and length, read from the environment at start and changed
/// at run time with `PUT /_mock/config`.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MOCK_ADDR` | `127.0.0.1:8090` | where the binary listens (read by `main`) |
/// | `MOCK_TTFT_MS` | `200` | time to first token |
/// | `MOCK_TOKEN_DELAY_MS` | `20` | delay between two tokens |
/// | `MOCK_REPLY_TOKENS` | `24` | words in a reply (fewer if the request's max tokens is lower) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockConfig {
    /// How long the first token takes: the model "thinking".
    pub ttft: Duration,
    /// The pause before each later token.
    pub token_delay: Duration,
    /// How many tokens (words) a reply has.
    pub reply_tokens: usize,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(200),
            token_delay: Duration::from_millis(20),
            reply_tokens: 24,
        }
    }
}

impl MockConfig {
    /// Reads the environment; see the table above.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            ttft: millis("MOCK_TTFT_MS", defaults.ttft)?,
            token_delay: millis("MOCK_TOKEN_DELAY_MS", defaults.token_delay)?,
            reply_tokens: aichat_config::parse("MOCK_REPLY_TOKENS", defaults.reply_tokens)?,
        })
    }

    /// No waiting at all: for tests that only care about content.
    pub fn instant() -> Self {
        Self {
            ttft: Duration::ZERO,
            token_delay: Duration::ZERO,
            ..Self::default()
        }
    }

    /// This configuration with `patch`'s fields, where given.
    pub(crate) fn patched(self, patch: ConfigPatch) -> Self {
        Self {
            ttft: patch.ttft_ms.map_or(self.ttft, Duration::from_millis),
            token_delay: patch
                .token_delay_ms
                .map_or(self.token_delay, Duration::from_millis),
            reply_tokens: patch.reply_tokens.unwrap_or(self.reply_tokens),
        }
    }
}

fn millis(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let default_ms = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
    aichat_config::parse(name, default_ms).map(Duration::from_millis)
}

/// The body of `PUT /_mock/config`, and what it answers: every field
/// optional on the way in.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigPatch {
    pub(crate) ttft_ms: Option<u64>,
    pub(crate) token_delay_ms: Option<u64>,
    pub(crate) reply_tokens: Option<usize>,
}

impl From<MockConfig> for ConfigPatch {
    fn from(config: MockConfig) -> Self {
        Self {
            ttft_ms: Some(u64::try_from(config.ttft.as_millis()).unwrap_or(u64::MAX)),
            token_delay_ms: Some(u64::try_from(config.token_delay.as_millis()).unwrap_or(u64::MAX)),
            reply_tokens: Some(config.reply_tokens),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patched = MockConfig::default().patched(ConfigPatch {
            reply_tokens: Some(3),
            ..ConfigPatch::default()
        });
        assert_eq!(
            patched,
            MockConfig {
                reply_tokens: 3,
                ..MockConfig::default()
            }
        );
    }
}
