//! OpenAI Chat Completions, streamed
//! (<https://platform.openai.com/docs/api-reference/chat/create>,
//! <https://platform.openai.com/docs/api-reference/chat/streaming>), which
//! Ollama, vLLM and most gateways also speak.
//!
//! Request: `POST {base}/chat/completions` with `Authorization: Bearer`,
//! `stream: true` and `stream_options.include_usage`. Reply: `data:` events
//! of `chat.completion.chunk` objects carrying `choices[].delta.content`,
//! then one chunk with `choices: []` and the request's `usage`, then
//! `data: [DONE]`. A failure mid-stream is a chunk holding `error` (what the
//! official SDKs check for, `openai-python` `_streaming.py`).

use serde::{Deserialize, Serialize};

use super::{Failure, Output, ReportedUsage};
use crate::{ChatRequest, LlmError, ProviderConfig, Role, sse::SseEvent};
use secrecy::ExposeSecret;

#[derive(Debug, Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    /// `max_tokens` is deprecated and refused by the o-series models.
    max_completion_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    /// Up to 4 sequences (an array; a lone string is also accepted by
    /// OpenAI).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct Chunk {
    /// Empty in the final usage chunk.
    #[serde(default)]
    choices: Vec<Choice>,
    /// `null` in every chunk but the last.
    usage: Option<WireUsage>,
    /// Only in an error chunk.
    error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

#[derive(Debug, Deserialize)]
struct WireError {
    message: Option<String>,
}

pub(crate) fn request(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    request: &ChatRequest,
) -> Result<reqwest::RequestBuilder, LlmError> {
    let system = request.system.as_deref().map(|content| Message {
        role: "system",
        content,
    });
    let turns = request.messages.iter().map(|message| Message {
        role: match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        },
        content: &message.content,
    });
    let body = Body {
        model: &request.model,
        messages: system.into_iter().chain(turns).collect(),
        max_completion_tokens: request.max_tokens,
        temperature: request.sampling.temperature,
        stop: &request.sampling.stop,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
    };
    let mut builder = http
        .post(super::join(&provider.base_url, "chat/completions"))
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body);
    let key = provider.api_key.expose_secret();
    // Local OpenAI-compatible servers often take no key at all.
    if !key.is_empty() {
        builder = builder.header(
            reqwest::header::AUTHORIZATION,
            super::secret_header(&format!("Bearer {key}"))?,
        );
    }
    Ok(builder)
}

/// Remembers the usage chunk until `[DONE]`.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: ReportedUsage,
}

impl Decoder {
    pub(crate) fn on_event(&mut self, event: &SseEvent) -> Result<Option<Output>, Failure> {
        if event.data == "[DONE]" {
            return Ok(Some(Output::Finished(self.usage)));
        }
        let chunk: Chunk = serde_json::from_str(&event.data)
            .map_err(|error| Failure::Protocol(format!("{error} in {:?}", event.data)))?;
        if let Some(error) = chunk.error {
            return Err(Failure::Provider(
                error.message.unwrap_or_else(|| "unspecified error".into()),
            ));
        }
        if let Some(usage) = chunk.usage {
            self.usage = ReportedUsage {
                prompt_tokens: Some(usage.prompt_tokens),
                completion_tokens: Some(usage.completion_tokens),
            };
        }
        let text: String = chunk
            .choices
            .into_iter()
            .filter_map(|choice| choice.delta.content)
            .collect();
        Ok((!text.is_empty()).then_some(Output::Text(text)))
    }

    pub(crate) fn on_end(&mut self) -> Result<ReportedUsage, Failure> {
        Err(Failure::Cut("the stream ended without data: [DONE]".into()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::conformance::{self, Fixture};
    use crate::{ProviderKind, StreamEvent, Usage};

    pub(crate) struct OpenAi;

    fn chunk(delta: serde_json::Value, finish_reason: Option<&str>) -> String {
        let chunk = json!({
            "id": "chatcmpl-123",
            "object": "chat.completion.chunk",
            "created": 1694268190,
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_44709d6fcb",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            "usage": null,
        });
        format!("data: {chunk}\n\n")
    }

    fn text_chunks(parts: &[&str]) -> String {
        std::iter::once(chunk(json!({"role": "assistant", "content": ""}), None))
            .chain(
                parts
                    .iter()
                    .map(|part| chunk(json!({"content": part}), None)),
            )
            .collect()
    }

    impl Fixture for OpenAi {
        const KIND: ProviderKind = ProviderKind::OpenAi;
        const MODEL: &'static str = "gpt-4o-mini";

        // The chunk objects of the API reference's "The chat completion
        // chunk object" (https://platform.openai.com/docs/api-reference/chat/streaming),
        // verbatim, each framed as `data: ...\n\n`, then the usage-only chunk
        // that `stream_options.include_usage` adds ("choices field will always
        // be an empty array", same reference) and `data: [DONE]`.
        const DOCUMENTED: &'static str = include_str!("fixtures/openai-chat-completion-chunks.txt");
        const DOCUMENTED_TEXT: &'static str = "Hello";
        const DOCUMENTED_USAGE: Usage = Usage {
            prompt_tokens: 9,
            completion_tokens: 12,
        };

        fn stream(parts: &[&str], usage: Usage) -> String {
            let usage_chunk = json!({
                "id": "chatcmpl-123",
                "object": "chat.completion.chunk",
                "created": 1694268190,
                "model": "gpt-4o-mini",
                "choices": [],
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.prompt_tokens + usage.completion_tokens,
                },
            });
            format!(
                "{}{}data: {usage_chunk}\n\ndata: [DONE]\n\n",
                text_chunks(parts),
                chunk(json!({}), Some("stop"))
            )
        }

        fn cut(parts: &[&str]) -> String {
            text_chunks(parts)
        }

        fn error_after(parts: &[&str]) -> String {
            format!(
                "{}data: {}\n\n",
                text_chunks(parts),
                json!({"error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error", "param": null, "code": null,
                }})
            )
        }

        fn expected_url(base: &str) -> String {
            format!("{base}/chat/completions")
        }

        fn expected_headers(api_key: &str) -> Vec<(&'static str, String)> {
            vec![("authorization", format!("Bearer {api_key}"))]
        }

        fn expected_body() -> serde_json::Value {
            // As in the API reference's streaming example request.
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are a helpful assistant."},
                    {"role": "user", "content": "Hello!"},
                    {"role": "assistant", "content": "Hi! How can I help?"},
                    {"role": "user", "content": "Say hello back."},
                ],
                "max_completion_tokens": 256,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        }

        fn add_sampling(body: &mut serde_json::Value) {
            // `temperature` and `stop` (an array of up to 4) of the same page.
            body["temperature"] = json!(0.5);
            body["stop"] = json!(["END", "###"]);
        }
    }

    conformance_tests!(OpenAi);

    #[tokio::test]
    async fn a_server_that_ignores_include_usage_gets_usage_counted_locally() {
        // Documented chunks without the usage chunk: what an older
        // OpenAI-compatible server sends.
        let stream = format!(
            "{}{}data: [DONE]\n\n",
            text_chunks(&["Hello", " world"]),
            chunk(json!({}), Some("stop"))
        );
        let (events, error) = conformance::run::<OpenAi>(&[stream.as_bytes()]).await;
        assert_eq!(error, None);
        let request = conformance::request::<OpenAi>();
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done(Usage {
                prompt_tokens: crate::count_prompt_tokens(
                    ProviderKind::OpenAi,
                    "gpt-4o-mini",
                    &request
                ),
                completion_tokens: crate::count_text_tokens(
                    ProviderKind::OpenAi,
                    "gpt-4o-mini",
                    "Hello world"
                ),
            }))
        );
    }

    #[tokio::test]
    async fn an_omitted_api_key_sends_no_authorization_header() {
        let provider = crate::ProviderConfig {
            kind: ProviderKind::OpenAi,
            base_url: "http://localhost:11434/v1".into(),
            api_key: crate::SecretString::from(""),
        };
        let request = super::super::build_request(
            &reqwest::Client::new(),
            &provider,
            &conformance::request::<OpenAi>(),
        )
        .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://localhost:11434/v1/chat/completions"
        );
        assert!(request.headers().get("authorization").is_none());
    }
}
