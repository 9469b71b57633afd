//! Why a completion failed, in the terms a caller acts on: retry later,
//! give up, blame the request, or keep the partial reply.

use std::time::Duration;

/// A failed completion. [`crate::LlmClient::stream`] returns any of these
/// but [`LlmError::Interrupted`] (after its own retries); a stream that has
/// already yielded text ends with `Interrupted` instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// HTTP 429 on every attempt, or a `Retry-After` longer than the retry
    /// policy is willing to wait.
    #[error("the provider is rate limiting us")]
    RateLimited {
        /// What the provider asked for in `Retry-After`, if it said.
        retry_after: Option<Duration>,
    },
    /// HTTP 5xx, a connection failure, or a stream that failed before its
    /// first token, on every attempt.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// HTTP 4xx other than 429: retrying the same request will not help.
    #[error("the provider rejected the request (HTTP {status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The provider's own error message.
        message: String,
    },
    /// The provider answered 200 with bytes that are not its documented
    /// stream format.
    #[error("the provider's stream is not in the expected format: {0}")]
    Protocol(String),
    /// The stream failed after yielding text: an error event, a cut
    /// connection, or garbage. The text already yielded is all there is.
    #[error("the reply was interrupted: {message}")]
    Interrupted {
        /// What went wrong, and after how much of the reply.
        message: String,
    },
    /// The [`crate::ProviderConfig`] cannot make a request (a base URL that
    /// is not a URL, an API key that is not a valid header value).
    #[error("the provider configuration is unusable: {0}")]
    Misconfigured(String),
}

impl LlmError {
    /// Whether this failure says something about the provider's health, so
    /// it should count towards opening a circuit breaker. Rejections and
    /// misconfiguration are about our request, not the provider.
    pub fn counts_against_breaker(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Unavailable(_)
            | Self::Protocol(_)
            | Self::Interrupted { .. } => true,
            Self::Rejected { .. } | Self::Misconfigured(_) => false,
        }
    }

    /// Whether another attempt of the same request may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_provider_side_failures_trip_the_breaker() {
        assert!(LlmError::RateLimited { retry_after: None }.counts_against_breaker());
        assert!(LlmError::Unavailable("502".into()).counts_against_breaker());
        assert!(LlmError::Protocol("junk".into()).counts_against_breaker());
        assert!(
            LlmError::Interrupted {
                message: "cut".into()
            }
            .counts_against_breaker()
        );
        assert!(
            !LlmError::Rejected {
                status: 400,
                message: "bad".into()
            }
            .counts_against_breaker()
        );
        assert!(!LlmError::Misconfigured("url".into()).counts_against_breaker());
    }
}
