#![doc = include_str!("../README.md")]

mod chat;
mod client;
mod error;
mod providers;
mod retry;
pub mod sse;
mod tokens;

use std::{fmt, str::FromStr};

pub use chat::{ChatMessage, ChatRequest, Role, Sampling, StreamEvent, Usage};
pub use client::{EventStream, LlmClient};
pub use error::LlmError;
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
pub use tokens::{count_prompt_tokens, count_text_tokens};

/// The wire protocols this crate speaks. Closed on purpose: adding a
/// provider means adding an adapter module and a `match` arm everywhere the
/// compiler asks for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenAI Chat Completions, and every server that speaks it (Ollama,
    /// vLLM, LiteLLM, ...).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Google,
}

impl ProviderKind {
    /// Every kind, in a stable order.
    pub const ALL: [ProviderKind; 3] = [Self::OpenAi, Self::Anthropic, Self::Google];

    /// The name stored in `aiProviders.name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Google => "google",
        }
    }

    /// The provider's public API root, the base URL an empty configuration
    /// falls back to. OpenAI's includes `/v1`, as its SDKs' `base_url` does,
    /// so that `http://localhost:11434/v1` (Ollama) fits the same slot.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAi => "https://api.openai.com/v1",
            Self::Anthropic => "https://api.anthropic.com",
            Self::Google => "https://generativelanguage.googleapis.com",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is not one of [`ProviderKind::as_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?} (expected openai, anthropic or google)")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// Where and how to reach one provider account.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Which wire protocol to speak.
    pub kind: ProviderKind,
    /// The API root, without a trailing slash needed: for
    /// [`ProviderKind::OpenAi`] the part before `/chat/completions` (so any
    /// OpenAI-compatible server works), for the others the part before
    /// `/v1/messages` and `/v1beta/models/...`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer` (OpenAI; omitted when empty, for
    /// local servers), `x-api-key` (Anthropic) or `x-goog-api-key` (Google).
    pub api_key: SecretString,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
        }
        assert_eq!("OpenAI".parse::<ProviderKind>(), Ok(ProviderKind::OpenAi));
        assert_eq!(
            "mistral".parse::<ProviderKind>(),
            Err(UnknownProvider("mistral".to_owned()))
        );
    }
}
