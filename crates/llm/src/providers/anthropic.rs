//! Anthropic Messages, streamed
//! (<https://docs.anthropic.com/en/docs/build-with-claude/streaming>,
//! <https://docs.anthropic.com/en/api/messages>).
//!
//! Request: `POST {base}/v1/messages` with `x-api-key`,
//! `anthropic-version: 2023-06-01`, the system prompt as top-level `system`,
//! and `stream: true`. Reply: named events, `message_start` (with
//! `usage.input_tokens`), per content block `content_block_start`,
//! `content_block_delta`s (`text_delta` for text) and `content_block_stop`,
//! then `message_delta` (cumulative `usage.output_tokens`) and
//! `message_stop`. `ping`s may come anywhere, `error` events mid-stream, and
//! unknown event types must be ignored ("handle unknown event types
//! gracefully", same page).

use serde::{Deserialize, Serialize};

use super::{Failure, Output, ReportedUsage};
use crate::{ChatRequest, LlmError, ProviderConfig, Role, sse::SseEvent};
use secrecy::ExposeSecret;

/// The API version this adapter is written against.
const VERSION: &str = "2023-06-01";

#[derive(Debug, Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<Message<'a>>,
    /// 0 to 1 here.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    stream: bool,
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// The events, told apart by the `type` every data object carries.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockDelta {
        delta: Delta,
    },
    MessageDelta {
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_start`, `content_block_stop`, and whatever
    /// the API adds later.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    TextDelta {
        text: String,
    },
    /// Tool input, thinking, signatures: not part of a chat reply.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

pub(crate) fn request(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    request: &ChatRequest,
) -> Result<reqwest::RequestBuilder, LlmError> {
    let body = Body {
        model: &request.model,
        max_tokens: request.max_tokens,
        system: request.system.as_deref(),
        messages: request
            .messages
            .iter()
            .map(|message| Message {
                role: match message.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                },
                content: &message.content,
            })
            .collect(),
        temperature: request.sampling.temperature.map(|t| t.clamp(0.0, 1.0)),
        stop_sequences: &request.sampling.stop,
        stream: true,
    };
    Ok(http
        .post(super::join(&provider.base_url, "v1/messages"))
        .header(
            "x-api-key",
            super::secret_header(provider.api_key.expose_secret())?,
        )
        .header("anthropic-version", VERSION)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body))
}

/// Usage as it arrives: input in `message_start`, output (cumulative) in
/// `message_delta`.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: ReportedUsage,
}

impl Decoder {
    pub(crate) fn on_event(&mut self, event: &SseEvent) -> Result<Option<Output>, Failure> {
        let parsed: Event = serde_json::from_str(&event.data)
            .map_err(|error| Failure::Protocol(format!("{error} in {:?}", event.data)))?;
        match parsed {
            Event::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.record(&usage);
                }
                Ok(None)
            }
            Event::ContentBlockDelta {
                delta: Delta::TextDelta { text },
            } => Ok((!text.is_empty()).then_some(Output::Text(text))),
            Event::MessageDelta { usage } => {
                if let Some(usage) = usage {
                    self.record(&usage);
                }
                Ok(None)
            }
            Event::MessageStop => Ok(Some(Output::Finished(self.usage))),
            Event::Error { error } => Err(Failure::Provider(format!(
                "{}: {}",
                error.kind.as_deref().unwrap_or("error"),
                error.message.as_deref().unwrap_or("unspecified")
            ))),
            Event::ContentBlockDelta {
                delta: Delta::Other,
            }
            | Event::Other => Ok(None),
        }
    }

    /// Later counts replace earlier ones: `message_delta`'s are cumulative.
    fn record(&mut self, usage: &WireUsage) {
        if let Some(input) = usage.input_tokens {
            self.usage.prompt_tokens = Some(input);
        }
        if let Some(output) = usage.output_tokens {
            self.usage.completion_tokens = Some(output);
        }
    }

    pub(crate) fn on_end(&mut self) -> Result<ReportedUsage, Failure> {
        Err(Failure::Cut("the stream ended without message_stop".into()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::conformance::{self, Fixture};
    use crate::{ProviderKind, StreamEvent, Usage};

    pub(crate) struct Anthropic;

    fn event(name: &str, data: serde_json::Value) -> String {
        format!("event: {name}\ndata: {data}\n\n")
    }

    fn opening(input_tokens: u32) -> String {
        event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant",
                "content": [], "model": "claude-opus-4-1-20250805", "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": input_tokens, "output_tokens": 1}}}),
        ) + &event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ) + &event("ping", json!({"type": "ping"}))
    }

    fn deltas(parts: &[&str]) -> String {
        parts
            .iter()
            .map(|part| {
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": part}}),
                )
            })
            .collect()
    }

    impl Fixture for Anthropic {
        const KIND: ProviderKind = ProviderKind::Anthropic;
        const MODEL: &'static str = "claude-opus-4-1-20250805";

        // "Basic streaming request", response, verbatim:
        // https://docs.anthropic.com/en/docs/build-with-claude/streaming#basic-streaming-request
        const DOCUMENTED: &'static str = include_str!("fixtures/anthropic-basic-streaming.txt");
        const DOCUMENTED_TEXT: &'static str = "Hello!";
        const DOCUMENTED_USAGE: Usage = Usage {
            prompt_tokens: 25,
            completion_tokens: 15,
        };

        fn stream(parts: &[&str], usage: Usage) -> String {
            opening(usage.prompt_tokens)
                + &deltas(parts)
                + &event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                )
                + &event(
                    "message_delta",
                    json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                           "usage": {"output_tokens": usage.completion_tokens}}),
                )
                + &event("message_stop", json!({"type": "message_stop"}))
        }

        fn cut(parts: &[&str]) -> String {
            opening(10) + &deltas(parts)
        }

        fn error_after(parts: &[&str]) -> String {
            // The page's "Error events" example, verbatim.
            opening(10)
                + &deltas(parts)
                + "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
        }

        fn expected_url(base: &str) -> String {
            format!("{base}/v1/messages")
        }

        fn expected_headers(api_key: &str) -> Vec<(&'static str, String)> {
            vec![
                ("x-api-key", api_key.to_owned()),
                ("anthropic-version", "2023-06-01".to_owned()),
            ]
        }

        fn expected_body() -> serde_json::Value {
            // The shape of the page's curl example, with a system prompt
            // (https://docs.anthropic.com/en/api/messages: `system` is top level).
            json!({
                "model": "claude-opus-4-1-20250805",
                "max_tokens": 256,
                "system": "You are a helpful assistant.",
                "messages": [
                    {"role": "user", "content": "Hello!"},
                    {"role": "assistant", "content": "Hi! How can I help?"},
                    {"role": "user", "content": "Say hello back."},
                ],
                "stream": true,
            })
        }

        fn add_sampling(body: &mut serde_json::Value) {
            // `temperature` (0 to 1) and `stop_sequences` of the Messages API.
            body["temperature"] = json!(0.5);
            body["stop_sequences"] = json!(["END", "###"]);
        }
    }

    conformance_tests!(Anthropic);

    #[test]
    fn a_temperature_above_anthropics_range_is_sent_as_its_highest() {
        let mut request = conformance::request::<Anthropic>();
        request.sampling.temperature = Some(1.5);
        assert_eq!(
            conformance::body_of::<Anthropic>(&request)["temperature"],
            json!(1.0)
        );
    }

    #[tokio::test]
    async fn thinking_and_tool_deltas_and_unknown_events_are_skipped() {
        let stream = opening(5)
            + &event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "thinking_delta", "thinking": "Let me think"}}),
            )
            + &event(
                "brand_new_event",
                json!({"type": "brand_new_event", "x": 1}),
            )
            + &deltas(&["Hi"])
            + &event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                       "usage": {"input_tokens": 6, "output_tokens": 3}}),
            )
            + &event("message_stop", json!({"type": "message_stop"}));
        let (events, error) = conformance::run::<Anthropic>(&[stream.as_bytes()]).await;
        assert_eq!(error, None);
        assert_eq!(
            events,
            vec![
                StreamEvent::Text("Hi".into()),
                // message_delta's cumulative input count wins over message_start's.
                StreamEvent::Done(Usage {
                    prompt_tokens: 6,
                    completion_tokens: 3
                })
            ]
        );
    }
}
