//! `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`, as Google documents them
//! (<https://ai.google.dev/api/generate-content>): a `GenerateContentResponse`,
//! or a stream of them, as `data:` events with `?alt=sse` and as one JSON
//! array without. The last chunk carries `finishReason` and the final
//! `usageMetadata`; there is no terminal event. Mid-stream failures are a
//! `data:` event holding the Google API error object. The key comes in
//! `x-goog-api-key` or `?key=`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Problem, Wire, failed_request, new_id, refuse, stream, whole};
use crate::{
    reply::{Finish, Reply},
    state::{Api, State},
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    contents: Vec<Content>,
    /// The API takes proto field names in either case.
    #[serde(alias = "system_instruction")]
    system_instruction: Option<Content>,
    #[serde(alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Deserialize)]
struct Content {
    role: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
struct Part {
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(alias = "max_output_tokens")]
    max_output_tokens: Option<u32>,
}

impl Content {
    fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|part| part.text.as_deref())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    candidates: [Candidate<'a>; 1],
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: CandidateContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Debug, Serialize)]
struct CandidateContent<'a> {
    parts: [TextPart<'a>; 1],
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct TextPart<'a> {
    text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u32,
    candidates_token_count: u32,
    total_token_count: u32,
}

/// The Google API error object
/// (<https://cloud.google.com/apis/design/errors#http_mapping>).
fn error(problem: Problem, message: Option<&str>) -> serde_json::Value {
    let (code, status, default) = match problem {
        Problem::BadRequest => (400, "INVALID_ARGUMENT", "Invalid request."),
        Problem::Unauthenticated => (
            401,
            "UNAUTHENTICATED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        ),
        Problem::NotFound => (404, "NOT_FOUND", "Method not found."),
        Problem::RateLimited => (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        Problem::Server => (
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        ),
    };
    json!({"error": {"code": code, "message": message.unwrap_or(default), "status": status}})
}

/// Which method the path's last segment, `{model}:{method}`, names.
enum Method {
    Generate,
    Stream,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Query {
    alt: Option<String>,
    key: Option<String>,
}

pub(crate) async fn handle(
    state: web::Data<State>,
    http: HttpRequest,
    call: web::Path<String>,
    query: web::Query<Query>,
    body: web::Bytes,
) -> HttpResponse {
    let fault = state.arrive(Api::Google);
    // The model id cannot contain a colon; the method follows the last one.
    let (model, method) = match call.rsplit_once(':') {
        Some((model, "generateContent")) => (model, Method::Generate),
        Some((model, "streamGenerateContent")) => (model, Method::Stream),
        _ => return refuse(Problem::NotFound, &error(Problem::NotFound, None)),
    };
    let header_key = http
        .headers()
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| !value.is_empty());
    if !header_key && query.key.as_deref().is_none_or(str::is_empty) {
        return refuse(
            Problem::Unauthenticated,
            &error(Problem::Unauthenticated, None),
        );
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refuse(
                Problem::BadRequest,
                &error(Problem::BadRequest, Some(&e.to_string())),
            );
        }
    };
    if request.contents.is_empty() {
        let message = "* GenerateContentRequest.contents: contents is not specified\n";
        return refuse(
            Problem::BadRequest,
            &error(Problem::BadRequest, Some(message)),
        );
    }
    if let Some(response) = failed_request(fault, |problem| error(problem, None)) {
        return response;
    }
    let config = state.config();
    let texts: Vec<String> = request
        .system_instruction
        .iter()
        .chain(&request.contents)
        .map(Content::text)
        .collect();
    let last_user = request
        .contents
        .iter()
        .rev()
        .find(|content| content.role.as_deref().is_none_or(|role| role == "user"))
        .map(Content::text)
        .unwrap_or_default();
    let max_tokens = request
        .generation_config
        .and_then(|config| config.max_output_tokens);
    let reply = Reply::new(
        &last_user,
        texts.iter().map(String::as_str),
        max_tokens,
        &config,
    );
    let chunks = Chunks {
        model_version: model.to_owned(),
        response_id: new_id(""),
        prompt_tokens: reply.prompt_tokens,
        completion_tokens: reply.completion_tokens(),
        finish_reason: match reply.finish {
            Finish::Stop => "STOP",
            Finish::Length => "MAX_TOKENS",
        },
    };
    match method {
        Method::Stream if query.alt.as_deref() == Some("sse") => {
            stream(&chunks, &reply, fault, &config)
        }
        Method::Stream => {
            // Without `alt=sse` the API streams one JSON array of chunks.
            let mut array: Vec<serde_json::Value> = reply
                .pieces
                .iter()
                .enumerate()
                .map(|(index, piece)| chunks.value(piece, index + 1, None))
                .collect();
            array.push(chunks.value("", reply.pieces.len(), Some(chunks.finish_reason)));
            whole(&serde_json::Value::Array(array), fault, |problem| {
                error(problem, None)
            })
        }
        Method::Generate => {
            let text = reply.text();
            let response = chunks.value(&text, reply.pieces.len(), Some(chunks.finish_reason));
            whole(&response, fault, |problem| error(problem, None))
        }
    }
}

/// One reply's constant parts.
struct Chunks {
    model_version: String,
    response_id: String,
    prompt_tokens: u32,
    completion_tokens: u32,
    finish_reason: &'static str,
}

impl Chunks {
    /// The chunk carrying `text`, after `sent` tokens in all.
    fn chunk<'a>(&'a self, text: &'a str, sent: usize, finish: Option<&'static str>) -> Chunk<'a> {
        let candidates = if finish.is_some() {
            self.completion_tokens
        } else {
            u32::try_from(sent).unwrap_or(u32::MAX)
        };
        Chunk {
            candidates: [Candidate {
                content: CandidateContent {
                    parts: [TextPart { text }],
                    role: "model",
                },
                finish_reason: finish,
                index: 0,
            }],
            usage_metadata: UsageMetadata {
                prompt_token_count: self.prompt_tokens,
                candidates_token_count: candidates,
                total_token_count: self.prompt_tokens.saturating_add(candidates),
            },
            model_version: &self.model_version,
            response_id: &self.response_id,
        }
    }

    fn value(&self, text: &str, sent: usize, finish: Option<&'static str>) -> serde_json::Value {
        serde_json::to_value(self.chunk(text, sent, finish)).unwrap_or_default()
    }

    fn event(&self, text: &str, sent: usize, finish: Option<&'static str>) -> String {
        format!(
            "data: {}\n\n",
            serde_json::to_string(&self.chunk(text, sent, finish)).unwrap_or_default()
        )
    }
}

impl Wire for Chunks {
    fn opening(&self) -> Vec<String> {
        Vec::new()
    }

    fn token(&self, piece: &str, sent: usize) -> String {
        self.event(piece, sent, None)
    }

    fn closing(&self) -> Vec<String> {
        vec![self.event("", 0, Some(self.finish_reason))]
    }

    fn error(&self) -> String {
        let overloaded = json!({"error": {
            "code": 503,
            "message": "The model is overloaded. Please try again later.",
            "status": "UNAVAILABLE",
        }});
        format!("data: {overloaded}\n\n")
    }
}
