//! Failures after the first token end the stream, keeping what came.
#![expect(
    clippy::unwrap_used,
    reason = "shared test bodies: a failure fails the test"
)]

use aichat_llm::{LlmError, ProviderKind};
use serde_json::json;

use crate::helpers::{Mock, each_provider};

async fn a_cut_mid_reply_ends_interrupted_after_the_text_so_far(kind: ProviderKind) {
    let mock = Mock::start().await;
    let full = mock.reply(kind).await;
    mock.faults(json!([{"kind": "cut", "afterTokens": 3}]))
        .await;
    let outcome = mock.reply(kind).await;
    assert_eq!(outcome.pieces, full.pieces[..3]);
    assert_eq!(outcome.usage, None);
    assert!(
        matches!(outcome.error, Some(LlmError::Interrupted { .. })),
        "{:?}",
        outcome.error
    );
    // Nothing is retried once text has been yielded.
    assert_eq!(mock.requests(kind).await, 2);
}
each_provider!(
    a_cut_mid_reply_ends_interrupted_after_the_text_so_far,
    super::a_cut_mid_reply_ends_interrupted_after_the_text_so_far
);

async fn an_error_event_mid_reply_ends_interrupted(kind: ProviderKind) {
    let mock = Mock::start().await;
    mock.faults(json!([{"kind": "error_event", "afterTokens": 2}]))
        .await;
    let outcome = mock.reply(kind).await;
    assert_eq!(outcome.pieces.len(), 2);
    assert_eq!(outcome.usage, None);
    assert!(
        matches!(&outcome.error, Some(LlmError::Interrupted { message }) if message.contains("provider sent an error")),
        "{:?}",
        outcome.error
    );
    assert!(outcome.error.unwrap().counts_against_breaker());
    assert_eq!(mock.requests(kind).await, 1);
}
each_provider!(
    an_error_event_mid_reply_ends_interrupted,
    super::an_error_event_mid_reply_ends_interrupted
);
