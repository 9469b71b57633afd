//! The scenarios every adapter must pass, against recordings of its
//! provider's documented format (TensorZero's `generate_provider_tests!`).
//! Each adapter implements [`Fixture`] and calls [`conformance_tests!`].

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use futures::StreamExt;

use super::{Accounting, build_request, decode};
use crate::{
    ChatMessage, ChatRequest, LlmError, ProviderConfig, ProviderKind, Sampling, SecretString,
    StreamEvent, Usage,
};

/// What an adapter's tests provide: a documented recording and builders for
/// well-formed streams in its format.
pub(crate) trait Fixture {
    const KIND: ProviderKind;
    /// A model id of this provider, used in [`request`].
    const MODEL: &'static str;
    /// A stream as the provider's documentation or SDK records it, byte for
    /// byte, and what it must decode to.
    const DOCUMENTED: &'static str;
    const DOCUMENTED_TEXT: &'static str;
    const DOCUMENTED_USAGE: Usage;

    /// A complete reply of `parts`, whose usage arrives in a final event
    /// that carries no text.
    fn stream(parts: &[&str], usage: Usage) -> String;
    /// `parts`, then the end of the body, without the terminal event.
    fn cut(parts: &[&str]) -> String;
    /// `parts`, then the provider's documented mid-stream error event.
    fn error_after(parts: &[&str]) -> String;
    /// The URL [`request`] is sent to under `base`.
    fn expected_url(base: &str) -> String;
    /// The credential and version headers.
    fn expected_headers(api_key: &str) -> Vec<(&'static str, String)>;
    /// The JSON body [`request`] is sent as.
    fn expected_body() -> serde_json::Value;
    /// Adds [`SAMPLING`] in the provider's words to [`Self::expected_body`].
    fn add_sampling(body: &mut serde_json::Value);
}

/// The sampling settings of the sampling scenario.
pub(crate) fn sampling() -> Sampling {
    Sampling {
        temperature: Some(0.5),
        stop: vec!["END".into(), "###".into()],
    }
}

/// The request the scenarios use: a system prompt and three turns.
pub(crate) fn request<F: Fixture>() -> ChatRequest {
    ChatRequest {
        model: F::MODEL.into(),
        system: Some("You are a helpful assistant.".into()),
        messages: vec![
            ChatMessage::user("Hello!"),
            ChatMessage::assistant("Hi! How can I help?"),
            ChatMessage::user("Say hello back."),
        ],
        max_tokens: 256,
        sampling: Default::default(),
    }
}

/// Decodes a body delivered as `chunks`, through the same first-token
/// handling as [`crate::LlmClient::stream`]: the events, and the error that
/// ended them (checking that nothing follows an error).
pub(crate) async fn run<F: Fixture>(chunks: &[&[u8]]) -> (Vec<StreamEvent>, Option<LlmError>) {
    let body: Vec<Result<Bytes, Infallible>> = chunks
        .iter()
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    let accounting = Accounting {
        kind: F::KIND,
        request: Arc::new(request::<F>()),
    };
    let mut stream =
        match crate::client::open(decode(futures::stream::iter(body), accounting)).await {
            Ok(stream) => stream,
            Err(error) => return (Vec::new(), Some(error)),
        };
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(error) => {
                assert!(stream.next().await.is_none(), "events after an error");
                return (events, Some(error));
            }
        }
    }
    (events, None)
}

/// The text of `events`, joined.
pub(crate) fn text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::Text(text) => Some(text.as_str()),
            StreamEvent::Done(_) => None,
        })
        .collect()
}

/// Asserts `events` are non-empty text pieces then exactly one `Done(usage)`.
fn assert_complete(events: &[StreamEvent], text_expected: &str, usage: Usage) {
    let (done, pieces) = events.split_last().expect("no events");
    assert_eq!(done, &StreamEvent::Done(usage));
    assert!(
        pieces
            .iter()
            .all(|event| matches!(event, StreamEvent::Text(text) if !text.is_empty())),
        "{events:?}"
    );
    assert_eq!(text(events), text_expected);
}

pub(crate) async fn documented_stream_yields_its_text_and_usage<F: Fixture>() {
    let (events, error) = run::<F>(&[F::DOCUMENTED.as_bytes()]).await;
    assert_eq!(error, None);
    assert_complete(&events, F::DOCUMENTED_TEXT, F::DOCUMENTED_USAGE);
}

pub(crate) async fn documented_stream_split_at_every_byte_offset_decodes_the_same<F: Fixture>() {
    let bytes = F::DOCUMENTED.as_bytes();
    let (whole, _) = run::<F>(&[bytes]).await;
    for cut in 0..=bytes.len() {
        let (events, error) = run::<F>(&[&bytes[..cut], &bytes[cut..]]).await;
        assert_eq!(error, None, "split at {cut}");
        assert_eq!(text(&events), text(&whole), "split at {cut}");
        assert_eq!(events.last(), whole.last(), "split at {cut}");
    }
}

pub(crate) async fn documented_stream_in_one_byte_chunks_decodes_the_same<F: Fixture>() {
    let chunks: Vec<&[u8]> = F::DOCUMENTED.as_bytes().chunks(1).collect();
    let (events, error) = run::<F>(&chunks).await;
    assert_eq!(error, None);
    assert_complete(&events, F::DOCUMENTED_TEXT, F::DOCUMENTED_USAGE);
}

pub(crate) async fn multi_byte_utf8_survives_every_chunk_boundary<F: Fixture>() {
    let usage = Usage {
        prompt_tokens: 12,
        completion_tokens: 7,
    };
    let stream = F::stream(&["hé", "llo 世", "界 🚀"], usage);
    let bytes = stream.as_bytes();
    for cut in 0..=bytes.len() {
        let (events, error) = run::<F>(&[&bytes[..cut], &bytes[cut..]]).await;
        assert_eq!(error, None, "split at {cut}");
        assert_complete(&events, "héllo 世界 🚀", usage);
    }
    let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
    let (events, error) = run::<F>(&chunks).await;
    assert_eq!(error, None);
    assert_complete(&events, "héllo 世界 🚀", usage);
}

pub(crate) async fn usage_alone_in_the_final_event_is_reported<F: Fixture>() {
    let usage = Usage {
        prompt_tokens: 31,
        completion_tokens: 2,
    };
    let (events, error) = run::<F>(&[F::stream(&["Hi", " there"], usage).as_bytes()]).await;
    assert_eq!(error, None);
    assert_complete(&events, "Hi there", usage);
}

pub(crate) async fn error_event_after_text_is_interrupted<F: Fixture>() {
    let (events, error) = run::<F>(&[F::error_after(&["Hel", "lo"]).as_bytes()]).await;
    assert_eq!(
        events,
        vec![
            StreamEvent::Text("Hel".into()),
            StreamEvent::Text("lo".into())
        ]
    );
    assert!(
        matches!(&error, Some(LlmError::Interrupted { message }) if message.contains("error")),
        "{error:?}"
    );
}

pub(crate) async fn error_event_before_text_is_unavailable<F: Fixture>() {
    let (events, error) = run::<F>(&[F::error_after(&[]).as_bytes()]).await;
    assert_eq!(events, vec![]);
    assert!(matches!(error, Some(LlmError::Unavailable(_))), "{error:?}");
}

pub(crate) async fn cut_after_text_is_interrupted<F: Fixture>() {
    let (events, error) = run::<F>(&[F::cut(&["Hel", "lo"]).as_bytes()]).await;
    assert_eq!(text(&events), "Hello");
    assert!(
        events
            .iter()
            .all(|event| matches!(event, StreamEvent::Text(_)))
    );
    assert!(
        matches!(error, Some(LlmError::Interrupted { .. })),
        "{error:?}"
    );
}

pub(crate) async fn cut_before_text_is_unavailable<F: Fixture>() {
    for body in [F::cut(&[]), String::new()] {
        let (events, error) = run::<F>(&[body.as_bytes()]).await;
        assert_eq!(events, vec![]);
        assert!(matches!(error, Some(LlmError::Unavailable(_))), "{error:?}");
    }
}

pub(crate) async fn malformed_data_is_a_protocol_error<F: Fixture>() {
    let (_, error) = run::<F>(&[b"data: {\"half\": \n\n"]).await;
    assert!(matches!(error, Some(LlmError::Protocol(_))), "{error:?}");
    let (_, error) = run::<F>(&[b"data: \xff\xfe\n\n"]).await;
    assert!(matches!(error, Some(LlmError::Protocol(_))), "{error:?}");
}

/// The JSON body `request` is sent as.
pub(crate) fn body_of<F: Fixture>(request: &ChatRequest) -> serde_json::Value {
    let provider = ProviderConfig {
        kind: F::KIND,
        base_url: "https://provider.test/api/".into(),
        api_key: SecretString::from("sk-test-123"),
    };
    let built = build_request(&reqwest::Client::new(), &provider, request).unwrap();
    serde_json::from_slice(built.body().and_then(|body| body.as_bytes()).unwrap()).unwrap()
}

pub(crate) fn sampling_is_sent_in_the_providers_words<F: Fixture>() {
    let mut sampled = request::<F>();
    sampled.sampling = sampling();
    let mut expected = F::expected_body();
    F::add_sampling(&mut expected);
    assert_eq!(body_of::<F>(&sampled), expected);
}

pub(crate) fn request_has_the_documented_shape<F: Fixture>() {
    let provider = ProviderConfig {
        kind: F::KIND,
        base_url: "https://provider.test/api/".into(),
        api_key: SecretString::from("sk-test-123"),
    };
    let http = reqwest::Client::new();
    let built = build_request(&http, &provider, &request::<F>()).unwrap();
    assert_eq!(built.method(), reqwest::Method::POST);
    assert_eq!(
        built.url().as_str(),
        F::expected_url("https://provider.test/api")
    );
    assert_eq!(built.headers()["content-type"], "application/json");
    for (name, value) in F::expected_headers("sk-test-123") {
        assert_eq!(built.headers()[name], value.as_str(), "{name}");
    }
    // The credential never shows in a `Debug` of the request.
    let credentials: Vec<_> = ["authorization", "x-api-key", "x-goog-api-key"]
        .iter()
        .filter_map(|name| built.headers().get(*name))
        .collect();
    assert_eq!(credentials.len(), 1);
    assert!(credentials[0].is_sensitive());
    let body: serde_json::Value =
        serde_json::from_slice(built.body().and_then(|body| body.as_bytes()).unwrap()).unwrap();
    assert_eq!(body, F::expected_body());
}

/// The conformance suite as `#[tokio::test]`s for one [`Fixture`].
macro_rules! conformance_tests {
    ($fixture:ty) => {
        mod conformance_suite {
            use super::*;
            use $crate::providers::conformance as suite;

            #[tokio::test]
            async fn documented_stream_yields_its_text_and_usage() {
                suite::documented_stream_yields_its_text_and_usage::<$fixture>().await;
            }

            #[tokio::test]
            async fn documented_stream_split_at_every_byte_offset_decodes_the_same() {
                suite::documented_stream_split_at_every_byte_offset_decodes_the_same::<$fixture>()
                    .await;
            }

            #[tokio::test]
            async fn documented_stream_in_one_byte_chunks_decodes_the_same() {
                suite::documented_stream_in_one_byte_chunks_decodes_the_same::<$fixture>().await;
            }

            #[tokio::test]
            async fn multi_byte_utf8_survives_every_chunk_boundary() {
                suite::multi_byte_utf8_survives_every_chunk_boundary::<$fixture>().await;
            }

            #[tokio::test]
            async fn usage_alone_in_the_final_event_is_reported() {
                suite::usage_alone_in_the_final_event_is_reported::<$fixture>().await;
            }

            #[tokio::test]
            async fn error_event_after_text_is_interrupted() {
                suite::error_event_after_text_is_interrupted::<$fixture>().await;
            }

            #[tokio::test]
            async fn error_event_before_text_is_unavailable() {
                suite::error_event_before_text_is_unavailable::<$fixture>().await;
            }

            #[tokio::test]
            async fn cut_after_text_is_interrupted() {
                suite::cut_after_text_is_interrupted::<$fixture>().await;
            }

            #[tokio::test]
            async fn cut_before_text_is_unavailable() {
                suite::cut_before_text_is_unavailable::<$fixture>().await;
            }

            #[tokio::test]
            async fn malformed_data_is_a_protocol_error() {
                suite::malformed_data_is_a_protocol_error::<$fixture>().await;
            }

            #[test]
            fn request_has_the_documented_shape() {
                suite::request_has_the_documented_shape::<$fixture>();
            }

            #[test]
            fn sampling_is_sent_in_the_providers_words() {
                suite::sampling_is_sent_in_the_providers_words::<$fixture>();
            }
        }
    };
}
