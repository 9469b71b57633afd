//! The HTTP side: send, classify the response, retry before the first
//! token, then hand the caller a stream.
//!
//! [`LlmClient::stream`] returns only once the first event has been decoded.
//! Everything that can go wrong before then (connection, status, an error
//! event, a cut) is retried under the [`RetryPolicy`]; the returned stream
//! never retries, since the caller has already shown text to someone.

use std::{error::Error as _, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use futures::{Stream, StreamExt};
use reqwest::{StatusCode, header::HeaderMap};

use crate::{
    ChatRequest, LlmError, ProviderConfig, RetryPolicy, StreamEvent,
    providers::{self, Accounting, Decoded},
};

/// A reply: [`StreamEvent::Text`]s then [`StreamEvent::Done`], or ending
/// with one [`LlmError::Interrupted`].
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest silence between two reads, headers included: long enough for
/// a reasoning model thinking before its first token, short enough to notice
/// a dead peer.
const READ_TIMEOUT: Duration = Duration::from_secs(180);
/// How much of an error response body is read for its message.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// Streams chat completions from any [`crate::ProviderKind`]. Cheap to clone;
/// share one per process so connections are pooled.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl LlmClient {
    /// A client retrying under `retry`.
    pub fn new(retry: RetryPolicy) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("aichat-llm/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Self { http, retry })
    }

    /// Starts streaming the reply to `request` from `provider`; returns once
    /// the first event has arrived, retrying until then.
    pub async fn stream(
        &self,
        provider: &ProviderConfig,
        request: &ChatRequest,
    ) -> Result<EventStream, LlmError> {
        let accounting = Accounting {
            kind: provider.kind,
            request: Arc::new(request.clone()),
        };
        let mut attempt = 1;
        loop {
            let error = match self.attempt(provider, &accounting).await {
                Ok(stream) => return Ok(stream),
                Err(error) => error,
            };
            if !error.is_transient() || attempt >= self.retry.attempts() {
                return Err(error);
            }
            let retry_after = match &error {
                LlmError::RateLimited { retry_after } => *retry_after,
                _ => None,
            };
            let Some(delay) = self.retry.delay(attempt, retry_after) else {
                return Err(error);
            };
            tracing::debug!(
                provider = %provider.kind,
                model = %request.model,
                attempt,
                delay_ms = delay.as_millis(),
                error = %error,
                "retrying the completion"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        provider: &ProviderConfig,
        accounting: &Accounting,
    ) -> Result<EventStream, LlmError> {
        let request = providers::build_request(&self.http, provider, &accounting.request)?;
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|error| LlmError::Unavailable(error_chain(&error)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status, response).await);
        }
        open(providers::decode(
            response.bytes_stream(),
            accounting.clone(),
        ))
        .await
    }
}

/// Waits for the first event of `decoded`; failures until then are the
/// attempt's, failures after it end the returned stream as
/// [`LlmError::Interrupted`].
pub(crate) async fn open(mut decoded: Decoded) -> Result<EventStream, LlmError> {
    match decoded.next().await {
        Some(Ok(first)) => {
            let rest = decoded.map(|item| item.map_err(providers::Failure::after_first_token));
            Ok(Box::pin(futures::stream::iter([Ok(first)]).chain(rest)))
        }
        Some(Err(failure)) => Err(failure.before_first_token()),
        // Decoding always ends with `Done` or a failure; this is defensive.
        None => Err(LlmError::Unavailable(
            "the stream ended before any event".into(),
        )),
    }
}

/// The error for a non-2xx response.
async fn status_error(status: StatusCode, response: reqwest::Response) -> LlmError {
    let retry_after = retry_after(response.headers());
    let body = read_limited(response).await;
    match status.as_u16() {
        429 => LlmError::RateLimited { retry_after },
        500..=599 => LlmError::Unavailable(format!("HTTP {status}: {}", error_message(&body))),
        code => LlmError::Rejected {
            status: code,
            message: error_message(&body),
        },
    }
}

/// `retry-after-ms` (OpenAI) or `retry-after` in whole seconds. The
/// HTTP-date form is not honoured.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let from_secs = |secs: f64| Duration::try_from_secs_f64(secs).ok();
    value("retry-after-ms")
        .and_then(|ms| from_secs(ms / 1000.0))
        .or_else(|| value("retry-after").and_then(from_secs))
}

/// The start of the body, lossily decoded.
async fn read_limited(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

/// The provider's message from an error body. All three document the same
/// place for it: `{"error": {"message": ...}}` (OpenAI, Google) and
/// `{"type": "error", "error": {"message": ...}}` (Anthropic).
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| {
            let trimmed = body.trim();
            if trimmed.is_empty() {
                "no error message".to_owned()
            } else {
                trimmed.chars().take(500).collect()
            }
        })
}

/// An error and its causes, which is where reqwest says what failed.
fn error_chain(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_milliseconds_then_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut date = HeaderMap::new();
        date.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&date), None);
        date.insert("retry-after", "-1".parse().unwrap());
        assert_eq!(retry_after(&date), None);
    }

    #[test]
    fn error_messages_come_from_each_providers_documented_error_body() {
        assert_eq!(
            error_message(
                r#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}"#
            ),
            "Incorrect API key provided"
        );
        assert_eq!(
            error_message(
                r#"{"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}}"#
            ),
            "max_tokens: Field required"
        );
        assert_eq!(
            error_message(
                r#"{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}"#
            ),
            "API key not valid."
        );
        assert_eq!(
            error_message("<html>Bad Gateway</html>"),
            "<html>Bad Gateway</html>"
        );
        assert_eq!(error_message(""), "no error message");
    }
}
