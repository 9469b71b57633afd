//! Google Gemini `streamGenerateContent` over server-sent events
//! (<https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>,
//! <https://ai.google.dev/gemini-api/docs/text-generation#streaming-responses>).
//!
//! Request: `POST {base}/v1beta/models/{model}:streamGenerateContent?alt=sse`
//! with `x-goog-api-key`, roles `user`/`model`, the system prompt as
//! `systemInstruction`, and `generationConfig.maxOutputTokens`. Reply: `data:`
//! events, each a whole `GenerateContentResponse` with a piece of text in
//! `candidates[0].content.parts[].text`, `usageMetadata` (the last one
//! counts) and, towards the end, `finishReason`. There is no terminal event:
//! a clean end of the body after a finish reason is the end of the reply. A
//! failure mid-stream is a `data:` object holding `error` (`code`, `message`,
//! `status`), what `@google/genai` checks each chunk for.

use serde::{Deserialize, Serialize};

use super::{Failure, Output, ReportedUsage};
use crate::{ChatRequest, LlmError, ProviderConfig, Role, sse::SseEvent};
use secrecy::ExposeSecret;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction<'a>>,
    generation_config: GenerationConfig<'a>,
}

#[derive(Debug, Serialize)]
struct Content<'a> {
    role: &'static str,
    parts: [TextPart<'a>; 1],
}

#[derive(Debug, Serialize)]
struct SystemInstruction<'a> {
    parts: [TextPart<'a>; 1],
}

#[derive(Debug, Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    max_output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
    usage_metadata: Option<UsageMetadata>,
    error: Option<WireError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
    /// A thought summary, not the reply.
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u32>,
    candidates_token_count: Option<u32>,
    /// Thinking tokens, billed as output but not counted in candidates.
    thoughts_token_count: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    code: Option<u16>,
    message: Option<String>,
    status: Option<String>,
}

pub(crate) fn request(
    http: &reqwest::Client,
    provider: &ProviderConfig,
    request: &ChatRequest,
) -> Result<reqwest::RequestBuilder, LlmError> {
    let body = Body {
        contents: request
            .messages
            .iter()
            .map(|message| Content {
                role: match message.role {
                    Role::User => "user",
                    Role::Assistant => "model",
                },
                parts: [TextPart {
                    text: &message.content,
                }],
            })
            .collect(),
        system_instruction: request.system.as_deref().map(|text| SystemInstruction {
            parts: [TextPart { text }],
        }),
        generation_config: GenerationConfig {
            max_output_tokens: request.max_tokens,
            temperature: request.sampling.temperature,
            stop_sequences: &request.sampling.stop,
        },
    };
    let path = format!(
        "v1beta/models/{}:streamGenerateContent?alt=sse",
        request.model
    );
    Ok(http
        .post(super::join(&provider.base_url, &path))
        .header(
            "x-goog-api-key",
            super::secret_header(provider.api_key.expose_secret())?,
        )
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .json(&body))
}

/// The last usage seen, and whether a candidate has finished.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    usage: ReportedUsage,
    finished: bool,
}

impl Decoder {
    pub(crate) fn on_event(&mut self, event: &SseEvent) -> Result<Option<Output>, Failure> {
        let chunk: Chunk = serde_json::from_str(&event.data)
            .map_err(|error| Failure::Protocol(format!("{error} in {:?}", event.data)))?;
        if let Some(error) = chunk.error {
            return Err(Failure::Provider(format!(
                "{} {}: {}",
                error.code.unwrap_or_default(),
                error.status.as_deref().unwrap_or("ERROR"),
                error.message.as_deref().unwrap_or("unspecified")
            )));
        }
        if let Some(usage) = chunk.usage_metadata {
            // Proto3 JSON leaves zero counts out: absent means 0.
            self.usage = ReportedUsage {
                prompt_tokens: Some(usage.prompt_token_count.unwrap_or(0)),
                completion_tokens: Some(
                    usage
                        .candidates_token_count
                        .unwrap_or(0)
                        .saturating_add(usage.thoughts_token_count.unwrap_or(0)),
                ),
            };
        }
        // One candidate: this adapter never asks for more.
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            return Ok(None);
        };
        if candidate.finish_reason.is_some() {
            self.finished = true;
        }
        let text: String = candidate
            .content
            .into_iter()
            .flat_map(|content| content.parts)
            .filter(|part| !part.thought)
            .filter_map(|part| part.text)
            .collect();
        Ok((!text.is_empty()).then_some(Output::Text(text)))
    }

    pub(crate) fn on_end(&mut self) -> Result<ReportedUsage, Failure> {
        if self.finished {
            Ok(self.usage)
        } else {
            Err(Failure::Cut(
                "the stream ended before a finishReason".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::conformance::{self, Fixture};
    use crate::{ProviderKind, StreamEvent, Usage};

    pub(crate) struct Google;

    fn chunk(text: &str, finish: Option<&str>, usage: Option<Usage>) -> String {
        let mut candidate =
            json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        let mut chunk = json!({"candidates": [candidate]});
        if let Some(usage) = usage {
            chunk["usageMetadata"] = json!({
                "promptTokenCount": usage.prompt_tokens,
                "candidatesTokenCount": usage.completion_tokens,
                "totalTokenCount": usage.prompt_tokens + usage.completion_tokens,
            });
        }
        format!("data: {chunk}\n\n")
    }

    impl Fixture for Google {
        const KIND: ProviderKind = ProviderKind::Google;
        const MODEL: &'static str = "gemini-2.0-flash";

        // A recorded `streamGenerateContent?alt=sse` reply, byte for byte:
        // google-gemini/generative-ai-js,
        // test-utils/mock-responses/streaming-success-search-grounding.txt. Its
        // last event has `content: {}` and grounding metadata only.
        const DOCUMENTED: &'static str =
            include_str!("fixtures/gemini-streaming-success-search-grounding.txt");
        const DOCUMENTED_TEXT: &'static str = "The current stock price for Alphabet Inc. (Google) \
            Class C (GOOG) is \\$166.79 USD. This price reflects a decrease of -0.97% over the \
            last 24 hours. \n\nPlease note that stock prices can change rapidly.  This information \
            is current as of October 2, 2024, at 5:58 PM UTC.  You can find the most up-to-date \
            information on financial websites like Google Finance or TradingView.\n";
        const DOCUMENTED_USAGE: Usage = Usage {
            prompt_tokens: 8,
            completion_tokens: 106,
        };

        fn stream(parts: &[&str], usage: Usage) -> String {
            // Text chunks, then a last chunk with the finish reason and the
            // usage but no text, as Gemini ends a reply.
            let text: String = parts.iter().map(|part| chunk(part, None, None)).collect();
            let last = json!({
                "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {
                    "promptTokenCount": usage.prompt_tokens,
                    "candidatesTokenCount": usage.completion_tokens,
                    "totalTokenCount": usage.prompt_tokens + usage.completion_tokens,
                },
                "modelVersion": "gemini-2.0-flash",
            });
            format!("{text}data: {last}\n\n")
        }

        fn cut(parts: &[&str]) -> String {
            parts.iter().map(|part| chunk(part, None, None)).collect()
        }

        fn error_after(parts: &[&str]) -> String {
            // The Google API error object (https://ai.google.dev/gemini-api/docs/troubleshooting,
            // https://cloud.google.com/apis/design/errors#http_mapping).
            format!(
                "{}data: {}\n\n",
                Self::cut(parts),
                json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.",
                                 "status": "UNAVAILABLE"}})
            )
        }

        fn expected_url(base: &str) -> String {
            format!("{base}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
        }

        fn expected_headers(api_key: &str) -> Vec<(&'static str, String)> {
            vec![("x-goog-api-key", api_key.to_owned())]
        }

        fn expected_body() -> serde_json::Value {
            // GenerateContentRequest (https://ai.google.dev/api/generate-content#request-body).
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Hello!"}]},
                    {"role": "model", "parts": [{"text": "Hi! How can I help?"}]},
                    {"role": "user", "parts": [{"text": "Say hello back."}]},
                ],
                "systemInstruction": {"parts": [{"text": "You are a helpful assistant."}]},
                "generationConfig": {"maxOutputTokens": 256},
            })
        }

        fn add_sampling(body: &mut serde_json::Value) {
            // GenerationConfig's `temperature` and `stopSequences`.
            body["generationConfig"]["temperature"] = json!(0.5);
            body["generationConfig"]["stopSequences"] = json!(["END", "###"]);
        }
    }

    conformance_tests!(Google);

    #[tokio::test]
    async fn thought_parts_are_not_reply_text_but_thinking_tokens_are_billed() {
        let thought = json!({"candidates": [{"content": {"parts": [{"text": "Pondering", "thought": true}], "role": "model"}}]});
        let last = json!({
            "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "thoughtsTokenCount": 20, "totalTokenCount": 25},
        });
        let stream = format!("data: {thought}\n\ndata: {last}\n\n");
        let (events, error) = conformance::run::<Google>(&[stream.as_bytes()]).await;
        assert_eq!(error, None);
        assert_eq!(
            events,
            vec![
                StreamEvent::Text("Hi".into()),
                StreamEvent::Done(Usage {
                    prompt_tokens: 4,
                    completion_tokens: 21
                })
            ]
        );
    }

    #[tokio::test]
    async fn a_finish_mid_stream_still_waits_for_the_end_of_the_body() {
        // The recorded fixture repeats finishReason on every chunk: text after
        // a finish reason still belongs to the reply.
        let stream = chunk("a", Some("STOP"), None)
            + &chunk(
                "b",
                Some("STOP"),
                Some(Usage {
                    prompt_tokens: 1,
                    completion_tokens: 2,
                }),
            );
        let (events, error) = conformance::run::<Google>(&[stream.as_bytes()]).await;
        assert_eq!(error, None);
        assert_eq!(conformance::text(&events), "ab");
    }
}
