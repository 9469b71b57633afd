//! Complete replies: text as it was sent, usage as the provider reported.
#![expect(
    clippy::unwrap_used,
    reason = "shared test bodies: a failure fails the test"
)]

use std::time::{Duration, Instant};

use aichat_llm::{LlmError, ProviderKind, SecretString, Usage};
use aichat_mockllm::MockConfig;

use crate::helpers::{Mock, PROMPT_WORDS, REPLY_TOKENS, client, collect, each_provider, request};

async fn a_reply_streams_token_by_token_and_ends_with_the_reported_usage(kind: ProviderKind) {
    let mock = Mock::start().await;
    let stream = client()
        .stream(&mock.provider(kind), &request(kind))
        .await
        .unwrap();
    let outcome = collect(stream).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.pieces.len(), REPLY_TOKENS, "{:?}", outcome.pieces);
    assert_eq!(outcome.text().split_whitespace().count(), REPLY_TOKENS);
    assert_eq!(
        outcome.usage,
        Some(Usage {
            prompt_tokens: PROMPT_WORDS,
            completion_tokens: u32::try_from(REPLY_TOKENS).unwrap(),
        })
    );
    assert_eq!(mock.requests(kind).await, 1);
}
each_provider!(
    a_reply_streams_token_by_token_and_ends_with_the_reported_usage,
    super::a_reply_streams_token_by_token_and_ends_with_the_reported_usage
);

async fn the_same_conversation_gets_the_same_reply_in_every_format(kind: ProviderKind) {
    let mock = Mock::start().await;
    let reply = |kind| {
        let provider = mock.provider(kind);
        async move {
            collect(client().stream(&provider, &request(kind)).await.unwrap())
                .await
                .text()
        }
    };
    let first = reply(kind).await;
    assert_eq!(reply(kind).await, first);
    assert_eq!(reply(ProviderKind::OpenAi).await, first);
}
each_provider!(
    the_same_conversation_gets_the_same_reply_in_every_format,
    super::the_same_conversation_gets_the_same_reply_in_every_format
);

async fn max_tokens_below_the_reply_length_ends_the_reply_early(kind: ProviderKind) {
    let mock = Mock::start().await;
    let mut short = request(kind);
    short.max_tokens = 3;
    let outcome = collect(client().stream(&mock.provider(kind), &short).await.unwrap()).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.pieces.len(), 3);
    assert_eq!(outcome.usage.map(|usage| usage.completion_tokens), Some(3));
}
each_provider!(
    max_tokens_below_the_reply_length_ends_the_reply_early,
    super::max_tokens_below_the_reply_length_ends_the_reply_early
);

async fn the_stream_opens_at_the_first_token_not_the_last(kind: ProviderKind) {
    let mock = Mock::start_with(MockConfig {
        ttft: Duration::from_millis(200),
        token_delay: Duration::from_millis(300),
        reply_tokens: 5,
    })
    .await;
    let started = Instant::now();
    let stream = client()
        .stream(&mock.provider(kind), &request(kind))
        .await
        .unwrap();
    let opened = started.elapsed();
    let outcome = collect(stream).await;
    let finished = started.elapsed();
    assert_eq!(outcome.pieces.len(), 5);
    assert!(
        opened >= Duration::from_millis(200),
        "opened after {opened:?}"
    );
    // The four later tokens take 1.2 s more.
    assert!(
        opened < Duration::from_millis(1000),
        "opened after {opened:?}"
    );
    assert!(
        finished >= Duration::from_millis(1400),
        "finished after {finished:?}"
    );
}
each_provider!(
    the_stream_opens_at_the_first_token_not_the_last,
    super::the_stream_opens_at_the_first_token_not_the_last
);

async fn a_refused_key_is_rejected_without_retrying(kind: ProviderKind) {
    let mock = Mock::start().await;
    let mut provider = mock.provider(kind);
    provider.api_key = SecretString::from("");
    let error = client().stream(&provider, &request(kind)).await.err();
    assert!(
        matches!(&error, Some(LlmError::Rejected { status: 401, message }) if !message.is_empty()),
        "{error:?}"
    );
    assert!(!error.unwrap().counts_against_breaker());
    assert_eq!(mock.requests(kind).await, 1);
}
each_provider!(
    a_refused_key_is_rejected_without_retrying,
    super::a_refused_key_is_rejected_without_retrying
);
