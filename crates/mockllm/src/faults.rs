//! Failures the mock can be told to produce, one per model request, in the
//! order they were queued.

use serde::{Deserialize, Serialize};

/// One injected failure, as `POST /_mock/faults` takes it:
/// `{"kind": "rate_limit", "retryAfterSecs": 1}`, `{"kind": "server_error"}`,
/// `{"kind": "cut", "afterTokens": 3}`, `{"kind": "error_event", "afterTokens": 2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// HTTP 429 in the provider's error shape, with `Retry-After` if given.
    RateLimit {
        /// The `Retry-After` header, in seconds.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// HTTP 500 in the provider's error shape.
    ServerError,
    /// The stream stops after this many tokens, without the terminal event
    /// (a non-streaming reply stops halfway through its JSON).
    Cut {
        /// Tokens sent before the cut.
        after_tokens: usize,
    },
    /// After this many tokens, the provider's documented mid-stream error
    /// event, then the end of the stream (a non-streaming request gets an
    /// HTTP 500).
    ErrorEvent {
        /// Tokens sent before the error.
        after_tokens: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_as_documented() {
        let faults: Vec<Fault> = serde_json::from_str(
            r#"[{"kind":"rate_limit","retryAfterSecs":1},{"kind":"rate_limit"},{"kind":"server_error"},
                {"kind":"cut","afterTokens":3},{"kind":"error_event","afterTokens":2}]"#,
        )
        .unwrap();
        assert_eq!(
            faults,
            vec![
                Fault::RateLimit {
                    retry_after_secs: Some(1)
                },
                Fault::RateLimit {
                    retry_after_secs: None
                },
                Fault::ServerError,
                Fault::Cut { after_tokens: 3 },
                Fault::ErrorEvent { after_tokens: 2 },
            ]
        );
    }
}
