//! Failures before the first token are retried, within the policy.
#![expect(
    clippy::unwrap_used,
    reason = "shared test bodies: a failure fails the test"
)]

use std::time::{Duration, Instant};

use aichat_llm::{LlmError, ProviderKind};
use serde_json::json;

use crate::helpers::{Mock, REPLY_TOKENS, client, collect, each_provider, request};

async fn a_429_is_retried_after_its_retry_after(kind: ProviderKind) {
    let mock = Mock::start().await;
    mock.faults(json!([{"kind": "rate_limit", "retryAfterSecs": 1}]))
        .await;
    let started = Instant::now();
    let stream = client()
        .stream(&mock.provider(kind), &request(kind))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert_eq!(mock.requests(kind).await, 2);
    let outcome = collect(stream).await;
    assert_eq!(outcome.pieces.len(), REPLY_TOKENS);
    assert!(outcome.usage.is_some());
}
each_provider!(
    a_429_is_retried_after_its_retry_after,
    super::a_429_is_retried_after_its_retry_after
);

async fn a_retry_after_beyond_the_policy_fails_at_once_as_rate_limited(kind: ProviderKind) {
    let mock = Mock::start().await;
    mock.faults(json!([{"kind": "rate_limit", "retryAfterSecs": 30}]))
        .await;
    let started = Instant::now();
    let error = client()
        .stream(&mock.provider(kind), &request(kind))
        .await
        .err();
    assert_eq!(
        error,
        Some(LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        })
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(mock.requests(kind).await, 1);
}
each_provider!(
    a_retry_after_beyond_the_policy_fails_at_once_as_rate_limited,
    super::a_retry_after_beyond_the_policy_fails_at_once_as_rate_limited
);

async fn a_500_is_retried_then_the_reply_streams(kind: ProviderKind) {
    let mock = Mock::start().await;
    mock.faults(json!([{"kind": "server_error"}])).await;
    let outcome = mock.reply(kind).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.pieces.len(), REPLY_TOKENS);
    assert_eq!(mock.requests(kind).await, 2);
}
each_provider!(
    a_500_is_retried_then_the_reply_streams,
    super::a_500_is_retried_then_the_reply_streams
);

async fn persistent_500s_are_unavailable_after_max_attempts(kind: ProviderKind) {
    let mock = Mock::start().await;
    mock.faults(json!(vec![json!({"kind": "server_error"}); 5]))
        .await;
    let error = client()
        .stream(&mock.provider(kind), &request(kind))
        .await
        .err();
    assert!(
        matches!(&error, Some(LlmError::Unavailable(message)) if message.contains("500")),
        "{error:?}"
    );
    assert!(error.unwrap().counts_against_breaker());
    assert_eq!(mock.requests(kind).await, 3);
}
each_provider!(
    persistent_500s_are_unavailable_after_max_attempts,
    super::persistent_500s_are_unavailable_after_max_attempts
);

async fn an_error_event_before_any_text_is_retried(kind: ProviderKind) {
    let mock = Mock::start().await;
    mock.faults(json!([{"kind": "error_event", "afterTokens": 0}]))
        .await;
    let outcome = mock.reply(kind).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.pieces.len(), REPLY_TOKENS);
    assert_eq!(mock.requests(kind).await, 2);
}
each_provider!(
    an_error_event_before_any_text_is_retried,
    super::an_error_event_before_any_text_is_retried
);

#[tokio::test]
async fn a_provider_that_refuses_connections_is_unavailable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mock = Mock::start().await;
    let mut provider = mock.provider(ProviderKind::Anthropic);
    provider.base_url = format!("http://{addr}");
    let error = client()
        .stream(&provider, &request(ProviderKind::Anthropic))
        .await
        .err();
    assert!(matches!(error, Some(LlmError::Unavailable(_))), "{error:?}");
}
